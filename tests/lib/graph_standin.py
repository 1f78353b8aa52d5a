"""graph_standin.py - a stand-in for the Graph API's POST /{phone_number_id}/messages.

A real HTTP/1.1 server (keep-alive) on 127.0.0.1 and a free port, in a thread.
It records every call (method, path, headers including Authorization, parsed
body, arrival and answer times, client connection), checks each body against
the shapes of doc/graph-api.md (a mismatch is recorded in .violations, and
the call still answered so the drainer's reaction can be observed), and answers
what the test asked for.

A send is addressed as Meta accepts it and nothing else: `to` a phone number
(`recipient_type` individual, or absent), `recipient` a business-scoped user id
(two capital letters, a dot, optionally `ENT.`, 1-128 letters and digits) with no
`to`, or `to` a group id with `recipient_type` group. Anything else (a BSUID in
`to`, a phone number in `recipient`, a group without `to`, no address at all) is
refused as Meta does, HTTP 400 with error code 100, before any rule is applied;
the call records `to`, `recipient`, `recipient_type` and `address` (the one Meta
would use: `to` wins) either way. Both `to` and `recipient` are accepted, as
Meta does, but recorded as a violation: wahook sends one of them. The API
version in the path is the one the stand-in was made with, or none at all
(`version=None`: the url has no version segment):

    g = GraphStandin(token)
    g.answer("5xx", message_id=mid, times=2)   # the next 2 calls for mid
    g.answer("401")                            # every call from now on (times=None)
    g.answer("131047", step="reply", message_id=mid)
    g.delay = 0.2                              # every call waits this long first
    GraphStandin(token, tokens={pnid: token})  # numbers with their own token
    g.refused.add(token)                       # calls bearing it get 401 / 190

Kinds: ok, 5xx (503, not JSON), 500 (JSON code 1), 429 (HTTP 429, code 130429,
retry_after= sets Retry-After), 131047, 131009, 131056, 401 (code 190),
transient_flag (400 with is_transient true), hang (no answer until the test ends
or `hang_s`), slow (answers ok after `slow_s`).

Faults an HTTP library would smooth over are written byte by byte on the socket
(call["kind"] says which one a call got):
    drop          the request is read, the connection closed without a byte
    reset         the same with a TCP reset (SO_LINGER 0)
    drop_reused   drop, but only on a connection that already served a call
                  (a kept-alive connection the server gave up on)
    stall_body    a 200 status line and headers, half the body, then nothing
                  until `hang_s`
    short_body    a 200 whose Content-Length promises more than is sent, then close
    reset_after_status  "HTTP/1.1 200 OK" and a TCP reset
    big_body      a 200 whose JSON answer is over 64 KiB (its wamid at the end)
    proxy_400, proxy_403, proxy_404, proxy_407  an HTML page with that status,
                  as a proxy or a wrong base URL answers (no Graph error object)
Rules can be limited to a phone_number_id (pnid=). g.on_call(call), when set, runs
in the server thread as each call arrives; a number it returns is that call's delay. Standard library only.

Media, as Meta serves it: GET /{version}/{media_id}?phone_number_id=... answers
the metadata {url, mime_type, sha256, file_size, id}, and the url (on a second
port, like Meta's download host, fresh for each retrieve call) serves the bytes
to a request with the bearer token:

    item = g.add_media(data=b"...", mime="image/jpeg", sha="base64", size_as="str")
    g.media_answer("404", step="download", media_id=item.id, times=1)   # expired URL
    g.media_calls       # every retrieve and download: step, media_id, auth, status

Media kinds: ok, 401 (meta: code 190; download: HTTP 401), 500 (meta), big_body
and big_500 (meta: a 200 or a 500 whose JSON is over 64 KiB), 404 (download: the
URL expired), wrong_hash (download: other bytes), slow (download
trickled over `media_slow_s`), hang (download: half the bytes, then nothing until
the test ends), stall_end (download: chunked, every byte but never the closing
chunk, then nothing), redirect (download: 302 to a path that records who followed it).
"""
import hashlib
import base64
import os
import json
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH_RE = re.compile(r"^(?:/(v\d+\.\d+))?/([A-Za-z0-9_.-]+)/messages$")
# the addresses Meta accepts (doc/graph-api.md, "Addressing")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{3,30}$")
BSUID_RE = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$")
GROUP_RE = re.compile(r"^[A-Za-z0-9_=+/-]{1,256}$")

ERRORS = {
    # kind: (http, error object)
    "500": (500, {"message": "An unknown error has occurred.", "type": "OAuthException",
                  "code": 1, "fbtrace_id": "AbCdEf1"}),
    "429": (429, {"message": "(#130429) Rate limit hit", "type": "OAuthException",
                  "code": 130429, "error_data": {"messaging_product": "whatsapp",
                  "details": "Cloud API message throughput has been reached."},
                  "fbtrace_id": "AbCdEf2"}),
    "131047": (400, {"message": "(#131047) Re-engagement message", "type": "OAuthException",
                     "code": 131047, "error_data": {"messaging_product": "whatsapp",
                     "details": "Message failed to send because more than 24 hours have "
                                "passed since the customer last replied to this number."},
                     "fbtrace_id": "AbCdEf3"}),
    "131009": (400, {"message": "(#131009) Parameter value is not valid",
                     "type": "OAuthException", "code": 131009, "fbtrace_id": "AbCdEf4"}),
    "131056": (400, {"message": "(#131056) (Business Account, Consumer Account) pair rate "
                                "limit hit", "type": "OAuthException", "code": 131056,
                     "fbtrace_id": "AbCdEf5"}),
    "401": (401, {"message": "Error validating access token: Session has expired on "
                             "Friday, 01-Mar-24 09:00:00 PST.", "type": "OAuthException",
                  "code": 190, "error_subcode": 463, "fbtrace_id": "AbCdEf6"}),
    # a permanent-looking status whose flag says otherwise: the flag wins
    "transient_flag": (400, {"message": "Service temporarily unavailable",
                             "type": "OAuthException", "code": 99999, "is_transient": True,
                             "fbtrace_id": "AbCdEf7"}),
    # what Meta answers a send it cannot address (details: addressing_error())
    "100": (400, {"message": "(#100) Invalid parameter", "type": "OAuthException",
                  "code": 100, "error_data": {"messaging_product": "whatsapp",
                  "details": "Invalid parameter"}, "fbtrace_id": "AbCdEf8"}),
}
PROXY = {"proxy_400": 400, "proxy_403": 403, "proxy_404": 404, "proxy_407": 407}
RAW = {"drop", "reset", "drop_reused", "stall_body", "short_body", "reset_after_status",
       "big_body"}
KINDS = set(ERRORS) | set(PROXY) | RAW | {"ok", "5xx", "hang", "slow"}
MEDIA_KINDS = {"ok", "401", "500", "404", "wrong_hash", "slow", "hang", "stall_end",
               "redirect", "big_body", "big_500"}
META_RE = re.compile(r"^(?:/(v\d+\.\d+))?/([A-Za-z0-9_.-]+)\?phone_number_id=([A-Za-z0-9_.-]+)$")
DL_RE = re.compile(r"^/dl/([A-Za-z0-9_.-]+)/([0-9a-f]+)$")


class MediaItem:
    def __init__(self, media_id, data, mime, sha, size_as):
        self.id, self.data, self.mime = media_id, data, mime
        self.sha_form, self.size_as = sha, size_as
        self.digest = hashlib.sha256(data).digest()
        self.hex = self.digest.hex()

    def meta(self, url):
        sha = (self.hex if self.sha_form == "hex"
               else base64.b64encode(self.digest).decode())
        size = str(len(self.data)) if self.size_as == "str" else len(self.data)
        return {"messaging_product": "whatsapp", "url": url, "mime_type": self.mime,
                "sha256": sha, "file_size": size, "id": self.id}


class MediaRule:
    def __init__(self, kind, step, media_id, times):
        if kind not in MEDIA_KINDS:
            raise ValueError("unknown media kind " + kind)
        self.kind, self.step, self.media_id, self.times = kind, step, media_id, times

    def matches(self, step, media_id):
        return ((self.times is None or self.times > 0)
                and (self.step is None or self.step == step)
                and (self.media_id is None or self.media_id == media_id))

READ_KEYS = {"messaging_product", "status", "message_id"}
ADDRESS_KEYS = {"to", "recipient"}
REPLY_KEYS = {"messaging_product", "recipient_type", "type", "text", "context"}


class Rule:
    def __init__(self, kind, step, message_id, times, retry_after, pnid=None):
        if kind not in KINDS:
            raise ValueError("unknown kind " + kind)
        self.kind, self.step, self.message_id = kind, step, message_id
        self.times, self.retry_after, self.pnid = times, retry_after, pnid

    def matches(self, call):
        return ((self.times is None or self.times > 0)
                and (self.step is None or self.step == call["step"])
                and (self.pnid is None or self.pnid == call["pnid"])
                and (self.message_id is None or self.message_id == call["message_id"]))


def check_body(body, call):
    """Returns a list of violations of the documented shapes (empty: fine)."""
    v = []
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    if body.get("messaging_product") != "whatsapp":
        v.append("messaging_product is not \"whatsapp\"")
    if body.get("status") == "read":
        extra = set(body) - READ_KEYS - {"typing_indicator"}
        if extra or not READ_KEYS <= set(body):
            v.append("mark-read keys %s" % sorted(body))
        if not isinstance(body.get("message_id"), str) or not body.get("message_id"):
            v.append("mark-read message_id is not a non-empty string")
        if "typing_indicator" in body and body["typing_indicator"] != {"type": "text"}:
            v.append("typing_indicator is not {\"type\":\"text\"}")
    elif body.get("type") == "text":
        extra = set(body) - REPLY_KEYS - ADDRESS_KEYS - {"biz_opaque_callback_data"}
        if extra or not REPLY_KEYS <= set(body) or not ADDRESS_KEYS & set(body):
            v.append("reply keys %s" % sorted(body))
        v.extend(address_violations(body))
        t = body.get("text")
        if not (isinstance(t, dict) and set(t) == {"body"} and isinstance(t["body"], str)
                and 0 < len(t["body"]) <= 4096):
            v.append("text is not {\"body\": 1..4096 chars}")
        c = body.get("context")
        if not (isinstance(c, dict) and set(c) == {"message_id"}
                and isinstance(c["message_id"], str) and c["message_id"]):
            v.append("context is not {\"message_id\": id}")
    elif isinstance(body.get("type"), str) and ADDRESS_KEYS & set(body):
        # a reply of another type (image, interactive, template...): the envelope,
        # the member named by its type, optionally a context
        t = body["type"]
        extra = set(body) - (REPLY_KEYS | ADDRESS_KEYS | {t, "biz_opaque_callback_data"})
        if extra or not {"messaging_product", "recipient_type", "type", t} <= set(body):
            v.append("%s reply keys %s" % (t, sorted(body)))
        v.extend(address_violations(body))
        if "context" in body and not (isinstance(body["context"], dict)
                                      and body["context"].get("message_id")):
            v.append("context is not {\"message_id\": id}")
    else:
        v.append("neither a mark-read nor a text reply")
    return v


def addressing_error(body):
    """Why Meta would refuse to address this send (None: it would not): a phone
    number in `to`, a BSUID in `recipient`, or a group id in `to` with
    recipient_type group; to and recipient both present is accepted (to wins)."""
    rtype = body.get("recipient_type", "individual")
    to, rcpt = body.get("to"), body.get("recipient")
    if rtype == "group":
        if "recipient" in body:
            return "recipient is not allowed for a group"
        if not isinstance(to, str) or not GROUP_RE.match(to):
            return "to is not a group id"
        return None
    if rtype != "individual":
        return "recipient_type %r is neither individual nor group" % (rtype,)
    if "to" not in body and "recipient" not in body:
        return "neither to nor recipient"
    if "to" in body and not (isinstance(to, str) and PHONE_RE.match(to)):
        return "to %r is not a phone number" % (to,)
    if "recipient" in body and not (isinstance(rcpt, str) and BSUID_RE.match(rcpt)):
        return "recipient %r is not a business-scoped user id" % (rcpt,)
    return None


def address_violations(body):
    """Where a send's address departs from doc/graph-api.md (what wahook sends)."""
    v = []
    if body.get("recipient_type") not in ("individual", "group"):
        v.append("recipient_type is neither individual nor group")
    if "to" in body and "recipient" in body:
        v.append("both to and recipient: wahook sends one (to when the phone is known)")
    why = addressing_error(body)
    if why:
        v.append("address refused by Meta: " + why)
    return v


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: lets us see connection reuse
    # headers and body go in two send()s: with Nagle on, the body would wait for
    # the client's delayed ACK (40 ms on Linux); the real Graph API answers at once
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        g = self.server.standin
        call = {"method": "GET", "path": self.path, "t": time.monotonic(), "t_end": None,
                "auth": self.headers.get("Authorization"), "status": None,
                "media_id": None, "step": None, "kind": None, "bytes": 0,
                "port": self.server.server_address[1]}
        m, d = META_RE.match(self.path), DL_RE.match(self.path)
        if m and self.server is g.server:
            call["step"], call["media_id"] = "meta", m.group(2)
            call["pnid"] = m.group(3)
        elif d and self.server is g.dl_server:
            call["step"], call["media_id"] = "download", d.group(1)
        with g.lock:
            g.media_calls.append(call)
            item = g.media.get(call["media_id"])
            rule = next((r for r in g.media_rules
                         if r.matches(call["step"], call["media_id"])), None)
            if rule is not None and rule.times is not None and call["step"]:
                rule.times -= 1
            kind = rule.kind if rule and call["step"] else "ok"
            call["kind"] = kind
        if call["step"] is None:
            self._reply(404, {"error": {"message": "Unknown path components",
                                        "type": "OAuthException", "code": 2500}}, call)
            return
        if call["step"] == "meta":
            # the number's own token (or the single one), not a refused one
            want = "Bearer " + g.tokens.get(call["pnid"], g.token)
        else:
            # the token of the retrieve call that handed out this URL
            with g.lock:
                want = g.media_urls.get(d.group(2), (None, 0, call["auth"]))[2]
        if (call["auth"] != want or call["auth"] in ["Bearer " + t for t in g.refused]
                or kind == "401"):
            http, err = ERRORS["401"]
            self._reply(http, {"error": err}, call)
            return
        if item is None:
            self._reply(400, {"error": {"message": "Unsupported get request. Object with "
                                        "ID '%s' does not exist" % call["media_id"],
                                        "type": "GraphMethodException", "code": 100}}, call)
            return
        if call["step"] == "meta":
            self._meta(g, item, kind, call)
        else:
            self._download(g, item, kind, call, d.group(2))

    def _meta(self, g, item, kind, call):
        if kind == "500":
            http, err = ERRORS["500"]
            self._reply(http, {"error": err}, call)
            return
        nonce = os.urandom(8).hex()
        with g.lock:
            g.media_urls[nonce] = (item.id, time.monotonic(), call["auth"])
        url = "http://127.0.0.1:%d/dl/%s/%s" % (g.dl_port, item.id, nonce)
        if kind in ("big_body", "big_500"):
            http, obj = (200, item.meta(url)) if kind == "big_body" else \
                (ERRORS["500"][0], {"error": dict(ERRORS["500"][1])})
            obj["padding"] = "x" * (70 * 1024)
            call["status"] = http
            try:
                self._reply(http, obj, call)
            except OSError:
                pass    # the client cut the answer short: what it is meant to do
            return
        self._reply(200, item.meta(url), call)

    def _download(self, g, item, kind, call, nonce):
        with g.lock:
            issued = g.media_urls.get(nonce)
        if issued is None or issued[0] != item.id or kind == "404":
            # Meta's URLs die after 5 minutes: an old one is a plain 404
            self._reply(404, None, call, raw_body=b"URL signature expired",
                        ctype="text/plain")
            return
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:%d/v0.0/followed?x=1" % g.port)
            self.send_header("Content-Length", "0")
            self.end_headers()
            call["status"] = 302
            call["t_end"] = time.monotonic()
            return
        data = item.data
        if kind == "wrong_hash":
            data = bytes([data[0] ^ 0xff]) + data[1:] if data else b"x"
        # stall_end: chunked, every byte sent, the closing chunk never: the
        # client has the whole item and the transfer has not ended
        chunked = kind == "stall_end"
        self.send_response(200)
        self.send_header("Content-Type", item.mime)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        call["status"] = 200
        chunk = 64 * 1024
        upto = len(data) // 2 if kind == "hang" else len(data)
        pause = (g.media_slow_s / max(1, (upto + chunk - 1) // chunk)) if kind == "slow" else 0
        try:
            for off in range(0, upto, chunk):
                piece = data[off:min(off + chunk, upto)]
                if chunked:
                    piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                self.wfile.write(piece)
                call["bytes"] = min(off + chunk, upto)
                if pause:
                    self.wfile.flush()
                    time.sleep(pause)
            self.wfile.flush()
            if kind in ("hang", "stall_end"):
                g.release.wait(g.hang_s)
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass
        call["t_end"] = time.monotonic()

    served = 0      # calls answered on this connection before the current one

    def do_POST(self):
        g = self.server.standin
        t0 = time.monotonic()
        reused = self.served > 0
        self.served += 1
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        call = {"method": "POST", "path": self.path, "t": t0, "t_end": None,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "auth": self.headers.get("Authorization"), "raw": raw, "body": None,
                "step": None, "message_id": None, "to": None, "recipient": None,
                "recipient_type": None, "address": None, "address_error": None,
                "pnid": None,
                "conn": self.client_address[1], "reused": reused, "status": None,
                "kind": None, "violations": []}
        viol = call["violations"]
        m = PATH_RE.match(self.path)
        if not m:
            viol.append("path %r is not /vX.Y/{phone_number_id}/messages" % self.path)
        else:
            call["pnid"] = m.group(2)
            if m.group(1) != g.version:
                viol.append("API version %s, want %s" % (m.group(1), g.version))
        want_token = g.tokens.get(call["pnid"], g.token)
        if call["auth"] != "Bearer " + want_token and \
                call["auth"] not in ["Bearer " + t for t in g.refused]:
            viol.append("Authorization header is not Bearer <token of %s>" % call["pnid"])
        refused = call["auth"] in ["Bearer " + t for t in g.refused]
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            viol.append("Content-Type is not application/json")
        try:
            body = json.loads(raw.decode("utf-8"))
            call["body"] = body
        except (UnicodeDecodeError, ValueError) as e:
            body = None
            viol.append("body is not JSON: %s" % e)
        if isinstance(body, dict):
            if body.get("status") == "read":
                call["step"], call["message_id"] = "read", body.get("message_id")
            elif isinstance(body.get("type"), str):
                # a send: it must be addressed as Meta accepts, or Meta refuses it
                call["step"] = "reply"
                call["message_id"] = (body.get("context") or {}).get("message_id")
                call["to"], call["recipient"] = body.get("to"), body.get("recipient")
                call["recipient_type"] = body.get("recipient_type")
                call["address"] = call["to"] if "to" in body else call["recipient"]
                call["address_error"] = addressing_error(body)
            viol.extend(check_body(body, call))
        with g.lock:
            call["n"] = len(g.calls) + 1
            g.calls.append(call)
            if viol:
                g.violations.append((call["n"], viol))
            # Meta checks the token, then the address, before anything else happens
            unaddressed = not refused and call["address_error"] is not None
            rule = None if refused or unaddressed else next(
                (r for r in g.rules if r.matches(call) and (r.kind != "drop_reused" or reused)),
                None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
            kind = "401" if refused else "100" if unaddressed else rule.kind if rule else "ok"
            call["kind"] = kind
            delay = g.delay
            hook = g.on_call
        if hook is not None:
            d = hook(call)
            if d is not None:       # the hook may set this call's delay
                delay = d
        if delay:
            time.sleep(delay)
        if kind in RAW:
            return self._raw(kind, call)
        if kind in PROXY:
            return self._reply(PROXY[kind], None, call, ctype="text/html", raw_body=(
                "<html><head><title>%d</title></head><body><h1>%d</h1><hr>"
                "<center>nginx</center></body></html>" % (PROXY[kind], PROXY[kind])).encode())
        if kind == "hang":
            g.release.wait(g.hang_s)
            call["t_end"] = time.monotonic()
            self.close_connection = True
            return
        if kind == "slow":
            time.sleep(g.slow_s)
            kind = "ok"
        if kind == "ok":
            if call["step"] == "reply":
                with g.lock:
                    g.reply_seq += 1
                    rid = "wamid.REPLY%06d" % g.reply_seq
                call["reply_id"] = rid
                ans = {"messaging_product": "whatsapp", "contacts": [contact_of(call)],
                       "messages": [{"id": rid}]}
            else:
                ans = {"success": True}
            self._reply(200, ans, call)
        elif kind == "5xx":
            self._reply(503, None, call, raw_body=b"<html><body>Service Unavailable"
                        b"</body></html>", ctype="text/html")
        else:
            http, err = ERRORS[kind]
            if kind == "100":
                err = dict(err, error_data=dict(err["error_data"],
                                                details=call["address_error"]))
            headers = {}
            if rule is not None and rule.retry_after is not None:
                headers["Retry-After"] = str(rule.retry_after)
            self._reply(http, {"error": err}, call, headers=headers)

    def _ok_body(self, call, pad=0):
        g = self.server.standin
        with g.lock:
            g.reply_seq += 1
            rid = "wamid.REPLY%06d" % g.reply_seq
        call["reply_id"] = rid
        ans = {"messaging_product": "whatsapp",
               "contacts": [dict(contact_of(call), padding="x" * pad)],
               "messages": [{"id": rid}]}
        return json.dumps(ans).encode()

    def _raw(self, kind, call):
        """Answers with a fault, writing on the socket itself; the connection ends."""
        g = self.server.standin
        sock = self.connection
        self.close_connection = True
        call["status"] = 0

        def rst():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

        def head(n):
            return ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % n).encode()
        try:
            if kind in ("drop", "drop_reused"):
                pass
            elif kind == "reset":
                rst()
            elif kind == "reset_after_status":
                sock.sendall(b"HTTP/1.1 200 OK\r\n")
                call["status"] = 200
                time.sleep(0.05)
                rst()
            elif kind == "stall_body":
                body = self._ok_body(call)
                sock.sendall(head(len(body)) + body[:len(body) // 2])
                call["status"] = 200
                g.release.wait(g.hang_s)
            elif kind == "short_body":
                body = self._ok_body(call)
                sock.sendall(head(len(body) + 100) + body[:len(body) // 2])
                call["status"] = 200
            elif kind == "big_body":
                body = self._ok_body(call, pad=70 * 1024)
                sock.sendall(head(len(body)) + body)
                call["status"] = 200
        except OSError:
            pass
        call["t_end"] = time.monotonic()
        if kind in ("reset", "reset_after_status"):
            sock.close()    # with SO_LINGER 0: the last reference going sends the RST
        else:
            try:
                sock.shutdown(socket.SHUT_RDWR)     # a FIN now, not at garbage collection
            except OSError:
                pass

    def _reply(self, status, obj, call=None, raw_body=None, ctype="application/json",
               headers=None):
        data = raw_body if raw_body is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        if call is not None:
            call["status"] = status
            call["t_end"] = time.monotonic()


def contact_of(call):
    """The answer's contacts[0] as Meta writes it for this address: the phone
    number as wa_id, the BSUID as user_id, a group id alone."""
    if call["recipient_type"] == "group":
        return {"input": call["to"]}
    if call["recipient"] is not None and call["to"] is None:
        return {"input": call["recipient"], "user_id": call["recipient"]}
    return {"input": call["to"], "wa_id": call["to"]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a drainer
    # opens its 16 at once on a loaded machine: a fault the test did not ask for
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # a drainer killed mid-call leaves us writing to a closed socket: expected
        import sys
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class GraphStandin:
    def __init__(self, token, version="v26.0", tokens=None):
        self.token = token
        self.tokens = dict(tokens or {})   # phone_number_id -> its own token
        self.refused = set()               # tokens answered 401 / code 190
        self.version = version
        self.lock = threading.Lock()
        self.calls = []
        self.violations = []
        self.rules = []
        self.delay = 0.0
        self.slow_s = 0.5
        self.hang_s = 30.0
        self.reply_seq = 0
        self.on_call = None
        self.release = threading.Event()
        self.media, self.media_rules, self.media_calls, self.media_urls = {}, [], [], {}
        self.media_slow_s = 2.0
        self._media_seq = 0
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.standin = self
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d%s" % (self.port, "/" + version if version else "")
        # the download host, apart from the Graph API as Meta's is
        self.dl_server = _Server(("127.0.0.1", 0), _Handler)
        self.dl_server.standin = self
        self.dl_port = self.dl_server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.dl_thread = threading.Thread(target=self.dl_server.serve_forever, daemon=True)
        self.dl_thread.start()

    def add_media(self, data, mime="image/jpeg", sha="hex", size_as="int", media_id=None):
        """Serves data as a new media item; returns it (.id, .hex, .data)."""
        with self.lock:
            self._media_seq += 1
            mid = media_id or "%d%06d" % (1700000000, self._media_seq)
            item = MediaItem(mid, data, mime, sha, size_as)
            self.media[mid] = item
        return item

    def media_answer(self, kind, step=None, media_id=None, times=None):
        """From now on, answer matching media calls with kind (times: how many)."""
        with self.lock:
            self.media_rules.append(MediaRule(kind, step, media_id, times))

    def media_count(self, step=None, media_id=None, status=None):
        with self.lock:
            return len([c for c in self.media_calls
                        if (step is None or c["step"] == step)
                        and (media_id is None or c["media_id"] == media_id)
                        and (status is None or c["status"] == status)])

    def answer(self, kind, step=None, message_id=None, times=None, retry_after=None,
               pnid=None):
        """From now on, answer matching calls with kind (times: how many; None: all)."""
        with self.lock:
            self.rules.append(Rule(kind, step, message_id, times, retry_after, pnid))

    def clear_rules(self):
        with self.lock:
            self.rules = []

    def stop(self):
        self.release.set()
        for srv in (self.server, self.dl_server):
            srv.shutdown()
            srv.server_close()

    # -- what happened -------------------------------------------------------
    def snapshot(self):
        with self.lock:
            return list(self.calls)

    def ok(self, step=None):
        """Calls answered with success, optionally of one step."""
        return [c for c in self.snapshot() if c["status"] == 200
                and (step is None or c["step"] == step)]

    def count(self, step=None, message_id=None, ok_only=False):
        return len([c for c in self.snapshot()
                    if (step is None or c["step"] == step)
                    and (message_id is None or c["message_id"] == message_id)
                    and (not ok_only or c["status"] == 200)])

    def connections(self):
        return len({c["conn"] for c in self.snapshot()})

    def wait_calls(self, n, timeout=10.0, ok_only=False):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = len(self.ok()) if ok_only else len(self.snapshot())
            if got >= n:
                return
            time.sleep(0.01)
        raise AssertionError("stand-in: %d calls wanted, got %d"
                             % (n, len(self.ok()) if ok_only else len(self.snapshot())))
