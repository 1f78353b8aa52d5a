"""test_drain_basic.py - wahook-drain's promise on a good day: every message the
responder stored is marked read once and answered once, in order per sender,
with bodies exactly as documented, over reused connections; unread_count
follows; a --for run answers webhooks that arrive while it runs (how fast is a
figure for make bench, printed here, not asserted).
"""
import json
import time
import unittest

import harness
import drainkit as dk

pg = server = None


setUpModule, tearDownModule = dk.module_stack(globals())


class DrainBasic(dk.DrainCase):
    def test_each_message_read_and_answered_once_in_order(self):
        convs = dk.feed(server, conversations=6, per_conv=5)
        r = dk.run(pg, self.g, WAHOOK_CONCURRENCY=4)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        ids = [m for v in convs.values() for m in v]
        for m in ids:
            self.assertEqual(self.g.count("read", m), 1, m)
            self.assertEqual(self.g.count("reply", m), 1, m)
        self.assert_in_order(convs)
        # replies go to the sender, quoting the message, with the default text
        for c in self.g.ok("reply"):
            sender = next(s for s, v in convs.items() if c["message_id"] in v)
            self.assertEqual(c["body"]["to"], sender)
            self.assertEqual(c["body"]["text"], {"body": "OK"})
            self.assertEqual(c["auth"], "Bearer " + dk.ACCESS_TOKEN)
        # reply_message_id holds Meta's wamid, so wa_statuses can join it
        rows = dk.outbox(pg)
        self.assertEqual({r["state"] for r in rows.values()}, {"done"})
        got = {c["message_id"]: c["reply_id"] for c in self.g.ok("reply")}
        for m in ids:
            self.assertEqual(rows[m]["reply_message_id"], got[m])
            self.assertIsNotNone(rows[m]["read_at"])
            self.assertIsNone(rows[m]["claim_token"])
        # connections reused: far fewer connections than calls
        self.assertLessEqual(self.g.connections(), 4, "connections not reused")
        # one logfmt line per call, never the token
        self.assertEqual(r.err.count("ev=graph "), 60, r)
        self.assertNotIn(dk.ACCESS_TOKEN, r.err + r.out)
        for line in r.err.splitlines():
            if "ev=graph " in line:
                for k in ("id=", "step=", "http=", "code=", "ms=", "outcome="):
                    self.assertIn(" " + k, line)
        self.assertEqual(pg.scalar("SELECT sum(unread_count) FROM wa_conversations"), "0")

    def test_reply_text_escaped_and_typing_indicator(self):
        text = 'Thanks "friend" \\ ok\nnext line \u00e9\u2713 </script>'
        convs = dk.feed(server, conversations=1, per_conv=2)
        r = dk.run(pg, self.g, WAHOOK_REPLY_TEXT=text, WAHOOK_TYPING=1)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        for c in self.g.ok("reply"):
            self.assertEqual(c["body"]["text"]["body"], text)
        for c in self.g.ok("read"):
            self.assertEqual(c["body"]["typing_indicator"], {"type": "text"})
            self.assertEqual(set(c["body"]), {"messaging_product", "status", "message_id",
                                              "typing_indicator"})
        self.assertEqual(len(self.g.ok("reply")), 2)
        self.assertEqual(len(convs), 1)

    def test_unread_count_counts_what_is_still_unread(self):
        # m1 read and answered; m2's mark-read fails (retry far away): m2 and m3
        # are still unread, so the count is 2, not a blind 0
        convs = dk.feed(server, conversations=1, per_conv=3)
        (sender, (m1, m2, m3)), = convs.items()
        self.assertEqual(pg.scalar("SELECT unread_count FROM wa_conversations "
                                   "WHERE sender = '%s'" % sender), "3")
        self.g.answer("500", step="read", message_id=m2)
        r = dk.run(pg, self.g, WAHOOK_RETRY_MIN=60, WAHOOK_RETRY_MAX=60)
        self.assertEqual(r.rc, 1, r)
        rows = dk.outbox(pg)
        self.assertEqual(rows[m1]["state"], "done")
        self.assertEqual(rows[m2]["state"], "pending")
        self.assertEqual(rows[m3]["read_at"], None)
        self.assertEqual(self.g.count("read", m3), 0, "m3 went before m2")
        self.assertEqual(pg.scalar("SELECT unread_count FROM wa_conversations "
                                   "WHERE sender = '%s'" % sender), "2")
        # once m2 is retried and read, only m3 is left unread... and then none
        pg.psql("UPDATE wa_outbox SET next_attempt_at = now()")
        self.g.clear_rules()
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(pg.scalar("SELECT unread_count FROM wa_conversations "
                                   "WHERE sender = '%s'" % sender), "0")

    def test_for_answers_webhooks_that_arrive_while_it_runs(self):
        p = dk.start(pg, self.g, ["--for", "8"])
        try:
            time.sleep(0.5)     # running and idle, polling
            latencies = []
            for i in range(3):
                sender = "4917000000%02d" % i
                m = dk.mid("for")
                dk.post(server, [(sender, m, None)])
                t0 = time.monotonic()
                end = t0 + 5
                while self.g.count("read", m) == 0 and time.monotonic() < end:
                    time.sleep(0.002)
                calls = [c for c in self.g.snapshot() if c["message_id"] == m]
                self.assertTrue(calls, "webhook %d not marked read within 5 s" % i)
                call = calls[0]
                latencies.append(call["t"] - t0)
                self.g.wait_calls(2 * (i + 1), ok_only=True)
                time.sleep(0.2)
            print("  --for latency, webhook 200 -> mark-read arrives: %s ms"
                  % ", ".join("%.0f" % (x * 1000) for x in latencies))
            self.assertIsNone(p.poll(), "the --for run ended early")
        finally:
            harness.kill(p)     # SIGTERM: finishes what is in flight
        r = dk.finish(p)
        self.assertIn(r.rc, (0, 1), r)
        self.assertEqual(self.g.count("reply", ok_only=True), 3)


if __name__ == "__main__":
    unittest.main()
