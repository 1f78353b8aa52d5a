"""test_hostile_input.py - the hostile input catalogue: no input brings the
responder down, nothing unsigned is stored, nothing is half stored.

One table of cases, each a request (through nginx, as raw HTTP bytes, or as
raw FastCGI records straight on the responders' socket) with its expected
answer and the rows it may add (m messages, o outbox, c conversations, r
reactions, s statuses, e events, q quarantine; every table not named must not
move). After each case the stored rows are checked for consistency (an
answerable message always has its outbox row; columns agree with the stored
message object); after the table, the same responder processes (same pids)
are alive, every log line is one logfmt line, and they still answer.
"""
import hashlib
import json
import time
import unittest

import fire
import harness
import wahook_expect as wx

SECRET = harness.SECRET
PNID = "106540352242922"
HOSTILE = "x'); DROP TABLE wa_messages;--\u0001\u001f\u007f\t\n\r\"\\{},NULL \u00e9\u2028"


def msg(i, **over):
    m = {"from": "4917%07d" % i, "id": "wamid.hostile.%d" % i, "timestamp": "1700000000",
         "type": "text", "text": {"body": "hello %d" % i}}
    m.update(over)
    return m


def value(msgs, **over):
    v = {"messaging_product": "whatsapp",
         "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
         "contacts": [{"profile": {"name": "Hostile"}, "wa_id": "1"}],
         "messages": msgs}
    v.update(over)
    return v


def hook(val=None, change=None, entry=None, top=None):
    ch = {"field": "messages", "value": val}
    ch.update(change or {})
    en = {"id": "102290129340398", "changes": [ch]}
    en.update(entry or {})
    t = {"object": "whatsapp_business_account", "entry": [en]}
    t.update(top or {})
    return t


def js(obj):
    return harness.meta_json(obj).encode()


def one(i, **over):
    """A webhook with message i, its fields overridden."""
    return js(hook(value([msg(i, **over)])))


def deep(n):
    return b"[" * n + b"]" * n


STORED = {"m": 1, "o": 1, "c": 1}
Q = {"q": 1}
NOTHING = {}


def cases():
    """(name, kind, request, expected status(es), expected row deltas, extra check).
    kind: "http" request = (body, signature|None to sign|False unsigned, headers);
    "raw" request = bytes for nginx's port; "fcgi" request = a function of the
    socket path returning (status, stdout)."""
    good = one(1)
    out = []

    def http(name, body, status, rows, sig=None, headers=None, check=None):
        out.append((name, "http", (body, sig, headers or {}), status, rows, check))

    def col(i, column, want):
        """A check: wa_messages.column of message i equals want."""
        def check(t):
            got = t.pg.psql("SELECT %s FROM wa_messages WHERE message_id = 'wamid.hostile.%d'"
                            % (column, i))
            t.assertEqual(got, [[want]], column)
        return check

    def qreason(text):
        """A check: the newest wa_quarantine row's reason holds text."""
        def check(t):
            got = t.pg.psql("SELECT reason FROM wa_quarantine ORDER BY id DESC LIMIT 1")
            t.assertIn(text, got[0][0])
        return check

    # --- signatures (nothing unsigned is ever stored) ---
    http("unsigned", one(2), 401, NOTHING, sig=False)
    http("wrong secret", one(3), 401, NOTHING, sig=harness.sign(one(3), "another-secret"))
    http("sha1 prefix", one(4), 401, NOTHING, sig="sha1=" + harness.sign(one(4))[7:])
    http("63 hex digits", one(5), 401, NOTHING, sig=harness.sign(one(5))[:-1])
    http("non-hex digits", one(6), 401, NOTHING, sig="sha256=" + "g" * 64)
    http("empty signature", one(7), 401, NOTHING, sig="")
    http("signature of another body", one(8), 401, NOTHING, sig=harness.sign(one(9)))
    http("signature of 6000 bytes", one(10), 401, NOTHING, sig="sha256=" + "a" * 6000)
    http("upper-case hex", one(11), 200, STORED,
         sig="sha256=" + harness.sign(one(11))[7:].upper())
    http("truncated body, full body's signature", one(12)[:100], 401, NOTHING,
         sig=harness.sign(one(12)))
    http("empty body unsigned", b"", 401, NOTHING, sig=False)
    http("header block over nginx's buffers", good, 400, NOTHING,
         headers={"X-Junk": "j" * 20000})

    # --- bodies: signed but unusable -> 200 and quarantined whole ---
    http("empty body", b"", 200, Q)
    http("whitespace only", b" \r\n\t ", 200, Q)
    http("truncated", one(13)[:-40], 200, Q)
    http("NUL byte raw in a string", one(14).replace(b"hello", b"hel\x00lo"), 200, Q)
    http("NUL byte after the JSON", one(15) + b"\x00", 200, Q)
    http("\\u0000 escape in the text (PostgreSQL refuses it)",
         one(16).replace(b"hello", b"hel\\u0000lo"), 200, Q)
    http("invalid UTF-8", one(17).replace(b"hello", b"hel\xff\xfelo"), 200, Q)
    http("overlong UTF-8", one(18).replace(b"hello", b"hel\xc0\xaflo"), 200, Q)
    http("lone surrogate escape", one(19).replace(b"hello", b"hel\\ud800lo"), 200, Q)
    http("UTF-8 BOM first", b"\xef\xbb\xbf" + one(20), 200, Q)
    http("trailing garbage", one(21) + b"}", 200, Q)
    http("raw control character in a string", one(22).replace(b"hello", b"hel\x01lo"), 200, Q)
    http("100,000-deep array", deep(100000), 200, Q)
    http("100,000-deep nesting inside a message",
         one(23).replace(b'"type"', b'"x":' + deep(100000) + b',"type"'), 200, Q)
    http("top level is an array", b"[]", 200, Q)
    http("top level is a string", b'"whatsapp_business_account"', 200, Q)
    http("top level is a number", b"12345", 200, Q)
    http("object is a number", js(hook(value([msg(24)]), top={"object": 1})), 200, Q)
    http("entry is an object", js(hook(value([msg(25)]), top={"entry": {}})), 200, Q)
    http("entry item is a string", js(hook(value([msg(26)]), top={"entry": ["x"]})), 200, Q)
    http("entry id is a number", js(hook(value([msg(27)]), entry={"id": 1})), 200, Q)
    http("changes is a string", js(hook(value([msg(28)]), entry={"changes": "x"})), 200, Q)
    http("change is an array", js(hook(value([msg(29)]), entry={"changes": [[]]})), 200, Q)
    http("field is a number", js(hook(value([msg(30)]), change={"field": 7})), 200, Q)
    http("value is a string", js(hook("messages")), 200, Q)
    http("metadata is an array", js(hook(value([msg(31)], metadata=[]))), 200, Q)
    http("phone_number_id is a number",
         js(hook(value([msg(32)], metadata={"phone_number_id": 106540352242922}))), 200, Q)
    http("display_phone_number is a number",
         js(hook(value([msg(33)], metadata={"phone_number_id": PNID,
                                            "display_phone_number": 15550783881}))), 200, Q)
    http("messages is an object", js(hook(value({"0": msg(34)}))), 200, Q)
    http("message is a string", js(hook(value(["wamid.hostile.35"]))), 200, Q)
    http("message id is a number", one(36, id=36), 200, Q)
    http("from is a number", one(37, **{"from": 4917000037}), 200, Q)
    http("type is a number", one(38, type=1), 200, Q)
    http("type is null", one(39, type=None), 200, Q)
    http("timestamp is a boolean", one(40, timestamp=True), 200, Q)
    http("timestamp is a float", one(41, timestamp=1.7e9), 200, Q)
    http("to is a number", one(42, to=15550783881), 200, Q)
    http("statuses is an object", js(hook(value([], statuses={}))), 200, Q)
    http("status id is a number", js(hook(value([], statuses=[
        {"id": 1, "status": "sent", "timestamp": "1700000000", "recipient_id": "1"}]))), 200, Q)
    http("id of a megabyte", one(43, id="w" * (1 << 20)), 200, Q)
    http("id of 1025 bytes", one(44, id="w" * 1025), 200, Q)
    http("10,000 empty entries", js({"object": "whatsapp_business_account",
                                     "entry": [{}] * 10000}), 200, Q)
    http("timestamp -1", one(45, timestamp="-1"), 200, Q)
    http("timestamp past 9999-12-31", one(46, timestamp="253402300800"), 200, Q)
    http("timestamp of 20 digits", one(47, timestamp="99999999999999999999"), 200, Q)
    http("timestamp JSON number of 20 digits",
         one(48).replace(b'"timestamp":"1700000000"', b'"timestamp":99999999999999999999'),
         200, Q)
    http("timestamp 1e9", one(49, timestamp="1e9"), 200, Q)
    http("timestamp empty", one(50, timestamp=""), 200, Q)
    http("timestamp with a space", one(51, timestamp=" 1700000000"), 200, Q)
    # the broken one alone is kept aside; the 999 others are stored and answered
    http("1000 messages, the last broken",
         js(hook(value([msg(1000 + k) for k in range(999)] + [msg(1999, id=None)]))), 200,
         {"m": 999, "o": 999, "c": 999, "q": 1})

    # --- odd but usable: stored, verbatim ---
    http("SQL and control characters in every string", js(hook(value(
        [msg(60, id="wamid.hostile.60" + HOSTILE, **{"from": "4917" + HOSTILE},
             text={"body": HOSTILE}, context={"id": HOSTILE})],
        metadata={"phone_number_id": PNID + HOSTILE, "display_phone_number": HOSTILE},
        contacts=[{"profile": {"name": HOSTILE}, "wa_id": "4917" + HOSTILE}]),
        entry={"id": HOSTILE})), 200, STORED,
        check=lambda t: t.assertEqual(t.pg.psql(
            "SELECT sender = %s, type = %s, text_body = %s, profile_name = %s, "
            "context_message_id = %s, phone_number_id = %s, display_phone_number = %s, "
            "waba_id = %s FROM wa_messages WHERE message_id = %s"
            % (t.lit("4917" + HOSTILE), t.lit("text"), t.lit(HOSTILE), t.lit(HOSTILE),
               t.lit(HOSTILE), t.lit(PNID + HOSTILE), t.lit(HOSTILE), t.lit(HOSTILE),
               t.lit("wamid.hostile.60" + HOSTILE))), [["t"] * 8]))
    http("SQL and control characters in the type", one(59, type=HOSTILE), 200, STORED,
         check=lambda t: t.assertEqual(t.pg.psql(
             "SELECT type = %s FROM wa_messages WHERE message_id = 'wamid.hostile.59'"
             % t.lit(HOSTILE)), [["t"]]))
    http("the string NULL", js(hook(value([msg(61, id="NULL", text={"body": "NULL"})]))),
         200, STORED, check=lambda t: t.assertEqual(t.pg.psql(
             "SELECT text_body IS NULL, text_body FROM wa_messages WHERE message_id = 'NULL'"),
             [["f", "NULL"]]))
    http("array-literal syntax in ids", js(hook(value([msg(62, id='{"a",b}\\', text={
        "body": '"}'})]))), 200, STORED, check=lambda t: t.assertEqual(t.pg.psql(
            "SELECT text_body FROM wa_messages WHERE message_id = '{\"a\",b}\\'"), [['"}']]))
    http("duplicate key: object", js(hook(value([msg(63)]))).replace(
        b'{"object":', b'{"object":"page","object":', 1), 200, STORED)
    http("duplicate key: message id (last wins, as in jsonb)",
         one(64).replace(b'"id":"wamid.hostile.64"', b'"id":"wamid.hostile.64a",'
                         b'"id":"wamid.hostile.64"'), 200, STORED, check=col(64, "type", "text"))
    http("same message twice in one body", js(hook(value([msg(65), msg(65)]))), 200, STORED)
    http("id of 1024 bytes", one(66, id="w" * 1024), 200, STORED)
    http("timestamp as a JSON number", one(67, timestamp=1700000000), 200, STORED,
         check=col(67, "extract(epoch FROM wa_timestamp)::bigint", "1700000000"))
    http("timestamp 9999-12-31T23:59:59", one(68, timestamp="253402300799"), 200, STORED)
    http("text body is a number", one(69, text={"body": 5}), 200, STORED,
         check=col(69, "text_body IS NULL", "t"))
    http("text is a string", one(70, text="hello"), 200, STORED)
    http("contacts is a string", js(hook(value([msg(71)], contacts="x"))), 200, STORED,
         check=col(71, "profile_name IS NULL", "t"))
    http("profile name is a number", js(hook(value([msg(72)], contacts=[
        {"profile": {"name": 5}, "wa_id": "49170000072"}]))), 200, STORED)
    http("unknown message type", one(73, type="hologram", hologram={"x": 1}), 200, STORED)
    http("60-deep nesting inside a message (under the limit)",
         one(74).replace(b'"type"', b'"x":' + deep(55) + b',"type"'), 200, STORED)
    # a message object is level 8 of the body (object, entry, entry[0],
    # changes, changes[0], value, messages, the message): 56 more make 64
    http("64 levels deep, the documented limit, inside a message",
         one(201).replace(b'"type"', b'"x":' + deep(56) + b',"type"'), 200, STORED)
    http("65 levels deep inside a message", one(202).replace(
        b'"type"', b'"x":' + deep(57) + b',"type"'), 200, Q,
        check=qreason("nested deeper than 64 levels"))
    http("64 levels deep inside an unknown field's value",
         js(hook(value([msg(203)]))).replace(b'"messaging_product"',
                                            b'"y":' + deep(58) + b',"messaging_product"'),
         200, STORED)
    http("text of 2 MB", one(75, text={"body": "b" * (2 << 20)}), 200, STORED)
    http("unknown status word", js(hook(value([], statuses=[
        {"id": "wamid.out.76", "status": "exploded" + HOSTILE, "timestamp": "1700000000",
         "recipient_id": "1"}]))), 200, {"s": 1})
    http("10,000 entries with no changes", js({"object": "whatsapp_business_account",
                                              "entry": [{"id": "1", "changes": []}] * 10000}),
         200, NOTHING)
    http("another object (page): acknowledged, ignored",
         js({"object": "page", "entry": [{"id": "1", "changes": []}]}), 200, NOTHING)
    http("no Content-Type", one(77), 200, STORED, headers={"Content-Type": ""})

    # --- size ---
    pad = b" " * (4 * 1024 * 1024 + 1 - len(one(78)))
    http("one byte over WAHOOK_MAX_BODY", one(78) + pad, 413, NOTHING)
    http("over nginx's client_max_body_size", b"{" + b" " * (9 * 1024 * 1024), 413, NOTHING)

    # --- other methods and GETs ---
    for name, req, status in (
        ("PUT", b"PUT /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                b"Connection: close\r\n\r\n{}", 405),
        ("GET with the wrong token", b"GET /webhook?hub.mode=subscribe&hub.verify_token=no&"
         b"hub.challenge=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 403),
        ("GET with a 4 KB challenge", b"GET /webhook?hub.mode=subscribe&hub.verify_token=" +
         harness.TOKEN.encode() + b"&hub.challenge=" + b"9" * 4096 +
         b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 403),
        ("GET with %00 in the token", b"GET /webhook?hub.mode=subscribe&hub.verify_token=" +
         harness.TOKEN.encode() + b"%00&hub.challenge=1 HTTP/1.1\r\nHost: x\r\n"
         b"Connection: close\r\n\r\n", 403),
        ("two conflicting Content-Length headers", b"POST /webhook HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 5\r\nContent-Length: 50\r\nX-Hub-Signature-256: " +
         harness.sign(b"12345").encode() + b"\r\nConnection: close\r\n\r\n12345", 400),
    ):
        out.append((name, "raw", req, status, NOTHING, None))

    # --- headers repeated: nginx passes both, libfcgi hands the responder the first;
    # a 200 needs a valid signature over these exact bytes whichever one it is ---
    b = one(80)
    out.append(("signature header twice, same value", "raw", post_raw(b, [harness.sign(b)] * 2),
                (200,), STORED, None))
    b = one(81)
    out.append(("signature header twice, the second wrong", "raw",
                post_raw(b, [harness.sign(b), "sha256=" + "0" * 64]), 200, STORED, None))
    b = one(82)
    out.append(("signature header twice, the first wrong", "raw",
                post_raw(b, ["sha256=" + "0" * 64, harness.sign(b)]), 200, STORED, None))

    # --- raw sockets: short bodies and hang-ups ---
    b = one(83)
    out.append(("HTTP body shorter than its Content-Length (half-close)", "raw_short",
                post_raw(b, [harness.sign(b)], clen=len(b) + 500), (None, 400), NOTHING, None))
    b = one(84)
    out.append(("HTTP client hangs up mid-body", "raw_hangup",
                post_raw(b, [harness.sign(b)])[:-(len(b) // 2)], (None,), NOTHING, None))

    def fcgi_case(name, body, params, status, rows, stdin_end=True, hang_up=False):
        def run(path):
            s = fire.fcgi_connect(path)
            try:
                s.sendall(fire.fcgi_begin(params) + fire.fcgi_stdin(body, end=stdin_end))
                if hang_up:
                    return None, b""
                return fire.fcgi_read_response(s)
            finally:
                s.close()
        out.append((name, "fcgi", run, status, rows, None))

    b = one(85)
    fcgi_case("FastCGI: stdin shorter than CONTENT_LENGTH", b,
              fire.post_params(len(b) + 500, harness.sign(b)), 400, NOTHING)
    b = one(86)
    fcgi_case("FastCGI: web server hangs up mid-body", b[:len(b) // 2],
              fire.post_params(len(b), harness.sign(b)), (None,), NOTHING, stdin_end=False,
              hang_up=True)
    b = one(87)
    fcgi_case("FastCGI: hangs up before reading the answer (rows stay)", b,
              fire.post_params(len(b), harness.sign(b)), (None,), STORED, hang_up=True)
    b = one(88)
    fcgi_case("FastCGI: no CONTENT_LENGTH (read to EOF)", b,
              fire.post_params(None, harness.sign(b)), 200, STORED)
    for name, cl in (("malformed", "12abc"), ("negative", "-5"),
                     ("past 2^64", "99999999999999999999999"), ("with a space", " 10")):
        fcgi_case("FastCGI: CONTENT_LENGTH " + name, good,
                  fire.post_params(None, harness.sign(good), {"CONTENT_LENGTH": cl}), 400,
                  NOTHING)
    fcgi_case("FastCGI: CONTENT_LENGTH past the cap, body never sent", b"",
              fire.post_params(1 << 40, harness.sign(good)), 413, NOTHING, stdin_end=False)
    fcgi_case("FastCGI: signature param of a megabyte", good,
              fire.post_params(len(good), "sha256=" + "a" * (1 << 20)), 401, NOTHING)
    fcgi_case("FastCGI: 2000 params", good,
              fire.post_params(len(good), None, {"HTTP_X_%d" % k: "v" * 100
                                                 for k in range(2000)}), 401, NOTHING)
    fcgi_case("FastCGI: no REQUEST_METHOD", good, {"CONTENT_LENGTH": str(len(good))}, 405,
              NOTHING)
    return out


def post_raw(body, sigs, clen=None):
    head = ("POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nConnection: close\r\n" % (len(body) if clen is None else clen))
    head += "".join("X-Hub-Signature-256: %s\r\n" % s for s in sigs)
    return head.encode() + b"\r\n" + body


class HostileInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.Postgres()
        cls.pg.migrate()
        cls.srv = fire.NginxPool(cls.pg, procs=2, max_body="8m")
        cls.pids = cls.srv.fcgi_pids()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.pg.stop("immediate")

    def lit(self, s):
        """s as an SQL E'' literal with every non-printable character escaped
        (psql's output separators are control characters too: compare in SQL)."""
        out = []
        for ch in s:
            o = ord(ch)
            if ch in "'\\":
                out.append("\\" + ch)
            elif 32 <= o < 127:
                out.append(ch)
            else:
                out.append("\\u%04x" % o)
        return "E'" + "".join(out) + "'"

    def settle(self, before, timeout=5.0):
        """Counts once the responder is done: raw hang-ups give no answer to wait on."""
        end = time.monotonic() + timeout
        prev = fire.counts(self.pg)
        while time.monotonic() < end:
            time.sleep(0.15)
            cur = fire.counts(self.pg)
            if cur == prev:
                return cur
            prev = cur
        return prev

    def run_case(self, name, kind, req, want, rows, check):
        before = fire.counts(self.pg)
        qmax = int(self.pg.scalar("SELECT coalesce(max(id), 0) FROM wa_quarantine"))
        body = None
        if kind == "http":
            body, sig, headers = req
            h = {"Content-Type": "application/json"}
            if sig is None:
                sig = harness.sign(body)
            if sig is not False:
                h["X-Hub-Signature-256"] = sig
            h.update(headers)
            h = {k: v for k, v in h.items() if v != "" or k.startswith("X-Hub")}
            try:
                status, _, answer = self.srv.request("POST", "/webhook", body, h)
            except (BrokenPipeError, ConnectionResetError) as e:
                status, answer = "reset: %r" % e, b""
            self.assertNotIn(SECRET.encode(), answer)
        elif kind in ("raw", "raw_short", "raw_hangup"):
            status, answer = fire.raw_http(self.srv.port, req, read=kind != "raw_hangup",
                                           close_write=kind == "raw_short")
        else:
            status, answer = req(self.srv.sock)
        wants = want if isinstance(want, tuple) else (want,)
        self.assertIn(status, wants, "%s: answer %r" % (name, answer[:300]))
        after = self.settle(before) if status is None else fire.counts(self.pg)
        delta = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        self.assertEqual(delta, rows, "%s: rows added" % name)
        if rows.get("q") == 1 and body is not None:
            got = self.pg.psql("SELECT md5(body), reason <> '', coalesce(path, ''), "
                               "encode(body, 'hex'), reason FROM wa_quarantine WHERE id > %d"
                               % qmax)
            self.assertEqual(len(got), 1, "one quarantine row")
            md5, has_reason, where, hexbody, reason = got[0]
            self.assertEqual(has_reason, "t", "quarantined with a reason")
            if where == "" and "items broken" in reason:
                # more broken items than are kept one by one: the body once, whole
                self.assertEqual(json.loads(bytes.fromhex(hexbody)), json.loads(body))
            elif where == "":
                self.assertEqual(md5, hashlib.md5(body).hexdigest(),
                                 "a body that is not Meta's envelope: quarantined byte for byte")
            else:
                # an item of a good envelope: kept alone, as a webhook of its own
                wx.assert_quarantined_alone(self, bytes.fromhex(hexbody), json.loads(body),
                                            where)
        self.assertEqual(fire.consistency(self.pg), [], name)
        if check:
            check(self)
        self.assertEqual(len(self.srv.pool.alive()), 2, "%s: a responder died" % name)

    def test_catalogue(self):
        table = cases()
        self.assertGreaterEqual(len(table), 40)
        names = [c[0] for c in table]
        self.assertEqual(len(names), len(set(names)), "case names are unique")
        failures = []
        for case in table:
            with self.subTest(case=case[0]):
                try:
                    self.run_case(*case)
                except AssertionError as e:
                    failures.append("%s: %s" % (case[0], str(e).splitlines()[0][:300]))
        self.assertEqual(failures, [], "\n".join(failures))
        print("\n  hostile: %d cases" % len(table))

        # the same processes, alive, and still answering
        self.assertEqual(self.srv.fcgi_pids(), self.pids, "responder processes replaced")
        for p in self.srv.pool.procs:
            self.assertIsNone(p.poll(), "responder %d exited" % p.pid)
        for i in range(4):
            b = one(90 + i)
            self.assertEqual(self.srv.post(b)[0], 200)

        # every log line is one logfmt line: hostile ids never split or forge a line
        with open(self.srv.applog, "rb") as f:
            for line in f.read().splitlines():
                self.assertTrue(line.startswith(b"level="), line[:200])
                self.assertNotIn(HOSTILE.encode(), line)


if __name__ == "__main__":
    unittest.main()
