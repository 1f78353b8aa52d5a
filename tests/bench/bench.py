#!/usr/bin/env python3
"""bench.py - `make bench`: wahook's figures side by side with the machine's limits.

One run on one box, loopback only, every process started through harness.spawn and
stopped by pid. The phases:

  1. responder: wrk -> nginx (examples/nginx.conf's server block) -> N wahook.fcgi
     processes sharing one unix socket (as spawn-fcgi -F N or systemd socket
     activation run it) -> PostgreSQL; distinct signed ~800-byte text webhooks at
     several concurrency levels; afterwards stored messages are checked against the
     200 answers (a run that loses one is void). Plus a paced run at about half the
     peak rate (its p99 is the latency target) and a process-count sweep.
     Then NOTIFY on commit's price at that peak: the responder built without the
     statement's note CTE against the shipped one (notify_responder_cost()).
  2. limits: pgbench running sql/statements/ingest.sql (see pgbench_script()) and a null
     FastCGI responder (tests/bench/null_fcgi.c) behind the same nginx; and the
     price of NOTIFY on commit: the same statement with and without its note CTE
     (notify_cost(), target: at least 0.97 of the throughput without). pgbench
     paced (--rate) at the rate of the responder's half-peak run, with as many
     clients as that run's connections: its p99 is the latency target's limit
     (pgbench_paced()). The peak and pgbench again with commit_delay=200 us.
     The peers: the Node Express+pg receiver (tests/bench/node/receiver.js) and
     the lean one (LEAN=1: one statement for both inserts, node/lean.sql), and
     pgbench running that lean statement (lean_pgbench_script()).
  3. batches: POSTs of 1000 messages (~2.5 MB): time to the 200, rows checked.
  4. drainer: the 10,000 outbox rows those batches left (1,000 conversations)
     against the stand-in Graph API answering after 20 ms; the same rows again
     answered by a trivial reply program (WAHOOK_REPLY_COMMAND); then webhook-200 ->
     mark-read latency with `wahook-drain --for` running.
  4b. tests/bench/drain_bench.py: a healthy number's throughput while another
     is paused, the cost of the request body libcurl cannot resend, the claim
     statement against 100,000 pending rows.
  4c. scripts/prune deleting a million old rows while paced webhooks arrive:
     the responder's p99 during it against just before and after (pruneload.py).
  5. memory: VmHWM of one responder process after 100,000 requests (and growth
     after warm-up), of the processes of phase 1, and of the drainer in phase 4.
  6. media (media_bench.py): wahook-drain fetching photos and 20 MB documents from
     the stand-in, stored in PostgreSQL and in a directory: items/s, MB/s, VmHWM.
  7. a markdown table (printed, and saved with a JSON copy and a gnuplot PNG).

Usage: bench.py [OUTDIR]   (default build/bench). Knobs, for development only:
BENCH_DURATION (s per wrk/pgbench run, default 8), BENCH_LEVELS (default
1,4,16,32,64), BENCH_PROCS (responder processes, default 2), BENCH_QUICK=1
(shorter everything; figures not for publishing).
"""
import hashlib
import hmac
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
import pgtopo  # noqa: E402
from graph_standin import GraphStandin  # noqa: E402
import pathological  # noqa: E402
import drain_bench  # noqa: E402
import media_bench  # noqa: E402
import pruneload  # noqa: E402

ROOT = harness.ROOT
BUILD = harness.BUILD
QUICK = os.environ.get("BENCH_QUICK") == "1"
DURATION = int(os.environ.get("BENCH_DURATION", "3" if QUICK else "8"))
LEVELS = [int(x) for x in os.environ.get("BENCH_LEVELS", "1,4,16,32,64").split(",")]
PROCS = int(os.environ.get("BENCH_PROCS", "2"))
PROC_SWEEP = [1, 2, 4, 8]
# the null responder serves one request at a time per process: enough of them
# that nginx and the cores, not their count, are its limit
NULL_PROCS = 8
PG_CLIENTS = [1, 4, 16, 32, 64]
MEM_REQUESTS = 20000 if QUICK else 100000
BATCHES = 10                  # x 1000 messages = the drainer's 10,000 rows
CONVERSATIONS = 1000
GRAPH_DELAY = 0.020
DRAIN_CONCURRENCY = 16
LATENCY_SAMPLES = 40 if QUICK else 100
PRUNE_OLD = 50000 if QUICK else 500000   # old messages (and as many outbox rows)
RECLEN = 1280                 # fixed record length of the wrk body file

# the performance targets (doc/performance.md, "The targets")
# and issue #23
T_VS_NODE = 4.0              # wahook / the Node Express+pg receiver, same job
T_VS_PGBENCH = 1.5           # wahook / pgbench, one transaction per webhook
T_VS_NULL = 0.5              # wahook / the null FastCGI responder
T_STATUS = 0.8               # status webhooks / message webhooks
T_P99_VS_PGBENCH = 2.0       # p99 at half the peak rate / pgbench's p99 running
                             # ingest.sql paced at the same rate (pgbench --rate)
T_BATCH_MS = 100.0
T_DRAIN = 0.8
T_READ_P50_MS = 100.0
T_RSS_KB = 16 * 1024

# What PostgreSQL gets: what an operator of a small, write-heavy box would set.
# Durability untouched: fsync and synchronous_commit stay on (harness sets them).
PG_TUNING = """
shared_buffers = 512MB
wal_buffers = 64MB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
checkpoint_completion_target = 0.9
wal_compression = off
"""


def log(*a):
    print("bench:", *a, flush=True)


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- the webhooks -------------------------------------------------------------

PNID, DISPLAY, WABA = "106540352242922", "15550783881", "102290129340398"
# non-ASCII on purpose: Meta sends it as \uXXXX escapes (harness.meta_json)
TEXT = ("Ol\u00e1! Gostaria de saber o estado da minha encomenda n\u00ba {n}, feita "
        "na ter\u00e7a-feira \u2014 o rastreio diz \u201cem tr\u00e2nsito\u201d h\u00e1 "
        "tr\u00eas dias. Podem confirmar a morada de entrega (Rua das Flores 12, "
        "4\u00ba esq., Lisboa)? Obrigada \U0001F64F\U0001F4E6 Jo\u00e3o tamb\u00e9m "
        "pergunta se h\u00e1 fatura\u00e7\u00e3o em nome da empresa.")
NAME = "Jo\u00e3o Ara\u00fajo"


def sender_of(i):
    return "3519%08d" % (i % 10000)   # 10,000 conversations: no hot row


def message(mid, sender, ts, n, text=TEXT):
    return {"from": sender, "id": mid, "timestamp": str(ts),
            "text": {"body": text.format(n=n)}, "type": "text"}


def change(msgs, contacts):
    return {"value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
                      "contacts": contacts, "messages": msgs}, "field": "messages"}


def wamid(tag, n):
    """Looks like Meta's (base64 of a binary key); unique per (tag, n)."""
    import base64
    return "wamid.HBgM" + base64.b64encode(("%s%012d" % (tag, n)).encode()).decode()


def text_webhook(tag, n):
    """One text message in the Meta shape, ~800 bytes as Meta writes it."""
    s = sender_of(n)
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [
        change([message(wamid(tag, n), s, 1700000000 + n // 100, n)],
               [{"profile": {"name": NAME}, "wa_id": s}])]}]}


STATUSES = ("sent", "delivered", "read")


def status_webhook(tag, n):
    """One status update (sent, delivered or read) for a message we sent, Meta's
    shape (~600 bytes), one status row per webhook."""
    s = sender_of(n)
    st = {"id": wamid(tag, n), "status": STATUSES[n % 3],
          "timestamp": str(1700000000 + n), "recipient_id": s,
          "conversation": {"id": "CONVERSATION_ID%d" % n,
                           "origin": {"type": "service"}},
          "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"}}
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [
        {"value": {"messaging_product": "whatsapp",
                   "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
                   "statuses": [st]}, "field": "messages"}]}]}


class Pool:
    """The file of signed bodies wrk posts (see post.lua); grows on demand."""

    def __init__(self, path, build=text_webhook):
        self.build = build
        self.path = path
        self.n = 0
        self.used = 0
        self.tag = "B%06x" % random.getrandbits(24)   # distinct ids per bench run
        self.size = 0
        open(path, "wb").close()

    def ensure(self, count):
        if self.n >= count:
            return
        with open(self.path, "ab") as f:
            for i in range(self.n, count):
                body = harness.meta_json(self.build(self.tag, i)).encode()
                if i == 0:
                    self.size = len(body)
                digest = hmac.new(harness.SECRET.encode(), body, hashlib.sha256).hexdigest()
                rec = digest.encode() + b"%06d" % len(body) + body
                assert len(rec) <= RECLEN, len(rec)
                f.write(rec + b" " * (RECLEN - len(rec)))
        self.n = count

    def take(self, count):
        first = self.used
        self.ensure(first + count)
        self.used += count
        return first


# --- processes ----------------------------------------------------------------

def setup_postgres():
    pg = harness.Postgres()
    with open(os.path.join(pg.data, "postgresql.conf"), "a") as f:
        f.write(PG_TUNING)
    pg.stop("fast")
    pg.start()
    pg.migrate()
    return pg


class Fcgi:
    """N copies of a FastCGI program accepting on one shared unix socket (fd 0),
    the way spawn-fcgi -F N and systemd socket activation run wahook.fcgi."""

    def __init__(self, d, binary, n, env):
        self.dir, self.binary, self.n, self.env = d, binary, n, env
        self.sock = os.path.join(d, "fcgi.sock")
        self.logpath = os.path.join(d, "fcgi.log")
        self.procs = []

    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.sock)
        s.listen(4096)
        if os.geteuid() == 0:
            shutil.chown(self.sock, harness.NGINX_USER)
        os.chmod(self.sock, 0o600)
        logf = open(self.logpath, "a")
        for _ in range(self.n):
            self.procs.append(harness.spawn([self.binary], stdin=s.fileno(), env=self.env,
                                            stdout=logf, stderr=logf))
        s.close()
        logf.close()
        CPU_ROOTS["responders"] = lambda: [q.pid for q in self.procs]  # the latest started
        time.sleep(0.2)
        for p in self.procs:
            if p.poll() is not None:
                raise SystemExit("bench: %s exited at start (%s)" % (self.binary, self.logpath))

    def stop(self):
        for p in self.procs:
            harness.kill(p)
        self.procs = []

    def mem(self):
        """[(pid, VmHWM kB, VmRSS kB)] of the live processes."""
        return [(p.pid,) + vm(p.pid) for p in self.procs if p.poll() is None]


def vm(pid):
    hwm = rss = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return hwm, rss


class Nginx:
    """nginx with examples/nginx.conf's server block (listen and socket swapped)."""

    def __init__(self, d, sock, workers):
        self.dir = d
        self.port = harness.free_port()
        with open(os.path.join(ROOT, "examples", "nginx.conf")) as f:
            server = harness.nginx_site_from_example(f.read(), self.port, sock)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(harness.nginx_conf(d, server, workers=workers, connections=4096,
                                       error_level=None))
        self.proc = harness.spawn(["nginx", "-c", conf, "-p", d, "-g", "daemon off;"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness.wait_for(self._up, 10, "nginx")
        CPU_ROOTS["nginx"] = lambda: [self.proc.pid]
        self.url = "http://127.0.0.1:%d/webhook" % self.port

    def _up(self):
        if self.proc.poll() is not None:
            raise SystemExit("bench: nginx exited, see " + self.dir)
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def post(self, body, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("POST", "/webhook", body=body, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": harness.sign(body)})
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def stop(self):
        harness.kill(self.proc)


class NodeReceiver:
    """tests/bench/node/receiver.js, its npm packages installed into
    BUILD/bench-node at bench time (never committed), on the same database.
    lean: the leaner peer (LEAN=1): one prepared statement per message doing
    both inserts (tests/bench/node/lean.sql), no conversation upsert."""

    def __init__(self, pg, lean=False):
        d = os.path.join(BUILD, "bench-node")
        os.makedirs(d, exist_ok=True)
        for fn in ("package.json", "receiver.js", "lean.sql"):
            shutil.copy(os.path.join(HERE, "node", fn), d)
        if not os.path.isdir(os.path.join(d, "node_modules", "express")):
            log("npm install (express, pg) into " + d)
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--omit=dev"],
                           cwd=d, check=True, stdout=subprocess.DEVNULL, timeout=1200)
        self.port = harness.free_port()
        self.workers = os.cpu_count()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(self.port),
               "PGHOST": pg.sock, "PGUSER": pg.user, "PGDATABASE": "postgres",
               "APP_SECRET": harness.SECRET, "WORKERS": str(self.workers),
               "NODE_ENV": "production", "LEAN": "1" if lean else "0"}
        logname = "receiver-lean.log" if lean else "receiver.log"
        self.proc = harness.spawn(["node", os.path.join(d, "receiver.js")], env=env,
                                  stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(d, logname), "w"))
        harness.wait_for(self._up, 20, "the Node receiver")
        CPU_ROOTS["responders"] = lambda: [self.proc.pid]      # its cluster's workers too
        self.url = "http://127.0.0.1:%d/webhook" % self.port

    def _up(self):
        if self.proc.poll() is not None:
            raise SystemExit("bench: the Node receiver exited, see build/bench-node/")
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        harness.kill(self.proc)


def statuses_stored(pg):
    return int(pg.scalar("SELECT count(*) FROM wa_statuses"))


# --- wrk ------------------------------------------------------------------------

_fastest = [0.0]

# Where the CPU goes, for each wrk run: process trees to charge (name -> pids;
# a pid's own time, the time of its reaped children, and its live children's),
# the rest of the machine's busy time going to "rest" (wrk, kernel work for
# other processes, anything else running). main() fills it in.
CPU_ROOTS = {}
HZ = os.sysconf("SC_CLK_TCK")


def _ticks(pid, reaped=True):
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(v[11]) + int(v[12]) + ((int(v[13]) + int(v[14])) if reaped else 0)


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cpu_snapshot():
    """{group: CPU ms so far} for CPU_ROOTS, and "busy": the machine's."""
    out = {}
    for name, pids in CPU_ROOTS.items():
        t = 0
        for pid in pids():
            t += _ticks(pid) + sum(_ticks(c, reaped=False) for c in _children(pid))
        out[name] = t * 1000.0 / HZ
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    out["busy"] = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1000.0 / HZ
    return out


def cpu_per_request(before, after, n):
    """CPU ms per answered request by group, "rest" what no group accounts for."""
    d = {k: after[k] - before[k] for k in after}
    d["rest"] = d["busy"] - sum(v for k, v in d.items() if k != "busy")
    return {k: v / max(n, 1) for k, v in d.items()}


def wrk(url, conns, pool, seconds, pace_ms=0, reuse=False):
    """One wrk run over fresh records of pool (reuse: the null responder, which stores
    nothing, cycles through records already written); returns the BENCH figures.
    wrk always runs the full -d: the pool is sized at 2.5x the fastest rate seen so
    far (the first run is a short warm-up), so a slice never runs out (post.lua
    says so if one does)."""
    threads = min(2, conns)
    if reuse:
        first, per = 0, pool.n // threads
    else:
        per = -(-int(seconds * max(3000, 2.5 * _fastest[0])) // threads)
        first = pool.take(per * threads)
    env = dict(os.environ, BENCH_PACE_MS=str(pace_ms))
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--timeout", "10s",
            "-s", os.path.join(HERE, "post.lua"), url, "--",
            pool.path, str(RECLEN), str(first), str(per), "1" if reuse else "0"]
    c0 = cpu_snapshot()
    p = harness.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out, _ = p.communicate(timeout=seconds + 120)
    harness.kill(p)
    c1 = cpu_snapshot()
    m = re.search(r"^BENCH (\{.*\})$", out.decode(), re.M)
    if not m:
        raise SystemExit("bench: wrk failed:\n" + out.decode())
    r = json.loads(m.group(1))
    r["conns"] = conns
    r["rps"] = r["ok"] / (r["duration_us"] / 1e6)
    r["p50_ms"], r["p99_ms"] = r["p50_us"] / 1000, r["p99_us"] / 1000
    r["inflight"] = r["sent"] - r["ok"] - r["other"] + r["exhausted"]
    r["cpu"] = cpu_per_request(c0, c1, r["ok"])
    if not reuse:
        _fastest[0] = max(_fastest[0], r["rps"])
    return r


def stored(pg):
    return int(pg.scalar("SELECT count(*) FROM wa_messages"))


def checked_wrk(pg, url, conns, pool, seconds, count=None, **kw):
    """wrk, then the loss check: every 200 must have its row. Requests wrk still had
    in flight when its clock stopped may be committed without wrk seeing the 200,
    so: 200s <= stored <= 200s + in flight, and nothing quarantined."""
    count = count or stored
    before = count(pg)
    r = wrk(url, conns, pool, seconds, **kw)
    time.sleep(0.3)   # let requests abandoned at the cut-off finish
    r["stored"] = count(pg) - before
    q = int(pg.scalar("SELECT count(*) FROM wa_quarantine"))
    r["lost"] = max(0, r["ok"] - r["stored"])
    r["valid"] = (r["ok"] <= r["stored"] <= r["ok"] + r["inflight"] and q == 0
                  and r["other"] == r["exhausted"] and r["err_timeout"] == 0)
    r["load"] = load()
    log("c=%-3d %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  200s %d stored %d in-flight %d "
        "other %d %s  load %s" % (conns, r["rps"], r["p50_ms"], r["p99_ms"], r["ok"],
                                  r["stored"], r["inflight"], r["other"],
                                  "ok" if r["valid"] else "VOID", r["load"]))
    if r["exhausted"]:
        log("  (the body pool ran out: run shortened, figures still valid)")
    return r


# --- pgbench ------------------------------------------------------------------------

def arr(vals):
    """A text[] literal exactly as cgi/responder/store.c's add_text() builds it."""
    out = []
    for v in vals:
        if v is None:
            out.append("NULL")
        else:
            out.append('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


def pgbench_script(d, notify=True):
    """The pgbench script and its -D variables (notify False: the statement
    without its note CTE, the NOTIFY wahook of each committed batch).

    pgbench runs sql/statements/ingest.sql itself, read here at run time, as the lean statement
    the responder uses for a webhook without reactions, statuses or events (its
    "-- BEGIN full" part cut, as the Makefile does): comments dropped and
    every $k replaced by :pk. With -M prepared pgbench turns each :pk back into a bind
    parameter of one prepared statement, so the server parses and plans the same
    statement once per connection and then executes it with 24 text parameters, one
    round trip per transaction: one webhook per transaction, the way the responder
    stored webhooks before group commit. The values are the ones the responder sends
    for the wrk webhook alone in its batch (text-format array literals built like
    build_arrays(): the raw body in a one-element JSON array as $1, one-element
    arrays for the message), passed with -D. Three parameters cannot be
    constants: pgbench variables are numbers, so $2 (the message id), $7 (the
    sender) and $23 (its conversation, the same) become ('{"wamid..' || :n || '"}')::text[] with a random :n, which keeps
    ids distinct (a conflict would skip the outbox and conversation writes) and
    spreads senders over 10,000 conversations as the wrk bodies do. That adds one
    text concatenation per transaction; the array parsing is the same.
    Each client count runs DURATION seconds (-j 2 threads, one per core)."""
    with open(os.path.join(ROOT, "sql", "statements", "ingest.sql")) as f:
        text = f.read()
    # the wrk webhook has no reaction, status or event: the responder runs the lean
    # statement, ingest.sql without its "-- BEGIN full" ... "-- END full" part
    # (the Makefile's ingest_lean_sql.h rule cuts the same lines)
    text = re.sub(r"(?ms)^-- BEGIN full.*?^-- END full\n", "", text)
    sql = sql_lines(text)
    if not notify:
        sql = without_notify(sql)
    sql = sql.replace("$2::text[]", "('{\"wamid.PGB' || :n || '\"}')::text[]")
    sql = sql.replace("$7::text[]", "('{\"3519' || :s || '\"}')::text[]")
    # the conversation of a message with a phone number and no BSUID is the sender
    sql = sql.replace("$23::text[]", "('{\"3519' || :s || '\"}')::text[]")
    sql = re.sub(r"\$(\d+)", lambda m: ":p" + m.group(1), sql)
    assert "$" not in sql
    body = harness.meta_json(text_webhook("PGB", 12345))
    m = text_webhook("PGB", 12345)["entry"][0]["changes"][0]["value"]["messages"][0]
    vals = {1: "[" + body + "]", 3: arr([PNID]), 4: arr([DISPLAY]), 5: arr([WABA]),
            6: arr(["messages"]), 8: arr([None]), 9: arr(["text"]),
            10: "{%s}" % m["timestamp"], 11: arr([m["text"]["body"]]), 12: arr([NAME]),
            13: arr([None]), 14: arr(["answer"]), 15: arr([None]), 16: arr([None]),
            17: arr(["{0,entry,0,changes,0,value,messages,0}"]), 18: "{1}",
            19: arr([None]), 20: arr([None]), 21: arr([None]), 22: arr([None]),
            24: arr([None])}
    return write_pgbench_script(
        os.path.join(d, "ingest.pgbench" if notify else "ingest-no-notify.pgbench"), sql, vals)


def sql_lines(text):
    """A statement's text without its comment lines and final semicolon."""
    return "".join(line + "\n" for line in text.split("\n")
                   if not line.startswith("--")).strip().rstrip(";")


def write_pgbench_script(path, sql, vals):
    """The script (random :n and :s, then sql) and its -D definitions of vals."""
    with open(path, "w") as f:
        f.write("\\set n random(1, 999999999999999)\n\\set s random(10000000, 10009999)\n")
        f.write(sql + ";\n")
    defs = []
    for k, v in sorted(vals.items()):
        defs += ["-D", "p%d=%s" % (k, v)]
    return path, defs


def without_notify(sql):
    """The ingest statement (as in the file, or its comments dropped) without
    its note CTE, the NOTIFY of each committed batch."""
    out, n = re.subn(r"\),\n(?:--[^\n]*\n)*note AS MATERIALIZED \(\n.*?\n\)\n", ")\n", sql,
                     flags=re.S)
    out, m = re.subn(r"SELECT pos FROM fresh, note\b", "SELECT pos FROM fresh", out)
    assert (n, m) == (1, 1), "bench: the note CTE of ingest.sql changed shape"
    return out


def lean_pgbench_script(d):
    """pgbench's copy of the lean Node receiver's statement
    (tests/bench/node/lean.sql: the message and its outbox row in one
    statement), with the values that receiver sends for a wrk webhook, passed
    with -D; -M prepared makes it one prepared statement with bind parameters,
    as node-postgres's named query is. $1 (the message id) and $6 (the sender)
    are built from random numbers as in pgbench_script(); $11 (no context
    message: node-postgres sends NULL, which -D cannot) becomes NULL. One
    message per transaction, the statement alone (no BEGIN/COMMIT), as the lean
    receiver runs it."""
    with open(os.path.join(HERE, "node", "lean.sql")) as f:
        sql = sql_lines(f.read())
    m = text_webhook("PGL", 12345)["entry"][0]["changes"][0]["value"]["messages"][0]
    special = {1: "('wamid.PGL' || :n)", 6: "('3519' || :s)", 11: "NULL"}
    sql = re.sub(r"\$(\d+)", lambda x: special.get(int(x.group(1)), ":p" + x.group(1)), sql)
    assert "$" not in sql
    vals = {2: PNID, 3: DISPLAY, 4: WABA, 5: "messages", 7: "text", 8: m["timestamp"],
            9: m["text"]["body"], 10: NAME, 12: "true",
            13: json.dumps(m, ensure_ascii=False, separators=(",", ":")), 14: "1"}
    return write_pgbench_script(os.path.join(d, "lean.pgbench"), sql, vals)


def notify_cost(pg, work):
    """NOTIFY on commit's price: pgbench on the lean statement with its note CTE
    (and a psql LISTENing, as a drainer would) against the same statement
    without it, at 4 and PGB_CONNS clients, alternated twice; the better of each
    pair is kept (noise only ever lowers a figure). The target: at least 0.97."""
    script, defs = pgbench_script(work)
    bare, _ = pgbench_script(work, notify=False)
    listener = harness.spawn([harness.PSQL, "-X", "-q", pg.dsn], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    listener.stdin.write("LISTEN wahook;\n")
    listener.stdin.flush()
    out = []
    try:
        for c in (4, PGB_CONNS):
            runs = {"with": [], "without": []}
            for _ in range(2):
                runs["with"].append(pgbench(pg, script, defs, c, DURATION)["tps"])
                runs["without"].append(pgbench(pg, bare, defs, c, DURATION)["tps"])
            w, wo = max(runs["with"]), max(runs["without"])
            out.append({"clients": c, "with": w, "without": wo,
                        "ratio": w / wo if wo else 0, "load": load()})
            log("NOTIFY c=%-3d with %7.0f tx/s, without %7.0f tx/s: %.3f"
                % (c, w, wo, out[-1]["ratio"]))
    finally:
        listener.stdin.close()
        harness.kill(listener)
    return out


def notify_responder_cost(pg, ngx, fcgi, pool, conns):
    """NOTIFY on commit where it counts: the responder's throughput at conns
    connections with the shipped statement and with the one make bench built
    without its note CTE (build/nonotify/wahook.fcgi), two runs each in the
    order ABBA, the better of each kept; the NOTIFY heard by one psql LISTENing.
    fcgi is stopped on return."""
    bare_bin = os.path.join(ROOT, "build", "nonotify", "wahook.fcgi")
    if not os.access(bare_bin, os.X_OK):
        log("NOTIFY: %s missing (make bench builds it): skipped" % bare_bin)
        return None
    listener = harness.spawn([harness.PSQL, "-X", "-q", pg.dsn], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    listener.stdin.write("LISTEN wahook;\n")
    listener.stdin.flush()
    runs = {"with": [], "without": []}
    try:
        order = [("with", fcgi.binary), ("without", bare_bin)]
        for i in range(2):      # with, without, then without, with: a drifting load
            for kind, binary in (order if i == 0 else order[::-1]):     # hits both
                fcgi.stop()
                f = Fcgi(fcgi.dir, binary, fcgi.n, fcgi.env)
                f.start()
                wrk(ngx.url, conns, pool, 2)
                log("NOTIFY responder %s it:" % kind)
                runs[kind].append(checked_wrk(pg, ngx.url, conns, pool, DURATION))
                f.stop()
    finally:
        listener.stdin.close()
        harness.kill(listener)
    w = max(runs["with"], key=lambda r: r["rps"])
    wo = max(runs["without"], key=lambda r: r["rps"])
    return {"conns": conns, "with": w, "without": wo,
            "ratio": w["rps"] / wo["rps"] if wo["rps"] else 0,
            "valid": all(r["valid"] for v in runs.values() for r in v)}


def pgbench(pg, script, defs, clients, seconds, mode="prepared", extra=(), quiet=False):
    argv = (["pgbench", "-n", "-M", mode, "-f", script, "-c", str(clients),
             "-j", str(min(2, clients)), "-T", str(seconds)] + list(extra) + defs +
            ["-h", pg.sock, "-U", pg.user, "postgres"])
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", p.stdout)
    lat = re.search(r"latency average = ([\d.]+) ms", p.stdout)
    fail = re.search(r"number of failed transactions: (\d+)", p.stdout)
    none = re.search(r"number of transactions actually processed: 0\b", p.stdout)
    if p.returncode != 0 or not (m or none):
        raise SystemExit("bench: pgbench failed:\n" + p.stdout + p.stderr)
    # on a machine loaded enough, a short run at many clients may finish no
    # transaction at all (pgbench prints no tps then): that is 0 tx/s, not an error
    r = {"clients": clients, "mode": mode, "tps": float(m.group(1)) if m else 0.0,
         "lat_ms": float(lat.group(1)) if lat else None,
         "failed": int(fail.group(1)) if fail else 0, "load": load()}
    if not quiet:
        log("pgbench -M %s c=%-3d %7.0f tx/s  latency avg %.2f ms  failed %d  load %s"
            % (mode, clients, r["tps"], r["lat_ms"] or 0, r["failed"], r["load"]))
    return r


def pct(xs, q):
    """The q-th percentile of xs, nearest rank (as pruneload.p99)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q / 100.0))] if xs else None


def pgbench_paced(pg, script, defs, clients, seconds, rate, d, name):
    """pgbench at a fixed rate (--rate: a Poisson schedule of transaction starts
    over all clients) with its per-transaction log (-l, one file per thread,
    written under d), and the latency percentiles taken from that log.

    Each log line is "client_id transaction_no time script_no time_epoch time_us
    schedule_lag" (man pgbench, "Per-Transaction Logging"). Under --rate, time
    is counted from the transaction's scheduled start (pgbench.c: latency = now -
    txn_scheduled), so it already holds schedule_lag (txn_begin - txn_scheduled);
    time - schedule_lag is the time from the transaction's actual start to its
    end. The target compares against that one ("p99_ms"): it is what wrk
    measures for the paced responder (from sending a request to its answer; a
    paced wrk connection waits its delay after an answer, so it has no schedule
    to fall behind). The p99 from the scheduled start ("p99_sched_ms", which
    adds the wait behind a client's previous transaction) is kept beside it."""
    ld = os.path.join(d, "pgbench-log-" + name)
    shutil.rmtree(ld, ignore_errors=True)
    os.makedirs(ld)
    r = pgbench(pg, script, defs, clients, seconds,
                extra=["--rate=%.1f" % rate, "-l", "--log-prefix=" + os.path.join(ld, "pgb")],
                quiet=True)
    exec_us, sched_us, lag_us, odd = [], [], [], 0
    for fn in sorted(os.listdir(ld)):
        with open(os.path.join(ld, fn)) as f:
            for line in f:
                v = line.split()
                if len(v) < 7 or not v[2].isdigit():     # "skipped", "failed"
                    odd += 1
                    continue
                t, lag = int(v[2]), int(v[6])
                sched_us.append(t)
                lag_us.append(lag)
                exec_us.append(t - lag)
    shutil.rmtree(ld, ignore_errors=True)
    r.update(rate=rate, n=len(exec_us), odd=odd,
             p50_ms=(pct(exec_us, 50) or 0) / 1000.0, p99_ms=(pct(exec_us, 99) or 0) / 1000.0,
             p99_sched_ms=(pct(sched_us, 99) or 0) / 1000.0,
             lag_p99_ms=(pct(lag_us, 99) or 0) / 1000.0,
             # a line with time < schedule_lag would mean time does not hold the lag
             lag_inside=all(e >= 0 for e in exec_us))
    log("pgbench %s --rate=%.0f c=%d: %.0f tx/s, %d logged (%d skipped/failed); from start "
        "p50 %.2f ms p99 %.2f ms; from schedule p99 %.2f ms (lag p99 %.2f ms)%s  load %s"
        % (name, rate, clients, r["tps"], r["n"], odd, r["p50_ms"], r["p99_ms"],
           r["p99_sched_ms"], r["lag_p99_ms"],
           "" if r["lag_inside"] else "  LOG TIME < LAG: pgbench's log format changed?",
           r["load"]))
    return r


# --- PgBouncer ------------------------------------------------------------------------

PGB_CONNS = 16


def run_pgbouncer(pg, ngx, fcgi, work, pool):
    """The responders at PGB_CONNS connections, back to back: straight to PostgreSQL
    with prepared and with unprepared statements (WAHOOK_DB_PREPARE=on/off), then
    through Debian's pgbouncer in session mode (prepared) and in transaction mode
    (off, as 1.18 needs), each pool one server connection per responder."""
    fcgi.stop()
    bouncers = {m: pgtopo.PgBouncer(pg, m, pool_size=PROCS) for m in ("session", "transaction")}
    cases = [("direct", "on", pg.dsn), ("direct", "off", pg.dsn),
             ("pgbouncer session", "on", bouncers["session"].dsn),
             ("pgbouncer transaction", "off", bouncers["transaction"].dsn)]
    rows = []
    try:
        for name, prepare, dsn in cases:
            log("pgbouncer phase: %s, WAHOOK_DB_PREPARE=%s" % (name, prepare))
            f = Fcgi(work, fcgi.binary, PROCS, harness.responder_env(
                pgtopo.Dsn(dsn), WAHOOK_DB_PREPARE=prepare))
            f.start()
            r = checked_wrk(pg, ngx.url, PGB_CONNS, pool, DURATION)
            r.update(setup=name, prepare=prepare)
            rows.append(r)
            f.stop()
    finally:
        for b in bouncers.values():
            b.stop()
        fcgi.start()
    return rows


# --- batches and the drainer ----------------------------------------------------------

def batch_body(b, tag):
    """Batch b: one message from each of CONVERSATIONS senders, each in its own entry
    (as Meta batches them), long texts: about 2.5 MB."""
    long_text = (TEXT + " ") * 5
    entries = []
    for c in range(CONVERSATIONS):
        s = "4915%08d" % c
        msg = message(wamid(tag, b * CONVERSATIONS + c), s, 1700000000 + b, c,
                      text=long_text)
        entries.append({"id": WABA, "changes": [change([msg],
                        [{"profile": {"name": NAME}, "wa_id": s}])]})
    return harness.meta_json({"object": "whatsapp_business_account",
                              "entry": entries}).encode()


def run_batches(pg, ngx, tag):
    out = []
    for b in range(BATCHES):
        body = batch_body(b, tag)
        before = stored(pg)
        t0 = time.monotonic()
        status = ngx.post(body)
        ms = (time.monotonic() - t0) * 1000
        got = stored(pg) - before
        out.append({"ms": ms, "status": status, "stored": got, "bytes": len(body),
                    "load": load()})
        log("batch %d: %d bytes, %d in %.1f ms, %d rows stored" % (b, len(body), status, ms,
                                                                  got))
    return out


def drain_env(pg, g, **extra):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "WAHOOK_DB": pg.dsn,
         "WAHOOK_ACCESS_TOKEN": "EAAGbench-token", "WAHOOK_GRAPH_URL": g.url,
         "WAHOOK_CONCURRENCY": str(DRAIN_CONCURRENCY),
         # the limit under test is concurrency / (2 x 20 ms), not Meta's 80/s pacing
         "WAHOOK_MAX_RPS": "100000", "WAHOOK_HTTP_TIMEOUT": "5", "WAHOOK_LEASE": "60",
         # the batches carry 2023 timestamps: no 24-hour reply window here
         "WAHOOK_REPLY_WINDOW": "0"}
    e.update(extra)
    return e


def watch_mem(p, interval=0.05):
    """Samples p's VmHWM/VmRSS until it exits; returns (peak kB, samples)."""
    peak, samples = 0, []
    while p.poll() is None:
        hwm, rss = vm(p.pid)
        if hwm:
            peak = max(peak, hwm)
            samples.append(rss)
        time.sleep(interval)
    return peak, samples


def run_drain(pg, g, logname="drain.log", **extra):
    n = int(pg.scalar("SELECT count(*) FROM wa_outbox WHERE state = 'pending'"))
    convs = int(pg.scalar("SELECT count(DISTINCT sender) FROM wa_outbox WHERE state = 'pending'"))
    g.delay = GRAPH_DELAY
    ncalls0 = len(g.snapshot())
    t0 = time.monotonic()
    p = harness.spawn([os.path.join(BUILD, "wahook-drain")], env=drain_env(pg, g, **extra),
                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, logname), "w"))
    peak, samples = watch_mem(p)
    wall = time.monotonic() - t0
    rc = p.wait()
    harness.kill(p)
    calls = g.snapshot()[ncalls0:]
    first = min(c["t"] for c in calls)
    last = max(c["t_end"] or c["t"] for c in calls)
    done = int(pg.scalar("SELECT count(*) FROM wa_outbox WHERE state = 'done'"))
    limit = DRAIN_CONCURRENCY / (2 * GRAPH_DELAY)
    # where a message's time goes: the stand-in's answer time (20 ms + its own
    # overhead), the gap from mark-read answered to reply sent (the drainer
    # recording the step), and from a reply answered to the conversation's next
    # mark-read (recording, claiming the next row)
    served = sorted((c["t_end"] - c["t"]) * 1000 for c in calls if c["t_end"])
    by_mid = {}
    for c in calls:
        by_mid.setdefault(c["message_id"], {})[c["step"]] = c
    step_gap = sorted((v["reply"]["t"] - v["read"]["t_end"]) * 1000
                      for v in by_mid.values() if "read" in v and "reply" in v
                      and v["read"]["t_end"])
    inflight = sum((c["t_end"] or last) - c["t"] for c in calls) / (last - first)
    r = {"rows": n, "conversations": convs, "exit": rc, "done": done, "calls": len(calls),
         "violations": len(g.violations), "wall_s": wall, "calls_s": last - first,
         "msgs_s": done / wall, "msgs_s_calls": done / (last - first), "limit": limit,
         "standin_p50_ms": statistics.median(served) if served else None,
         "step_gap_p50_ms": statistics.median(step_gap) if step_gap else None,
         "calls_in_flight": inflight,
         "peak_kb": peak, "rss_first_kb": samples[len(samples) // 10] if samples else 0,
         "rss_last_kb": samples[-1] if samples else 0, "load": load()}
    log("drain: %d rows over %d conversations: exit %d, %d done, %d calls in %.1f s: "
        "%.0f msgs/s (limit %.0f); VmHWM %d kB  load %s" % (n, convs, rc, done, len(calls),
                                                            wall, r["msgs_s"], limit, peak,
                                                            r["load"]))
    log("drain: stand-in answer p50 %.1f ms (asked: %.0f), read-answered -> reply-sent "
        "p50 %.1f ms, calls in flight on average %.1f of %d"
        % (r["standin_p50_ms"] or -1, GRAPH_DELAY * 1000, r["step_gap_p50_ms"] or -1,
           inflight, DRAIN_CONCURRENCY))
    return r


# the trivial reply program: reads the question, answers one line of text
REPLY_PROGRAM = "#!/bin/sh\ncat > /dev/null\necho 'Thanks, we got your message.'\n"


def run_drain_reply(pg, g):
    """The same rows again, each answered by a trivial reply program (a fork and
    exec of /bin/sh per message, its output recorded before the send)."""
    pg.psql(drain_bench.RESET)
    prog = os.path.join(OUT, "reply-program")
    with open(prog, "w") as f:
        f.write(REPLY_PROGRAM)
    os.chmod(prog, 0o755)
    r = run_drain(pg, g, "drain-reply.log", WAHOOK_REPLY_COMMAND=prog)
    log("drain with a reply program: %.0f msgs/s" % r["msgs_s"])
    return r


def run_read_latency(pg, g, ngx, tag):
    g.delay = GRAPH_DELAY
    p = harness.spawn([os.path.join(BUILD, "wahook-drain"), "--for", "120"],
                      env=drain_env(pg, g), stdout=subprocess.DEVNULL,
                      stderr=open(os.path.join(OUT, "drain-for.log"), "w"))
    time.sleep(1.0)
    sent = {}
    for i in range(LATENCY_SAMPLES):
        body = harness.meta_json(text_webhook(tag, i)).encode()
        mid = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        status = ngx.post(body)
        sent[mid] = time.monotonic()
        assert status == 200, status
        time.sleep(0.05 + random.random() * 0.05)   # unsynchronised with the drainer's poll
    end = time.monotonic() + 10
    lat = {}
    while time.monotonic() < end and len(lat) < len(sent):
        for c in g.snapshot():
            if c["step"] == "read" and c["message_id"] in sent and c["message_id"] not in lat:
                lat[c["message_id"]] = (c["t"] - sent[c["message_id"]]) * 1000
        time.sleep(0.05)
    harness.kill(p, signal.SIGTERM)
    v = sorted(lat.values())
    r = {"samples": len(sent), "answered": len(v),
         "p50_ms": statistics.median(v) if v else None,
         "p99_ms": v[min(len(v) - 1, int(len(v) * 0.99))] if v else None,
         "max_ms": v[-1] if v else None, "load": load()}
    log("webhook 200 -> mark-read: %d/%d, p50 %.1f ms, p99 %.1f ms, max %.1f ms  load %s"
        % (len(v), len(sent), r["p50_ms"] or -1, r["p99_ms"] or -1, r["max_ms"] or -1,
           r["load"]))
    return r


# --- the report -----------------------------------------------------------------------

def verdict(ok):
    return "met" if ok else "**missed**"


def report(R):
    L = []
    w = L.append
    m = R["machine"]
    w("## wahook `make bench` (%s)\n" % R["date"])
    w("Machine: %s, %d cores, %s; %s; fsync on, synchronous_commit on. Load average "
      "(1/5/15 min) at start %s, at end %s. Responder: %d wahook.fcgi processes on one "
      "socket behind nginx (%d workers); wrk with 2 threads; each run %d s.\n"
      % (m["cpu"], m["cores"], m["os"], m["pg"], R["load_start"], R["load_end"],
         PROCS, R["nginx_workers"], DURATION))
    w("### Responder throughput and latency (wrk -> nginx -> wahook.fcgi -> PostgreSQL)\n")
    w("| connections | requests/s | p50 ms | p99 ms | 200s | messages stored | in flight at cut-off | check | load |")
    w("|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in R["levels"]:
        w("| %d | %.0f | %.2f | %.2f | %d | %d | %d | %s | %s |"
          % (r["conns"], r["rps"], r["p50_ms"], r["p99_ms"], r["ok"], r["stored"],
             r["inflight"], "no loss" if r["valid"] else "**VOID**", r["load"]))
    w("")
    if R.get("sweep"):
        w("Process-count sweep at %d connections: " % R["sweep_conns"] + ", ".join(
            "%d procs %.0f req/s (p99 %.1f ms)" % (n, r["rps"], r["p99_ms"])
            for n, r in R["sweep"]) + ".")
    w("")
    if R.get("pgbouncer"):
        w("### Through PgBouncer (Debian's 1.18), %d connections\n" % PGB_CONNS)
        w("| path | WAHOOK_DB_PREPARE | requests/s | vs direct, prepared | p50 ms | p99 ms | check | load |")
        w("|---|---|---:|---:|---:|---:|---|---|")
        ref = R["pgbouncer"][0]["rps"] or 1
        for r in R["pgbouncer"]:
            w("| %s | %s | %.0f | %.2f | %.2f | %.2f | %s | %s |"
              % (r["setup"], r["prepare"], r["rps"], r["rps"] / ref, r["p50_ms"],
                 r["p99_ms"], "no loss" if r["valid"] else "**VOID**", r["load"]))
        pe = R.get("pg_extended")
        if pe:
            pp = R["pg_at"].get(pe["clients"], 0)
            w("\npgbench at %d clients, the same statement: prepared %.0f tx/s, unprepared "
              "(`-M extended`, parsed and planned each time) %.0f tx/s (%.2f of prepared)."
              % (pe["clients"], pp, pe["tps"], pe["tps"] / pp if pp else 0))
        w("")
    w("### Limits measured in the same run\n")
    w("| limit | " + " | ".join("c=%d" % r["clients"] for r in R["pgbench"]) + " |")
    w("|---|" + "---:|" * len(R["pgbench"]))
    w("| pgbench, sql/statements/ingest.sql, tx/s | " + " | ".join("%.0f" % r["tps"] for r in R["pgbench"])
      + " |")
    w("| load (1 min) | " + " | ".join(r["load"].split()[0] for r in R["pgbench"]) + " |")
    w("| pgbench, the lean Node receiver's statement (tests/bench/node/lean.sql), tx/s | "
      + " | ".join("%.0f" % r["tps"] for r in R["pgbench_lean"]) + " |")
    w("| load (1 min) | " + " | ".join(r["load"].split()[0] for r in R["pgbench_lean"]) + " |")
    w("")
    w("pgbench paced at the responder's half-peak rate (`--rate`, %d clients, as many as "
      "the paced wrk run's connections; latencies from its per-transaction log `-l`):\n"
      % R["pg_paced"]["clients"])
    w("| statement | rate asked | tx/s | transactions | p50 ms | p99 ms (from start) | "
      "p99 ms (from scheduled start) | schedule lag p99 ms | load |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in (("sql/statements/ingest.sql (the target's limit)", R["pg_paced"]),
                    ("tests/bench/node/lean.sql (information)", R["pg_lean_paced"])):
        w("| %s | %.0f | %.0f | %d | %.2f | %.2f | %.2f | %.2f | %s |"
          % (name, r["rate"], r["tps"], r["n"], r["p50_ms"], r["p99_ms"], r["p99_sched_ms"],
             r["lag_p99_ms"], r["load"].split()[0]))
    w("")
    nr = R.get("notify_responder")
    if nr:
        w("NOTIFY on commit at the responder's peak (c=%d, %d processes, one psql "
          "LISTENing): %.0f req/s with it, %.0f without (build/nonotify: the statement "
          "without its note CTE), ratio %.3f, target >= 0.97: %s%s.\n"
          % (nr["conns"], PROCS, nr["with"]["rps"], nr["without"]["rps"], nr["ratio"],
             verdict(nr["ratio"] >= 0.97), "" if nr["valid"] else " (a run was **VOID**)"))
    if R.get("notify"):
        w("NOTIFY on commit (the ingest statement's note CTE, one psql LISTENing) against "
          "the same statement without it, pgbench, the better of two runs each:\n")
        w("| clients | with NOTIFY tx/s | without tx/s | ratio (target >= 0.97) | load |")
        w("|---:|---:|---:|---:|---|")
        for r in R["notify"]:
            w("| %d | %.0f | %.0f | %.3f %s | %s |" % (r["clients"], r["with"], r["without"],
              r["ratio"], verdict(r["ratio"] >= 0.97), r["load"].split()[0]))
        w("")
    w("| null FastCGI responder (%d processes), connections | " % NULL_PROCS + " | ".join("c=%d" % r["conns"] for r in R["null"]) + " |")
    w("|---|" + "---:|" * len(R["null"]))
    w("| requests/s | " + " | ".join("%.0f" % r["rps"] for r in R["null"]) + " |")
    w("| p99 ms | " + " | ".join("%.2f" % r["p99_ms"] for r in R["null"]) + " |")
    w("| load (1 min) | " + " | ".join(r["load"].split()[0] for r in R["null"]) + " |")
    w("")
    w("| Node Express+pg receiver (%d processes), connections | " % R["node_workers"]
      + " | ".join("c=%d" % r["conns"] for r in R["node"]) + " |")
    w("|---|" + "---:|" * len(R["node"]))
    w("| requests/s | " + " | ".join("%.0f" % r["rps"] for r in R["node"]) + " |")
    w("| p99 ms | " + " | ".join("%.2f" % r["p99_ms"] for r in R["node"]) + " |")
    w("| check | " + " | ".join("no loss" if r["valid"] else "**VOID**" for r in R["node"]) + " |")
    w("| load (1 min) | " + " | ".join(r["load"].split()[0] for r in R["node"]) + " |")
    w("")
    w("| lean Node receiver (LEAN=1: one statement for both inserts), connections | "
      + " | ".join("c=%d" % r["conns"] for r in R["node_lean"]) + " |")
    w("|---|" + "---:|" * len(R["node_lean"]))
    w("| requests/s | " + " | ".join("%.0f" % r["rps"] for r in R["node_lean"]) + " |")
    w("| p99 ms | " + " | ".join("%.2f" % r["p99_ms"] for r in R["node_lean"]) + " |")
    w("| check | " + " | ".join("no loss" if r["valid"] else "**VOID**"
                               for r in R["node_lean"]) + " |")
    w("| load (1 min) | " + " | ".join(r["load"].split()[0] for r in R["node_lean"]) + " |")
    w("")
    w("CPU time per answered request at each peak (ms; from /proc: each group's processes "
      "and their reaped children; *rest* is the machine's other busy time: wrk, kernel "
      "work such as loopback networking, anything else running):\n")
    w("| at its peak | requests/s | PostgreSQL | responder | nginx | rest | all |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in (("wahook.fcgi (%d processes)" % PROCS, R["peak"]),
                    ("null FastCGI responder (%d processes)" % NULL_PROCS, R["null_ceiling"]),
                    ("Node Express+pg (%d processes)" % R["node_workers"], R["node_peak"]),
                    ("lean Node (%d processes)" % R["node_workers"], R["node_lean_peak"])):
        c = r["cpu"]
        w("| %s, c=%d | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f |"
          % (name, r["conns"], r["rps"], c["postgres"], c["responders"], c["nginx"],
             c["rest"], c["busy"]))
    w("")
    w("### Against the targets\n")
    w("The targets of doc/performance.md and issue #23, each beside its measurement; "
      "rows marked *information* have no target.\n")
    w("| figure | measured | ratio | target | verdict | load (1 min) |")
    w("|---|---:|---:|---|---|---|")
    pk, pgc, nl, nd = R["peak"], R["pg_ceiling"], R["null_ceiling"], R["node_peak"]
    R["targets"] = []

    def row(fig, measured, ratio, limit, ok, ld):
        """ok: True/False against limit, None for a figure without a target."""
        v = "information" if ok is None else verdict(ok)
        w("| %s | %s | %s | %s | %s | %s |" % (fig, measured, ratio, limit, v, ld.split()[0]))
        R["targets"].append({"figure": fig, "measured": measured, "ratio": ratio,
                             "target": limit, "verdict": v, "met": ok,
                             "load": ld.split()[0]})
    nolos = all(r["valid"] for r in R["levels"])
    row("responder peak, message webhooks (c=%d, %d processes)%s"
        % (pk["conns"], PROCS, "" if nolos else " **a run lost messages: void**"),
        "%.0f req/s" % pk["rps"], "-", "no loss in any run", nolos, pk["load"])
    f = pk["rps"] / nl["rps"]
    row("/ null FastCGI responder (%.0f req/s at c=%d)" % (nl["rps"], nl["conns"]),
        "%.0f req/s" % pk["rps"], "%.2fx" % f, ">= %.1fx" % T_VS_NULL, f >= T_VS_NULL, nl["load"])
    f = pk["rps"] / pgc["tps"]
    row("/ pgbench, ingest.sql, one transaction per webhook (%.0f tx/s at c=%d)"
        % (pgc["tps"], pgc["clients"]),
        "%.0f req/s" % pk["rps"], "%.2fx" % f, ">= %.1fx" % T_VS_PGBENCH, f >= T_VS_PGBENCH,
        pgc["load"])
    f = pk["rps"] / nd["rps"]
    row("/ Node Express+pg receiver, same job (peak %.0f req/s at c=%d)" % (nd["rps"], nd["conns"]),
        "%.0f req/s" % pk["rps"], "%.2fx" % f, ">= %.1fx" % T_VS_NODE, f >= T_VS_NODE, nd["load"])
    nle, plc = R["node_lean_peak"], R["pg_lean_ceiling"]
    f = pk["rps"] / nle["rps"]
    row("/ lean Node receiver, one statement for both inserts, no conversation upsert "
        "(peak %.0f req/s at c=%d%s)" % (nle["rps"], nle["conns"],
                                         "" if all(r["valid"] for r in R["node_lean"])
                                         else "; a run **VOID**"),
        "%.0f req/s" % pk["rps"], "%.2fx" % f, "-", None, nle["load"])
    f = pk["rps"] / plc["tps"]
    row("/ pgbench, the lean receiver's statement (tests/bench/node/lean.sql), one per "
        "transaction (%.0f tx/s at c=%d)" % (plc["tps"], plc["clients"]),
        "%.0f req/s" % pk["rps"], "%.2fx" % f, "-", None, plc["load"])
    sr = R["status"]
    f = sr["rps"] / pk["rps"]
    row("status webhooks (c=%d; %s)" % (sr["conns"], "no loss" if sr["valid"] else "**VOID**"),
        "%.0f req/s" % sr["rps"], "%.2fx" % f, ">= %.1fx of message webhooks" % T_STATUS,
        f >= T_STATUS and sr["valid"], sr["load"])
    hp, nh, pp, lp = R["half"], R["null_half"], R["pg_paced"], R["pg_lean_paced"]
    hc, hpace = R["half_pace"]
    f = hp["p99_ms"] / pp["p99_ms"] if pp["p99_ms"] else float("inf")
    row("p99 at about half the peak (%.0f req/s, %d connections each waiting %d ms after an "
        "answer%s) / pgbench's p99 running ingest.sql paced at that rate (`--rate=%.0f`, "
        "%d clients: %.0f tx/s, p99 %.2f ms from each transaction's start, %.2f ms from its "
        "scheduled start). Information: the null responder paced alike %.0f req/s, p99 "
        "%.2f ms; pgbench of the lean statement paced alike p99 %.2f ms"
        % (hp["rps"], hc, hpace, "" if hp["valid"] else "; **VOID**", pp["rate"],
           pp["clients"], pp["tps"], pp["p99_ms"], pp["p99_sched_ms"], nh["rps"],
           nh["p99_ms"], lp["p99_ms"]),
        "%.2f ms" % hp["p99_ms"] + ("" if pp["tps"] >= 0.95 * pp["rate"] else
                                    " (pgbench did not keep that rate: its p99 is "
                                    "a saturated one)"), "%.2fx" % f,
        "<= %.1fx pgbench's p99 paced alike" % T_P99_VS_PGBENCH,
        f <= T_P99_VS_PGBENCH and hp["valid"] and pp["lag_inside"], hp["load"])
    cd = R.get("commit_delay")
    if cd:
        cw = cd["wrk"]
        base = next((r for r in R["levels"] if r["conns"] == cw["conns"]), R["levels"][-1])
        row("with commit_delay=%d us, commit_siblings=%d: responder at c=%d (without it: "
            "%.0f req/s, p99 %.2f ms); pgbench ingest.sql at c=%d %.0f tx/s (without: %.0f)"
            % (cd["delay"], cd["siblings"], cw["conns"], base["rps"], base["p99_ms"],
               cd["pg"]["clients"], cd["pg"]["tps"], R["pg_at"].get(cd["pg"]["clients"], 0)),
            "%.0f req/s, p99 %.2f ms" % (cw["rps"], cw["p99_ms"]),
            "%.2fx" % (cw["rps"] / base["rps"]), "both shown",
            cw["valid"] and base["valid"], cw["load"])
    pr = R.get("prune")
    if pr:
        ok = pruneload.met(pr)
        row("responder p99 while scripts/prune deletes %d rows (%.0f webhooks/s, prune took "
            "%.0f s, exit %d, %d not 200) / its p99 just before and after (%d and %d requests)"
            % (2 * pr["old"], pr["rate"], pr["prune_s"], pr["exit"], pr["errors"],
               pr["n_during"], pr["n_quiet"]),
            "%.1f ms / %.1f ms" % (pr["during_p99_ms"] or -1, pr["quiet_p99_ms"] or -1),
            "%.2fx" % (pr["ratio"] or -1), "<= %.0fx" % pruneload.TARGET, ok, pr["load"])
    mm = R["mem"]
    row("responder VmHWM after %d requests (one process, default threads)" % mm["requests"],
        "%.1f MB" % (mm["hwm_kb"] / 1024), "%.2fx" % (mm["hwm_kb"] / T_RSS_KB), "< 16 MB",
        mm["hwm_kb"] < T_RSS_KB, mm["load"])
    row("its VmRSS growth after warm-up (%d requests) to the end (%d kB -> %d kB)"
        % (mm["warm_requests"], mm["rss_warm_kb"], mm["rss_end_kb"]),
        "%+d kB" % mm["growth_kb"], "-", "~0 (at most 64 kB)", mm["growth_kb"] <= 64,
        mm["load"])
    row("largest VmHWM of the %d responders of phase 1" % PROCS,
        "%.1f MB" % (R["levels_hwm_kb"] / 1024), "%.2fx" % (R["levels_hwm_kb"] / T_RSS_KB),
        "< 16 MB", R["levels_hwm_kb"] < T_RSS_KB, R["levels"][-1]["load"])
    bt = R["batches"]
    bms = sorted(b["ms"] for b in bt)
    ball = all(b["status"] == 200 and b["stored"] == CONVERSATIONS for b in bt)
    row("1000-message batch (%.1f MB) to 200, median of %d (max %.0f ms)"
        % (bt[0]["bytes"] / 1e6, len(bt), bms[-1]), "%.0f ms" % statistics.median(bms),
        "%.2fx" % (statistics.median(bms) / T_BATCH_MS), "< %.0f ms (quiet machine)" % T_BATCH_MS,
        statistics.median(bms) < T_BATCH_MS and ball, bt[-1]["load"])
    dr = R["drain"]
    row("drainer, %d rows / %d conversations, Graph 20 ms" % (dr["rows"], dr["conversations"]),
        "%.0f msgs/s" % dr["msgs_s"], "%.2fx" % (dr["msgs_s"] / dr["limit"]),
        ">= %.1fx of %.0f msgs/s (WAHOOK_CONCURRENCY=%d / (2 x 20 ms))"
        % (T_DRAIN, dr["limit"], DRAIN_CONCURRENCY),
        dr["msgs_s"] >= T_DRAIN * dr["limit"] and dr["done"] == dr["rows"], dr["load"])
    dp = R["drain_reply"]
    row("drainer with a trivial reply program (`/bin/sh`: `cat; echo`), same rows",
        "%.0f msgs/s" % dp["msgs_s"], "%.2fx the fixed text" % (dp["msgs_s"] / dr["msgs_s"]),
        "all done, no violation (fixed text: %.0f msgs/s)" % dr["msgs_s"],
        dp["done"] == dp["rows"] and dp["violations"] == 0, dp["load"])
    rl = R["read_latency"]
    row("webhook 200 -> mark-read call, `--for` running, p50 (p99) of %d" % rl["answered"],
        "%.1f ms (%.1f)" % (rl["p50_ms"] or -1, rl["p99_ms"] or -1), "-",
        "< %.0f ms" % T_READ_P50_MS, rl["p50_ms"] is not None and
        rl["p50_ms"] < T_READ_P50_MS and rl["answered"] == rl["samples"], rl["load"])
    row("drainer VmHWM during the drain (VmRSS at 10% / end of run)",
        "%.1f MB (%.1f / %.1f)" % (dr["peak_kb"] / 1024, dr["rss_first_kb"] / 1024,
                                  dr["rss_last_kb"] / 1024), "-",
        "no growth (at most 256 kB)",
        dr["rss_last_kb"] - dr["rss_first_kb"] <= 256, dr["load"])
    pa = R["patho"]
    row("responder VmRSS idle / after the 3 pathological 4 MiB bodies (answers %s)"
        % "/".join(str(c) for c in pa["codes"]),
        "%.1f MB / %.1f MB" % (pa["idle_kb"] / 1024, pa["after_kb"] / 1024),
        "%.2fx" % (pa["after_kb"] / pa["idle_kb"]), "< 2x idle (%.1f MB)" % (2 * pa["idle_kb"] / 1024),
        pa["after_kb"] < 2 * pa["idle_kb"], pa["load"])
    w("")
    if R.get("drain_more"):
        L.extend(drain_bench.report(R["drain_more"]))
    if R.get("media"):
        for line in media_bench.table(R["media"]):
            w(line)
        w("")
    w("Plot: %s (throughput and p99 against connections)." % os.path.join(OUT, "throughput.png"))
    return "\n".join(L) + "\n"


def plot(R):
    """throughput.png: requests/s (left) and p99 (right) against connections for
    wahook, the Node receiver and the null responder, with the pgbench ceiling."""
    data = os.path.join(OUT, "levels.dat")
    kinds = ("levels", "node", "null", "node_lean")
    by = {k: {r["conns"]: r for r in R[k]} for k in kinds}
    with open(data, "w") as f:
        f.write("# conns wahook_rps wahook_p99 node_rps node_p99 null_rps null_p99 "
                "lean_node_rps lean_node_p99\n")
        for c in sorted(set().union(*by.values())):
            f.write("%d" % c)
            for k in kinds:
                r = by[k].get(c)
                f.write(" %.1f %.3f" % (r["rps"], r["p99_ms"]) if r else " NaN NaN")
            f.write("\n")
    png = os.path.join(OUT, "throughput.png")
    pgc = R["pg_ceiling"]["tps"]
    gp = """set terminal pngcairo size 1200,500 font ',10'
set output '%s'
set multiplot layout 1,2 title 'wahook.fcgi behind nginx against its peer and its limits'
set xlabel 'concurrent connections (wrk)'
set logscale x 2
set key top left
set grid
set title 'throughput'
set ylabel 'requests/s'
set yrange [0:*]
plot '%s' using 1:2 with linespoints lw 2 title 'wahook', \\
     '' using 1:4 with linespoints lw 2 title 'Node Express+pg', \\
     '' using 1:6 with linespoints lw 1 dt 2 title 'null FastCGI responder', \\
     '' using 1:8 with linespoints lw 1 title 'lean Node (one statement)', \\
     %.1f with lines lc rgb 'red' dt 4 lw 2 title 'pgbench, one transaction per webhook', \\
     %.1f with lines lc rgb 'gray' dt 3 lw 1 title '%.1fx Node (target)'
set title 'p99 latency'
set ylabel 'ms'
set logscale y
set yrange [*:*]
plot '%s' using 1:3 with linespoints lw 2 title 'wahook', \\
     '' using 1:5 with linespoints lw 2 title 'Node Express+pg', \\
     '' using 1:7 with linespoints lw 1 dt 2 title 'null FastCGI responder', \\
     '' using 1:9 with linespoints lw 1 title 'lean Node (one statement)'
unset multiplot
""" % (png, data, pgc, T_VS_NODE * R["node_peak"]["rps"], T_VS_NODE, data)
    r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
    if r.returncode != 0:
        log("gnuplot failed: " + r.stderr)
    return png


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    osname = platform.platform()
    try:
        with open("/etc/os-release") as f:
            osname = re.search(r'PRETTY_NAME="([^"]*)"', f.read()).group(1)
    except (OSError, AttributeError):
        pass
    pgv = subprocess.run([harness.PGBIN + "/postgres", "--version"], capture_output=True,
                         text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "os": osname, "pg": pgv}


# --- main -----------------------------------------------------------------------------

def main():
    global OUT
    if sys.argv[1:2] == ["--strip-notify"]:    # for the Makefile: build/nonotify
        with open(sys.argv[2]) as f:
            sys.stdout.write(without_notify(f.read()))
        return
    OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bench"))
    os.makedirs(OUT, exist_ok=True)
    for b in ("wahook.fcgi", "wahook-drain", "bench_null_fcgi"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            raise SystemExit("bench: %s/%s missing: run `make bench`" % (BUILD, b))
    t_start = time.monotonic()
    R = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
         "load_start": load(), "nginx_workers": 2}
    log("machine: %(cpu)s, %(cores)d cores, %(os)s, %(pg)s" % R["machine"])
    log("load average at start: " + R["load_start"])
    work = harness.tmpdir("wahook-bench-")
    os.chmod(work, 0o755)
    pool = Pool(os.path.join(work, "bodies.rec"))
    pool.ensure(1)
    log("webhook body: %d bytes (one text message, Meta's escaping)" % pool.size)
    pg = setup_postgres()
    env = harness.responder_env(pg)
    CPU_ROOTS["postgres"] = lambda: [pg.postmaster_pid()]
    fcgi = Fcgi(work, os.path.join(BUILD, "wahook.fcgi"), PROCS, env)
    fcgi.start()
    ngx = Nginx(work, fcgi.sock, R["nginx_workers"])

    # 1. responder: warm up, then the levels
    log("phase 1: responder, %d processes, %d s per level" % (PROCS, DURATION))
    wrk(ngx.url, 16, pool, 2)
    warm = {pid: rss for pid, _, rss in fcgi.mem()}
    pg.psql("CHECKPOINT")
    R["levels"] = [checked_wrk(pg, ngx.url, c, pool, DURATION) for c in LEVELS]
    R["peak"] = max(R["levels"], key=lambda r: r["rps"])
    mem = fcgi.mem()
    R["levels_hwm_kb"] = max(h for _, h, _ in mem)
    R["levels_growth_kb"] = max(rss - warm.get(pid, rss) for pid, _, rss in mem)
    # p99 at about half the peak rate: paced connections (wrk's delay hook)
    half = R["peak"]["rps"] / 2
    conns = 16
    base_ms = R["levels"][0]["p50_ms"]
    pace = max(1, int(round(conns / half * 1000 - base_ms)))
    R["half"] = checked_wrk(pg, ngx.url, conns, pool, DURATION, pace_ms=pace)
    R["half"]["target_rps"] = half
    R["half_pace"] = (conns, pace)
    # status webhooks at the peak's connection count
    spool = Pool(os.path.join(work, "statuses.rec"), status_webhook)
    log("status webhooks, c=%d" % R["peak"]["conns"])
    R["status"] = checked_wrk(pg, ngx.url, R["peak"]["conns"], spool, DURATION,
                              count=statuses_stored)
    # NOTIFY on commit: the same peak with the statement built without it
    log("phase 1: NOTIFY on commit, the responder with and without it")
    R["notify_responder"] = notify_responder_cost(pg, ngx, fcgi, pool, R["peak"]["conns"])
    fcgi.start()
    # fewer processes make fuller batches, more run more backends side by side:
    # the sweep at the highest connection count, where there is work for all of them
    R["sweep_conns"] = max(LEVELS)
    R["sweep"] = []
    if not QUICK:
        fcgi.stop()
        for n in PROC_SWEEP:
            f2 = Fcgi(work, fcgi.binary, n, env)
            f2.start()
            log("sweep: %d processes" % n)
            R["sweep"].append((n, checked_wrk(pg, ngx.url, R["sweep_conns"], pool,
                                              max(4, DURATION // 2))))
            f2.stop()
        fcgi.start()

    # 1b. through PgBouncer: what unprepared statements and the pooler cost
    R["pgbouncer"] = run_pgbouncer(pg, ngx, fcgi, work, pool)

    # 2. the limits: pgbench on the same SQL, then the null responder
    log("phase 2: pgbench running sql/statements/ingest.sql")
    script, defs = pgbench_script(work)
    pg.psql("CHECKPOINT")
    R["pgbench"] = [pgbench(pg, script, defs, c, DURATION) for c in PG_CLIENTS]
    R["pg_ceiling"] = max(R["pgbench"], key=lambda r: r["tps"])
    R["pg_at"] = {r["clients"]: r["tps"] for r in R["pgbench"]}
    # the statement unprepared (parsed and planned on every execution), as
    # WAHOOK_DB_PREPARE=off sends it
    R["pg_extended"] = pgbench(pg, script, defs, PGB_CONNS, DURATION, mode="extended")
    # the p99 target's limit: pgbench running the same statement paced at the
    # rate the responder's half-peak run reached, with as many clients as it
    # had connections
    hc, hpace = R["half_pace"]
    log("phase 2: pgbench paced at the half-peak run's rate")
    R["pg_paced"] = pgbench_paced(pg, script, defs, hc, DURATION, R["half"]["rps"], work,
                                  "ingest")
    # the lean Node receiver's statement (both inserts in one) under pgbench:
    # its limit, at the same client counts, and its p99 paced alike
    log("phase 2: pgbench running the lean statement (tests/bench/node/lean.sql)")
    lscript, ldefs = lean_pgbench_script(work)
    R["pgbench_lean"] = [pgbench(pg, lscript, ldefs, c, DURATION) for c in PG_CLIENTS]
    R["pg_lean_ceiling"] = max(R["pgbench_lean"], key=lambda r: r["tps"])
    R["pg_lean_paced"] = pgbench_paced(pg, lscript, ldefs, hc, DURATION, R["half"]["rps"],
                                       work, "lean")
    log("phase 2: NOTIFY on commit, pgbench with and without it")
    R["notify"] = notify_cost(pg, work)
    # commit_delay, honestly: the same peak and the same pgbench with it on
    # (in BENCH_QUICK runs too: the table has the row)
    cd = {"delay": 200, "siblings": 5}
    pg.psql("ALTER SYSTEM SET commit_delay = %d" % cd["delay"])
    pg.psql("ALTER SYSTEM SET commit_siblings = %d" % cd["siblings"])
    pg.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    log("commit_delay=%d commit_siblings=%d" % (cd["delay"], cd["siblings"]))
    cd["wrk"] = checked_wrk(pg, ngx.url, max(LEVELS), pool, DURATION)
    cd["pg"] = pgbench(pg, script, defs, R["pg_ceiling"]["clients"], DURATION)
    pg.psql("ALTER SYSTEM RESET commit_delay")
    pg.psql("ALTER SYSTEM RESET commit_siblings")
    pg.psql("SELECT pg_reload_conf()")
    R["commit_delay"] = cd

    log("phase 2: null FastCGI responder behind the same nginx")
    fcgi.stop()
    null = Fcgi(work, os.path.join(BUILD, "bench_null_fcgi"), NULL_PROCS, {})
    null.start()
    R["null"] = []
    for c in LEVELS:
        r = wrk(ngx.url, c, pool, DURATION, reuse=True)
        r["load"] = load()
        log("null c=%-3d %7.0f req/s  p99 %.2f ms" % (c, r["rps"], r["p99_ms"]))
        R["null"].append(r)
    R["null_ceiling"] = max(R["null"], key=lambda r: r["rps"])
    R["null_half"] = wrk(ngx.url, hc, pool, DURATION, pace_ms=hpace, reuse=True)
    R["null_half"]["load"] = load()
    log("null paced like the half-peak run: %.0f req/s, p99 %.2f ms"
        % (R["null_half"]["rps"], R["null_half"]["p99_ms"]))
    null.stop()

    # the peer: the Node Express+pg receiver, same job, same tables, same
    # database; then the leaner peer: one statement per message for both
    # inserts, no conversation upsert, no BEGIN/COMMIT around a one-message webhook
    for key, lean in (("node", False), ("node_lean", True)):
        log("phase 2: " + ("the lean Node receiver (LEAN=1, tests/bench/node/lean.sql)"
                           if lean else "Node Express+pg receiver"))
        node = NodeReceiver(pg, lean=lean)
        R["node_workers"] = node.workers
        try:
            wrk(node.url, 16, pool, 2)
            R[key] = [checked_wrk(pg, node.url, c, pool, DURATION) for c in LEVELS]
        finally:
            node.stop()
        R[key + "_peak"] = max(R[key], key=lambda r: r["rps"])

    # 5. memory: one responder process, 100,000 requests
    log("phase 5: one responder process, %d requests" % MEM_REQUESTS)
    one = Fcgi(work, os.path.join(BUILD, "wahook.fcgi"), 1, env)
    one.start()
    warm_n = wrk(ngx.url, 4, pool, 2)["ok"]
    _, _, rss_warm = one.mem()[0]
    served, t_mem, rates = warm_n, time.monotonic(), []
    while served < MEM_REQUESTS and time.monotonic() - t_mem < 240:
        # runs of up to 15 s, sized from the last rate, until 100,000 are served
        rate = rates[-1] if rates else 3000.0
        secs = max(2, min(15, int((MEM_REQUESTS - served) / rate) + 1))
        r = wrk(ngx.url, 4, pool, secs)
        served += r["ok"]
        rates.append(r["rps"])
    _, hwm, rss_end = one.mem()[0]
    R["mem"] = {"requests": served, "warm_requests": warm_n, "hwm_kb": hwm,
                "rss_warm_kb": rss_warm, "rss_end_kb": rss_end, "growth_kb": rss_end - rss_warm,
                "rps": statistics.mean(rates) if rates else 0, "load": load()}
    log("one process: %d requests at %.0f req/s, VmHWM %d kB, VmRSS %d kB after warm-up, "
        "%d kB at the end" % (served, R["mem"]["rps"], hwm, rss_warm, rss_end))
    # 5b. the same process through the three pathological 4 MiB bodies (the
    # tiniest messages, events, statuses): its VmRSS must come back under 2x
    codes = [ngx.post(body, timeout=120) for _, body, _ in
             pathological.all_three(pool.tag + "P")]
    # the tree of a body is freed after its answer left (and the heap handed
    # back): on a slow machine that takes seconds, as test_memory_floor allows
    t_ans = time.monotonic()
    while time.monotonic() - t_ans < 15 and one.mem()[0][2] >= 2 * rss_end:
        time.sleep(0.25)
    _, hwm_p, rss_p = one.mem()[0]
    R["patho"] = {"idle_kb": rss_end, "after_kb": rss_p, "hwm_kb": hwm_p, "codes": codes,
                  "load": load(), "settle_s": time.monotonic() - t_ans}
    log("pathological bodies: answers %s, VmRSS %d kB -> %d kB %.1f s after the last "
        "answer (VmHWM %d kB)" % (codes, rss_end, rss_p, R["patho"]["settle_s"], hwm_p))
    one.stop()

    # 3. batches, which also fill the outbox for the drainer
    log("phase 3: %d batches of %d messages" % (BATCHES, CONVERSATIONS))
    fcgi.start()
    # a statement the stopped process gave up on (its deadline passed on a loaded
    # machine) may still be rolling back in its backend: TRUNCATE would deadlock
    harness.wait_for(lambda: pg.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wahook.fcgi' "
        "AND state <> 'idle'") == "0", 120, "the previous responder's statements to end")
    pg.truncate()
    R["batches"] = run_batches(pg, ngx, pool.tag + "X")

    # 4. the drainer against the stand-in
    log("phase 4: wahook-drain, Graph stand-in answering after %d ms" % (GRAPH_DELAY * 1000))
    g = GraphStandin("EAAGbench-token")
    try:
        R["drain"] = run_drain(pg, g)
        R["drain_reply"] = run_drain_reply(pg, g)
        R["read_latency"] = run_read_latency(pg, g, ngx, pool.tag + "L")
        log("phase 6: media, both storage modes")
        R["media"] = media_bench.run(pg, g, OUT)
    finally:
        g.stop()
    # 4b. a paused number beside a healthy one, the body libcurl cannot resend, the
    # claim against a large backlog (drain_bench.py; empties the tables)
    R["drain_more"] = drain_bench.run(pg, OUT)
    # 4c. scripts/prune deleting a million old rows while webhooks arrive (pruneload.py)
    log("phase 4c: scripts/prune, %d old rows, under a paced load" % (2 * PRUNE_OLD))
    pg.truncate()
    R["prune"] = pruneload.summary(pruneload.measure(pg, ngx.post, PRUNE_OLD, tag="bp"))
    R["prune"]["load"] = load()
    log("prune: exit %(exit)d, p99 %(during_p99_ms).1f ms during / %(quiet_p99_ms).1f ms "
        "without (%(ratio).2fx), %(prune_s).0f s" % R["prune"])
    fcgi.stop()
    ngx.stop()
    pg.stop("fast")

    R["load_end"] = load()
    R["elapsed_s"] = time.monotonic() - t_start
    # the figures first: a report that fails still leaves them
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(R, f, indent=1, default=str)
    png = plot(R)
    md = report(R)      # adds R["targets"]: each target row as printed
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(R, f, indent=1, default=str)
    print()
    print(md)
    log("took %.0f s; table in %s, plot in %s" % (R["elapsed_s"],
                                                 os.path.join(OUT, "results.md"), png))


OUT = None
if __name__ == "__main__":
    main()
