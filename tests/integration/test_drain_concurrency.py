"""test_drain_concurrency.py - several drainers, and drainers that die: three at
once share the work with no call made twice and every conversation in order;
a drainer SIGKILLed mid-run leaves nothing stuck beyond its lease and a second
run finishes, repeating at most the calls that were in flight; SIGTERM finishes
and records the calls in flight, then exits.
"""
import collections
import signal
import unittest

import harness
import drainkit as dk

pg = server = None


setUpModule, tearDownModule = dk.module_stack(globals())


def ok_counts(g):
    return collections.Counter((c["step"], c["message_id"]) for c in g.ok())


class DrainConcurrency(dk.DrainCase):
    def test_three_drainers_at_once_never_call_twice(self):
        convs = dk.feed(server, conversations=12, per_conv=4)
        self.g.delay = 0.01
        procs = [dk.start(pg, self.g, WAHOOK_CONCURRENCY=4) for _ in range(3)]
        runs = [dk.finish(p) for p in procs]
        for r in runs:
            self.assertIn(r.rc, (0, 1), r)   # 1: another drainer still held rows
            self.assertNotIn(dk.ACCESS_TOKEN, r.err)
        left = dk.run(pg, self.g)            # whatever a drainer left as it exited
        self.assertEqual(left.rc, 0, left)
        self.assertEqual(self.g.violations, [])
        total = sum(len(v) for v in convs.values())
        counts = collections.Counter((c["step"], c["message_id"]) for c in self.g.snapshot())
        self.assertEqual(len(counts), 2 * total)
        self.assertEqual(set(counts.values()), {1}, "a call was made twice: %s"
                         % [k for k, v in counts.items() if v > 1])
        self.assert_in_order(convs, only_ok=True)
        worked = [r.err.count("ev=graph ") for r in runs]
        print("  calls made by each of 3 drainers: %s (+%d by a final run)"
              % (worked, left.err.count("ev=graph ")))
        self.assertGreaterEqual(len([w for w in worked if w > 0]), 2,
                                "the drainers did not share the work: %s" % worked)
        self.assertEqual({r["state"] for r in dk.outbox(pg).values()}, {"done"})

    def test_sigkill_mid_run_then_a_second_run_finishes(self):
        concurrency = 6
        convs = dk.feed(server, conversations=6, per_conv=3)
        self.g.delay = 0.15
        p = dk.start(pg, self.g, WAHOOK_CONCURRENCY=concurrency, WAHOOK_LEASE=2,
                     WAHOOK_HTTP_TIMEOUT=1)
        self.g.wait_calls(14)
        harness.kill(p, signal.SIGKILL)
        first = {(c["step"], c["message_id"]) for c in self.g.snapshot()}
        after_kill = dk.outbox(pg)
        self.assertIn("pending", {r["state"] for r in after_kill.values()},
                      "the first drainer finished before it was killed")
        # the killed drainer's leases run out (2 s); --for keeps polling until then
        r = dk.run(pg, self.g, ["--for", "3.5"], WAHOOK_CONCURRENCY=concurrency,
                   WAHOOK_LEASE=2, WAHOOK_HTTP_TIMEOUT=1)
        self.assertEqual(r.rc, 0, r)
        rows = dk.outbox(pg)
        self.assertEqual({x["state"] for x in rows.values()}, {"done"})
        counts = collections.Counter((c["step"], c["message_id"]) for c in self.g.snapshot())
        ids = [m for v in convs.values() for m in v]
        self.assertEqual(set(counts), {(s, m) for m in ids for s in ("read", "reply")})
        repeated = [k for k, n in counts.items() if n > 1]
        # only calls that were in flight (made, not yet recorded) when it died
        in_flight = {(s, m) for (s, m) in first
                     if (s == "read" and after_kill[m]["read_at"] is None)
                     or (s == "reply" and after_kill[m]["reply_message_id"] is None)}
        print("  SIGKILL: %d calls made before the kill, %d in flight, %d repeated"
              % (len(first), len(in_flight), len(repeated)))
        self.assertTrue(set(repeated) <= in_flight, (repeated, in_flight))
        self.assertLessEqual(len(repeated), concurrency)
        self.assertEqual(max(counts.values()), len(repeated) and 2 or 1)
        self.assert_in_order_ignoring_repeats(convs)

    def assert_in_order_ignoring_repeats(self, convs):
        calls = self.g.snapshot()
        for sender, ids in convs.items():
            seq = []
            for c in calls:
                k = (c["step"], c["message_id"])
                if c["message_id"] in ids and k not in seq:
                    seq.append(k)
            self.assertEqual(seq, [(s, m) for m in ids for s in ("read", "reply")])

    def test_sigterm_finishes_and_records_calls_in_flight(self):
        dk.feed(server, conversations=4, per_conv=3)
        self.g.delay = 0.4
        p = dk.start(pg, self.g, ["--for", "60"], WAHOOK_CONCURRENCY=4)
        self.g.wait_calls(2)
        harness.kill(p, signal.SIGTERM, timeout=5)
        r = dk.finish(p)
        self.assertEqual(r.rc, 1, r)        # rows left for the next run
        rows = dk.outbox(pg)
        # every call that got its answer was recorded before the exit
        for c in self.g.snapshot():
            if c["status"] == 200 and c["step"] == "read":
                self.assertIsNotNone(rows[c["message_id"]]["read_at"], c["message_id"])
            if c["status"] == 200 and c["step"] == "reply":
                self.assertEqual(rows[c["message_id"]]["reply_message_id"], c["reply_id"])
        self.assertEqual({x["lease_until"] for x in rows.values()}, {None},
                         "claimed rows were not given back")
        self.assertIn("pending", {x["state"] for x in rows.values()})
        # the next run does the rest, repeating nothing
        self.g.delay = 0
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(set(ok_counts(self.g).values()), {1})


if __name__ == "__main__":
    unittest.main()
