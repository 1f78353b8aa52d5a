"""test_database_faults.py - the promise "no 200 without durable rows" when
PostgreSQL is not there or a transaction fails: 503 with Retry-After and
nothing half stored; the responder reconnects by itself once PostgreSQL is
back (same pids: no restart needed); SIGTERM lets a request in hand finish
and makes an idle responder exit cleanly.
"""
import os
import signal
import subprocess
import threading
import unittest

import harness
import wahook_expect as wx

PG = None


setUpModule, tearDownModule = harness.module_services(globals())


def body(*mids, sender="16505551234"):
    return harness.meta_json(wx.one(
        [wx.text_msg(m, sender, 1700000000 + i) for i, m in enumerate(mids)],
        statuses=[wx.status("wamid.out." + mids[0], "delivered", 1700000100)]))


class Faults(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        wx.clear(PG)

    def assertReceived(self, resp):
        self.assertEqual((resp[0], resp[2]), (200, b"EVENT_RECEIVED"))

    def assert503(self, resp):
        status, h, _ = resp
        self.assertEqual(status, 503)
        self.assertRegex(h.get("retry-after", ""), r"^[0-9]+$", "Retry-After")

    def restart_cycle(self, srv, nprocs):
        harness.wait_for(lambda: len(srv.fcgi_pids()) == nprocs, 10, "responders")
        pids = srv.fcgi_pids()
        for i in range(2 * nprocs):   # give every process a live connection
            self.assertReceived(srv.post(body("wamid.before.%d" % i)))
        PG.stop("fast")
        try:
            before = len(wx.request_lines(srv))
            self.assert503(srv.post(body("wamid.during")))
            line = wx.next_request_line(srv, before)
            self.assertEqual((line["status"], line["level"]), ("503", "error"))
            self.assertTrue(line.get("reason"), "the log says why")
            # nor a 200 for a body that should go to wa_quarantine
            self.assert503(srv.post(b"signed but not JSON"))
            # verification needs no database
            status, _, text = srv.request("GET", "/webhook?hub.mode=subscribe&"
                                          "hub.verify_token=%s&hub.challenge=9" % harness.TOKEN)
            self.assertEqual((status, text), (200, b"9"))
        finally:
            PG.start()
        self.assertEqual(PG.psql("SELECT message_id FROM wa_messages WHERE message_id = "
                                 "'wamid.during'"), [])
        for i in range(2 * nprocs):   # every process reconnects on its next request
            self.assertReceived(srv.post(body("wamid.during", "wamid.after.%d" % i)))
        self.assertEqual(srv.fcgi_pids(), pids, "the responders were restarted")
        got = wx.snapshot(PG)
        self.assertEqual(got["wa_quarantine"], [])
        want = sorted(["wamid.before.%d" % i for i in range(2 * nprocs)] + ["wamid.during"] +
                      ["wamid.after.%d" % i for i in range(2 * nprocs)])
        self.assertEqual(sorted(r["message_id"] for r in got["wa_messages"]), want)
        self.assertEqual(sorted(r["message_id"] for r in got["wa_outbox"]), want)

    def test_postgres_restart_behind_nginx_503_then_recovers_same_pid(self):
        srv = harness.Nginx(PG, procs=1)
        try:
            self.restart_cycle(srv, 1)
        finally:
            srv.stop()

    def test_postgres_restart_behind_lighttpd_503_then_recovers_same_pids(self):
        srv = harness.Lighttpd(PG, procs=2)
        try:
            self.restart_cycle(srv, 2)
        finally:
            srv.stop()

    def test_responder_started_while_postgres_is_down_serves_once_it_is_up(self):
        PG.stop("fast")
        try:
            srv = harness.Nginx(PG, procs=1)
            self.assert503(srv.post(body("wamid.early")))
        finally:
            PG.start()
        try:
            self.assertReceived(srv.post(body("wamid.early")))
            self.assertEqual(wx.counts(PG)["wa_outbox"], 1)
        finally:
            srv.stop()

    def test_failed_transaction_is_503_and_nothing_half_stored(self):
        # the outbox insert fails after the messages were inserted in the same statement
        PG.psql("""
            CREATE FUNCTION wahook_test_fail() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '40P01'; END $$;
            CREATE TRIGGER wahook_test_fail BEFORE INSERT ON wa_outbox
            FOR EACH ROW EXECUTE FUNCTION wahook_test_fail()""")
        srv = harness.Nginx(PG, procs=1)
        try:
            b = body("wamid.tx1", "wamid.tx2")
            before = len(wx.request_lines(srv))
            self.assert503(srv.post(b))
            self.assertIn("40P01", wx.next_request_line(srv, before).get("reason", ""))
            self.assertEqual(wx.counts(PG), wx.EMPTY, "half stored")
        finally:
            PG.psql("DROP TRIGGER wahook_test_fail ON wa_outbox; "
                    "DROP FUNCTION wahook_test_fail()")
        try:
            self.assertReceived(srv.post(b))   # Meta's retry, same connection
            c = wx.counts(PG)
            self.assertEqual((c["wa_messages"], c["wa_outbox"], c["wa_statuses"],
                              c["wa_quarantine"]), (2, 2, 1, 0))
        finally:
            srv.stop()


class Signals(unittest.TestCase):
    """spawn-fcgi -n execs the responder: Nginx.fcgi is its process, exit status included."""

    def setUp(self):
        wx.clear(PG)

    def stop_lines(self, srv):
        return [wx.parse_logfmt(l) for l in wx.responder_lines(srv) if " ev=stop " in l]

    def test_sigterm_or_sigusr1_while_idle_exits_0_with_a_stop_line(self):
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            srv = harness.Nginx(PG, procs=1)
            try:
                self.assertEqual(srv.post(body("wamid.sig1"))[0], 200)
                os.kill(srv.fcgi.pid, sig)
                self.assertEqual(srv.fcgi.wait(20), 0, sig.name)
                stops = self.stop_lines(srv)
                self.assertEqual(len(stops), 1, sig.name)
                self.assertEqual((stops[0]["why"], stops[0]["requests"]), ("signal", "1"))
            finally:
                srv.stop()

    def test_sigterm_during_a_request_finishes_it_then_exits(self):
        srv = harness.Nginx(PG, procs=1)
        locker = harness.spawn([harness.PSQL, "-X", "-q", "-At", PG.dsn], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            # hold the request inside PostgreSQL: wa_messages is locked
            locker.stdin.write("BEGIN; LOCK TABLE wa_messages IN ACCESS EXCLUSIVE MODE; "
                               "SELECT 'locked';\n")
            locker.stdin.flush()
            self.assertEqual(locker.stdout.readline().strip(), "locked")
            result = {}
            t = threading.Thread(target=lambda: result.update(r=srv.post(body("wamid.sig2"))))
            t.start()
            harness.wait_for(lambda: PG.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'wahook.fcgi' AND wait_event_type = 'Lock'") == "1", 20,
                "the responder waiting on the lock")
            os.kill(srv.fcgi.pid, signal.SIGTERM)
            locker.stdin.write("COMMIT;\n")
            locker.stdin.close()
            t.join(30)
            self.assertFalse(t.is_alive())
            self.assertEqual((result["r"][0], result["r"][2]), (200, b"EVENT_RECEIVED"))
            self.assertEqual(srv.fcgi.wait(20), 0)
            self.assertEqual(wx.counts(PG)["wa_outbox"], 1)
            self.assertEqual([s["requests"] for s in self.stop_lines(srv)], ["1"])
        finally:
            harness.kill(locker)
            srv.stop()


if __name__ == "__main__":
    unittest.main()
