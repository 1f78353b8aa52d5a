"""test_drain_ops.py - operating wahook-drain: --status, --metrics,
--requeue-dead, --help, the exit codes (0 done, 1 rows left, 2 configuration,
3 credentials, 4 database), and scripts/prune.
"""
import os
import re
import subprocess
import unittest

import harness
import drainkit as dk

pg = server = None


setUpModule, tearDownModule = dk.module_stack(globals())


def metrics(text):
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"(?m)^(wahook_\w+) (\S+)$", text)}


class DrainOps(dk.DrainCase):
    def test_status_counts_only_conversation_heads_as_due(self):
        """A row behind an earlier pending row of its conversation cannot be
        worked before it: --status shows it as queued, not due now."""
        convs = dk.feed(server, conversations=3, per_conv=1)
        (a, (a1,)), (b, (b1,)), (c, (c1,)) = convs.items()
        # two more rows behind a's head and one behind c's
        a2, a3, c2 = dk.mid("q"), dk.mid("q"), dk.mid("q")
        dk.post(server, [(a, a2, None), (a, a3, None)])
        dk.post(server, [(c, c2, None)])
        # a's head waits for a retry; c's head is claimed by a drainer
        pg.psql("UPDATE wa_outbox SET next_attempt_at = now() + interval '5 minutes', "
                "attempts = 1 WHERE message_id = '%s'" % a1)
        pg.psql("UPDATE wa_outbox SET lease_until = now() + interval '5 minutes', "
                "claim_token = gen_random_uuid() WHERE message_id = '%s'" % c1)
        st = dk.run(pg, None, ["--status"], WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(st.rc, 0, st)
        self.assertRegex(st.out, r"(?m)^pending\s+6$")
        self.assertRegex(st.out, r"(?m)^\s+due now\s+1$")             # b1 alone
        self.assertRegex(st.out, r"(?m)^\s+queued behind head\s+3$")  # a2, a3, c2
        self.assertRegex(st.out, r"(?m)^\s+waiting for retry\s+1$")   # a1
        self.assertRegex(st.out, r"(?m)^\s+claimed \(leased\)\s+1$")  # c1
        v = metrics(dk.run(pg, None, ["--metrics"], WAHOOK_ACCESS_TOKEN=None).out)
        self.assertEqual((v["wahook_outbox_due"], v["wahook_outbox_queued"],
                          v["wahook_outbox_retrying"], v["wahook_outbox_leased"]),
                         (1, 3, 1, 1))
        # what a drainer claims now is exactly what "due now" said: b1
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 1, r)
        done = [m for m, row in dk.outbox(pg).items() if row["state"] == "done"]
        self.assertEqual(done, [b1])

    def test_status_metrics_and_requeue_dead(self):
        convs = dk.feed(server, conversations=4, per_conv=1)
        (s1, (a,)), (s2, (b,)), (s3, (c,)), (s4, (d,)) = convs.items()
        self.g.answer("131047", step="reply", message_id=a)
        self.g.answer("131009", step="read", message_id=b)
        self.g.answer("500", step="read", message_id=c)
        r = dk.run(pg, self.g, WAHOOK_RETRY_MIN=300, WAHOOK_RETRY_MAX=300)
        self.assertEqual(r.rc, 1, r)      # c waits for its retry
        pg.psql("UPDATE wa_outbox SET received_at = received_at - interval '90 seconds' "
                "WHERE message_id = '%s'" % c)

        st = dk.run(pg, None, ["--status"], WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(st.rc, 0, st)
        self.assertRegex(st.out, r"(?m)^pending\s+1$")
        self.assertRegex(st.out, r"(?m)^\s+waiting for retry\s+1$")
        self.assertRegex(st.out, r"(?m)^dead\s+2$")
        self.assertRegex(st.out, r"(?m)^done in last hour\s+1$")
        age = float(re.search(r"(?m)^oldest pending age\s+([\d.]+) s$", st.out).group(1))
        self.assertGreaterEqual(age, 90)

        m = dk.run(pg, None, ["--metrics"], WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(m.rc, 0, m)
        v = metrics(m.out)
        self.assertEqual(v["wahook_outbox_pending"], 1)
        self.assertEqual(v["wahook_outbox_retrying"], 1)
        self.assertEqual(v["wahook_outbox_dead"], 2)
        self.assertEqual(v["wahook_outbox_done_last_hour"], 1)
        self.assertGreaterEqual(v["wahook_outbox_oldest_pending_age_seconds"], 90)
        # every sample has its HELP and TYPE, as the textfile collector wants
        for name in v:
            self.assertIn("# HELP %s " % name, m.out)
            self.assertIn("# TYPE %s gauge" % name, m.out)
        for line in m.out.splitlines():
            self.assertRegex(line, r'^(# (HELP|TYPE) wahook_\w+ .+|'
                             r'wahook_\w+(\{\w+="[^"]*"\})? [0-9.e+-]+)$')

        # requeue one by id, then the rest; unknown ids are harmless
        q = dk.run(pg, None, ["--requeue-dead", b, "wamid.nonexistent"],
                   WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(q.rc, 0, q)
        self.assertIn("requeued 1 dead row", q.out)
        rows = dk.outbox(pg)
        self.assertEqual((rows[b]["state"], rows[b]["attempts"]), ("pending", "0"))
        self.assertEqual(rows[a]["state"], "dead")
        q = dk.run(pg, None, ["--requeue-dead"], WAHOOK_ACCESS_TOKEN=None)
        self.assertIn("requeued 1 dead row", q.out)
        # the requeued rows are worked again (a keeps its read step: only the reply)
        self.g.clear_rules()
        pg.psql("UPDATE wa_outbox SET next_attempt_at = now()")
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual({x["state"] for x in dk.outbox(pg).values()}, {"done"})
        self.assertEqual(self.g.count("read", a), 1)
        self.assertEqual(self.g.count("reply", a, ok_only=True), 1)
        st = dk.run(pg, None, ["--status"], WAHOOK_ACCESS_TOKEN=None)
        self.assertRegex(st.out, r"(?m)^pending\s+0$")
        self.assertRegex(st.out, r"(?m)^oldest pending age\s+0.0 s$")

    def test_help_and_usage(self):
        r = dk.run(pg, None, ["--help"], WAHOOK_ACCESS_TOKEN=None, WAHOOK_DB="bogus")
        self.assertEqual(r.rc, 0, r)
        for flag in ("--for", "--status", "--metrics", "--requeue-dead"):
            self.assertIn(flag, r.out)
        # it points at what is installed: the manual page, not a README
        self.assertIn("wahook-drain(8)", r.out)
        self.assertNotIn("README", r.out)
        r = dk.run(pg, None, ["--bogus-flag"])
        self.assertEqual(r.rc, 2, r)
        self.assertIn('level=error ev=usage msg="unknown argument" arg=--bogus-flag', r.err)
        for args in (["--bogus"], ["--for"], ["--for", "0"], ["--for", "5x"],
                     ["--status", "--metrics"]):
            r = dk.run(pg, None, args)
            self.assertEqual(r.rc, 2, (args, r))

    def test_exit_codes_config_and_database(self):
        cases = [   # (env, variable named in the message)
            ({"WAHOOK_ACCESS_TOKEN": None}, "WAHOOK_ACCESS_TOKEN"),
            ({"WAHOOK_CONCURRENCY": "abc"}, "WAHOOK_CONCURRENCY"),
            ({"WAHOOK_CONCURRENCY": "0"}, "WAHOOK_CONCURRENCY"),
            ({"WAHOOK_MAX_RPS": "-1"}, "WAHOOK_MAX_RPS"),
            ({"WAHOOK_RETRY_MIN": "5", "WAHOOK_RETRY_MAX": "1"}, "WAHOOK_RETRY_MAX"),
            ({"WAHOOK_LEASE": "4", "WAHOOK_HTTP_TIMEOUT": "3"}, "WAHOOK_HTTP_TIMEOUT"),
            ({"WAHOOK_GRAPH_URL": "ftp://x"}, "WAHOOK_GRAPH_URL"),
            ({"WAHOOK_TYPING": "yes"}, "WAHOOK_TYPING"),
            ({"WAHOOK_MAX_ATTEMPTS": "1.5"}, "WAHOOK_MAX_ATTEMPTS"),
            ({"WAHOOK_MAX_AGE": "nan"}, "WAHOOK_MAX_AGE"),
            ({"WAHOOK_ACCESS_TOKEN": "two words"}, "WAHOOK_ACCESS_TOKEN"),
            ({"WAHOOK_ACCESS_TOKEN_FILE": "/nonexistent/token"}, "WAHOOK_ACCESS_TOKEN"),
            ({"WAHOOK_DB": "host=%s dbnam=postgres" % pg.dir}, "WAHOOK_DB"),
        ]
        for extra, var in cases:
            r = dk.run(pg, self.g, **extra)
            self.assertEqual(r.rc, 2, (extra, r))
            self.assertIn("ev=config", r.err)
            self.assertIn(var, r.err, (extra, r))
            self.assertNotIn(dk.ACCESS_TOKEN, r.err)
        # the token may come from a file (newline stripped), never from argv
        d = harness.tmpdir()
        tf = os.path.join(d, "token")
        with open(tf, "w") as f:
            f.write(dk.ACCESS_TOKEN + "\n")
        dk.feed(server, conversations=1, per_conv=1)
        r = dk.run(pg, self.g, WAHOOK_ACCESS_TOKEN=None, WAHOOK_ACCESS_TOKEN_FILE=tf)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        # the database unreachable: 4, for the drain and the operator commands
        bad = "host=%s/nonexistent dbname=postgres connect_timeout=2" % pg.dir
        for args in ([], ["--status"], ["--metrics"], ["--requeue-dead"]):
            r = dk.run(pg, self.g, args, WAHOOK_DB=bad)
            self.assertEqual(r.rc, 4, (args, r))
            self.assertIn("ev=db", r.err)
            self.assertIn("WAHOOK_DB", r.err)

    def test_prune_keeps_the_dedupe_window_and_pending_rows(self):
        convs = dk.feed(server, conversations=4, per_conv=1)
        (s1, (old_done,)), (s2, (recent_done,)), (s3, (old_pending,)), (s4, (week,)) = \
            convs.items()
        self.g.answer("500", message_id=old_pending)
        r = dk.run(pg, self.g, WAHOOK_RETRY_MIN=300, WAHOOK_RETRY_MAX=300)
        self.assertEqual(r.rc, 1, r)
        age = {old_done: "40 days", recent_done: "1 day", old_pending: "40 days",
               week: "6 days"}
        for m, ago in age.items():
            pg.psql("UPDATE wa_messages SET received_at = now() - interval '%s' "
                    "WHERE message_id = '%s'" % (ago, m))
            pg.psql("UPDATE wa_outbox SET done_at = now() - interval '%s' "
                    "WHERE message_id = '%s' AND state <> 'pending'" % (ago, m))
        prune = os.path.join(harness.ROOT, "scripts", "prune")
        env = dict(os.environ, WAHOOK_DB=pg.dsn)
        p = subprocess.run([prune], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deleted 1 finished outbox rows, 1 messages", p.stdout)
        left = {r[0] for r in dk.query(pg, "SELECT message_id FROM wa_messages")}
        self.assertEqual(left, {recent_done, old_pending, week})
        # a retention of 1 day still keeps the 7-day dedupe window (+ margin)
        p = subprocess.run([prune, "1"], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        left = {r[0] for r in dk.query(pg, "SELECT message_id FROM wa_messages")}
        self.assertEqual(left, {recent_done, old_pending, week})
        self.assertEqual(dk.outbox(pg)[old_pending]["state"], "pending")
        self.assertNotIn(recent_done, dk.outbox(pg))     # finished row, 1 day old
        p = subprocess.run([prune, "x"], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
