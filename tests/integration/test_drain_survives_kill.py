"""test_drain_survives_kill.py - the drainer under fire: SIGKILLed at random moments over
many runs against a slow stand-in Graph API, and the database taken away
mid-run. Afterwards every message was marked read and answered, nothing is
stuck, and the only calls ever made twice are calls that were in flight (made,
outcome not yet recorded in wa_outbox) at a kill; a run that loses its
database ends with exit code 4 and loses nothing.
"""
import collections
import os
import random
import signal
import time
import unittest

import fire
import harness
import drainkit as dk

LEASE = "0.8"            # a killed drainer's rows come back this fast
HTTP_TIMEOUT = "0.4"     # <= half the lease (the drainer insists)
DELAY = 0.12             # the stand-in's answer time: many calls in flight at a kill


def drain_env():
    return dict(WAHOOK_CONCURRENCY=4, WAHOOK_LEASE=LEASE, WAHOOK_HTTP_TIMEOUT=HTTP_TIMEOUT)


class DrainerUnderFire(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.Postgres()
        cls.pg.migrate()
        cls.srv = fire.NginxPool(cls.pg, procs=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.pg.stop("immediate")

    def setUp(self):
        if not os.path.exists(dk.DRAIN):
            self.fail("build/wahook-drain is missing")
        self.pg.truncate()
        self.g = dk.new_standin()
        self.g.delay = DELAY

    def tearDown(self):
        self.g.stop()

    def unrecorded(self, calls, rows):
        """(step, message_id) of calls whose outcome wa_outbox does not hold."""
        out = []
        for c in calls:
            r = rows.get(c["message_id"])
            if r is None:
                continue
            if (c["step"] == "read" and r["read_at"] is None) or \
                    (c["step"] == "reply" and r["reply_message_id"] is None):
                out.append((c["step"], c["message_id"]))
        return out

    def check_finished(self, convs, budget):
        """Every message read and answered, nothing stuck, repeats within budget."""
        rows = dk.outbox(self.pg)
        ids = [m for v in convs.values() for m in v]
        self.assertEqual(sorted(rows), sorted(ids))
        self.assertEqual({r["state"] for r in rows.values()}, {"done"})
        for m in ids:
            self.assertIsNotNone(rows[m]["read_at"], m)
            self.assertIsNotNone(rows[m]["reply_message_id"], m)
        self.assertEqual(self.g.violations, [])
        counts = collections.Counter((c["step"], c["message_id"]) for c in self.g.snapshot())
        self.assertEqual(set(counts), {(s, m) for m in ids for s in ("read", "reply")})
        over = {k: (n - 1, budget[k]) for k, n in counts.items() if n - 1 > budget[k]}
        self.assertEqual(over, {}, "repeated more often than it was in flight at a kill")
        # the reply recorded is one the stand-in gave for that message
        replies = {c.get("reply_id"): c["message_id"] for c in self.g.snapshot()
                   if c["step"] == "reply"}
        for m in ids:
            self.assertEqual(replies.get(rows[m]["reply_message_id"]), m)
        # in order per conversation, repeats aside
        calls = self.g.snapshot()
        for sender, mids in convs.items():
            seq = []
            for c in calls:
                k = (c["step"], c["message_id"])
                if c["message_id"] in mids and k not in seq:
                    seq.append(k)
            self.assertEqual(seq, [(s, m) for m in mids for s in ("read", "reply")], sender)
        unread = self.pg.scalar("SELECT coalesce(sum(unread_count), 0) FROM wa_conversations")
        self.assertEqual(unread, "0")
        return sum(n - 1 for n in counts.values())

    def test_sigkill_at_random_moments_over_many_runs(self):
        convs = dk.feed(self.srv, conversations=8, per_conv=5)
        rnd = random.Random(63)
        budget = collections.Counter()
        kills = 0
        for _ in range(12):
            seen = len(self.g.snapshot())
            p = dk.start(self.pg, self.g, ["--for", "20"], **drain_env())
            time.sleep(rnd.uniform(0.05, 0.9))
            harness.kill(p, signal.SIGKILL)
            kills += 1
            time.sleep(0.05)       # a call the stand-in is still reading in
            rows = dk.outbox(self.pg)
            for k in self.unrecorded(self.g.snapshot()[seen:], rows):
                budget[k] += 1
            if {r["state"] for r in rows.values()} == {"done"}:
                break
        # one last run, not killed, finishes what is left once the leases lapse
        r = dk.run(self.pg, self.g, ["--for", "6"], **drain_env())
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn(dk.ACCESS_TOKEN, r.err)
        repeats = self.check_finished(convs, budget)
        print("\n  drainer: %d SIGKILLs, %d calls in flight at them, %d repeated, %d calls"
              % (kills, sum(budget.values()), repeats, len(self.g.snapshot())))
        self.assertGreaterEqual(kills, 4, "the drainer finished before enough kills")

    def test_database_goes_away_mid_run(self):
        convs = dk.feed(self.srv, conversations=6, per_conv=4)
        # the database stays away longer than the drainer rides out an outage
        # (none: a 0.8 s lease covers no outage after a call)
        p = dk.start(self.pg, self.g, ["--for", "20"], WAHOOK_DB_OUTAGE_MAX=0,
                     **drain_env())
        self.g.wait_calls(6)
        self.pg.stop("immediate")
        t0 = time.monotonic()
        try:
            r = dk.finish(p, timeout=30)
            took = time.monotonic() - t0
        finally:
            self.pg.start()
        self.assertEqual(r.rc, 4, r)
        self.assertLess(took, 15, "the drainer took %.1f s to give up" % took)
        self.assertNotIn(dk.ACCESS_TOKEN, r.err + r.out)
        rows = dk.outbox(self.pg)
        budget = collections.Counter(self.unrecorded(self.g.snapshot(), rows))
        r = dk.run(self.pg, self.g, ["--for", "6"], **drain_env())
        self.assertEqual(r.rc, 0, r)
        repeats = self.check_finished(convs, budget)
        print("\n  drainer: database stopped mid-run, exit 4 after %.1f s, %d in flight, "
              "%d repeated" % (took, sum(budget.values()), repeats))


if __name__ == "__main__":
    unittest.main()
