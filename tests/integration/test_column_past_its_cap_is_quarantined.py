"""test_column_past_its_cap_is_quarantined.py - a webhook within WAHOOK_MAX_BODY
whose statement would still pass the cap on one column (its metadata is
repeated for each of its messages) is the data's fault: quarantined and
answered 200, while the webhooks stored with it are kept. Before, it was 503
on every one of Meta's retries, for a week. The cap is 256 MiB in a real
build; here a build with -DARRAY_MAX=262144 (256 KiB) passes it with a body of
about 60 KB.
"""
import os
import unittest

import harness
import fire
import servers
import wahook_expect as wx

def post(path, body):
    s = fire.fcgi_connect(path)
    try:
        s.sendall(fire.fcgi_begin(fire.post_params(len(body), harness.sign(body))) +
                  fire.fcgi_stdin(body))
        return fire.fcgi_read_response(s)
    finally:
        s.close()


class ColumnCap(unittest.TestCase):
    def test_webhook_past_the_cap_is_quarantined_and_others_stored(self):
        binary = harness.build_variant(["ARRAY_MAX=262144"])
        pg = harness.Postgres()
        self.addCleanup(pg.stop)
        pg.migrate()
        d = harness.tmpdir("wahook-cap-")
        pool = fire.Pool(os.path.join(d, "wahook.sock"), 1, harness.responder_env(pg),
                         binary, os.path.join(d, "wahook.log"))
        self.addCleanup(pool.stop)
        # 200 messages under one metadata whose display number is 2 KB: the
        # display column holds it 200 times (400 KB), the body is about 60 KB
        msgs = [servers.text_message("wamid.cap.%03d" % i, "16505550100", 1700000000, "hi")
                for i in range(200)]
        obj = servers.webhook(msgs)
        obj["entry"][0]["changes"][0]["value"]["metadata"]["display_phone_number"] = "1" * 2048
        big = harness.meta_json(obj).encode()
        self.assertLess(len(big), 262144 // 2)
        good = harness.meta_json(servers.webhook([servers.text_message(
            "wamid.cap.good", "16505550101", 1700000000, "fine")])).encode()
        for body in (big, good):
            status, out = post(pool.path, body)
            self.assertEqual(status, 200, out)
            self.assertIn(b"EVENT_RECEIVED", out)
        got = wx.snapshot(pg)
        self.assertEqual([m["message_id"] for m in got["wa_messages"]], ["wamid.cap.good"])
        (q,) = got["wa_quarantine"]
        self.assertEqual(bytes.fromhex(q["body_hex"]), big)
        self.assertIn("a column of the statement would pass 0.25 MiB", q["reason"])


if __name__ == "__main__":
    unittest.main()
