"""test_scale_failover.py - a primary with a synchronous streaming standby
(synchronous_standby_names, synchronous_commit = on), both programs on a libpq
multi-host WAHOOK_DB with target_session_attrs=read-write. In the middle of a
load the primary stops (pg_ctl -m fast) and the standby is promoted:

- the ledger holds: every webhook answered 200 is on the new primary;
- every other answer is 503;
- the same responder processes (same pids) answer 200 again, no restart;
- the drainer carries on: every stored message is answered, in order per
  conversation, and no call is made twice beyond the calls in flight.
"""
import collections
import itertools
import threading
import time
import unittest

import harness
import drainkit as dk
import pgtopo

CONCURRENCY = 4


class Failover(unittest.TestCase):
    def setUp(self):
        self.primary = pgtopo.make_primary()
        # every commit now waits for the standby: it must exist before the first
        self.standby = pgtopo.Standby(self.primary)
        self.primary.migrate()
        self.dsn = pgtopo.Dsn(pgtopo.multi_host(self.primary, self.standby))
        self.g = dk.new_standin()
        self.g.delay = 0.02
        self.srv = harness.Lighttpd(self.dsn, procs=2, env={"WAHOOK_DB_TIMEOUT": "5"})

    def tearDown(self):
        self.srv.stop()
        self.g.stop()
        self.standby.stop("immediate")
        self.primary.stop("immediate")

    def test_promote_the_standby_mid_load(self):
        answers = []                  # (status, sender, message_id, t)
        lock, stop = threading.Lock(), threading.Event()
        ts = itertools.count(1_700_000_000)

        def client(k):
            senders = ["4917%02d%05d" % (k, i) for i in range(4)]
            n = 0
            while not stop.is_set():
                sender = senders[n % len(senders)]
                m = "wamid.HBgLfo%d_%05d" % (k, n)
                n += 1
                try:
                    st, _, _ = self.srv.post(harness.meta_json(dk.webhook(
                        [(sender, m, next(ts))])))
                except OSError:
                    st = None
                with lock:
                    answers.append((st, sender, m, time.monotonic()))
                time.sleep(0.01)

        harness.wait_for(lambda: len(self.srv.fcgi_pids()) == 2, 60, "the responders")
        pids = self.srv.fcgi_pids()
        # a lease long enough to ride out the failover (WAHOOK_DB_OUTAGE_MAX 24 s)
        drain = dk.start(self.dsn, self.g, ["--for", "600"], WAHOOK_CONCURRENCY=CONCURRENCY,
                         WAHOOK_MAX_RPS=1000, WAHOOK_LEASE=30)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        try:
            harness.wait_for(lambda: len(self.g.ok("reply")) >= 20, 60, "replies before")
            t_stop = time.monotonic()
            self.primary.stop("fast")
            self.standby.promote()
            t_promoted = time.monotonic()
            # load goes on until both responders have answered 200 again
            harness.wait_for(lambda: sum(1 for a in answers if a[0] == 200
                                         and a[3] > t_promoted) >= 20, 60,
                             "200s after the promotion")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        new = self.standby
        stored = {r[0] for r in new.psql("SELECT message_id FROM wa_messages")}
        ok = [a for a in answers if a[0] == 200]
        lost = [a[2] for a in ok if a[2] not in stored]
        self.assertEqual(lost, [], "answered 200 but not on the new primary")
        self.assertEqual({a[0] for a in answers} - {200, 503}, set(),
                         collections.Counter(a[0] for a in answers))
        self.assertEqual(self.srv.fcgi_pids(), pids, "the responders were restarted")
        self.assertTrue(any(a[0] == 200 and a[3] > t_promoted for a in answers))
        # the drainer: everything stored gets answered, then SIGTERM ends it
        harness.wait_for(lambda: new.scalar(
            "SELECT count(*) FROM wa_outbox WHERE state <> 'done'") == "0", 90,
            "the drainer to finish on the new primary")
        harness.kill(drain)
        with open(drain.errfile, errors="replace") as f:
            err = f.read()
        self.assertIn(drain.returncode, (0, 1), err[-3000:])
        self.assertIn("ev=db_outage", err)
        self.assertIn("ev=db_back", err)
        calls = self.g.snapshot()
        counts = collections.Counter((c["step"], c["message_id"]) for c in calls)
        self.assertEqual({m for (s, m) in counts if s == "reply"}, stored)
        repeats = sum(n - 1 for n in counts.values())
        self.assertLessEqual(repeats, CONCURRENCY, "more repeats than calls in flight")
        self.assertEqual(self.g.violations, [])
        by_sender = collections.defaultdict(list)
        for st, sender, m, _ in answers:
            if m in stored:
                by_sender[sender].append(m)
        for sender, mids in by_sender.items():
            seq = []
            for c in calls:
                k = (c["step"], c["message_id"])
                if c["message_id"] in mids and k not in seq:
                    seq.append(k)
            self.assertEqual(seq, [(s, m) for m in mids for s in ("read", "reply")], sender)
        n503 = sum(1 for a in answers if a[0] == 503)
        print("\n  failover: %d webhooks, %d answered 200 (all on the new primary), %d 503; "
              "200 again %.1f s after the stop; %d calls repeated"
              % (len(answers), len(ok), n503,
                 min(a[3] for a in ok if a[3] > t_promoted) - t_stop, repeats))
