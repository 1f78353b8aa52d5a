"""test_http_contract.py - every HTTP rule of the responder, behind both real front ends:
lighttpd running lighttpd.conf.example, and nginx + spawn-fcgi. Each rule is a
test of the base class Contract, run once per server by the two subclasses.

Three responders per server kind: the usual configuration (test secret and
token, default 4 MiB cap); "alt" with a rotated secret list, no verify token
and WAHOOK_MAX_BODY=2048; "nosecret" with no app secret at all.
"""
import json
import os
import subprocess
import unittest

import harness
import wahook_expect as wx

PG = None
OLD, NEW = "old-secret-1", "new-secret-2"


setUpModule, tearDownModule = harness.module_services(globals())


def body_of(obj):
    return harness.meta_json(obj).encode()


def good_body(mid="wamid.contract1", text="hello"):
    return body_of(wx.one([wx.text_msg(mid, "16505551234", 1700000000, text)]))


def mutated(fn, mid="wamid.q1"):
    """A signed-able body: the one-message webhook after fn(obj, value, message)."""
    obj = wx.one([wx.text_msg(mid, "16505551234", 1700000000),
                  wx.text_msg(mid + "b", "16505551234", 1700000001)],
                 statuses=[wx.status("wamid.out1", "sent", 1700000002)])
    v = obj["entry"][0]["changes"][0]["value"]
    fn(obj, v, v["messages"][0])
    return body_of(obj)


def _set(d, k, val):
    d[k] = val


def _del(d, k):
    del d[k]


GOOD = good_body("wamid.q0")

# (name, raw body, a word the quarantine reason must contain)
UNUSABLE = [
    ("not JSON", b"hello, world", "not JSON"),
    ("empty body", b"", "empty"),
    ("truncated JSON", GOOD[:-7], "not JSON"),
    ("trailing bytes after the JSON", GOOD + b" {}", "not JSON"),
    ("invalid UTF-8 in a string", GOOD.replace(b"hello", b"hel\xfflo"), "not JSON"),
    ("top level is an array", b"[" + GOOD + b"]", "top level"),
    ("nesting deeper than the parser allows", b'{"object":' + b"[" * 200 + b"]" * 200 + b"}",
     "nested deeper than 64 levels"),
    ("object missing", body_of({"entry": []}), "object"),
    ("object not a string", mutated(lambda o, v, m: _set(o, "object", 7)), "object"),
    ("entry not an array", mutated(lambda o, v, m: _set(o, "entry", {})), "entry"),
    ("nesting past the parser's limit",
     mutated(lambda o, v, m: _set(m, "deep", json.loads("[" * 70 + "]" * 70))), "nested"),
]

# Items of a good envelope that cannot be stored: each is kept alone, with its
# path, and everything else of the body is stored (mutated() bodies hold two
# messages and a status). The word is one the "path: reason" must contain.
BROKEN_ITEMS = [
    ("entry item not an object", mutated(lambda o, v, m: o["entry"].append(5)), "entry[1]"),
    ("changes missing", mutated(lambda o, v, m: _del(o["entry"][0], "changes")), "changes"),
    ("value missing", mutated(lambda o, v, m: _del(o["entry"][0]["changes"][0], "value")),
     "value"),
    ("field not a string", mutated(lambda o, v, m: _set(o["entry"][0]["changes"][0],
                                                         "field", 1)), "field"),
    ("metadata missing", mutated(lambda o, v, m: _del(v, "metadata")), "phone_number_id"),
    ("messages not an array", mutated(lambda o, v, m: _set(v, "messages", {"a": 1})),
     "messages"),
    ("message not an object", mutated(lambda o, v, m: v["messages"].append("x")), "messages"),
    ("message id missing", mutated(lambda o, v, m: _del(m, "id")), "id"),
    ("message id a number", mutated(lambda o, v, m: _set(m, "id", 12345)), "id"),
    ("from missing", mutated(lambda o, v, m: _del(m, "from")), "from"),
    ("from a number", mutated(lambda o, v, m: _set(m, "from", 16505551234)), "from"),
    ("type missing", mutated(lambda o, v, m: _del(m, "type")), "type"),
    ("timestamp missing", mutated(lambda o, v, m: _del(m, "timestamp")), "timestamp"),
    ("timestamp not digits", mutated(lambda o, v, m: _set(m, "timestamp", "yesterday")),
     "timestamp"),
    ("timestamp negative", mutated(lambda o, v, m: _set(m, "timestamp", "-5")), "timestamp"),
    ("timestamp past year 9999", mutated(lambda o, v, m: _set(m, "timestamp",
                                                               "999999999999")), "timestamp"),
    ("second message broken: the first is kept",
     mutated(lambda o, v, m: _del(v["messages"][1], "id")), "messages[1]"),
    ("status without id", mutated(lambda o, v, m: _del(v["statuses"][0], "id")), "statuses"),
    ("status timestamp an object", mutated(lambda o, v, m: _set(v["statuses"][0],
                                                                 "timestamp", {})), "timestamp"),
    ("from missing and no BSUID", mutated(lambda o, v, m: _del(m, "from")), "from"),
]

# What PostgreSQL refuses (the statement fails for the data): the body is kept
# whole, as it came, nothing of it stored
UNUSABLE += [
    ("message id holds a NUL (jsonb cannot)",
     mutated(lambda o, v, m: _set(m, "id", "wamid.\u0000x")), "database refused"),
    ("lone surrogate PostgreSQL refuses", GOOD.replace(b"hello", b"a\\ud800b"),
     "database refused"),
    ("text PostgreSQL refuses (\\u0000 in jsonb)",
     mutated(lambda o, v, m: _set(m["text"], "body", "a\u0000b")), "database refused"),
]


class Contract:
    """The rules; a subclass sets server_cls (harness.Lighttpd or harness.Nginx)."""
    server_cls = None
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.srv = cls.server_cls(PG, procs=1)
        cls.alt = cls.server_cls(PG, procs=1, env={
            "WAHOOK_APP_SECRET": OLD + " , " + NEW, "WAHOOK_VERIFY_TOKEN": None,
            "WAHOOK_MAX_BODY": "2048"})
        cls.nosecret = cls.server_cls(PG, procs=1, env={"WAHOOK_APP_SECRET": None})

    @classmethod
    def tearDownClass(cls):
        for s in (cls.srv, cls.alt, cls.nosecret):
            s.stop()

    def setUp(self):
        wx.clear(PG)

    def assertNothingStored(self):
        self.assertEqual(wx.counts(PG), wx.EMPTY, "rows were stored")

    def assertReceived(self, resp):
        status, _, text = resp
        self.assertEqual((status, text), (200, b"EVENT_RECEIVED"))

    # --- GET verification ----------------------------------------------------

    def get(self, srv, query):
        return srv.request("GET", "/webhook?" + query)

    def test_get_subscribe_answers_the_challenge_as_plain_text(self):
        for challenge, sent in [("1158201444", "1158201444"), ("a b+c/d", "a+b%2Bc%2Fd")]:
            status, h, text = self.get(self.srv, "hub.mode=subscribe&hub.challenge=%s"
                                       "&hub.verify_token=%s" % (sent, harness.TOKEN))
            self.assertEqual(status, 200, challenge)
            self.assertTrue(h["content-type"].startswith("text/plain"), h["content-type"])
            self.assertEqual(text, challenge.encode())

    def test_get_without_subscribe_and_right_token_is_403(self):
        t = harness.TOKEN
        cases = [
            ("wrong token", "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42"),
            ("token prefix", "hub.mode=subscribe&hub.verify_token=%s&hub.challenge=42" % t[:-1]),
            ("token plus a byte", "hub.mode=subscribe&hub.verify_token=%sx&hub.challenge=42"
             % t),
            ("empty token", "hub.mode=subscribe&hub.verify_token=&hub.challenge=42"),
            ("token missing", "hub.mode=subscribe&hub.challenge=42"),
            ("wrong mode", "hub.mode=unsubscribe&hub.verify_token=%s&hub.challenge=42" % t),
            ("mode missing", "hub.verify_token=%s&hub.challenge=42" % t),
            ("challenge missing", "hub.mode=subscribe&hub.verify_token=%s" % t),
            ("no query", ""),
        ]
        for name, q in cases:
            status, _, text = self.get(self.srv, q)
            self.assertEqual(status, 403, name)
            self.assertNotIn(b"42", text, name)

    def test_get_with_no_token_configured_is_always_403(self):
        for tok in (harness.TOKEN, ""):
            status, _, text = self.get(self.alt, "hub.mode=subscribe&hub.verify_token=%s"
                                       "&hub.challenge=42" % tok)
            self.assertEqual(status, 403, repr(tok))
            self.assertNotIn(b"42", text)

    # --- POST signature --------------------------------------------------------

    def test_post_with_missing_malformed_or_wrong_signature_is_401_and_stores_nothing(self):
        body = good_body()
        hexd = harness.sign(body)[7:]
        cases = [
            ("missing", False),
            ("empty", ""),
            ("prefix only", "sha256="),
            ("no prefix", hexd),
            ("sha1 prefix", "sha1=" + hexd[:40]),
            ("63 hex digits", "sha256=" + hexd[:-1]),
            ("65 hex digits", "sha256=" + hexd + "0"),
            ("not hex", "sha256=" + "g" + hexd[1:]),
            ("a second digest, both wrong", "sha256=" + "0" * 64 + ",sha256=" + "1" * 64),
            ("wrong secret", harness.sign(body, "not-the-secret")),
            ("signature of another body", harness.sign(body + b" ")),
            ("one digit off", "sha256=" + hexd[:-1] + ("0" if hexd[-1] != "0" else "1")),
        ]
        for name, sig in cases:
            status, _, text = self.srv.post(body, signature=sig)
            self.assertEqual(status, 401, name)
            self.assertNotEqual(text, b"EVENT_RECEIVED", name)
        self.assertNothingStored()

    def test_uppercase_hex_signature_is_accepted(self):
        body = good_body()
        self.assertReceived(self.srv.post(body, signature="sha256=" +
                                          harness.sign(body)[7:].upper()))
        self.assertEqual(wx.counts(PG)["wa_messages"], 1)

    def test_rotated_secrets_either_one_verifies(self):
        self.assertReceived(self.alt.post(good_body("wamid.old"), secret=OLD))
        self.assertReceived(self.alt.post(good_body("wamid.new"), secret=NEW))
        status, _, _ = self.alt.post(good_body("wamid.neither"), secret=harness.SECRET)
        self.assertEqual(status, 401)
        got = wx.snapshot(PG)
        self.assertEqual([r["message_id"] for r in got["wa_messages"]],
                         ["wamid.new", "wamid.old"])

    def test_no_secret_configured_refuses_every_post_with_500_and_says_why(self):
        before = len(wx.request_lines(self.nosecret))
        for secret in (harness.SECRET, ""):
            status, _, _ = self.nosecret.post(good_body(), secret=secret)
            self.assertEqual(status, 500)
        self.assertNothingStored()
        line = wx.next_request_line(self.nosecret, before)
        self.assertEqual(line["status"], "500")
        self.assertEqual(line["level"], "error")
        self.assertIn("WAHOOK_APP_SECRET", line.get("reason", ""))

    # --- body size -------------------------------------------------------------

    def test_body_over_max_body_is_413_and_stores_nothing(self):
        big = good_body("wamid.big", "x" * 10 * 1024)
        self.assertEqual(len(big) > 10 * 1024, True)
        before = len(wx.request_lines(self.alt))
        status, _, _ = self.alt.post(big, secret=NEW)
        self.assertEqual(status, 413)
        self.assertNothingStored()
        line = wx.next_request_line(self.alt, before)
        self.assertEqual((line["status"], line.get("content_length")), ("413", str(len(big))))
        # exactly at the cap is still fine
        pad = 2048 - len(good_body("wamid.fits", ""))
        fits = good_body("wamid.fits", "y" * pad)
        self.assertEqual(len(fits), 2048)
        self.assertReceived(self.alt.post(fits, secret=NEW))
        self.assertEqual(wx.counts(PG)["wa_messages"], 1)

    def test_meta_3mb_batch_passes_the_front_end_and_4mib_plus_one_is_413(self):
        # doc/meta-webhooks.md: Meta sends up to 1000 updates and 3 MB in one POST
        msgs = [wx.text_msg("wamid.3mb.%04d" % i, "1650555%04d" % (i % 50), 1700000000 + i,
                            "z" * 2900) for i in range(1000)]
        body = body_of(wx.one(msgs))
        self.assertGreater(len(body), 3000000)
        self.assertReceived(self.srv.post(body))
        c = wx.counts(PG)
        self.assertEqual((c["wa_messages"], c["wa_outbox"]), (1000, 1000))
        over = b'{"object":"whatsapp_business_account","pad":"' + \
            b"p" * (4 * 1024 * 1024 - 46) + b'"}'
        self.assertEqual(len(over), 4 * 1024 * 1024 + 1)
        status, _, _ = self.srv.post(over)
        self.assertEqual(status, 413)
        self.assertEqual(wx.counts(PG)["wa_quarantine"], 0)

    # --- signed but unusable ---------------------------------------------------

    def test_signed_unusable_bodies_are_200_and_quarantined_raw(self):
        for name, body, word in UNUSABLE:
            wx.clear(PG)
            self.assertReceived(self.srv.post(body))
            got = wx.snapshot(PG)
            q = got.pop("wa_quarantine")
            self.assertEqual(len(q), 1, name)
            self.assertEqual(bytes.fromhex(q[0]["body_hex"]), body, name + ": raw bytes")
            self.assertIn(word, q[0]["reason"], name)
            self.assertEqual(dict((t, v) for t, v in got.items() if v), {},
                             name + ": half stored")

    def test_signed_broken_items_are_quarantined_alone_and_the_rest_stored(self):
        for name, body, word in BROKEN_ITEMS:
            wx.clear(PG)
            self.assertReceived(self.srv.post(body))
            obj = json.loads(body)
            e = wx.expect(obj)
            got = wx.snapshot(PG)
            q = got["wa_quarantine"]
            self.assertEqual([r["path"] for r in q], e["broken"], name)
            self.assertEqual(len(q), 1, name)
            self.assertTrue(q[0]["reason"].startswith(q[0]["path"] + ": "), name)
            self.assertIn(word, q[0]["reason"], name)
            wx.assert_quarantined_alone(self, bytes.fromhex(q[0]["body_hex"]), obj,
                                        q[0]["path"])
            # the good items of the same body: stored, and answerable ones queued
            self.assertEqual(sorted(r["message_id"] for r in got["wa_messages"]),
                             sorted(e["messages"]), name)
            self.assertEqual([r["message_id"] for r in got["wa_outbox"]], e["answered"], name)
            self.assertEqual(sorted(r["message_id"] for r in got["wa_statuses"]),
                             sorted(e["statuses"]), name)

    def test_signed_non_whatsapp_object_is_acknowledged_and_ignored(self):
        body = body_of({"object": "page", "entry": [{"id": "1", "time": 1700000000,
                                                     "messaging": [{"message": {"text": "x"}}]}]})
        before = len(wx.request_lines(self.srv))
        self.assertReceived(self.srv.post(body))
        self.assertNothingStored()
        line = wx.next_request_line(self.srv, before)
        self.assertEqual(line.get("ignored"), "object=page")

    # --- methods ---------------------------------------------------------------

    def test_other_methods_are_405_with_allow(self):
        body = good_body()
        for method in ("PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            status, h, _ = self.srv.request(method, "/webhook", body if method in (
                "PUT", "PATCH") else None, {"X-Hub-Signature-256": harness.sign(body)})
            self.assertEqual(status, 405, method)
            self.assertEqual(h.get("allow"), "GET, POST", method)
        self.assertNothingStored()

    # --- success and duplicates ------------------------------------------------

    def test_success_is_event_received_and_a_duplicate_adds_nothing(self):
        body = body_of(wx.one([wx.text_msg("wamid.dup1", "16505551234", 1700000000)]))
        for _ in range(2):
            status, h, text = self.srv.post(body)
            self.assertEqual((status, text), (200, b"EVENT_RECEIVED"))
            self.assertTrue(h["content-type"].startswith("text/plain"))
        got = wx.snapshot(PG)
        self.assertEqual([r["message_id"] for r in got["wa_messages"]], ["wamid.dup1"])
        self.assertEqual([r["message_id"] for r in got["wa_outbox"]], ["wamid.dup1"])
        self.assertEqual([r["unread_count"] for r in got["wa_conversations"]], [1])

    # --- the log ----------------------------------------------------------------

    def test_one_logfmt_line_per_request_with_outcome_and_ids(self):
        srv = self.srv
        body = body_of(wx.one([wx.text_msg("wamid.log1", "16505551234", 1700000000),
                               wx.reaction_msg("wamid.log2", "16505551234", 1700000001,
                                               "wamid.out9", "\U0001F44D")],
                              statuses=[wx.status("wamid.out9", "read", 1700000002)]))
        steps = [
            (lambda: srv.post(body), {"method": "POST", "status": "200", "level": "info",
                                      "bytes": str(len(body)), "msgs": "2", "new": "1",
                                      "dup": "0", "ignored": "1", "statuses": "1",
                                      "ids": "wamid.log1:new,wamid.log2:reaction"}),
            (lambda: srv.post(body), {"status": "200", "new": "0", "dup": "2", "ignored": "0",
                                      "ids": "wamid.log1:dup,wamid.log2:dup"}),
            (lambda: srv.post(body, secret="wrong"), {"status": "401", "level": "warn",
                                                      "signature": "mismatch"}),
            (lambda: srv.post(body, signature=False), {"status": "401",
                                                       "signature": "missing"}),
            (lambda: srv.post(b"junk"), {"status": "200", "bytes": "4"}),
            (lambda: self.get(srv, "hub.mode=subscribe&hub.verify_token=%s&hub.challenge=7"
                              % harness.TOKEN), {"method": "GET", "status": "200"}),
            (lambda: srv.request("DELETE", "/webhook"), {"method": "DELETE", "status": "405"}),
        ]
        for i, (do, want) in enumerate(steps):
            before = len(wx.request_lines(srv))
            do()
            line = wx.next_request_line(srv, before)
            for k, v in want.items():
                self.assertEqual(line.get(k), v, "step %d key %s: %r" % (i, k, line))
            self.assertRegex(line.get("ms", ""), r"^\d+\.\d$", "step %d" % i)
            # exactly one line per request
            self.assertEqual(len(wx.request_lines(srv)), before + 1, "step %d" % i)
        self.assertIn("quarantined", wx.request_lines(srv)[-3])

    def test_log_escapes_control_characters_from_outside(self):
        evil = "wamid.evil\nlevel=error ev=forged"
        before = len(wx.request_lines(self.srv))
        self.assertReceived(self.srv.post(body_of(wx.one([wx.text_msg(
            evil, "1650\r\n5551234", 1700000000)]))))
        wx.next_request_line(self.srv, before)
        self.assertFalse([l for l in self.srv.logs().splitlines() if "ev=forged" in l and
                          l.startswith("level=error ev=forged")], "a forged log line")
        self.assertEqual(wx.counts(PG)["wa_messages"], 1)

    def test_logs_never_hold_secrets_tokens_or_message_text(self):
        marker = "private-words-%s" % self.server_cls.__name__
        self.assertReceived(self.srv.post(good_body("wamid.secret1", marker)))
        self.get(self.srv, "hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1"
                 % harness.TOKEN)
        self.get(self.srv, "hub.mode=subscribe&hub.verify_token=guess-%s&hub.challenge=1"
                 % harness.TOKEN)
        self.srv.post(good_body("wamid.secret2", marker), secret=harness.SECRET + "x")
        self.alt.post(good_body("wamid.secret3", marker), secret=OLD)
        self.alt.post(good_body("wamid.secret4", marker), secret=NEW + "x")
        self.srv.post(b"not json " + marker.encode())
        self.nosecret.post(good_body("wamid.secret5", marker))
        for srv in (self.srv, self.alt, self.nosecret):
            lines = "\n".join(wx.responder_lines(srv))
            self.assertIn("ev=request", lines)
            for s in (harness.SECRET, harness.TOKEN, OLD, NEW, marker):
                self.assertNotIn(s, lines)


class ContractLighttpd(Contract, unittest.TestCase):
    server_cls = harness.Lighttpd


class ContractNginx(Contract, unittest.TestCase):
    server_cls = harness.Nginx


class PlainCgi(unittest.TestCase):
    """wahook.fcgi started as a plain CGI program: the 413 decision comes from
    CONTENT_LENGTH alone, before a byte of the body is read."""

    def run_cgi(self, env, stdin_bytes, close_stdin):
        p = harness.spawn([harness.staged("wahook.fcgi")],
                          env=harness.responder_env(PG, REQUEST_METHOD="POST",
                                                    GATEWAY_INTERFACE="CGI/1.1",
                                                    WAHOOK_MAX_BODY="2048", **env),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        try:
            if close_stdin:
                out, err = p.communicate(stdin_bytes, timeout=20)
            else:
                # stdin stays open: a responder that waited for the body would hang
                # here (the timeout is a deadlock guard, not a timing assert)
                p.stdin.write(stdin_bytes)
                p.stdin.flush()
                out, err = p.stdout.read(), p.stderr.read()
                p.wait(20)
        finally:
            harness.kill(p)
        return p.returncode, out, err

    def test_cgi_answers_413_from_content_length_without_reading_the_body(self):
        rc, out, err = self.run_cgi({"CONTENT_LENGTH": "10240",
                                     "HTTP_X_HUB_SIGNATURE_256": "sha256=" + "0" * 64},
                                    b"x" * 100, close_stdin=False)
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith(b"Status: 413"), out[:80])
        self.assertIn(b"status=413", err)

    def test_cgi_without_content_length_is_413_past_the_cap(self):
        body = good_body("wamid.cgi", "x" * 10 * 1024)
        rc, out, _ = self.run_cgi({"HTTP_X_HUB_SIGNATURE_256": harness.sign(body)},
                                  body, close_stdin=True)
        self.assertTrue(out.startswith(b"Status: 413"), out[:80])

    def test_cgi_stores_a_signed_webhook(self):
        wx.clear(PG)
        body = good_body("wamid.cgi2")
        rc, out, _ = self.run_cgi({"CONTENT_LENGTH": str(len(body)),
                                   "HTTP_X_HUB_SIGNATURE_256": harness.sign(body)},
                                  body, close_stdin=True)
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith(b"Status: 200"), out[:80])
        self.assertTrue(out.endswith(b"\r\n\r\nEVENT_RECEIVED"), out)
        self.assertEqual(wx.counts(PG)["wa_outbox"], 1)


class StartupConfig(unittest.TestCase):
    """Invalid configuration: exit 2 at start, with a message naming the variable."""

    def test_invalid_configuration_exits_2_naming_the_variable(self):
        d = harness.tmpdir()
        secret_file = os.path.join(d, "secret")
        with open(secret_file, "w") as f:
            f.write("s3cr3t-from-file\n")
        cases = [
            ("WAHOOK_MAX_BODY", {"WAHOOK_MAX_BODY": "4MB"}),
            ("WAHOOK_MAX_BODY", {"WAHOOK_MAX_BODY": "-1"}),
            ("WAHOOK_APP_SECRET", {"WAHOOK_APP_SECRET_FILE": secret_file}),   # both set
            ("WAHOOK_APP_SECRET_FILE", {"WAHOOK_APP_SECRET": None,
                                        "WAHOOK_APP_SECRET_FILE": os.path.join(d, "none")}),
            ("WAHOOK_APP_SECRET", {"WAHOOK_APP_SECRET": "a,,b"}),
        ]
        for var, env in cases:
            p = harness.spawn([harness.staged("wahook.fcgi")],
                              env=harness.responder_env(PG, **env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, err = p.communicate(timeout=20)
            finally:
                harness.kill(p)
            self.assertEqual(p.returncode, 2, "%s %r" % (var, env))
            self.assertIn(var.encode(), err, env)
            self.assertNotIn(b"s3cr3t", err + out)
            self.assertNotIn(harness.SECRET.encode(), err + out)


if __name__ == "__main__":
    unittest.main()
