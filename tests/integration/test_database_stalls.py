"""test_database_stalls.py - a database that stops answering costs a 503, not a
hung responder: every database call has a deadline the responder keeps itself
(WAHOOK_DB_TIMEOUT), connecting included. With every PostgreSQL process
stopped (SIGSTOP) for longer than the deadline, and with the network path to
PostgreSQL blackholed (a TCP proxy that stops forwarding and accepting while
its sockets stay open: no reset, as in a partition or a dead host), a signed
webhook gets 503 with Retry-After within the deadline, a 1 MB body too; once the database is back, the same responder
processes reconnect and answer 200, and every message is stored once."""
import os
import select
import signal
import socket
import threading
import time
import unittest

import harness
import wahook_expect as wx

PG = None
DEADLINE = 3            # WAHOOK_DB_TIMEOUT for these tests, seconds
SLACK = 2.5             # generous: a loaded machine, nginx in between


setUpModule, tearDownModule = harness.module_services(globals())


def body(mid, pad=0):
    msgs = [wx.text_msg(mid, "16505551234", 1700000000)]
    if pad:
        msgs[0]["text"]["body"] = "x" * pad
    return harness.meta_json(wx.one(msgs))


def postgres_pids():
    master = PG.postmaster_pid()
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            if int(st[st.rindex(")") + 2:].split()[1]) == master:
                pids.append(int(d))
    return pids


class Blackhole:
    """127.0.0.1:port -> PostgreSQL's unix socket. While hole is set it neither
    accepts nor moves a byte, and closes nothing."""

    def __init__(self, target):
        self.target, self.hole, self.done = target, False, False
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.ls.settimeout(0.1)
        self.port = self.ls.getsockname()[1]
        self.threads = [threading.Thread(target=self.accept, daemon=True)]
        self.threads[0].start()

    def accept(self):
        while not self.done:
            if self.hole:
                time.sleep(0.05)
                continue
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            u = socket.socket(socket.AF_UNIX)
            u.connect(self.target)
            for a, b in ((c, u), (u, c)):
                t = threading.Thread(target=self.pump, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    def pump(self, a, b):
        """a -> b. Blocking sockets (each is also the other pump's b: a
        timeout on it would cut a large send short), polled for input."""
        try:
            while not self.done:
                if self.hole:
                    time.sleep(0.05)
                    continue
                if not select.select([a], [], [], 0.1)[0]:
                    continue
                data = a.recv(65536)
                if not data:
                    break
                while self.hole and not self.done:
                    time.sleep(0.05)    # caught in flight: held, as by the network
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.done = True
        for t in self.threads:
            t.join(5)
        self.ls.close()


class Stalls(unittest.TestCase):
    def setUp(self):
        wx.clear(PG)

    def assert503InTime(self, srv, data):
        t0 = time.monotonic()
        status, h, _ = srv.post(data)
        took = time.monotonic() - t0
        self.assertEqual(status, 503, srv.logs()[-2000:])
        self.assertRegex(h.get("retry-after", ""), r"^[0-9]+$")
        self.assertLess(took, DEADLINE + SLACK, "answered after %.1f s" % took)

    def recover(self, srv, pids, failed):
        """The same processes answer 200 again; what got 503 is stored once
        when Meta sends it again."""
        deadline = time.monotonic() + 30
        for i in range(4):
            while True:
                st, _, _ = srv.post(body("wamid.after.%d" % i))
                if st == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)     # the network path may need a moment to heal
            self.assertEqual(st, 200, srv.logs()[-2000:])
        for mid, data in failed:     # as Meta retries
            for _ in range(5):
                st = srv.post(data)[0]
                if st == 200:
                    break
            self.assertEqual(st, 200, srv.logs()[-3000:])
        self.assertEqual(srv.fcgi_pids(), pids, "the responders were restarted")
        ids = [r["message_id"] for r in wx.snapshot(PG)["wa_messages"]]
        for mid, _ in failed:
            self.assertEqual(ids.count(mid), 1, mid)
        log = "".join(l for l in srv.logs().splitlines(True) if "status=503" in l)
        self.assertIn("deadline", log)

    def test_stopped_postgres_is_503_within_the_deadline_then_200(self):
        srv = harness.Nginx(PG, procs=2, env={"WAHOOK_DB_TIMEOUT": str(DEADLINE)})
        try:
            harness.wait_for(lambda: len(srv.fcgi_pids()) == 2, 10, "responders")
            pids = srv.fcgi_pids()
            for i in range(4):
                self.assertEqual(srv.post(body("wamid.before.%d" % i))[0], 200)
            stopped = postgres_pids()
            failed = []
            for p in stopped:
                os.kill(p, signal.SIGSTOP)
            try:
                # a statement on a live connection, then reconnects to a
                # postmaster that accepts nothing
                for i in range(4):
                    mid = "wamid.stopped.%d" % i
                    failed.append((mid, body(mid)))
                    self.assert503InTime(srv, failed[-1][1])
            finally:
                for p in stopped:
                    os.kill(p, signal.SIGCONT)
            self.recover(srv, pids, failed)
        finally:
            srv.stop()

    def test_the_least_deadline_of_one_second_stores(self):
        # the lowest WAHOOK_DB_TIMEOUT wahook.fcgi(8) allows connects and stores
        srv = harness.Nginx(PG, procs=1, env={"WAHOOK_DB_TIMEOUT": "1"})
        try:
            harness.wait_for(lambda: len(srv.fcgi_pids()) == 1, 10, "responder")
            for i in range(3):
                self.assertEqual(srv.post(body("wamid.one.%d" % i))[0], 200,
                                 srv.logs()[-2000:])
            ids = [r["message_id"] for r in wx.snapshot(PG)["wa_messages"]]
            self.assertEqual(sorted(ids), ["wamid.one.%d" % i for i in range(3)])
        finally:
            srv.stop()

    def test_blackholed_network_is_503_within_the_deadline_then_200(self):
        hole = Blackhole(os.path.join(PG.sock, ".s.PGSQL.5432"))
        dsn = "host=127.0.0.1 port=%d dbname=postgres user=%s" % (hole.port, PG.user)
        srv = harness.Nginx(PG, procs=1, env={"WAHOOK_DB_TIMEOUT": str(DEADLINE),
                                              "WAHOOK_DB": dsn})
        try:
            harness.wait_for(lambda: len(srv.fcgi_pids()) == 1, 10, "responder")
            pids = srv.fcgi_pids()
            for i in range(2):
                self.assertEqual(srv.post(body("wamid.before.%d" % i))[0], 200)
            hole.hole = True
            failed = []
            try:
                for i, pad in enumerate((1000000, 0)):
                    # a 1 MB statement on the live connection, then a
                    # reconnect into the hole
                    mid = "wamid.hole.%d" % i
                    failed.append((mid, body(mid, pad)))
                    self.assert503InTime(srv, failed[-1][1])
            finally:
                hole.hole = False
            self.recover(srv, pids, failed)
        finally:
            srv.stop()
            hole.close()


if __name__ == "__main__":
    unittest.main()
