"""test_scale_many_hosts.py - two independent web stacks (lighttpd and nginx,
each with its own responder processes) and three drainers on one database:
2,000 messages over 200 conversations on two business numbers. Each
conversation's first five messages come through one stack and the next five
through the other, while the three drainers run. No Graph call is made twice,
every conversation is answered in order, both stacks and every drainer did a
share of the work, and the drainers exit 0 when told to stop.
"""
import collections
import itertools
import os
import signal
import threading
import time
import unittest

import harness
import drainkit as dk

CONVS, PER_CONV, PER_POST = 200, 10, 5
NUMBERS = ["106540352243001", "106540352243002"]
_stack = []


def setUpModule():
    pg = harness.Postgres()
    _stack.append(pg)
    pg.migrate()
    _stack.append(harness.Lighttpd(pg, procs=2))
    _stack.append(harness.Nginx(pg, procs=2))


def tearDownModule():
    while _stack:
        _stack.pop().stop()


class ManyHosts(unittest.TestCase):
    def setUp(self):
        self.pg, self.stacks = _stack[0], _stack[1:]
        self.g = dk.new_standin()
        self.g.delay = 0.005            # calls overlap, as they do against Meta

    def tearDown(self):
        self.g.stop()

    def test_two_stacks_three_drainers(self):
        ts = itertools.count(1_700_000_000, 20)
        convs = {}
        for c in range(CONVS):
            sender, pnid = "4915%08d" % c, NUMBERS[c % len(NUMBERS)]
            start = next(ts)
            convs[(pnid, sender)] = [("wamid.HBgLmh%03d_%02d" % (c, i), start + i)
                                     for i in range(PER_CONV)]
        served = collections.Counter()
        errors = []

        def client(keys):
            for c, (pnid, sender) in keys:
                msgs = convs[(pnid, sender)]
                for k in range(0, PER_CONV, PER_POST):
                    stack = (c + k // PER_POST) % 2   # one half through each stack
                    body = dk.webhook([(sender, m, t) for m, t in msgs[k:k + PER_POST]],
                                      pnid=pnid)
                    st, _, _ = self.stacks[stack].post(harness.meta_json(body))
                    if st != 200:
                        errors.append((st, sender, k))
                    served[stack] += 1

        keys = list(enumerate(convs))
        t0 = time.monotonic()
        drainers = [dk.start(self.pg, self.g, ["--for", "600"], WAHOOK_CONCURRENCY=8,
                             WAHOOK_MAX_RPS=1000) for _ in range(3)]
        threads = [threading.Thread(target=client, args=(keys[i::4],)) for i in range(4)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
            self.assertEqual(errors, [])
            t_fed = time.monotonic()
            harness.wait_for(lambda: self.pg.scalar(
                "SELECT count(*) FROM wa_outbox WHERE state = 'done'") == str(CONVS * PER_CONV),
                300, "every message answered")
            t_done = time.monotonic()
            for p in drainers:
                os.kill(p.pid, signal.SIGTERM)
            runs = [dk.finish(p, 30) for p in drainers]
        finally:
            for p in drainers:
                harness.kill(p)
        for r in runs:
            self.assertEqual(r.rc, 0, r)
            self.assertNotIn("ev=lost_claim", r.err)
        calls = self.g.snapshot()
        counts = collections.Counter((c["step"], c["message_id"]) for c in calls)
        self.assertEqual(len(counts), 2 * CONVS * PER_CONV)
        self.assertEqual([k for k, n in counts.items() if n > 1], [], "a call made twice")
        self.assertEqual(self.g.violations, [])
        by_mid = collections.defaultdict(list)      # in the order the calls arrived
        for i, c in enumerate(calls):
            by_mid[c["message_id"]].append((i, c["step"], c["message_id"], c["pnid"]))
        for (pnid, sender), msgs in convs.items():
            seq = sorted(x for m, _ in msgs for x in by_mid[m])
            self.assertEqual([s[1:] for s in seq],
                             [(s, m, pnid) for m, _ in msgs for s in ("read", "reply")],
                             "conversation %s/%s out of order" % (pnid, sender))
        worked = [r.err.count("ev=graph ") for r in runs]
        self.assertTrue(all(w > 0 for w in worked), worked)
        self.assertTrue(all(served[s] > 0 for s in (0, 1)), served)
        print("\n  many hosts: %d webhooks (%d + %d per stack) in %.1f s, %d messages all "
              "answered %.1f s after the last webhook; calls per drainer %s"
              % (sum(served.values()), served[0], served[1], t_fed - t0,
                 CONVS * PER_CONV, t_done - t_fed, worked))
