"""test_kept_connections_fill_the_table.py - a responder whose table of idle
connections (PARK_MAX) is full keeps answering every connection it holds,
leaves the new ones it has no room for waiting (in the listen backlog, where
a sibling process may take them), and serves them once there is room. A web server's kept connections (nginx keepalive, Apache enablereuse)
fill it in production at 512; here a build with -DPARK_MAX=8, under the churn
that overran the table: 6 idle kept connections, 2 kept connections pinging,
3 clients connecting, asking and closing, against 4 threads.
"""
import os
import socket
import threading
import time
import unittest

import harness
import fire

PARK_MAX = 8
CHURN_S = 4.0


def verify_params():
    q = "hub.mode=subscribe&hub.verify_token=%s&hub.challenge=4711" % harness.TOKEN
    return {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/webhook", "REQUEST_URI": "/webhook?" + q,
            "QUERY_STRING": q, "SERVER_PROTOCOL": "HTTP/1.1"}


def ask(s, keep, timeout=10):
    """One verification GET on s; True when answered 200 with the challenge."""
    s.sendall(fire.fcgi_begin(verify_params(), keep=keep) + fire.fcgi_stdin(b""))
    status, out = fire.fcgi_read_response(s, timeout=timeout)
    return status == 200 and out.endswith(b"4711")


class TableFull(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = harness.tmpdir("wahook-park-")
        cls.binary = harness.build_variant(["PARK_MAX=%d" % PARK_MAX])
        env = harness.responder_env(None, WAHOOK_THREADS="4")
        cls.pool = fire.Pool(os.path.join(d, "wahook.sock"), 1, env, cls.binary,
                             os.path.join(d, "wahook.log"))
        cls.addClassCleanup(cls.pool.stop)
        cls.log = os.path.join(d, "wahook.log")

    def connect(self):
        s = fire.fcgi_connect(self.pool.path)
        self.addCleanup(s.close)
        return s

    def test_every_kept_connection_is_answered_and_new_ones_served(self):
        idle = [self.connect() for _ in range(6)]
        for s in idle:
            self.assertTrue(ask(s, keep=True))
        stop = threading.Event()
        pings, churns, errors = [0, 0], [0, 0], []   # churns: answered, closed unanswered

        def pinger(i):
            s = fire.fcgi_connect(self.pool.path)
            try:
                while not stop.is_set():
                    if not ask(s, keep=True):
                        errors.append("pinger %d: a wrong answer" % i)
                        return
                    pings[i] += 1
            except (OSError, socket.timeout) as e:
                errors.append("pinger %d: %r" % (i, e))
            finally:
                s.close()

        def churner(i):
            # with the table full a new connection waits (in the listen
            # backlog) until a kept one leaves: then it is served
            while not stop.is_set():
                s = fire.fcgi_connect(self.pool.path)
                try:
                    churns[0 if ask(s, keep=False, timeout=CHURN_S + 20) else 1] += 1
                except (OSError, socket.timeout) as e:
                    errors.append("churner %d: %r" % (i, e))
                    return
                finally:
                    s.close()

        threads = [threading.Thread(target=pinger, args=(i,)) for i in range(2)] + \
                  [threading.Thread(target=churner, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(CHURN_S)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertTrue(all(n > 10 for n in pings), pings)
        # each churner's last connection was served once the pingers left, and
        # none was closed unanswered
        self.assertGreaterEqual(churns[0], 3, churns)
        self.assertEqual(churns[1], 0, churns)
        # every connection kept through it is still answered, and still kept
        for _ in range(2):
            for i, s in enumerate(idle):
                self.assertTrue(ask(s, keep=True), "kept connection %d" % i)
        # the pingers are gone: there is room, and new connections are served
        for _ in range(5):
            s = fire.fcgi_connect(self.pool.path)
            try:
                self.assertTrue(ask(s, keep=False), "a new connection after the churn")
            finally:
                s.close()
        self.assertEqual([p.poll() for p in self.pool.procs], [None])
        print("  PARK_MAX %d: pings %s, new connections answered %d, "
              "%d unanswered" % (PARK_MAX, pings, churns[0], churns[1]))


if __name__ == "__main__":
    unittest.main()
