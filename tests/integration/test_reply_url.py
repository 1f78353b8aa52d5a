"""test_reply_url.py - WAHOOK_REPLY_URL: the drainer POSTs each message's JSON,
signed with X-Wahook-Signature-256 (HMAC-SHA256 of the body under
WAHOOK_REPLY_URL_SECRET), and a 2xx answer's body is the reply (204 or empty:
none; any other status, a redirect too: a failed attempt). Against a recording
receiver that checks the signature itself, and against examples/reply/forward
as shipped.
"""
import hashlib
import hmac
import json
import os
import socket
import subprocess
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
import drainkit as dk

pg = server = None
SECRET = "reply-url-secret-5e1f0c"
EXAMPLES = os.path.join(harness.ROOT, "examples", "reply")


setUpModule, tearDownModule = dk.module_stack(globals())


class Receiver:
    """A reply URL on 127.0.0.1: records each POST; answer(q) gives (status, bytes)
    or (status, bytes, {header: value})."""

    def __init__(self, answer):
        rec = self
        self.posts = []
        self.answer = answer

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.posts.append({"raw": raw, "headers": dict(self.headers.items()),
                                  "path": self.path})
                status, data, *more = rec.answer(json.loads(raw))
                try:
                    self.send_response(status)
                    for k, v in (more[0] if more else {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass    # the drainer gave up on a slow answer: expected

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d/wahook/reply" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class ReplyURL(dk.DrainCase):
    def receiver(self, answer):
        r = Receiver(answer)
        self.addCleanup(r.stop)
        return r

    def test_signed_post_and_each_kind_of_answer(self):
        convs = dk.feed(server, conversations=4, per_conv=1)
        senders = list(convs)
        what = {convs[senders[0]][0]: (200, b"Hello from the URL\n"),
                convs[senders[1]][0]: (204, b""),
                convs[senders[2]][0]: (200, json.dumps([
                    {"type": "text", "text": {"body": "a"}},
                    {"type": "text", "text": {"body": "b"}}]).encode()),
                convs[senders[3]][0]: (500, b"crm down")}
        rec = self.receiver(lambda q: what[q["message_id"]])
        secret_file = os.path.join(harness.tmpdir("wahook-url-"), "secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        r = dk.run(pg, self.g, WAHOOK_REPLY_URL=rec.url,
                   WAHOOK_REPLY_URL_SECRET_FILE=secret_file,
                   WAHOOK_RETRY_MIN=60, WAHOOK_RETRY_MAX=60)
        self.assertEqual(r.rc, 1, r)       # the 500 waits for its retry
        self.assertEqual(self.g.violations, [])
        self.assertEqual(len(rec.posts), 4)
        for p in rec.posts:
            want = "sha256=" + hmac.new(SECRET.encode(), p["raw"], hashlib.sha256).hexdigest()
            self.assertEqual(p["headers"]["X-Wahook-Signature-256"], want)
            self.assertTrue(p["headers"]["Content-Type"].startswith("application/json"))
            self.assertNotIn("Authorization", p["headers"])
            q = json.loads(p["raw"])
            self.assertEqual(sorted(q), ["display_phone_number", "group_id", "message",
                                         "message_id", "phone_number_id", "profile_name",
                                         "sender", "user_id", "username"])
            self.assertEqual(q["message"]["id"], q["message_id"])
            self.assertEqual(p["path"], "/wahook/reply")
        m0, m1, m2, m3 = (convs[s][0] for s in senders)
        rows = dk.outbox(pg)
        (c,) = [c for c in self.g.ok("reply") if c["message_id"] == m0]
        self.assertEqual(c["body"]["text"], {"body": "Hello from the URL"})
        self.assertEqual(rows[m0]["state"], "done")
        self.assertEqual(self.g.count("reply", m1), 0)
        self.assertEqual(rows[m1]["state"], "done")
        self.assertEqual([c["body"]["text"]["body"] for c in self.g.ok("reply")
                          if c["to"] == senders[2]], ["a", "b"])
        self.assertEqual((rows[m3]["state"], rows[m3]["attempts"]), ("pending", "1"))
        self.assertEqual(rows[m3]["last_error"], "reply URL answered HTTP 500: crm down")
        self.assertEqual(self.g.count("reply", m3), 0)
        self.assertNotIn(SECRET, r.err + r.out)

    def test_a_redirect_is_not_followed(self):
        """A 3xx is a failed attempt like any other status: the signed body
        goes to WAHOOK_REPLY_URL and nowhere else."""
        convs = dk.feed(server, conversations=1, per_conv=1)
        (m,), = convs.values()
        rec = self.receiver(lambda q: (307, b"", {"Location": "/elsewhere"}))
        r = dk.run(pg, self.g, WAHOOK_REPLY_URL=rec.url, WAHOOK_REPLY_URL_SECRET=SECRET,
                   WAHOOK_RETRY_MIN=60, WAHOOK_RETRY_MAX=60)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual([p["path"] for p in rec.posts], ["/wahook/reply"])
        row = dk.outbox(pg)[m]
        self.assertEqual((row["state"], row["attempts"]), ("pending", "1"))
        self.assertEqual(row["last_error"], "reply URL answered HTTP 307")
        self.assertEqual(self.g.count("reply", m), 0)

    def test_reply_the_database_would_refuse_is_invalid_and_others_are_answered(self):
        """\\u0000 outside text.body: json-c takes it, jsonb refuses it (22P05).
        An invalid reply, retried then dead with the reason; no exit 4."""
        convs = dk.feed(server, conversations=2, per_conv=1)
        (bad,), (good,) = convs.values()
        rec = self.receiver(lambda q: (200, b'{"type":"text","text":{"body":"x"},'
                                            b'"biz_opaque_callback_data":"a\\u0000b"}')
                            if q["message_id"] == bad else (200, b"fine"))
        dk.assert_invalid_reply_dies(self, pg, self.g, bad, good, "\\u0000",
                                     WAHOOK_REPLY_URL=rec.url, WAHOOK_REPLY_URL_SECRET=SECRET)
        self.assertEqual(len([p for p in rec.posts if json.loads(p["raw"])["message_id"]
                              == bad]), 2)

    def test_forward_example_checks_the_signature(self):
        port = free_port()
        fwd = harness.spawn([os.path.join(EXAMPLES, "forward"), "--listen",
                             "127.0.0.1:%d" % port],
                            env={"PATH": "/usr/bin:/bin", "WAHOOK_REPLY_URL_SECRET": SECRET},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(harness.kill, fwd)
        wait_port(port)
        url = "http://127.0.0.1:%d/" % port
        convs = dk.feed(server, conversations=2, per_conv=2)
        # Python programs start slowly on a loaded machine: room for two per question
        slow = dict(WAHOOK_LEASE=40, WAHOOK_REPLY_TIMEOUT=20)
        r = dk.run(pg, self.g, WAHOOK_REPLY_URL=url, WAHOOK_REPLY_URL_SECRET=SECRET, **slow)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.g.violations, [])
        for sender, ids in convs.items():
            for m in ids:
                (c,) = [c for c in self.g.ok("reply") if c["message_id"] == m]
                self.assertEqual(c["body"]["text"], {"body": "hello " + m})
        self.assert_in_order(convs)
        # a drainer with the wrong secret is refused: a failed attempt, nothing sent
        (m,) = dk.feed(server, conversations=1, per_conv=1).popitem()[1]
        r = dk.run(pg, self.g, WAHOOK_REPLY_URL=url, WAHOOK_REPLY_URL_SECRET="not-it",
                   WAHOOK_RETRY_MIN=60, WAHOOK_RETRY_MAX=60, **slow)
        self.assertEqual(r.rc, 1, r)
        row = dk.outbox(pg)[m]
        self.assertEqual((row["state"], row["attempts"]), ("pending", "1"))
        self.assertIn("reply URL answered HTTP 403", row["last_error"])
        self.assertEqual(self.g.count("reply", m), 0)

    def test_a_slow_url_times_out_and_others_go_on(self):
        def answer(q):
            if q["sender"] == slow:
                time.sleep(5)
            return 200, b"quick"
        convs = dk.feed(server, conversations=3, per_conv=1)
        slow = list(convs)[0]
        rec = self.receiver(answer)
        t0 = time.monotonic()
        r = dk.run(pg, self.g, WAHOOK_REPLY_URL=rec.url, WAHOOK_REPLY_URL_SECRET=SECRET,
                   WAHOOK_REPLY_TIMEOUT=1, WAHOOK_RETRY_MIN=60, WAHOOK_RETRY_MAX=60)
        self.assertEqual(r.rc, 1, r)
        self.assertLess(time.monotonic() - t0, 4.5)
        rows = dk.outbox(pg)
        (m,) = convs[slow]
        self.assertIn("reply URL: curl: Timeout was reached", rows[m]["last_error"])
        for s in list(convs)[1:]:
            self.assertEqual(rows[convs[s][0]]["state"], "done")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on %d" % port)


if __name__ == "__main__":
    unittest.main()
