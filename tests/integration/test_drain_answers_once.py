"""test_drain_answers_once.py - each user gets one reply, whatever goes wrong
around it: a database stall never turns an answered call into a resend; a 2xx
is an acceptance even when the wamid cannot be read (the row says so); a reply
that went out without any answer is resent once at most, with a log line saying
it may be a duplicate, while a mark-read is retried freely; libcurl never resends
a POST on its own; a 3xx/4xx without a Graph error object stops the run (exit 5)
with nothing dead; a phone_number_id that is not numeric never reaches a URL.

Every test counts the POSTs each message received at the stand-in, whose faulty
answers are written byte by byte on the socket.
"""
import collections
import re
import subprocess
import time
import unittest

import harness
import drainkit as dk

pg = server = None


setUpModule, tearDownModule = dk.module_stack(globals())


def posts(g, step="reply"):
    """{message_id: POSTs of step the stand-in received}"""
    return collections.Counter(c["message_id"] for c in g.snapshot() if c["step"] == step)


def logged(run_or_text, step="reply"):
    """{message_id: calls of step the drainer logged}"""
    text = run_or_text if isinstance(run_or_text, str) else run_or_text.err
    return collections.Counter(m.group(1) for m in re.finditer(
        r"ev=graph id=(\S+) step=%s " % step, text))


class AnswersOnce(dk.DrainCase):
    def assert_one_reply_each(self, ids, resent=(), log=""):
        """Exactly one reply POST per message; two for those in resent."""
        got = posts(self.g)
        for m in ids:
            self.assertEqual(got[m], 2 if m in resent else 1,
                             "%s got %d reply POSTs\n%s" % (m, got[m], "\n".join(
                                 x for x in log.splitlines() if m in x)))

    def test_database_stall_never_turns_an_answer_into_a_resend(self):
        convs = dk.feed(server, conversations=16, per_conv=1)
        ids = [v[0] for v in convs.values()]
        locker = []

        def on_call(call):
            # the first reply: lock its row for 8 s from another session (the
            # drainer's record of it waits), answer it first, the others later
            if call["step"] != "reply" or locker:
                return None
            p = harness.spawn(
                [harness.PSQL, "-X", "-q", "-At", pg.dsn, "-c", "BEGIN",
                 "-c", "SELECT 'locked' FROM wa_outbox WHERE message_id = '%s' FOR UPDATE"
                 % call["message_id"], "-c", "SELECT pg_sleep(8)", "-c", "COMMIT"],
                stdout=subprocess.PIPE)
            locker.append(p)
            p.stdout.readline()     # psql holds the lock now
            return 0
        self.g.delay = 0.8
        self.g.on_call = on_call
        try:
            t0 = time.monotonic()
            # WAHOOK_DB_TIMEOUT past the 8 s lock: a slow statement, not a lost one
            r = dk.run(pg, self.g, WAHOOK_CONCURRENCY=16, WAHOOK_HTTP_TIMEOUT=4,
                       WAHOOK_LEASE=20, WAHOOK_DB_TIMEOUT=10)
            took = time.monotonic() - t0
        finally:
            for p in locker:
                harness.kill(p)
        self.assertTrue(locker, "no reply call came")
        self.assertEqual(r.rc, 0, r)
        self.assertGreater(took, 6, "the row lock did not stall the drainer: %r" % r)
        self.assert_one_reply_each(ids, log=r.err)
        self.assertEqual(sum(posts(self.g, "read").values()), 16)
        self.assertNotIn("Timeout", r.err)
        rows = dk.outbox(pg)
        for c in self.g.ok("reply"):
            self.assertEqual(rows[c["message_id"]]["reply_message_id"], c["reply_id"])
        self.assertEqual({x["state"] for x in rows.values()}, {"done"})

    def test_2xx_is_accepted_even_when_the_wamid_cannot_be_read(self):
        cases = {   # kind: what the row and the log say
            "stall_body": "answer cut off: Timeout was reached",
            "short_body": "answer cut off",
            "reset_after_status": "answer cut off",
            "big_body": "answer over 64 KiB",
        }
        convs = dk.feed(server, conversations=len(cases) + 1, per_conv=2)
        heads = {}
        for (sender, ids), kind in zip(convs.items(), cases):
            self.g.answer(kind, step="reply", message_id=ids[0])
            heads[ids[0]] = kind
        self.g.hang_s = 3
        r = dk.run(pg, self.g, WAHOOK_HTTP_TIMEOUT=1, WAHOOK_LEASE=4,
                   WAHOOK_MAX_ATTEMPTS=5)
        self.assertEqual(r.rc, 0, r)
        all_ids = [m for v in convs.values() for m in v]
        self.assert_one_reply_each(all_ids)
        rows = dk.outbox(pg)
        self.assertEqual({x["state"] for x in rows.values()}, {"done"})
        for m, kind in heads.items():
            row = rows[m]
            self.assertIsNone(row["reply_message_id"], kind)
            self.assertEqual(row["attempts"], "0", kind)
            self.assertIn("accepted (HTTP 200) but the wamid could not be read", row[
                "last_error"], kind)
            self.assertIn(cases[kind], row["last_error"], kind)
            line = next(x for x in r.err.splitlines()
                        if "id=%s step=reply" % m in x)
            self.assertIn("reply_id=unknown", line)
            self.assertIn("wamid could not be read", line)
            self.assertIn("level=warn", line)
        # the conversation went on after its accepted head
        for ids in convs.values():
            self.assertEqual(rows[ids[1]]["state"], "done")
            self.assertTrue(rows[ids[1]]["reply_message_id"].startswith("wamid.REPLY"))
        self.assertIn("no_wamid=%d" % len(cases), r.err)

    def test_reply_without_any_answer_is_resent_once_at_most(self):
        convs = dk.feed(server, conversations=5, per_conv=1)
        (a,), (b,), (c,), (d,), (e,) = convs.values()
        self.g.answer("hang", step="reply", message_id=a, times=1)  # our timeout
        self.g.answer("reset", step="reply", message_id=b, times=1)
        self.g.answer("drop", step="reply", message_id=c)           # every time
        self.g.answer("drop", step="read", message_id=d, times=3)   # mark-read
        self.g.answer("reset", step="read", message_id=e, times=2)
        self.g.hang_s = 3
        runs = dk.drain_until_done(pg, self.g, WAHOOK_HTTP_TIMEOUT=1, WAHOOK_LEASE=4)
        log = "".join(x.err for x in runs)
        rows = dk.outbox(pg)
        self.assert_one_reply_each([a, b, c, d, e], resent={a, b, c})
        # mark-read is idempotent: retried as often as it takes
        self.assertEqual(posts(self.g, "read")[d], 4)
        self.assertEqual(posts(self.g, "read")[e], 3)
        for m in (a, b, d, e):
            self.assertEqual(rows[m]["state"], "done", m)
        # the resend says it may be a duplicate, before and after
        for m in (a, b):
            self.assertRegex(log, r"level=warn ev=graph id=%s step=reply .*outcome=resend_once"
                             r".* class=unanswered" % re.escape(m))
            self.assertRegex(log, r"level=warn ev=resend id=%s .*may_duplicate=yes" % re.escape(m))
            self.assertRegex(log, r"ev=graph id=%s step=reply .*may_duplicate=yes outcome|"
                             r"ev=graph id=%s step=reply .*outcome=ok may_duplicate=yes"
                             % (re.escape(m), re.escape(m)))
        self.assertNotRegex(log, r"ev=resend id=(%s|%s) " % (re.escape(d), re.escape(e)))
        # a second POST without an answer: dead, never a third
        self.assertEqual(rows[c]["state"], "dead")
        self.assertIn("not sent again, it may have been delivered", rows[c]["last_error"])
        self.assertIn("unanswered", log)

    def test_libcurl_never_resends_a_post_by_itself(self):
        # the server gives up on a kept-alive connection as the reply arrives on
        # it: libcurl's habit is to send the POST again on a new connection,
        # unlogged; here every POST the server saw must be a call the log shows
        convs = dk.feed(server, conversations=1, per_conv=3)
        ids = list(convs.values())[0]
        for m in ids:
            self.g.answer("drop_reused", step="reply", message_id=m, times=1)
        runs = dk.drain_until_done(pg, self.g)
        log = "".join(x.err for x in runs)
        calls = self.g.snapshot()
        dropped = [c for c in calls if c["kind"] == "drop_reused"]
        self.assertTrue(dropped, "no reply went out on a reused connection")
        self.assertEqual(posts(self.g), logged(log), "a POST the drainer did not make")
        self.assertEqual(posts(self.g, "read"), logged(log, "read"))
        for c in dropped:
            self.assertRegex(log, r"ev=graph id=%s step=reply .*resend_refused=yes"
                             % re.escape(c["message_id"]))
            # the one documented resend came later, as its own logged call
            again = [x for x in calls if x["message_id"] == c["message_id"]
                     and x["step"] == "reply" and x["n"] > c["n"]]
            self.assertEqual(len(again), 1)
            self.assertGreater(again[0]["t"] - c["t"], 0.04, "resent at once")
        self.assertLessEqual(max(posts(self.g).values()), 2)
        self.assertEqual({x["state"] for x in dk.outbox(pg).values()}, {"done"})

    def test_an_answer_that_is_not_the_graph_api_stops_the_run(self):
        for kind in ("proxy_404", "proxy_403", "proxy_407", "proxy_400"):
            with self.subTest(kind=kind):
                pg.truncate()
                self.g.clear_rules()
                with self.g.lock:
                    self.g.calls.clear()
                convs = dk.feed(server, conversations=6, per_conv=2)
                self.g.answer(kind)
                r = dk.run(pg, self.g, WAHOOK_CONCURRENCY=2)
                self.assertEqual(r.rc, 5, r)
                status = kind.split("_")[1]
                self.assertRegex(r.err, r"level=error ev=graph_url host=127\.0\.0\.1:%d http=%s "
                                 % (self.g.port, status))
                self.assertNotIn(dk.ACCESS_TOKEN, r.err + r.out)
                rows = dk.outbox(pg)
                self.assertEqual({x["state"] for x in rows.values()}, {"pending"})
                self.assertEqual({x["attempts"] for x in rows.values()}, {"0"})
                self.assertEqual({x["lease_until"] for x in rows.values()}, {None})
                # stopped at once: the calls in flight at most
                self.assertLessEqual(len(self.g.snapshot()), 2 * 4)
                self.g.clear_rules()
                with self.g.lock:
                    self.g.calls.clear()
                r = dk.run(pg, self.g)
                self.assertEqual(r.rc, 0, r)
                self.assert_one_reply_each([m for v in convs.values() for m in v])

    def test_a_phone_number_id_that_is_not_numeric_never_reaches_a_url(self):
        for i, pnid in enumerate(("..", "1/../2", "%2e%2e", "106540352242922a")):
            sender = "4915100000%03d" % i
            m = dk.mid("pn")
            dk.post(server, [(sender, m, None)], pnid=pnid)
        ok = dk.feed(server, conversations=1, per_conv=1)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        rows = dk.outbox(pg)
        dead = [x for x in rows.values() if x["state"] == "dead"]
        self.assertEqual(len(dead), 4)
        for x in dead:
            self.assertIn("phone_number_id is not a numeric id", x["last_error"])
        for c in self.g.snapshot():
            self.assertEqual(c["pnid"], dk.PNID, c["path"])
        self.assertEqual(self.g.violations, [])
        self.assert_one_reply_each(list(ok.values())[0])


if __name__ == "__main__":
    unittest.main()
