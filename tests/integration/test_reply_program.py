"""test_reply_program.py - WAHOOK_REPLY_COMMAND: the business's program decides
each reply. Its output as text, a JSON object, an array or nothing; a failing
and a hanging program (the timeout kills its process group); a Graph failure
after it ran (it does not run again); its environment holds no secret; order
within a conversation and parallelism across; the 24-hour window; SIGKILL of
the drainer while programs run (they run again: at least once); WAHOOK_REPLY=none
and the configuration errors. Against the stand-in Graph API and real PostgreSQL.
"""
import json
import os
import signal
import sys
import time
import unittest

import harness
import drainkit as dk

pg = server = None
EXAMPLES = os.path.join(harness.ROOT, "examples", "reply")

# Every test program logs each run (start and end) as a JSON line, then does BODY.
PROGRAM = """#!%(python)s
import json, os, subprocess, sys, time
LOG = %(log)r
def log(**kw):
    with open(LOG, "a") as f:
        f.write(json.dumps(kw) + "\\n")
raw = sys.stdin.read()
q = json.loads(raw)
mid = q["message_id"]
log(ev="start", id=mid, pid=os.getpid(), pgid=os.getpgid(0), t=time.monotonic(),
    env=dict(os.environ), argv=sys.argv, q=q)
%(body)s
log(ev="end", id=mid, t=time.monotonic())
"""

# The same in sh, for the tests where time matters: Python starts slowly on a
# loaded machine. Lines: "start ID PID PGID REALTIME", "end ID PID REALTIME".
PROGRAM_SH = """#!/bin/sh
LOG=%(log)s
echo "start $WAHOOK_MESSAGE_ID $$ $(cut -d' ' -f5 /proc/$$/stat) $(date +%%s.%%N)" >> "$LOG"
cat > /dev/null
%(body)s
echo "end $WAHOOK_MESSAGE_ID $$ $(date +%%s.%%N)" >> "$LOG"
"""
# realtime - monotonic: the sh programs' times on the stand-in's clock
OFFSET = time.time() - time.monotonic()


setUpModule, tearDownModule = dk.module_stack(globals())


# Debian's, not a development interpreter: it starts faster
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class ReplyCase(dk.DrainCase):
    def program(self, body, sh=False):
        """Writes a logging reply program doing body (Python, or sh); returns its path."""
        d = harness.tmpdir("wahook-reply-")
        self.runlog = os.path.join(d, "runs.jsonl")
        self.sh = sh
        path = os.path.join(d, "reply-program")
        with open(path, "w") as f:
            f.write((PROGRAM_SH if sh else PROGRAM) %
                    {"python": PYTHON, "log": self.runlog, "body": body})
        os.chmod(path, 0o755)
        return path

    # Python programs start slowly on a loaded machine (seconds, seen here with a
    # load of 20 on 2 cores): room for them unless a test says otherwise, and
    # Debian's python3 first on PATH, as on a server
    SLOW = {"PATH": "/usr/bin:/bin", "WAHOOK_LEASE": 60, "WAHOOK_REPLY_TIMEOUT": 25}

    def drain(self, timeout=240, **extra):
        return dk.run(pg, self.g, timeout=timeout, **dict(self.SLOW, **extra))

    def drain_until_done(self, **extra):
        return dk.drain_until_done(pg, self.g, **dict(self.SLOW, **extra))

    def runs(self, ev="start"):
        """The program's runs, oldest first, as dicts (id, pid, t on the
        stand-in's clock; pgid for starts)."""
        if not os.path.exists(self.runlog):
            return []
        with open(self.runlog) as f:
            if not self.sh:
                return [r for r in map(json.loads, f) if r["ev"] == ev]
            out = []
            for line in f:
                w = line.split()
                if w[0] != ev:
                    continue
                r = {"ev": w[0], "id": w[1], "pid": int(w[2]), "t": float(w[-1]) - OFFSET}
                if ev == "start":
                    r["pgid"] = int(w[3])
                out.append(r)
            return out

    def replies(self, m):
        return [c for c in self.g.ok("reply") if c["message_id"] == m]

    def row(self, m):
        cols = ["state", "attempts", "last_error", "reply_state", "reply_sent",
                "reply_reason", "reply_message_id", "reply_message_ids", "reply"]
        r = dk.query(pg, "SELECT %s FROM wa_outbox WHERE message_id = '%s'"
                     % (", ".join(c + "::text" for c in cols), m))
        return dict(zip(cols, r[0]))


class ReplyFormats(ReplyCase):
    def test_echo_example_sends_the_text_back(self):
        convs = dk.feed(server, conversations=2, per_conv=2)
        r = self.drain(WAHOOK_REPLY_COMMAND=os.path.join(EXAMPLES, "echo"))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        for sender, ids in convs.items():
            for m in ids:
                (c,) = self.replies(m)
                self.assertEqual(c["body"], {
                    "type": "text", "text": {"body": "hello " + m},
                    "messaging_product": "whatsapp", "recipient_type": "individual",
                    "to": sender, "context": {"message_id": m}})
                row = self.row(m)
                self.assertEqual((row["state"], row["reply_state"], row["reply_sent"]),
                                 ("done", "sent", "1"))
                self.assertEqual(row["reply_message_id"], c["reply_id"])
        self.assert_in_order(convs)
        self.assertIn("ev=reply_source ", r.err)
        self.assertIn("outcome=recorded", r.err)

    def test_plain_text_output_is_a_text_reply_quoting_the_message(self):
        prog = self.program('sys.stdout.write("Thanks, %s!\\n" % q["profile_name"])')
        convs = dk.feed(server, conversations=1, per_conv=1)
        (sender, (m,)), = convs.items()
        r = self.drain(WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(r.rc, 0, r)
        (c,) = self.replies(m)
        self.assertEqual(c["body"]["text"], {"body": "Thanks, User %s!" % sender})
        self.assertEqual(c["body"]["context"], {"message_id": m})
        self.assertEqual(self.g.violations, [])
        # the input: the message as Meta sent it, and who, to whom
        (run,) = self.runs()
        q = run["q"]
        self.assertEqual(q["message"]["id"], m)
        self.assertEqual(q["message"]["text"], {"body": "hello " + m})
        self.assertEqual((q["message_id"], q["sender"], q["phone_number_id"],
                          q["display_phone_number"], q["profile_name"]),
                         (m, sender, dk.PNID, dk.DISPLAY, "User " + sender))

    def test_menu_example_sends_an_interactive_message(self):
        convs = dk.feed(server, conversations=1, per_conv=1)
        (sender, (m,)), = convs.items()
        r = self.drain(WAHOOK_REPLY_COMMAND=os.path.join(EXAMPLES, "menu"))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        (c,) = self.replies(m)
        b = c["body"]
        self.assertEqual((b["type"], b["to"], b["recipient_type"], b["messaging_product"]),
                         ("interactive", sender, "individual", "whatsapp"))
        self.assertEqual(b["interactive"]["type"], "button")
        self.assertEqual(len(b["interactive"]["action"]["buttons"]), 3)
        self.assertEqual(b["context"], {"message_id": m})

    def test_array_is_sent_in_order_and_each_recorded(self):
        prog = self.program('json.dump([{"type": "text", "text": {"body": "one"}},'
                            '{"type": "image", "image": {"link": "https://x.example/a.png"},'
                            ' "context": None},'
                            '{"type": "text", "text": {"body": "three"}}], sys.stdout)')
        convs = dk.feed(server, conversations=2, per_conv=2)
        r = self.drain(WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        for sender, ids in convs.items():
            calls = [c for c in self.g.ok() if c["to"] == sender or
                     c["message_id"] in ids]
            # read m1, its three replies, read m2, its three replies
            want = []
            for m in ids:
                want += [("read", None), ("reply", "one"), ("reply", "image"),
                         ("reply", "three")]
            got = [(c["step"], None if c["step"] == "read" else
                    c["body"]["text"]["body"] if c["body"]["type"] == "text" else "image")
                   for c in calls]
            self.assertEqual(got, want)
            for m in ids:
                row = self.row(m)
                self.assertEqual((row["state"], row["reply_state"], row["reply_sent"]),
                                 ("done", "sent", "3"))
                self.assertEqual(len(json.loads(row["reply"])), 3)
                self.assertEqual(row["reply_message_ids"].count("wamid.REPLY"), 3)
        # "context": null in the output: that message quotes nothing
        images = [c for c in self.g.ok("reply") if c["body"]["type"] == "image"]
        self.assertTrue(images and all("context" not in c["body"] for c in images))

    def test_empty_output_marks_read_and_sends_nothing(self):
        prog = self.program("pass")
        convs = dk.feed(server, conversations=2, per_conv=2)
        r = self.drain(WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(r.rc, 0, r)
        ids = [m for v in convs.values() for m in v]
        self.assertEqual(len(self.runs()), 4)
        self.assertEqual(self.g.count("reply"), 0)
        for m in ids:
            self.assertEqual(self.g.count("read", m, ok_only=True), 1)
            row = self.row(m)
            self.assertEqual((row["state"], row["reply_state"], row["reply"]),
                             ("done", "none", "[]"))
            self.assertIn("printed nothing", row["reply_reason"])
        self.assertEqual(pg.scalar("SELECT sum(unread_count) FROM wa_conversations"), "0")

    def test_reply_none_marks_read_only(self):
        convs = dk.feed(server, conversations=1, per_conv=2)
        r = self.drain(WAHOOK_REPLY="none",
                   WAHOOK_REPLY_COMMAND=os.path.join(EXAMPLES, "echo"))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.count("reply"), 0)
        for m in list(convs.values())[0]:
            self.assertEqual(self.g.count("read", m, ok_only=True), 1)
            self.assertEqual(self.row(m)["reply_state"], "none")
            self.assertEqual(self.row(m)["reply_reason"], "WAHOOK_REPLY=none")


class ReplyFailures(ReplyCase):
    def test_failing_program_retries_then_dead_with_its_last_stderr_line(self):
        prog = self.program('sys.stderr.write("connecting to crm\\ncrm said: no way\\n")\n'
                            'sys.exit(3)')
        convs = dk.feed(server, conversations=1, per_conv=2)
        (sender, (m1, m2)), = convs.items()
        r = self.drain(WAHOOK_REPLY_COMMAND=prog, WAHOOK_MAX_ATTEMPTS=3,
                   WAHOOK_RETRY_MIN=0.01, WAHOOK_RETRY_MAX=0.02)
        for _ in range(20):
            if self.row(m1)["state"] == "dead":
                break
            time.sleep(0.05)
            r = self.drain(WAHOOK_REPLY_COMMAND=prog, WAHOOK_MAX_ATTEMPTS=3,
                       WAHOOK_RETRY_MIN=0.01, WAHOOK_RETRY_MAX=0.02)
        row = self.row(m1)
        self.assertEqual(row["state"], "dead", r)
        self.assertEqual(row["attempts"], "3")
        self.assertIn("reply program exited 3: crm said: no way", row["last_error"])
        self.assertIn("WAHOOK_MAX_ATTEMPTS", row["last_error"])
        self.assertEqual(len([x for x in self.runs() if x["id"] == m1]), 3)
        self.assertEqual(self.g.count("reply"), 0)
        self.assertIn("ev=reply_source", r.err)

    def test_invalid_output_is_a_failed_attempt_with_the_reason(self):
        prog = self.program('sys.stdout.write(\'{"type": "text", "text": \')')
        convs = dk.feed(server, conversations=1, per_conv=1)
        (sender, (m,)), = convs.items()
        r = self.drain(WAHOOK_REPLY_COMMAND=prog, WAHOOK_MAX_ATTEMPTS=1)
        self.assertEqual(r.rc, 0, r)
        row = self.row(m)
        self.assertEqual(row["state"], "dead")
        self.assertIn("invalid reply: output starts like JSON but is not valid JSON",
                      row["last_error"])
        self.assertEqual(self.g.count("reply"), 0)

    def test_nan_from_a_program_is_an_invalid_reply_and_others_are_answered(self):
        """Python's json.dumps(float("nan")) prints NaN: JSON's parsers in C take
        it, the database's jsonb does not. An invalid reply (retried, then dead
        with the reason), never a database failure that stops every run."""
        convs = dk.feed(server, conversations=2, per_conv=1)
        (bad,), (good,) = convs.values()
        prog = self.program(
            'print(json.dumps({"type": "text", "text": {"body": "x"},\n'
            '                  "biz_opaque_callback_data": float("nan")})\n'
            '      if mid == %r else "fine")' % bad)
        dk.assert_invalid_reply_dies(self, pg, self.g, bad, good, "NaN",
                                     WAHOOK_REPLY_COMMAND=prog, **self.SLOW)
        self.assertEqual(len([x for x in self.runs() if x["id"] == bad]), 2)

    def test_reply_the_database_refuses_is_the_replys_fault(self):
        """Past the strict parse, a class-22 error from recording a reply (here a
        trigger's: a check of the business's own) is still the reply's fault:
        retried, then dead with the database's reason, and no exit 4."""
        dk.query(pg, """
            CREATE FUNCTION wahook_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.reply::text LIKE '%refuse-me%' THEN
                RAISE EXCEPTION 'reply not allowed here: "%"', NEW.reply
                  USING ERRCODE = '22023';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER wahook_test_refuse BEFORE UPDATE OF reply ON wa_outbox
              FOR EACH ROW EXECUTE FUNCTION wahook_test_refuse();""")
        self.addCleanup(dk.query, pg, "DROP TRIGGER wahook_test_refuse ON wa_outbox; "
                        "DROP FUNCTION wahook_test_refuse()")
        convs = dk.feed(server, conversations=2, per_conv=1)
        (bad,), (good,) = convs.values()
        prog = self.program('print("refuse-me" if mid == %r else "fine")' % bad)
        # PostgreSQL's primary message, cut before the quoted value
        runs = dk.assert_invalid_reply_dies(
            self, pg, self.g, bad, good, "the database refused it: reply_record: "
            "reply not allowed here (SQLSTATE 22023)", WAHOOK_REPLY_COMMAND=prog, **self.SLOW)
        # the value quoted after the colon is the customer's data: in no log
        for r in runs:
            self.assertNotIn("refuse-me", r.err)

    def test_hanging_program_is_killed_with_its_process_group(self):
        prog = self.program('sleep 300 &\n'
                            'echo "kid $WAHOOK_MESSAGE_ID $! 0" >> "$LOG"\n'
                            'echo "waiting for the crm" >&2\n'
                            'sleep 300', sh=True)
        convs = dk.feed(server, conversations=2, per_conv=1)
        ids = [m for v in convs.values() for m in v]
        t0 = time.monotonic()
        r = self.drain(WAHOOK_REPLY_COMMAND=prog, WAHOOK_REPLY_TIMEOUT=3,
                   WAHOOK_RETRY_MIN=60, WAHOOK_RETRY_MAX=60)
        took = time.monotonic() - t0
        self.assertEqual(r.rc, 1, r)
        self.assertLess(took, 30, "the drainer waited for the hanging programs")
        starts = self.runs()
        kids = self.runs("kid")
        self.assertEqual(len(starts), 2)
        self.assertEqual(len(kids), 2)
        for run in starts:
            self.assertEqual(run["pgid"], run["pid"], "not its own process group")
        deadline = time.monotonic() + 5
        pids = [x["pid"] for x in starts + kids]
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([p for p in pids if alive(p)], [], "program or its child survived")
        for m in ids:
            row = self.row(m)
            self.assertEqual((row["state"], row["attempts"]), ("pending", "1"))
            self.assertIn("timed out after 3.0 s: its process group was killed",
                          row["last_error"])
            self.assertIn("waiting for the crm", row["last_error"])
        self.assertEqual(self.g.count("reply"), 0)

    def test_graph_failure_after_the_program_ran_does_not_run_it_again(self):
        prog = self.program('sys.stdout.write("answer for %s" % mid)')
        convs = dk.feed(server, conversations=1, per_conv=2)
        (sender, (m1, m2)), = convs.items()
        self.g.answer("500", step="reply", message_id=m1, times=2)
        runs = self.drain_until_done(WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(runs[-1].rc, 0, runs[-1])
        self.assertEqual([x["id"] for x in self.runs()], [m1, m2])
        self.assertEqual(self.g.count("reply", m1), 3)
        (ok,) = self.replies(m1)
        self.assertEqual(ok["body"]["text"]["body"], "answer for " + m1)
        row = self.row(m1)
        self.assertEqual((row["state"], row["attempts"], row["reply_sent"]),
                         ("done", "2", "1"))
        self.assert_in_order(convs, only_ok=True)

    def test_environment_holds_no_secret(self):
        prog = self.program("pass")
        dk.feed(server, conversations=1, per_conv=1)
        home = harness.tmpdir("wahook-home-")
        r = self.drain(WAHOOK_REPLY_COMMAND=prog, HOME=home, LANG="C.UTF-8",
                   WAHOOK_REPLY_URL_SECRET="a-url-secret-that-must-stay",
                   WAHOOK_APP_SECRET="app-secret-not-for-programs")
        self.assertEqual(r.rc, 0, r)
        (run,) = self.runs()
        env = run["env"]
        self.assertEqual(sorted(env), ["HOME", "LANG", "PATH", "WAHOOK_MESSAGE_ID",
                                       "WAHOOK_MESSAGE_TYPE", "WAHOOK_PHONE_NUMBER_ID",
                                       "WAHOOK_SENDER"])
        q = run["q"]
        self.assertEqual((env["WAHOOK_MESSAGE_ID"], env["WAHOOK_SENDER"],
                          env["WAHOOK_PHONE_NUMBER_ID"], env["WAHOOK_MESSAGE_TYPE"],
                          env["HOME"], env["LANG"]),
                         (q["message_id"], q["sender"], dk.PNID, "text", home, "C.UTF-8"))
        self.assertEqual(run["argv"], [prog])
        everything = json.dumps(run)
        for secret in (dk.ACCESS_TOKEN, pg.dsn, "a-url-secret-that-must-stay",
                       "app-secret-not-for-programs"):
            self.assertNotIn(secret, everything)
        # and its descriptors: stdin, stdout, stderr only (no database or Graph socket)
        prog = self.program('log(ev="fds", id=mid, fds=sorted(os.listdir("/proc/self/fd")))')
        dk.feed(server, conversations=1, per_conv=1)
        r = self.drain(WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(r.rc, 0, r)
        (fds,) = self.runs("fds")
        # listdir itself holds one open directory
        self.assertEqual(len(fds["fds"]), 4, fds)


    def test_parent_environ_holds_no_secret(self):
        """tr '\\0' '\\n' </proc/$PPID/environ: what a program could read of its
        drainer's environment (this suite runs as root, which may read it
        whatever the drainer's dumpable flag says) holds neither the access
        token nor WAHOOK_DB with its password."""
        prog = self.program(
            'ppid = os.getppid()\n'
            'try:\n'
            '    with open("/proc/%d/environ" % ppid, "rb") as f:\n'
            '        seen = f.read().decode("utf-8", "replace")\n'
            'except OSError as e:\n'
            '    seen = "unreadable: %r" % e\n'
            'log(ev="parent", id=mid, ppid=ppid, environ=seen,\n'
            '    exe=os.readlink("/proc/%d/exe" % ppid) if os.access(\n'
            '        "/proc/%d/exe" % ppid, os.R_OK) else None)')
        dk.feed(server, conversations=1, per_conv=1)
        dsn = pg.dsn + " password=db-password-not-for-programs"
        r = self.drain(WAHOOK_REPLY_COMMAND=prog, WAHOOK_DB=dsn,
                       WAHOOK_REPLY_URL_SECRET="a-url-secret-that-must-stay")
        self.assertEqual(r.rc, 0, r)
        (run,) = self.runs("parent")
        self.assertTrue(run["exe"] is None or run["exe"].endswith("wahook-drain"), run)
        self.assertIn("WAHOOK_REPLY_COMMAND=", run["environ"], "not the drainer's environ")
        for name, secret in (("access token", dk.ACCESS_TOKEN), ("WAHOOK_DB", pg.dsn),
                             ("database password", "db-password-not-for-programs"),
                             ("reply URL secret", "a-url-secret-that-must-stay")):
            # (not assertNotIn: its message would print the secret)
            self.assertFalse(secret in run["environ"], "the %s is in the drainer's "
                             "environ, as its reply program reads it" % name)


class ReplyForEnd(ReplyCase):
    def test_a_for_run_ending_after_the_mark_read_still_sends_the_reply(self):
        """The sender sees the blue ticks at the mark-read: a --for run whose
        time runs out while the program decides (after the mark-read, before
        the reply) sends the reply before it exits, not a cron interval later."""
        prog = self.program('sleep 3\necho "late but here"', sh=True)
        convs = dk.feed(server, conversations=1, per_conv=1)
        (m,), = convs.values()
        r = dk.run(pg, self.g, ["--for", "1.5"], timeout=120,
                   **dict(self.SLOW, WAHOOK_REPLY_COMMAND=prog))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.count("read", m, ok_only=True), 1)
        (reply,) = self.replies(m)
        self.assertEqual(reply["body"]["text"]["body"], "late but here")
        self.assertEqual(len(self.runs()), 1)
        self.assertEqual(self.row(m)["state"], "done")


class ReplyOrder(ReplyCase):
    def test_in_order_within_a_conversation_in_parallel_across(self):
        prog = self.program('sleep 0.3\necho "ok $WAHOOK_MESSAGE_ID"', sh=True)
        convs = dk.feed(server, conversations=4, per_conv=3)
        t0 = time.monotonic()
        r = self.drain(WAHOOK_REPLY_COMMAND=prog, WAHOOK_CONCURRENCY=4)
        took = time.monotonic() - t0
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        self.assert_in_order(convs)
        starts = {x["id"]: x["t"] for x in self.runs()}
        ends = {x["id"]: x["t"] for x in self.runs("end")}
        sent = {c["message_id"]: c["t_end"] for c in self.g.ok("reply")}
        self.assertEqual(len(starts), 12)
        for sender, ids in convs.items():
            for a, b in zip(ids, ids[1:]):
                self.assertGreater(starts[b], sent[a],
                                   "program for %s started before %s's reply was sent"
                                   % (b, a))
        # programs of different conversations overlapped
        events = sorted([(t, 1) for t in starts.values()] + [(t, -1) for t in ends.values()])
        running = most = 0
        for _, d in events:
            running += d
            most = max(most, running)
        print("  12 programs of 0.3 s, 4 conversations: %.1f s, at most %d at once"
              % (took, most))
        self.assertGreaterEqual(most, 2, "conversations did not run in parallel")


class ReplyWindow(ReplyCase):
    def test_reply_window_default_marks_old_messages_read_unanswered(self):
        prog = self.program('sys.stdout.write("late answer")')
        old, new = dk.mid("old"), dk.mid("new")
        now = int(time.time())
        dk.post(server, [("4915100000001", old, now - 90000)])
        dk.post(server, [("4915100000002", new, now - 60)])
        r = self.drain(WAHOOK_REPLY_COMMAND=prog, WAHOOK_REPLY_WINDOW=None)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.count("read", old, ok_only=True), 1)
        self.assertEqual(self.g.count("reply", old), 0)
        self.assertEqual([x["id"] for x in self.runs()], [new])
        self.assertEqual(len(self.replies(new)), 1)
        row = self.row(old)
        self.assertEqual((row["state"], row["reply_state"]), ("done", "window"))
        self.assertRegex(row["reply_reason"], r"^window: 9\d{4} s after the message, more "
                         r"than WAHOOK_REPLY_WINDOW \(86400 s\)$")
        self.assertIn("ev=no_reply", r.err)

    def test_reply_window_applies_to_the_fixed_text_too(self):
        old = dk.mid("oldtext")
        dk.post(server, [("4915100000003", old, int(time.time()) - 3700)])
        r = self.drain(WAHOOK_REPLY_WINDOW=3600)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.count("read", old, ok_only=True), 1)
        self.assertEqual(self.g.count("reply", old), 0)
        self.assertEqual(self.row(old)["reply_state"], "window")


class ReplyKill(ReplyCase):
    def test_sigkill_of_the_drainer_runs_the_programs_again(self):
        # first run of each message: slow (killed with the drainer); later: quick
        prog = self.program(
            'if [ "$(grep -c "^start $WAHOOK_MESSAGE_ID " "$LOG")" = 1 ]; then exec sleep 30; fi\n'
            'echo answer', sh=True)
        convs = dk.feed(server, conversations=3, per_conv=1)
        ids = [m for v in convs.values() for m in v]
        short = dict(WAHOOK_REPLY_COMMAND=prog, WAHOOK_LEASE=8, WAHOOK_REPLY_TIMEOUT=4,
                     WAHOOK_HTTP_TIMEOUT=2)
        p = dk.start(pg, self.g, ["--for", "30"], **short)
        try:
            deadline = time.monotonic() + 20
            while len(self.runs()) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(len(self.runs()), 3, "programs did not start")
            os.kill(p.pid, signal.SIGKILL)
            p.wait(10)
        finally:
            harness.kill(p)
        pids = [x["pid"] for x in self.runs()]
        deadline = time.monotonic() + 5
        while any(alive(x) for x in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([x for x in pids if alive(x)], [],
                         "programs outlived their drainer")
        for m in ids:
            self.assertEqual(self.row(m)["state"], "pending")
            self.assertIsNone(self.row(m)["reply_state"])
        time.sleep(8.2)     # the lease runs out
        r = self.drain(**short)
        self.assertEqual(r.rc, 0, r)
        for m in ids:
            self.assertEqual(len([x for x in self.runs() if x["id"] == m]), 2, m)
            self.assertEqual(len(self.replies(m)), 1, m)
            self.assertEqual(self.row(m)["state"], "done")


class ReplyConfig(ReplyCase):
    def test_configuration_errors_exit_2_naming_the_variable(self):
        cases = [
            ({"WAHOOK_REPLY_TEXT": ""}, "WAHOOK_REPLY=none"),
            ({"WAHOOK_REPLY": "off"}, "WAHOOK_REPLY"),
            ({"WAHOOK_REPLY_COMMAND": "/nonexistent/program"}, "WAHOOK_REPLY_COMMAND"),
            ({"WAHOOK_REPLY_COMMAND": os.path.join(harness.ROOT, "README.md")},
             "not an executable"),
            ({"WAHOOK_REPLY_URL": "http://127.0.0.1:9/"}, "WAHOOK_REPLY_URL_SECRET"),
            ({"WAHOOK_REPLY_URL": "ftp://x/", "WAHOOK_REPLY_URL_SECRET": "s"},
             "WAHOOK_REPLY_URL"),
            ({"WAHOOK_REPLY_COMMAND": os.path.join(EXAMPLES, "echo"),
              "WAHOOK_REPLY_TIMEOUT": "6"}, "WAHOOK_REPLY_TIMEOUT"),   # > lease / 2
            ({"WAHOOK_REPLY_WINDOW": "-1"}, "WAHOOK_REPLY_WINDOW"),
        ]
        for extra, word in cases:
            r = dk.run(pg, self.g, **extra)
            self.assertEqual(r.rc, 2, (extra, r))
            self.assertIn(word, r.err, extra)
        self.assertEqual(self.g.snapshot(), [])


if __name__ == "__main__":
    unittest.main()
