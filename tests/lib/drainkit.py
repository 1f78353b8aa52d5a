"""drainkit.py - what the drainer's integration tests share: webhooks for the
real responder, running wahook-drain (by pid, through harness.spawn), and
reading the outbox back.
"""
import itertools
import os
import subprocess
import time
import unittest

import harness
from graph_standin import GraphStandin

DRAIN = os.path.join(harness.BUILD, "wahook-drain")
ACCESS_TOKEN = "EAAGtest-access-token-d41d8cd98f00b204"   # must never reach a log
PNID = "106540352242922"
# business numbers with their own token (WAHOOK_ACCESS_TOKENS_FILE); never in a log
NUMBER_TOKENS = {"106540352242931": "EAAGnumber-one-token-9e107d9d372bb6826bd8",
                 "106540352242932": "EAAGnumber-two-token-e4d909c290d0fb1ca068",
                 "106540352242933": "EAAGnumber-two-renewed-token-45c48cce2e2d"}
DISPLAY = "15550783881"
_seq = itertools.count(1)
_ts = itertools.count(1_700_000_000)


def mid(tag="m"):
    """A fresh message id, unique in the process."""
    return "wamid.HBgL%s%06d" % (tag, next(_seq))


def webhook(messages, pnid=PNID, display=DISPLAY):
    """A Meta-shaped body: messages is [(sender, message_id, ts_or_None)], one change."""
    msgs, contacts = [], []
    for sender, m, ts in messages:
        msgs.append({"from": sender, "id": m, "timestamp": str(ts or next(_ts)),
                     "type": "text", "text": {"body": "hello " + m}})
        if sender not in [c["wa_id"] for c in contacts]:
            contacts.append({"profile": {"name": "User " + sender}, "wa_id": sender})
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
            "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": display, "phone_number_id": pnid},
                "contacts": contacts, "messages": msgs}}]}]}


def media_message(sender, m, mtype, item, ts=None):
    """A media message object as Meta sends it (the webhook's sha256 is base64)."""
    import base64
    obj = {"id": item.id, "mime_type": item.mime,
           "sha256": base64.b64encode(item.digest).decode()}
    if mtype == "audio":
        obj["voice"] = True
    if mtype == "document":
        obj["filename"] = "invoice.pdf"
    if mtype in ("image", "video", "document"):
        obj["caption"] = "caption of " + m
    return {"from": sender, "id": m, "timestamp": str(ts or int(time.time())),
            "type": mtype, mtype: obj}


def post_objects(server, msgs, pnid=PNID):
    """Posts message objects (media_message() or others) in one signed webhook."""
    contacts = [{"profile": {"name": "User " + s}, "wa_id": s}
                for s in sorted({x["from"] for x in msgs})]
    body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
            "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": DISPLAY, "phone_number_id": pnid},
                "contacts": contacts, "messages": msgs}}]}]}
    status, _, rbody = server.post(harness.meta_json(body))
    assert status == 200, (status, rbody, server.logs()[-2000:])


def media_rows(pg):
    """{media_id: row dict} of wa_media, with the stored bytes' length and sha256."""
    cols = ["media_id", "message_id", "media_type", "mime_type", "sha256", "file_size",
            "state", "attempts", "last_error", "path", "claim_token", "data_len",
            "data_sha"]
    rows = query(pg, "SELECT media_id, message_id, media_type, mime_type, sha256, "
                 "file_size, state, attempts, last_error, path, claim_token, "
                 "length(data), encode(sha256(data), 'hex') FROM wa_media")
    return {r[0]: dict(zip(cols, r)) for r in rows}


def post(server, messages, pnid=PNID):
    """Posts one signed webhook through the real web server + responder; asserts 200."""
    status, _, body = server.post(harness.meta_json(webhook(messages, pnid)))
    assert status == 200, (status, body, server.logs()[-2000:])


def feed(server, conversations, per_conv, batch=True, pnid=PNID):
    """conversations x per_conv messages to business number pnid; returns
    {sender: [ids in order]}. Each conversation's messages share one timestamp:
    the position orders them."""
    out = {}
    for c in range(conversations):
        sender = "49151%07d" % (next(_seq))
        ts = next(_ts)
        ids = [mid("c%d_" % c) for _ in range(per_conv)]
        out[sender] = ids
        if batch:
            post(server, [(sender, m, ts) for m in ids], pnid=pnid)
        else:
            for m in ids:
                post(server, [(sender, m, next(_ts))], pnid=pnid)
    return out


ENV_DEFAULTS = {}      # set by a test module for all its runs (e.g. WAHOOK_MEDIA=on)


def env(pg, g, **extra):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "WAHOOK_DB": pg.dsn,
         "WAHOOK_ACCESS_TOKEN": ACCESS_TOKEN, "WAHOOK_GRAPH_URL": g.url if g else "",
         "WAHOOK_RETRY_MIN": "0.05", "WAHOOK_RETRY_MAX": "0.2",
         # a call's result is recorded before its lease ends through the
         # outage ridden out: WAHOOK_DB_OUTAGE_MAX derived as 10 - 2 - 2 - 2 =
         # 4 s (a test riding out a longer one sets a longer lease)
         "WAHOOK_LEASE": "10", "WAHOOK_HTTP_TIMEOUT": "2", "WAHOOK_DB_TIMEOUT": "2",
         # the fixtures' Meta timestamps are from 2023: the 24-hour reply window
         # (default on) is switched off here and proved on its own in
         # test_reply_window_*, with the default
         "WAHOOK_REPLY_WINDOW": "0"}
    e.update(ENV_DEFAULTS)
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    for k, v in extra.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return e


class Run:
    """A finished wahook-drain run."""

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "Run(rc=%r)\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out[-3000:],
                                                       self.err[-6000:])


def start(pg, g, args=(), **extra):
    """Starts wahook-drain in the background; stderr goes to p.errfile."""
    d = harness.tmpdir("wahook-drain-")
    errfile = os.path.join(d, "stderr")
    p = harness.spawn([DRAIN] + list(args), env=env(pg, g, **extra),
                      stdout=subprocess.PIPE, stderr=open(errfile, "w"))
    p.errfile = errfile
    return p


def finish(p, timeout=60):
    """Waits for a start()ed run; returns a Run (kills it by pid on timeout)."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        harness.kill(p)
        raise AssertionError("wahook-drain did not exit within %s s" % timeout)
    harness.kill(p)    # reaped: only forgets it
    with open(p.errfile, errors="replace") as f:
        err = f.read()
    return Run(p.returncode, out.decode(errors="replace"), err)


def run(pg, g, args=(), timeout=60, **extra):
    return finish(start(pg, g, args, **extra), timeout)


def drain_until_done(pg, g, tries=40, **extra):
    """Runs one-shot drains until one exits 0 (rows waiting for a retry make it 1)."""
    runs = []
    for _ in range(tries):
        r = run(pg, g, **extra)
        runs.append(r)
        if r.rc == 0:
            return runs
        assert r.rc == 1, r
        time.sleep(0.05)
    raise AssertionError("still pending after %d runs: %r" % (tries, runs[-1]))


def assert_invalid_reply_dies(case, pg, g, bad, good, why, **extra):
    """Drains until done, two attempts a row (drain_until_done(): no run may exit
    4): bad's reply was invalid, its row dead after both with an "invalid reply"
    reason holding why and nothing sent for it; good's conversation answered."""
    runs = drain_until_done(pg, g, **dict(extra, WAHOOK_MAX_ATTEMPTS=2,
                                          WAHOOK_RETRY_MIN=0.01, WAHOOK_RETRY_MAX=0.02))
    rows = outbox(pg)
    case.assertEqual((rows[bad]["state"], rows[bad]["attempts"]), ("dead", "2"), runs)
    case.assertIn("invalid reply: ", rows[bad]["last_error"])
    case.assertIn(why, rows[bad]["last_error"])
    case.assertEqual(g.count("reply", bad), 0)
    case.assertEqual(rows[good]["state"], "done", runs)
    case.assertEqual(g.count("reply", good, ok_only=True), 1)
    return runs


def query(pg, sql):
    """Rows of sql as lists of strings, NULL as None. (harness.Postgres.psql marks
    NULL with \x1e, which str.splitlines() takes for a line break.)"""
    r = subprocess.run([harness.PSQL, "-X", "-q", "-At", "-F", "\x1f", "-R", "\n",
                        "-v", "ON_ERROR_STOP=1", "-P", "null=\x01", pg.dsn, "-c", sql],
                       capture_output=True, text=True)
    assert r.returncode == 0, "psql failed: %s\n%s" % (sql, r.stderr)
    return [[None if v == "\x01" else v for v in line.split("\x1f")]
            for line in r.stdout.split("\n") if line]


def outbox(pg):
    """{message_id: row dict} of wa_outbox."""
    cols = ["message_id", "sender", "state", "attempts", "last_error", "read_at",
            "reply_message_id", "lease_until", "claim_token"]
    rows = query(pg, "SELECT %s FROM wa_outbox" % ", ".join(cols))
    return {r[0]: dict(zip(cols, r)) for r in rows}


def tokens_file(d, pairs, mode=0o600, header="# phone_number_id token\n",
                name="access-tokens"):
    """Writes a WAHOOK_ACCESS_TOKENS_FILE of (number, token) pairs as d/name; returns its path."""
    path = os.path.join(d, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(header + "".join("%s %s\n" % p for p in pairs))
    os.chmod(path, mode)
    return path


def new_standin():
    return GraphStandin(ACCESS_TOKEN)


# --- the stack every drainer test module runs on ------------------------------

_stack = []


def start_stack():
    """For setUpModule: a migrated throwaway PostgreSQL and the real responder
    behind lighttpd feeding it. Returns (pg, server); stop_stack() ends both
    (and runs here when a start fails half-way: unittest then skips
    tearDownModule)."""
    try:
        pg = harness.Postgres()
        _stack.append(pg)
        pg.migrate()
        server = harness.Lighttpd(pg)
        _stack.append(server)
    except BaseException:
        stop_stack()
        raise
    return pg, server


def module_stack(g):
    """setUpModule and tearDownModule for a drainer test module: start_stack()
    into the module's globals pg and server, stop_stack() after.

        pg = server = None
        setUpModule, tearDownModule = dk.module_stack(globals())
    """
    def setUpModule():
        g["pg"], g["server"] = start_stack()

    return setUpModule, stop_stack


def stack_server():
    """The web server of the stack start_stack() started."""
    return _stack[1]


def stop_stack():
    """For tearDownModule: stops what start_stack() started, newest first."""
    while _stack:
        _stack.pop().stop()


class DrainCase(unittest.TestCase):
    """A drainer test: empty tables and a fresh stand-in Graph API (self.g) per
    test, on the module's stack."""

    def setUp(self):
        _stack[0].truncate()
        self.g = new_standin()

    def tearDown(self):
        self.g.stop()

    def assert_in_order(self, convs, only_ok=False):
        """Per sender: read(m1), reply(m1), read(m2), reply(m2)... in arrival order,
        among every call the stand-in saw (only_ok: among the successful ones)."""
        calls = self.g.ok() if only_ok else self.g.snapshot()
        for sender, ids in convs.items():
            seq = [(c["step"], c["message_id"]) for c in calls
                   if c["message_id"] in set(ids)]
            want = [(s, m) for m in ids for s in ("read", "reply")]
            self.assertEqual(seq, want, "calls for %s out of order" % sender)
