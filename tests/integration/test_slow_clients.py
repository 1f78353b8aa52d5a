"""test_slow_clients.py - slow clients cannot hold the webhook. Apache's
mod_proxy_fcgi (examples/apache.conf as shipped) passes a body on as it
arrives, so a client trickling a body reaches the responder: there it holds
one worker thread for about a second (WAHOOK_BODY_MIN_RATE), then gets 408 and
its connection is closed, with a log line saying why, and nothing is stored.
Ten unsigned clients trickling 600 bytes/s and reconnecting whenever they are
cut off: signed webhooks sent meanwhile all get 200 in under a second and are
stored. Plain CGI (the body on stdin) keeps the same deadline."""
import select
import socket
import subprocess
import threading
import time
import unittest

import harness as h
import servers

SLOW_CLIENTS = 10
TRICKLE = 60            # bytes every 0.1 s: 600 bytes/s
PROBE_SECONDS = 8


def trickle(port, stop, cuts):
    """One slow client: a 1 MB POST sent 600 bytes/s, again whenever cut off.
    Appends to cuts how long each connection was held before the cut."""
    while not stop.is_set():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        t0 = time.monotonic()
        try:
            s.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
            while not stop.is_set():
                s.sendall(b"x" * TRICKLE)
                r, _, _ = select.select([s], [], [], 0.1)
                if r:       # an answer, or the connection closed: cut off
                    s.recv(65536)
                    cuts.append(time.monotonic() - t0)
                    break
        except OSError:
            cuts.append(time.monotonic() - t0)
        finally:
            s.close()


class SlowClientsBehindApache(unittest.TestCase):
    tag = "slow"

    @classmethod
    def setUpClass(cls):
        inst = servers.installed()
        cls.dir = h.tmpdir("wahook-slow-")
        env = servers.responder_env(cls.dir, servers.RESPONDER_USER)
        cls.backend = servers.SpawnFcgi(inst.fcgi, env, cls.dir)
        cls.server = servers.Apache("proxy_fcgi", cls.dir, inst.example("apache.conf"),
                                    inst.fcgi, backend=cls.backend, env=env)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.backend.stop()

    def test_trickling_clients_never_delay_signed_webhooks(self):
        db = servers.database()
        quarantined = db.count("SELECT count(*) FROM wa_quarantine")
        stop, cuts = threading.Event(), []
        slow = [threading.Thread(target=trickle, args=(self.server.port, stop, cuts))
                for _ in range(SLOW_CLIENTS)]
        for t in slow:
            t.start()
        times, mids = [], []
        try:
            time.sleep(1.5)         # every slow client is in, some already cut
            end = time.monotonic() + PROBE_SECONDS
            i = 0
            while time.monotonic() < end:
                mid = "wamid.slow.%d.%d" % (i, time.time_ns())
                body = h.meta_json(servers.webhook(
                    [servers.text_message(mid, "16505551234", 1700000000, "hi")]))
                t0 = time.monotonic()
                st, _, out = self.server.post(body)
                times.append(time.monotonic() - t0)
                self.assertEqual((st, out), (200, b"EVENT_RECEIVED"),
                                 self.server.logs()[-3000:])
                mids.append(mid)
                i += 1
                time.sleep(0.2)
        finally:
            stop.set()
            for t in slow:
                t.join(30)
        self.assertLess(max(times), 1.0, "signed webhooks waited: %s" %
                        sorted(times)[-5:])
        for mid in mids:
            self.assertEqual(self.servers_stored(mid), 1, mid)
        # each slow request was cut off after about a second, not held for the
        # 28 minutes its trickle would take
        self.assertGreaterEqual(len(cuts), SLOW_CLIENTS, cuts)
        self.assertLess(max(cuts), 5.0, sorted(cuts)[-5:])
        log = self.backend_log()
        self.assertIn("status=408", log)
        self.assertIn("body slower than WAHOOK_BODY_MIN_RATE", log)
        self.assertEqual(db.count("SELECT count(*) FROM wa_quarantine"), quarantined)

    def servers_stored(self, mid):
        return servers.database().count(
            "SELECT count(*) FROM wa_messages WHERE message_id = '%s'" % mid)

    def backend_log(self):
        with open(self.backend.log, errors="replace") as f:
            return f.read()


class SlowBodyAsCgi(unittest.TestCase):
    def test_cgi_body_that_stops_coming_is_408(self):
        """mod_cgid also hands the body over as it arrives, on stdin."""
        inst = servers.installed()
        d = h.tmpdir("wahook-slow-cgi-")
        env = servers.responder_env(d, None)
        env.update(GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="POST", QUERY_STRING="",
                   SERVER_PROTOCOL="HTTP/1.1", PATH="/usr/bin:/bin",
                   CONTENT_LENGTH="5000", CONTENT_TYPE="application/json",
                   WAHOOK_BODY_TIMEOUT="2")
        p = subprocess.Popen([inst.fcgi], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        try:
            t0 = time.monotonic()
            p.stdin.write(b"{" * 100)
            p.stdin.flush()     # and then nothing more, the pipe left open
            p.wait(timeout=30)
            took = time.monotonic() - t0
            out, err = p.stdout.read(), p.stderr.read()
        finally:
            p.stdin.close()
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertTrue(out.startswith(b"Status: 408"), out)
        self.assertLess(took, 5.0)
        self.assertIn(b"WAHOOK_BODY_MIN_RATE", err)


if __name__ == "__main__":
    unittest.main()
