"""test_fixtures.py - every body of the project's fixtures (tests/fixtures/webhooks:
each message type, status, echo, event, error shape and batch), signed with the
test secret and serialised as Meta does (ASCII, \\uXXXX escapes), is acknowledged
and stored exactly as doc/meta-webhooks.md says: each message in wa_messages, an
outbox row only for answerable ones, statuses, reactions, conversations and
other fields in their tables. The expectations are computed here from the
fixture object (wahook_expect.expect), not from the C code. Also: the request
in tests/fixtures/signed is accepted byte for byte, with its secret from a file.

When a copy of pywa's collection of Meta's sample bodies and of a request Meta
itself signed sits beside the clone (../shared/fixtures), they are posted too,
as an extra check; absent, those two tests are reported as skipped.
"""
import json
import os
import unittest

import harness
import wahook_expect as wx

PG = None
SRV = None


setUpModule, tearDownModule = harness.module_services(
    globals(), web=("SRV", harness.Lighttpd), procs=1)


class Stored(unittest.TestCase):
    """post_and_check(): one body posted, every table compared with what the
    rules say it must hold."""
    maxDiff = None

    def post_and_check(self, obj):
        wx.clear(PG)
        body = harness.meta_json(obj)
        status, _, text = SRV.post(body)
        self.assertEqual((status, text), (200, b"EVENT_RECEIVED"))
        e = wx.expect(obj)
        got = wx.snapshot(PG)
        # only the broken items (none in a real Meta body), each alone with its path
        self.assertEqual([r["path"] for r in got["wa_quarantine"]], e["broken"],
                         "quarantined items")

        msgs = dict((r["message_id"], r) for r in got["wa_messages"])
        self.assertEqual(sorted(msgs), sorted(e["messages"]), "stored message ids")
        for mid, want in e["messages"].items():
            self.assertEqual(msgs[mid], want, "wa_messages row of " + mid)

        # outbox: exactly the answerable messages, in webhook order
        self.assertEqual([r["message_id"] for r in got["wa_outbox"]], e["answered"])
        for r in got["wa_outbox"]:
            m = e["messages"][r["message_id"]]
            # ordered per conversation: the group, else the BSUID, else the phone
            self.assertEqual((r["sender"], r["phone_number_id"], r["ts"], r["state"],
                              r["attempts"]),
                             (e["outbox"][r["message_id"]], m["phone_number_id"], m["ts"],
                              "pending", 0))

        sts = dict((r["message_id"], r) for r in got["wa_statuses"])
        self.assertEqual(sts, e["statuses"], "wa_statuses")

        self.assertEqual([(r["field"], r["payload"]) for r in got["wa_events"]], e["events"])
        for r in got["wa_events"]:
            self.assertEqual(r["waba_id"], obj["entry"][0]["id"])

        rx = dict(((r["message_id"], r["sender"]), r["emoji"]) for r in got["wa_reactions"])
        self.assertEqual(rx, dict((k, v) for k, v in e["reactions"].items() if v is not None))

        conv = dict(((r["phone_number_id"], r["sender"]), r["unread_count"])
                    for r in got["wa_conversations"])
        self.assertEqual(conv, e["conversations"], "wa_conversations unread counts")
        return got



class Fixtures(Stored):
    # derived from messages/text: the echo-loop rule and business-scoped ids

    def _text_fixture(self):
        return json.loads(json.dumps(dict(harness.fixture_bodies())["messages/text"]))

    def test_message_from_own_display_number_is_stored_not_answered(self):
        obj = self._text_fixture()
        v = obj["entry"][0]["changes"][0]["value"]
        v["metadata"]["display_phone_number"] = "+1 555-010-0001"
        v["messages"][0]["from"] = "15550100001"
        got = self.post_and_check(obj)
        self.assertEqual(len(got["wa_messages"]), 1)
        self.assertEqual(got["wa_outbox"], [], "the bot would answer itself")
        self.assertFalse(got["wa_messages"][0]["answered"])

    def test_sender_with_business_scoped_id_and_no_wa_id(self):
        obj = self._text_fixture()
        v = obj["entry"][0]["changes"][0]["value"]
        v["contacts"] = [{"profile": {"name": "Ana \u00e9\u4e2d\U0001F600"},
                          "user_id": "US.13491208655302741918"}]
        v["messages"][0]["from"] = "US.13491208655302741918"
        got = self.post_and_check(obj)
        self.assertEqual(got["wa_outbox"][0]["sender"], "US.13491208655302741918")
        self.assertEqual(got["wa_messages"][0]["profile_name"], "Ana \u00e9\u4e2d\U0001F600")

    def test_unknown_future_type_is_stored_and_answered(self):
        obj = self._text_fixture()
        m = obj["entry"][0]["changes"][0]["value"]["messages"][0]
        del m["text"]
        m["type"] = "hologram"
        m["hologram"] = {"caption": "see me", "depth": 3}
        got = self.post_and_check(obj)
        self.assertEqual(got["wa_messages"][0]["text_body"], "see me")
        self.assertEqual(len(got["wa_outbox"]), 1)


def _make(name, obj):
    def test(self):
        self.post_and_check(obj)
    test.__doc__ = "fixture " + name
    return test


_BODIES = harness.fixture_bodies()
assert len(_BODIES) >= 50, "expected the project's 50 fixture bodies, found %d" % len(_BODIES)
for _name, _obj in _BODIES:
    setattr(Fixtures, "test_" + _name.replace("/", "__"), _make(_name, _obj))


class ExtraFixtures(Stored):
    """pywa's 74 bodies, when present beside the clone. Absent, the one test is
    reported as skipped: these are an extra, the project's own fixtures are the
    proof."""

    def test_extra_pywa_bodies(self):
        bodies = harness.extra_fixture_bodies()
        if bodies is None:
            harness.extra_skip("../shared/fixtures/pywa")
        self.assertEqual(len(bodies), 74, "pywa's README counts 74 bodies")
        for name, obj in bodies:
            try:
                self.post_and_check(obj)
            except AssertionError as e:
                raise AssertionError("%s: %s" % (name, e)) from None
        harness.extra_note("../shared/fixtures/pywa", "checked %d bodies" % len(bodies))


class SignedRequest:
    """A request signed as Meta signs, as files (body.json, x-hub-signature-256,
    app-secret) in cls.dir: accepted only if we verify the raw bytes. The secret
    file ends in a newline, as secret files do: the responder trims it."""
    dir = None

    @classmethod
    def setUpClass(cls):
        cls.srv = None
        if cls.dir is None:
            return
        with open(os.path.join(cls.dir, "body.json"), "rb") as f:
            cls.body = f.read()
        with open(os.path.join(cls.dir, "x-hub-signature-256")) as f:
            cls.sig = f.read().strip()
        # the responder may run as another user: it gets a readable copy
        secret = os.path.join(harness.tmpdir("wahook-signed-"), "app-secret")
        with open(os.path.join(cls.dir, "app-secret"), "rb") as f, open(secret, "wb") as g:
            g.write(f.read())
        os.chmod(secret, 0o644)
        cls.srv = harness.Lighttpd(PG, procs=1, env={
            "WAHOOK_APP_SECRET": None, "WAHOOK_APP_SECRET_FILE": secret})

    @classmethod
    def tearDownClass(cls):
        if cls.srv is not None:
            cls.srv.stop()

    def setUp(self):
        wx.clear(PG)

    def accepted_and_stored(self, length, text, profile):
        self.assertEqual(len(self.body), length)
        status, _, out = self.srv.post(self.body, signature=self.sig)
        self.assertEqual((status, out), (200, b"EVENT_RECEIVED"))
        got = wx.snapshot(PG)
        obj = json.loads(self.body)
        m = obj["entry"][0]["changes"][0]["value"]["messages"][0]
        self.assertEqual([r["message_id"] for r in got["wa_messages"]], [m["id"]])
        self.assertEqual(got["wa_messages"][0]["text_body"], text)
        self.assertEqual(got["wa_messages"][0]["profile_name"], profile)
        self.assertEqual([r["message_id"] for r in got["wa_outbox"]], [m["id"]])

    def reserialised_refused(self):
        # what peer libraries get wrong: hashing a re-serialisation of the parsed JSON
        body = json.dumps(json.loads(self.body)).encode()
        self.assertNotEqual(body, self.body)
        status, _, _ = self.srv.post(body, signature=self.sig)
        self.assertEqual(status, 401)
        self.assertEqual(wx.counts(PG), wx.EMPTY)


class Signed(SignedRequest, unittest.TestCase):
    """tests/fixtures/signed: a body with \\uXXXX, surrogate-pair and \\/ escapes."""
    dir = os.path.join(harness.FIXTURES, "signed")

    def test_signed_request_is_accepted_and_stored(self):
        self.accepted_and_stored(562, "Gr\u00fc\u00dfe \u2014 \u4f60\u597d \U0001F600 "
                                 "see https://example.org/a?b=1 @home", "Jos\u00e9 \u00d8lund")

    def test_reserialised_body_with_its_signature_is_refused(self):
        self.reserialised_refused()


class ExtraMetaSigned(SignedRequest, unittest.TestCase):
    """The request Meta's own servers signed, when a copy is beside the clone."""
    dir = os.path.join(harness.EXTRA_FIXTURES, "meta-signed")
    if not os.path.isdir(dir):
        dir = None

    def test_extra_meta_signed_request(self):
        if self.dir is None:
            harness.extra_skip("../shared/fixtures/meta-signed")
        self.accepted_and_stored(511, "Hey there! I am using PyWa.", "PyWa Tests")
        wx.clear(PG)
        self.reserialised_refused()
        harness.extra_note("../shared/fixtures/meta-signed", "checked Meta's signed request")


if __name__ == "__main__":
    unittest.main()
