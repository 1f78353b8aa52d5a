"""test_group_commit.py - webhooks in flight share one transaction, and each
keeps its own promise.

While one statement of a responder process waits (here: on a lock another
session holds on wa_outbox, as a slow commit would), the webhooks that arrive
are read, verified and parsed, and then wait together; when the lock goes they
are stored by one statement and answered. Proven against nginx and real
PostgreSQL: no 200 reaches a client before its rows are committed; one
webhook whose data PostgreSQL refuses is quarantined alone while the rest of
its batch is stored; copies of one message racing each other are stored once
with one outbox row; SIGTERM answers every request in hand; and connections
nginx keeps open between requests (fastcgi_keep_conn) never starve new ones.
"""
import os
import signal
import subprocess
import threading
import time
import unittest

import harness
import servers
import wahook_expect as wx

PG = None


setUpModule, tearDownModule = harness.module_services(globals())


class TableLock:
    """Another session holding EXCLUSIVE on wa_outbox: every ingest statement
    blocks until release(), as behind a slow commit."""

    def __init__(self):
        self.p = harness.spawn(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", PG.dsn],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, text=True)
        self.p.stdin.write("BEGIN;\nLOCK TABLE wa_outbox IN EXCLUSIVE MODE;\n"
                           "SELECT 1;\n")
        self.p.stdin.flush()
        harness.wait_for(lambda: PG.scalar(
            "SELECT count(*) FROM pg_locks WHERE relation = 'wa_outbox'::regclass "
            "AND mode = 'ExclusiveLock' AND granted") == "1", 10, "the table lock")

    def waiting(self):
        """Statements of the responder waiting on the lock."""
        return int(PG.scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                             "application_name = 'wahook.fcgi' AND wait_event_type = 'Lock'"))

    def release(self):
        self.p.stdin.write("COMMIT;\n")
        self.p.stdin.close()
        self.p.wait(10)


def body(tag, n=1, sender="16505550100", text="hello"):
    msgs = [wx.text_msg("wamid.gc.%s.%d" % (tag, k), sender, 1700000000 + k, text)
            for k in range(n)]
    return harness.meta_json(wx.one(msgs)), [m["id"] for m in msgs]


class Poster:
    """Posts bodies on threads; records (status, answer time) per body."""

    def __init__(self, srv):
        self.srv = srv
        self.out = {}
        self.threads = []

    def post(self, key, b):
        def run():
            try:
                st, _, text = self.srv.post(b)
            except Exception as e:  # noqa: BLE001 - judged by the test
                st, text = "error: %r" % e, b""
            self.out[key] = (st, text, time.monotonic())
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self, timeout=60):
        for t in self.threads:
            t.join(timeout)


class GroupCommit(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        wx.clear(PG)
        # one process: every webhook of the test meets in it
        self.srv = harness.Nginx(PG, procs=1, env={"WAHOOK_THREADS": "8"})
        self.lock = None
        st, _, _ = self.srv.post(body("warmup")[0])   # connected, statements prepared
        self.assertEqual(st, 200)

    def tearDown(self):
        if self.lock is not None and self.lock.p.poll() is None:
            self.lock.release()
        self.srv.stop()

    def held_batch(self, bodies):
        """Posts bodies[0], waits until its statement waits on the lock, posts the
        rest, gives them time to queue, releases. Returns (answers, release time)."""
        self.lock = TableLock()
        p = Poster(self.srv)
        p.post(0, bodies[0])
        harness.wait_for(lambda: self.lock.waiting() == 1, 15, "the first statement to wait")
        for k, b in enumerate(bodies[1:], 1):
            p.post(k, b)
        time.sleep(2.0)     # read, verified, parsed, queued: generous on a loaded machine
        self.assertEqual(p.out, {}, "an answer came while the table was locked")
        t_release = time.monotonic()
        self.lock.release()
        p.join()
        return p.out, t_release

    def batch_sizes(self):
        return [int(l["batch"]) for l in wx.request_lines(self.srv) if "batch" in l]

    def test_webhooks_waiting_on_a_commit_share_the_next_one_and_none_is_answered_before(self):
        bodies, ids = [], []
        for k in range(7):
            b, i = body("share%d" % k, n=1 + k % 3, sender="1650555%04d" % k)
            bodies.append(b)
            ids += i
        out, t_release = self.held_batch(bodies)
        for k in range(7):
            st, text, at = out[k]
            self.assertEqual((st, text), (200, b"EVENT_RECEIVED"), k)
            self.assertGreater(at, t_release, "a 200 before its commit")
        got = wx.snapshot(PG)
        stored = set(m["message_id"] for m in got["wa_messages"])
        self.assertTrue(set(ids) <= stored)
        self.assertTrue(set(ids) <= set(o["message_id"] for o in got["wa_outbox"]))
        # each webhook keeps its own positions
        pos = dict((o["message_id"], o["position"]) for o in got["wa_outbox"])
        for mid in ids:
            self.assertEqual(pos[mid], int(mid.rsplit(".", 1)[1]) + 1, mid)
        sizes = self.batch_sizes()
        self.assertGreaterEqual(max(sizes), 2, "no webhooks shared a transaction: %r" % sizes)
        lines = [l for l in wx.request_lines(self.srv) if l.get("status") == "200"]
        self.assertEqual(len(lines), 8)     # warm-up + 7

    def test_one_webhook_refused_for_its_data_is_quarantined_alone(self):
        bodies, good = [], []
        for k in range(6):
            b, i = body("split%d" % k, sender="1650556%04d" % k)
            bodies.append(b)
            good += i
        # jsonb refuses \u0000 (22P05): the whole batch's statement fails
        bad, bad_ids = body("split-bad", text="a\u0000b")
        bodies.insert(3, bad)
        out, _ = self.held_batch(bodies)
        for k in range(len(bodies)):
            self.assertEqual(out[k][:2], (200, b"EVENT_RECEIVED"), k)
        got = wx.snapshot(PG)
        stored = set(m["message_id"] for m in got["wa_messages"])
        self.assertTrue(set(good) <= stored, "a good webhook paid for the bad one")
        self.assertFalse(set(bad_ids) & stored)
        self.assertEqual(len(got["wa_quarantine"]), 1)
        self.assertEqual(bytes.fromhex(got["wa_quarantine"][0]["body_hex"]), bad.encode())
        # PostgreSQL's own reason, not "ERROR" cut at its first colon
        self.assertIn("database refused the data: ", got["wa_quarantine"][0]["reason"])
        self.assertIn("unsupported Unicode escape sequence (SQLSTATE 22P05)",
                      got["wa_quarantine"][0]["reason"])
        self.assertGreaterEqual(max(self.batch_sizes()), 2)

    def test_copies_of_one_message_in_one_batch_are_stored_once_with_one_outbox_row(self):
        b, ids = body("race", n=3)
        bodies = [body("race-first")[0]] + [b] * 4   # Meta's retries racing the original
        out, _ = self.held_batch(bodies)
        for k in range(len(bodies)):
            self.assertEqual(out[k][:2], (200, b"EVENT_RECEIVED"), k)
        got = wx.snapshot(PG)
        for mid in ids:
            self.assertEqual([m["message_id"] for m in got["wa_messages"]].count(mid), 1)
            self.assertEqual([o["message_id"] for o in got["wa_outbox"]].count(mid), 1)
        conv = [c for c in got["wa_conversations"] if c["sender"] == "16505550100"]
        self.assertEqual(conv[0]["unread_count"], 3 + 1 + 1)  # race x3, race-first, warmup
        self.assertEqual(got["wa_quarantine"], [])
        # the log says new once and dup for every other copy
        news = sum(l.get("ids", "").count(":new") for l in wx.request_lines(self.srv)
                   if "race" in l.get("ids", "") and "first" not in l.get("ids", ""))
        self.assertEqual(news, 3)

    def test_sigterm_answers_every_request_in_hand_before_the_process_exits(self):
        bodies, ids = [], []
        for k in range(4):
            b, i = body("term%d" % k, sender="1650557%04d" % k)
            bodies.append(b)
            ids += i
        self.lock = TableLock()
        p = Poster(self.srv)
        p.post(0, bodies[0])
        harness.wait_for(lambda: self.lock.waiting() == 1, 15, "the first statement to wait")
        for k in range(1, 4):
            p.post(k, bodies[k])
        time.sleep(2.0)
        (pid,) = self.srv.fcgi_pids()
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(self.srv.fcgi.poll(), "exited with requests in hand")
        self.lock.release()
        p.join()
        for k in range(4):
            self.assertEqual(p.out[k][:2], (200, b"EVENT_RECEIVED"), k)
        self.assertEqual(self.srv.fcgi.wait(15), 0)
        stored = set(m["message_id"] for m in wx.snapshot(PG)["wa_messages"])
        self.assertTrue(set(ids) <= stored)
        stop = [l for l in wx.responder_lines(self.srv) if " ev=stop " in l]
        self.assertEqual(len(stop), 1)
        self.assertIn("why=signal", stop[0])


def clients_behind_kept_connections(test, srv, count_stored, tag, clients=8, each=15):
    """clients threads post each signed webhooks one after another through srv,
    whose connections to the responder are kept between requests; every answer
    must be a prompt 200 and every message stored."""
    results = []
    lock = threading.Lock()

    def client(c):
        for k in range(each):
            b, ids = body("%s%d.%d" % (tag, c, k), sender="1650558%04d" % c)
            t0 = time.monotonic()
            try:
                st = srv.request("POST", "/webhook", b, {
                    "X-Hub-Signature-256": harness.sign(b)}, timeout=60)[0]
            except Exception as e:  # noqa: BLE001 - judged below
                st = "error: %r" % e
            with lock:
                results.append((st, time.monotonic() - t0, ids))
    t0 = time.monotonic()
    ts = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    took = time.monotonic() - t0
    test.assertEqual(len(results), clients * each)
    test.assertEqual(sorted(set(r[0] for r in results)), [200])
    # nothing waited on an idle kept connection (that was the server's 30 s timeout)
    test.assertLess(max(r[1] for r in results), 15, "a request hung")
    test.assertLess(took, 60)
    test.assertEqual(count_stored("wamid.gc.%s%%" % tag), clients * each)


class KeptConnections(unittest.TestCase):
    """nginx with fastcgi_keep_conn on and an upstream keepalive pool holds
    connections open between requests. Before, each held a responder thread
    that waited for its next request, and 8 clients against 3 processes of one
    thread hung for 30 s."""

    def setUp(self):
        wx.clear(PG)
        self.srv = harness.Nginx(PG, procs=3, keep_conn=True, env={"WAHOOK_THREADS": "1"})

    def tearDown(self):
        self.srv.stop()

    def test_more_clients_than_threads_behind_kept_connections_all_get_answers(self):
        clients_behind_kept_connections(self, self.srv, lambda like: int(PG.scalar(
            "SELECT count(*) FROM wa_messages WHERE message_id LIKE '%s'" % like)), "kept")
        # no answer was cut short by a connection closed under it
        self.assertNotIn("upstream prematurely closed", self.srv.logs())


class KeptConnectionsApache(unittest.TestCase):
    """examples/apache.conf's mod_proxy_fcgi with enablereuse=on added: Apache's
    worker threads keep their connections to one responder process of one
    thread (spawn-fcgi -n), as sites that turn reuse on do."""

    def setUp(self):
        inst = servers.installed()
        self.dir = harness.tmpdir("wahook-reuse-")
        env = servers.responder_env(self.dir, servers.RESPONDER_USER)
        env["WAHOOK_THREADS"] = "1"
        text = inst.example("apache.conf")
        reuse = text.replace("fcgi://localhost/\" timeout=30",
                             "fcgi://localhost/\" timeout=30 enablereuse=on")
        self.assertNotEqual(reuse, text, "the example's ProxyPass line changed")
        self.backend = servers.SpawnFcgi(inst.fcgi, env, self.dir)
        self.server = servers.Apache("proxy_fcgi", self.dir, reuse, inst.fcgi,
                                     backend=self.backend, env=env)

    def tearDown(self):
        self.server.stop()
        self.backend.stop()

    def test_more_clients_than_threads_behind_reused_connections_all_get_answers(self):
        db = servers.database()
        try:
            clients_behind_kept_connections(self, self.server, lambda like: db.count(
                "SELECT count(*) FROM wa_messages WHERE message_id LIKE '%s'" % like),
                "reuse%d." % os.getpid())
        except AssertionError:
            for f in self.server.logfiles():
                if os.path.exists(f):
                    with open(f, errors="replace") as fh:
                        lines = [l for l in fh.read().splitlines()
                                 if "status=200" not in l][-8:]
                    print("\n--- %s\n%s" % (f, "\n".join(lines)))
            raise


if __name__ == "__main__":
    unittest.main()
