"""test_drain_outage_holds_rows_behind_heads.py - a Graph outage over a backlog:
every conversation's first row fails and waits for its retry. The rows behind
each head are never called before it (nor is a row that arrives meanwhile);
they wait with their head's retry time, so the claim's due scan has no row
to check that is not a head; --status still counts them as queued behind
their head; once the head's retry time comes it goes first, then the rest of
its conversation in order. The same with three drainers at once.
"""
import collections
import unittest

import drainkit as dk

pg = server = None

RETRY = {"WAHOOK_RETRY_MIN": 300, "WAHOOK_RETRY_MAX": 300}

# pending rows the claim's due scan would meet although they are not the head
# of their conversation (cgi/drainer/outbox.c's head test)
DUE_NOT_HEAD = ("SELECT count(*) FROM wa_outbox o WHERE o.state = 'pending' "
                "AND o.next_attempt_at <= now() AND NOT (%s)")
HEAD = ("NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.state = 'pending' "
        "AND e.phone_number_id = o.phone_number_id AND e.sender = o.sender "
        "AND (e.wa_timestamp, e.received_at, e.position, e.message_id) "
        "< (o.wa_timestamp, o.received_at, o.position, o.message_id))")


setUpModule, tearDownModule = dk.module_stack(globals())


def times(pg):
    """{message_id: (attempts, next_attempt_at as epoch seconds)} of pending rows."""
    return {m: (int(a), float(t)) for m, a, t in dk.query(
        pg, "SELECT message_id, attempts, extract(epoch FROM next_attempt_at) "
            "FROM wa_outbox WHERE state = 'pending'")}


def time_passes(pg, senders):
    """The retry time of these conversations comes (ten minutes go by for them)."""
    pg.psql("UPDATE wa_outbox SET next_attempt_at = next_attempt_at - interval "
            "'10 minutes' WHERE state = 'pending' AND sender IN (%s)"
            % ", ".join("'%s'" % s for s in senders))


def status(pg):
    st = dk.run(pg, None, ["--status"], WAHOOK_ACCESS_TOKEN=None)
    assert st.rc == 0, st
    return st.out


class OutageHoldsRowsBehindHeads(dk.DrainCase):
    def assert_waiting_behind_heads(self, convs):
        """Each head failed once and waits; the rows behind it wait with its time."""
        t = times(pg)
        for sender, ids in convs.items():
            head_attempts, head_at = t[ids[0]]
            self.assertEqual(head_attempts, 1, sender)
            for m in ids[1:]:
                self.assertEqual(t[m], (0, head_at), "%s does not wait with its head" % m)
        self.assertEqual(pg.scalar(DUE_NOT_HEAD % HEAD), "0")

    def test_failed_heads_hold_their_conversations_then_go_first(self):
        convs = dk.feed(server, conversations=3, per_conv=3)
        (a, a_ids), (b, b_ids), (c, c_ids) = convs.items()
        heads = {ids[0] for ids in convs.values()}
        self.g.answer("500")                       # Graph is down
        r = dk.run(pg, self.g, **RETRY)
        self.assertEqual(r.rc, 1, r)               # rows left waiting for their retry
        called = collections.Counter(c["message_id"] for c in self.g.snapshot())
        self.assertEqual(set(called), heads, "a row behind a failed head was called")
        self.assertEqual(set(called.values()), {1})
        self.assert_waiting_behind_heads(convs)

        # a message that arrives now lands behind its waiting head
        a4 = dk.mid("late")
        dk.post(server, [(a, a4, None)])
        out = status(pg)
        self.assertRegex(out, r"(?m)^pending\s+10$")
        self.assertRegex(out, r"(?m)^\s+due now\s+0$")
        self.assertRegex(out, r"(?m)^\s+queued behind head\s+7$")
        self.assertRegex(out, r"(?m)^\s+waiting for retry\s+3$")
        self.assertRegex(out, r"(?m)^\s+claimed \(leased\)\s+0$")

        # Graph is back, but no head's retry time has come: nothing is called
        self.g.clear_rules()
        n0 = len(self.g.snapshot())
        r = dk.run(pg, self.g, **RETRY)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(self.g.snapshot()[n0:], [], "a row was called before its head")

        # a's retry time comes: its head goes first, then the rest in order
        time_passes(pg, [a])
        r = dk.run(pg, self.g, **RETRY)
        self.assertEqual(r.rc, 1, r)               # b and c still wait
        seq = [(c["step"], c["message_id"]) for c in self.g.snapshot()[n0:]]
        self.assertEqual(seq, [(s, m) for m in a_ids + [a4] for s in ("read", "reply")])
        rows = dk.outbox(pg)
        self.assertEqual({rows[m]["state"] for m in a_ids + [a4]}, {"done"})
        self.assertEqual({rows[m]["state"] for m in b_ids + c_ids}, {"pending"})
        out = status(pg)
        self.assertRegex(out, r"(?m)^\s+queued behind head\s+4$")
        self.assertRegex(out, r"(?m)^\s+waiting for retry\s+2$")

    def test_three_drainers_through_an_outage_and_after(self):
        convs = dk.feed(server, conversations=6, per_conv=3)
        heads = {ids[0] for ids in convs.values()}
        self.g.answer("500")
        runs = [dk.finish(p) for p in
                [dk.start(pg, self.g, WAHOOK_CONCURRENCY=2, **RETRY) for _ in range(3)]]
        for r in runs:
            self.assertEqual(r.rc, 1, r)           # not 4: no statement failed
        called = collections.Counter(c["message_id"] for c in self.g.snapshot())
        self.assertEqual(called, collections.Counter(heads),
                         "each head is called once, nothing behind it")
        self.assert_waiting_behind_heads(convs)

        self.g.clear_rules()
        time_passes(pg, list(convs))
        n0 = len(self.g.snapshot())
        runs = [dk.finish(p) for p in
                [dk.start(pg, self.g, WAHOOK_CONCURRENCY=2, **RETRY) for _ in range(3)]]
        for r in runs:
            self.assertIn(r.rc, (0, 1), r)         # 1: another drainer still held rows
        left = dk.run(pg, self.g, **RETRY)
        self.assertEqual(left.rc, 0, left)
        self.assertEqual(self.g.violations, [])
        after = self.g.snapshot()[n0:]
        counts = collections.Counter((c["step"], c["message_id"]) for c in after)
        self.assertEqual(set(counts.values()), {1}, "a call was made twice")
        self.assertEqual(len(counts), 2 * sum(len(v) for v in convs.values()))
        for sender, ids in convs.items():
            seq = [(c["step"], c["message_id"]) for c in after if c["message_id"] in ids]
            self.assertEqual(seq, [(s, m) for m in ids for s in ("read", "reply")], sender)
        self.assertEqual({r["state"] for r in dk.outbox(pg).values()}, {"done"})


if __name__ == "__main__":
    unittest.main()
