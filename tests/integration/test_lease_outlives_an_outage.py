"""test_lease_outlives_an_outage.py - a reply that left just before the
database went away is recorded before its lease ends, so a second drainer
never sends it again (issue 21, item 5).

Two drainers, A and B. A marks a message read; its number's pacer then holds
the reply back until late in the lease (WAHOOK_MAX_RPS: one call per 17 s, a
20 s lease). As the reply reaches the stand-in, A loses the database: its
backends and the postmaster are stopped (SIGSTOP), as when a partition cuts
A's host off, while B's session goes on. The reply is answered; A cannot
record it and rides the outage out; 8 s later (within the 14 s A rides out:
WAHOOK_DB_OUTAGE_MAX derived from the lease) the database is back. Since a
call starts only with lease enough for its result to be recorded through such
an outage, the row is still A's: the reply went out once, is recorded with its
wamid, and B never called. Before, the reply started with 3 s of lease left:
B claimed the row in the outage and sent the reply a second time.
"""
import os
import signal
import threading
import time

import harness

import drainkit as dk

pg = server = None

setUpModule, tearDownModule = dk.module_stack(globals())

OUTAGE_S = 8        # how long A is cut off: within the 14 s it rides out
ENV = dict(WAHOOK_LEASE=20, WAHOOK_HTTP_TIMEOUT=2, WAHOOK_REPLY_TIMEOUT=2,
           WAHOOK_DB_TIMEOUT=2, WAHOOK_MAX_RPS=round(1 / 17, 4), WAHOOK_MEDIA="off")


def client_backends():
    """The pids of every client backend but this query's."""
    return [int(r[0]) for r in dk.query(pg, "SELECT pid FROM pg_stat_activity WHERE "
                                            "backend_type = 'client backend' AND "
                                            "pid <> pg_backend_pid()")]


class LeaseOutlivesAnOutage(dk.DrainCase):
    def test_reply_sent_before_an_outage_is_recorded_and_never_sent_again(self):
        m = dk.mid("lease")
        dk.post(server, [("4915112345678", m, None)])
        a = dk.start(pg, self.g, ["--for", "120"], **ENV)
        self.addCleanup(harness.kill, a)
        harness.wait_for(lambda: dk.outbox(pg)[m]["read_at"] is not None, 30,
                         "A's mark-read recorded")
        # A's sessions (and the responder's), not B's: B starts after
        cut = [pg.postmaster_pid()] + client_backends()
        stopped, lock = [], threading.Lock()

        def resume():
            with lock:
                while stopped:
                    try:
                        os.kill(stopped.pop(), signal.SIGCONT)
                    except ProcessLookupError:
                        pass
        self.addCleanup(resume)

        def on_call(call):
            # the first reply: A loses the database as it goes out
            if call["step"] == "reply":
                with lock:
                    if not stopped:
                        for pid in cut:
                            os.kill(pid, signal.SIGSTOP)
                            stopped.append(pid)
            return None
        self.g.on_call = on_call
        b = dk.start(pg, self.g, ["--for", "120"], **ENV)
        self.addCleanup(harness.kill, b)
        harness.wait_for(lambda: stopped, 40, "A's reply and the outage")
        # the outage, cut short if B sends the reply again (the bug)
        end = time.monotonic() + OUTAGE_S
        while time.monotonic() < end and self.g.count("reply", m) < 2:
            time.sleep(0.05)
        resume()
        harness.wait_for(lambda: dk.outbox(pg)[m]["state"] != "pending" or
                         self.g.count("reply", m) > 1 or a.poll() is not None, 30,
                         "the reply recorded")
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
        ra, rb = dk.finish(a, timeout=30), dk.finish(b, timeout=30)
        replies = [c for c in self.g.snapshot() if c["step"] == "reply"]
        self.assertEqual(len(replies), 1, "the reply was sent %d times\nA: %r\nB: %r"
                         % (len(replies), ra, rb))
        row = dk.outbox(pg)[m]
        self.assertEqual((row["state"], row["reply_message_id"]),
                         ("done", replies[0]["reply_id"]), (row, ra))
        self.assertEqual(ra.rc, 0, ra)
        self.assertIn("ev=db_outage", ra.err)
        self.assertIn("ev=db_back", ra.err)
        # (A's first try may be run by its stopped backend once resumed: A's
        # next try then finds the row recorded, ev=lost_claim, nothing resent)
        self.assertEqual(rb.rc, 0, rb)
        self.assertNotIn("ev=graph", rb.err, "B called the Graph API\nA: %r" % ra)
        self.assertEqual([c["step"] for c in self.g.snapshot()], ["read", "reply"])
        self.assertEqual(self.g.violations, [])


if __name__ == "__main__":
    import unittest
    unittest.main()
