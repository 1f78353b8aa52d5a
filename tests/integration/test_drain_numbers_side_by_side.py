"""test_drain_numbers_side_by_side.py - one business number in trouble never holds up
another: a number paused by a 429 with Retry-After, a number at its
WAHOOK_MAX_RPS with a backlog, or a number whose calls hang leaves the other
number's messages going at full speed; a plain run exits at once (exit 1) when
only a paused number's rows are left. Every message answered got exactly one
reply POST. Time bounds are generous: the machine may be loaded.
"""
import collections
import time
import unittest

import drainkit as dk

pg = server = None
A = "106540352242911"       # the number in trouble
B = "106540352242912"       # the healthy one


setUpModule, tearDownModule = dk.module_stack(globals())


def feed(pnid, conversations, per_conv=1):
    """conversations x per_conv messages on number pnid; {sender: [ids]}"""
    return dk.feed(server, conversations, per_conv, pnid=pnid)


class NumbersSideBySide(dk.DrainCase):
    def calls_of(self, pnid):
        return [c for c in self.g.snapshot() if c["pnid"] == pnid]

    def assert_done_once(self, convs):
        """Every message of convs read and answered, one reply POST each, in order."""
        rows = dk.outbox(pg)
        replies = collections.Counter(c["message_id"] for c in self.g.snapshot()
                                      if c["step"] == "reply")
        for ids in convs.values():
            for m in ids:
                self.assertEqual(rows[m]["state"], "done", m)
                self.assertEqual(replies[m], 1, m)
        self.assert_in_order(convs, only_ok=True)

    def test_a_paused_number_holds_no_slot(self):
        a = feed(A, 16)
        b = feed(B, 6)
        self.g.answer("429", pnid=A, retry_after=10)
        t0 = time.monotonic()
        r = dk.run(pg, self.g, ["--for", "5"], WAHOOK_CONCURRENCY=8, WAHOOK_RETRY_MAX=60)
        self.assertEqual(r.rc, 1, r)          # A's rows wait for the pause to end
        self.assert_done_once(b)
        b_calls = self.calls_of(B)
        self.assertLess(b_calls[0]["t"] - t0, 3.0, "B's first call waited for A's pause")
        self.assertLess(max(c["t"] for c in b_calls) - t0, 4.5)
        # A: only the calls already in flight when the 429s came, nothing after
        self.assertLessEqual(len(self.calls_of(A)), 8)
        rows = dk.outbox(pg)
        for ids in a.values():
            self.assertEqual(rows[ids[0]]["state"], "pending")
            self.assertIsNone(rows[ids[0]]["lease_until"], "a paused row kept its claim")
        self.assertIn("paused_numbers=1", r.err)

    def test_a_number_at_its_rate_limit_leaves_the_others_full_speed(self):
        a = feed(A, 100)
        b = feed(B, 10)
        t0 = time.monotonic()
        r = dk.run(pg, self.g, ["--for", "10"], WAHOOK_CONCURRENCY=8, WAHOOK_MAX_RPS=5)
        self.assertIn(r.rc, (0, 1), r)
        self.assert_done_once(b)
        b_last = max(c["t"] for c in self.calls_of(B))
        # B's 20 calls at 5/s (a burst of 5) need about 3 s; behind A's backlog
        # in one queue they took 21 s
        self.assertLess(b_last - t0, 8.0, "B waited for A's backlog")
        # A kept to its own limit meanwhile: 5/s and a burst of 5 (+1 for clock edges)
        a_calls = [c["t"] for c in self.calls_of(A)]
        self.assertLessEqual(len([t for t in a_calls if t - t0 <= 6]), 5 * 6 + 5 + 1)
        replies = collections.Counter(c["message_id"] for c in self.calls_of(A)
                                      if c["step"] == "reply")
        self.assertEqual(set(replies.values()) - {1}, set(), "an A message answered twice")
        self.assertTrue(a)

    def test_a_hanging_number_does_not_hold_the_others(self):
        feed(A, 12)
        b = feed(B, 8)
        self.g.answer("hang", pnid=A)
        self.g.hang_s = 20
        t0 = time.monotonic()
        r = dk.run(pg, self.g, ["--for", "6"], WAHOOK_CONCURRENCY=8,
                   WAHOOK_HTTP_TIMEOUT=2, WAHOOK_LEASE=10)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual({x["state"] for x in dk.outbox(pg).values()
                          if x["message_id"] in [m for v in b.values() for m in v]},
                         {"done"}, (r, [(c["pnid"], c["kind"], c["status"], c["conn"])
                                        for c in self.g.snapshot()]))
        self.assert_done_once(b)
        self.assertLess(max(c["t"] for c in self.calls_of(B)) - t0, 5.0,
                        "B waited for A's hanging calls")
        # A's calls were mark-reads: retried, never a reply
        self.assertEqual({c["step"] for c in self.calls_of(A)}, {"read"})

    def test_a_plain_run_exits_at_once_when_only_paused_rows_wait(self):
        a = feed(A, 3, per_conv=2)
        b = feed(B, 2, per_conv=2)
        heads = [ids[0] for ids in a.values()]
        self.g.answer("429", step="reply", message_id=heads[0], times=1, retry_after=20)
        t0 = time.monotonic()
        r = dk.run(pg, self.g, WAHOOK_CONCURRENCY=8, WAHOOK_RETRY_MAX=60)
        took = time.monotonic() - t0
        self.assertEqual(r.rc, 1, r)
        self.assertLess(took, 8.0, "the run sat out the 20 s pause")
        self.assert_done_once(b)
        rows = dk.outbox(pg)
        for ids in a.values():
            for m in ids:
                self.assertIn(rows[m]["state"], ("pending", "done"), m)
                self.assertIsNone(rows[m]["lease_until"], m)
        self.assertEqual(rows[heads[0]]["state"], "pending")
        self.assertIn("code=130429 http=429", rows[heads[0]]["last_error"])
        replies = collections.Counter(c["message_id"] for c in self.g.snapshot()
                                      if c["step"] == "reply")
        self.assertLessEqual(max(replies.values()), 1)


if __name__ == "__main__":
    unittest.main()
