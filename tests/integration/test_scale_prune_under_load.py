"""test_scale_prune_under_load.py - scripts/prune deletes 60,000 old rows
(30,000 messages past the retention, each with its finished outbox row) with
its shipped batch, pause and lock timeout, while webhooks keep arriving at a
steady pace through nginx. Every webhook is answered 200 and stored, every old
row is gone, and the responder's p99 while prune runs stays within the bound
below of its p99 without prune, measured in the same test under the same load
(the windows just before and just after prune; tests/lib/pruneload.py).

Sizes and bound are the suite's, not the design's: a batch costs the same at
any table size (each is found through an index and deleted by key), so a dozen
batches prove what 200 would, in a fraction of the time; and the bound is 3x,
looser than the 2x the design aims at, because on a shared CI machine other
jobs starting and stopping move a p99 of a few milliseconds by more than 2x on
their own. `make bench` prunes the full million rows and prints the measured
ratio beside 2x.
"""
import unittest

import harness
import drainkit as dk
import pruneload

OLD = 30_000                      # messages, and as many finished outbox rows
BOUND = 3.0
PG = SRV = None
setUpModule, tearDownModule = harness.module_services(
    globals(), web=("SRV", harness.Nginx), procs=4)


class PruneUnderLoad(unittest.TestCase):
    def test_prune_under_load_keeps_the_responders_p99(self):
        pg, srv = PG, SRV
        r = pruneload.measure(pg, lambda body: srv.post(body)[0], OLD)
        p = r["prune"]
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deleted %d finished outbox rows, %d messages" % (OLD, OLD), p.stdout)
        self.assertEqual(pg.scalar("SELECT count(*) FROM wa_messages WHERE message_id "
                                   "LIKE 'wamid.HBgLold%'"), "0")
        self.assertEqual(pg.scalar("SELECT count(*) FROM wa_outbox WHERE message_id "
                                   "LIKE 'wamid.HBgLold%'"), "0")
        self.assertEqual({s[2] for s in r["samples"]}, {200})
        new = {x[0] for x in dk.query(pg, "SELECT message_id FROM wa_messages")}
        self.assertEqual(new, {s[3] for s in r["samples"]}, "a webhook answered 200 is missing")
        self.assertGreater(len(r["quiet"]), 500)
        self.assertGreater(len(r["during"]), 300)
        print("\n  prune: " + pruneload.describe(r))
        self.assertLessEqual(r["during_p99_ms"], BOUND * r["quiet_p99_ms"],
                             "prune multiplied the responder's p99 by more than %.0f" % BOUND)
