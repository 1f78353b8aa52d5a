"""test_graph_version.py - nothing the drainer does depends on the Graph API
version in WAHOOK_GRAPH_URL: the same webhooks, drained against the stand-in
mounted at /v26.0 (the default's version), at /v99.0 (a version that does not
exist yet) and at no version at all, give the same calls in the same order,
with the same bodies, to the same paths after the base URL; media is retrieved
and downloaded the same way. So pinning a version (WAHOOK_GRAPH_URL in
wahook-drain(8)) changes nothing but the URL.
"""
import base64
import hashlib
import unittest

import drainkit as dk
from graph_standin import GraphStandin

pg = server = None
SENDERS = ("4915300000001", "4915300000002")
PHOTO = hashlib.sha256(b"graph-version").digest() * 40     # 1280 bytes
MEDIA_ID = "1290561358835799"


def setUpModule():
    global pg, server
    pg, server = dk.start_stack()


tearDownModule = dk.stop_stack


def webhook():
    """The same body every time: two senders, two texts each, one photo."""
    msgs = []
    for i, s in enumerate(SENDERS):
        for j in range(2):
            msgs.append({"from": s, "id": "wamid.HBgLVkVSU0lPTiVAgASGBQz%d%d" % (i, j),
                         "timestamp": str(1_700_000_100 + j), "type": "text",
                         "text": {"body": "hello %d %d" % (i, j)}})
    msgs.append({"from": SENDERS[0], "id": "wamid.HBgLVkVSU0lPTiVAgASGBQzPHOTO",
                 "timestamp": "1700000102", "type": "image",
                 "image": {"id": MEDIA_ID, "mime_type": "image/jpeg",
                           "sha256": base64.b64encode(hashlib.sha256(PHOTO).digest())
                           .decode()}})
    return msgs


class GraphVersion(unittest.TestCase):
    def drain(self, version):
        """Drains webhook() against a stand-in at version; returns what it saw:
        (base-relative path, body) of each POST, and (step, media id) of each GET."""
        pg.truncate()
        g = GraphStandin(dk.ACCESS_TOKEN, version=version)
        try:
            g.add_media(PHOTO, media_id=MEDIA_ID)
            dk.post_objects(server, webhook())
            prefix = "/" + version if version else ""
            self.assertEqual(g.url, "http://127.0.0.1:%d%s" % (g.port, prefix))
            dk.drain_until_done(pg, g, WAHOOK_TYPING="1")
            self.assertEqual(g.violations, [], version)
            posts, gets = [], []
            for c in g.snapshot():
                if c["method"] == "POST":
                    self.assertTrue(c["path"].startswith(prefix + "/"), c["path"])
                    self.assertEqual(c["status"], 200, c)
                    posts.append((c["path"][len(prefix):], c["body"]))
            for c in g.media_calls:
                self.assertEqual(c["status"], 200, c)
                if c["step"] == "meta":
                    self.assertTrue(c["path"].startswith(prefix + "/"), c["path"])
                gets.append((c["step"], c["media_id"]))
            self.assertEqual(dk.media_rows(pg)[MEDIA_ID]["data_sha"],
                             hashlib.sha256(PHOTO).hexdigest())
            self.assertEqual({r["state"] for r in dk.outbox(pg).values()}, {"done"})
            return posts, gets
        finally:
            g.stop()

    @staticmethod
    def per_sender(posts):
        """The calls of each conversation in order (conversations run side by side)."""
        sender = dict((m["id"], m["from"]) for m in webhook())
        out = {}
        for path, body in posts:
            m = body.get("message_id") or body["context"]["message_id"]
            out.setdefault(sender[m], []).append((path, body))
        return out

    def test_same_calls_and_bodies_at_every_version(self):
        seen = dict((v, self.drain(v)) for v in ("v26.0", "v99.0", None))
        posts, gets = seen["v26.0"]
        # the reference run itself: read and reply for each of 5 messages, one photo
        self.assertEqual(len(posts), 10, posts)
        self.assertEqual(sorted(p for p, _ in posts), ["/%s/messages" % dk.PNID] * 10)
        self.assertEqual(gets, [("meta", MEDIA_ID), ("download", MEDIA_ID)])
        for body in (b for _, b in posts if b.get("status") == "read"):
            self.assertEqual(body["typing_indicator"], {"type": "text"})
        for version in ("v99.0", None):
            other_posts, other_gets = seen[version]
            self.assertEqual(sorted(map(repr, other_posts)), sorted(map(repr, posts)),
                             "calls differ at version %s" % version)
            self.assertEqual(self.per_sender(other_posts), self.per_sender(posts),
                             "order differs at version %s" % version)
            self.assertEqual(other_gets, gets, "media differs at version %s" % version)


if __name__ == "__main__":
    unittest.main()
