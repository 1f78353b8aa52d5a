#!/usr/bin/env python3
"""drain_bench.py - the drainer's side of `make bench` beyond plain throughput:
what keeping each number apart and each reply single costs. bench.py calls
run() after its own drainer phase and puts report() under its table; run alone
(`python3 tests/bench/drain_bench.py`) it starts its own cluster and stand-in.

  paused      a healthy number's throughput while another number's every call is
              answered 429 with Retry-After (its rows must hold no slot), beside
              the healthy number alone, in the same run.
  rewind      the cost of refusing libcurl's hidden resend (a body read callback
              that will not rewind): drainer CPU per call and messages/s of the
              shipped wahook-drain beside build/rewind/wahook-drain (linked with
              tests/bench/body_rewindable.c: libcurl's own copy of the body, which
              it may send twice), same rows, alternated.
  claim       the claim statement (cgi/drainer/outbox.c's claim_sql, read from the source)
              against a backlog of 100,000 pending rows over 50 numbers, 10 of them
              paused, beside the same numbers with 1,000 rows; then a Graph outage
              over it: every head's call failed (outbox.c's retry statement, which
              gives the rows behind the head its retry time), beside a limit of
              twice the first; and what is left: rows behind the waiting heads that
              arrived after their failure, due and not heads. Timed in the server
              (EXPLAIN ANALYZE, no per-node timing), each execution rolled back so
              every one sees the same backlog.

Rows are written straight into wa_messages/wa_outbox with INSERT ... SELECT
generate_series (what the responder stores for a text message, minus the body
text), so that a backlog of 100,000 takes seconds, not a minute of webhooks.
"""
import os
import re
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from graph_standin import GraphStandin  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
TOKEN = "EAAGbench-token"
GRAPH_DELAY = 0.020
CONCURRENCY = 16
HEALTHY, PAUSED = "106540352250001", "106540352250002"
PAUSED_ROWS = 400 if QUICK else 2000     # per number, 10 per conversation
REWIND_ROWS = 500 if QUICK else 2000
REWIND_ROUNDS = 1 if QUICK else 3
CLAIM_RUNS = 10 if QUICK else 30
REWIND_BUILD = os.path.join(harness.ROOT, "build", "rewind", "wahook-drain")

# every row pending again, nothing done (bench.py's reply phase uses it too)
RESET = ("UPDATE wa_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),"
         " lease_until = NULL, claim_token = NULL, last_error = NULL, read_at = NULL,"
         " reply_message_id = NULL, replied_at = NULL, done_at = NULL, reply = NULL,"
         " reply_state = NULL, reply_sent = 0, reply_message_ids = NULL,"
         " reply_reason = NULL, reply_unanswered = 0")


def log(*a):
    print("bench:", *a, flush=True)


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def seed(pg, tag, rows, numbers, convs, first_number=106540352260000):
    """rows pending messages: numbers business numbers, convs conversations
    (convs a multiple of numbers, so each conversation has one number), in
    order within each conversation, received an hour ago, due now."""
    assert convs % numbers == 0 and rows % convs == 0
    pg.psql("INSERT INTO wa_messages (message_id, phone_number_id, sender, type, "
            "wa_timestamp, answered, payload, received_at) "
            "SELECT 'wamid.HBgL%s' || g, (%d + g %% %d)::text, "
            "'4915' || lpad((g %% %d)::text, 8, '0'), 'text', "
            "to_timestamp(1700000000 + g / %d), true, '{\"type\":\"text\"}', "
            "now() - interval '1 hour' + g * interval '1 ms' "
            "FROM generate_series(0, %d) g"
            % (tag, first_number, numbers, convs, convs, rows - 1))
    pg.psql("INSERT INTO wa_outbox (message_id, phone_number_id, sender, wa_timestamp, "
            "received_at, position, next_attempt_at) "
            "SELECT message_id, phone_number_id, sender, wa_timestamp, received_at, 1, "
            "received_at FROM wa_messages WHERE message_id LIKE 'wamid.HBgL%s%%'" % tag)
    pg.psql("ANALYZE wa_messages")
    pg.psql("ANALYZE wa_outbox")


def drain_env(pg, g, **extra):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "WAHOOK_DB": pg.dsn,
         "WAHOOK_ACCESS_TOKEN": TOKEN, "WAHOOK_GRAPH_URL": g.url,
         "WAHOOK_CONCURRENCY": str(CONCURRENCY),
         # the limit under test is concurrency / (2 x Graph latency), not Meta's pacing
         "WAHOOK_MAX_RPS": "100000", "WAHOOK_HTTP_TIMEOUT": "5", "WAHOOK_LEASE": "60",
         "WAHOOK_REPLY_WINDOW": "0",
         # a stray transient failure costs 50 ms, not the default 15 s; Retry-After
         # (the paused number's) is capped by WAHOOK_RETRY_MAX, left at its default
         "WAHOOK_RETRY_MIN": "0.05"}
    e.update(extra)
    return e


def one_pass(binary, pg, g, logpath):
    """One plain wahook-drain run (it exits when nothing is callable now); returns
    (exit status, wall seconds, CPU seconds of the drainer). Nothing else is
    reaped while it runs, so RUSAGE_CHILDREN's growth is the drainer's alone."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(logpath, "w") as errf:
        p = harness.spawn([binary], env=drain_env(pg, g), stdout=subprocess.DEVNULL,
                          stderr=errf)
        rc = p.wait(timeout=600)
    wall = time.monotonic() - t0
    harness.kill(p)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, wall, cpu


def span(calls, t0):
    """Seconds from t0 to the end of the last of calls."""
    return max((c["t_end"] or c["t"]) for c in calls) - t0


# --- a paused number beside a healthy one -----------------------------------------

def run_paused(pg, g, out):
    """Returns the healthy number's messages/s alone and beside a paused number."""
    g.delay = GRAPH_DELAY
    res = {"rows": PAUSED_ROWS, "limit": CONCURRENCY / (2 * GRAPH_DELAY)}
    for case in ("alone", "beside"):
        pg.truncate()
        seed(pg, "H", PAUSED_ROWS, 1, PAUSED_ROWS // 10, first_number=int(HEALTHY))
        if case == "beside":
            seed(pg, "P", PAUSED_ROWS, 1, PAUSED_ROWS // 10, first_number=int(PAUSED))
            g.answer("429", pnid=PAUSED, retry_after=30)
        n0 = len(g.snapshot())
        t0 = time.monotonic()
        rc, wall, _ = one_pass(os.path.join(harness.BUILD, "wahook-drain"), pg, g,
                               os.path.join(out, "drain-paused-%s.log" % case))
        g.clear_rules()
        calls = g.snapshot()[n0:]
        healthy = [c for c in calls if c["pnid"] == HEALTHY]
        done = int(pg.scalar("SELECT count(*) FROM wa_outbox WHERE state = 'done' "
                             "AND phone_number_id = '%s'" % HEALTHY))
        paused_calls = len(calls) - len(healthy)
        secs = span(healthy, t0) if healthy else wall
        res[case] = {"exit": rc, "done": done, "secs": secs, "msgs_s": done / secs,
                     "paused_calls": paused_calls, "wall_s": wall, "load": load()}
        log("paused: healthy number %s: %d/%d done in %.2f s, %.0f msgs/s; calls to the "
            "paused number %d; exit %d  load %s"
            % (case, done, PAUSED_ROWS, secs, done / secs, paused_calls, rc, load()))
    return res


# --- the body that cannot be sent twice ----------------------------------------------

def build_rewindable():
    """The drainer linked with tests/bench/body_rewindable.c in place of
    cgi/drainer/body_once.c, in build/rewind (`make bench` builds it; built here when
    missing)."""
    if not os.access(REWIND_BUILD, os.X_OK):
        subprocess.run(["make", "-s", "-C", harness.ROOT, "SAN=", "build/rewind/wahook-drain"],
                       check=True, stdout=subprocess.DEVNULL)
    return REWIND_BUILD


def run_rewind(pg, g, out):
    """The shipped drainer and the rewindable-body build, alternated on the same rows."""
    g.delay = GRAPH_DELAY
    pg.truncate()
    seed(pg, "R", REWIND_ROWS, 5, REWIND_ROWS // 10)
    bins = {"shipped": os.path.join(harness.BUILD, "wahook-drain"),
            "rewindable": build_rewindable()}
    res = {k: [] for k in bins}
    for rnd in range(REWIND_ROUNDS):
        for name, binary in bins.items():
            pg.psql(RESET)
            n0 = len(g.snapshot())
            rc, wall, cpu = one_pass(binary, pg, g,
                                     os.path.join(out, "drain-%s-%d.log" % (name, rnd)))
            calls = g.snapshot()[n0:]
            done = int(pg.scalar("SELECT count(*) FROM wa_outbox WHERE state = 'done'"))
            r = {"exit": rc, "done": done, "calls": len(calls), "wall_s": wall,
                 "msgs_s": done / wall, "cpu_us_call": cpu * 1e6 / max(1, len(calls)),
                 "conns": len({c["conn"] for c in calls}), "load": load()}
            res[name].append(r)
            log("rewind: %-10s round %d: %d done, %d calls in %.2f s, %.0f msgs/s, "
                "drainer CPU %.0f us a call, %d connections; exit %d  load %s"
                % (name, rnd, done, len(calls), wall, r["msgs_s"], r["cpu_us_call"],
                   r["conns"], rc, r["load"]))
    for name in bins:
        rs = res[name]
        res[name] = {"msgs_s": statistics.median(r["msgs_s"] for r in rs),
                     "cpu_us_call": statistics.median(r["cpu_us_call"] for r in rs),
                     "ok": all(r["done"] == REWIND_ROWS and r["exit"] == 0 for r in rs),
                     "rounds": rs, "load": rs[-1]["load"]}
    res["rows"] = REWIND_ROWS
    return res


# --- the claim statement against a large backlog ---------------------------------------

def outbox_sql(name="claim_sql"):
    """A statement as cgi/drainer/outbox.c has it (static const char name[]: the C string
    literals joined): claim_sql, retry_sql."""
    with open(os.path.join(harness.ROOT, "cgi", "drainer", "outbox.c")) as f:
        src = f.read()
    m = re.search(r'static const char %s\[\] =\s*((?:"(?:[^"\\]|\\.)*"\s*)+);' % name, src)
    if not m:
        raise SystemExit("bench: %s not found in cgi/drainer/outbox.c" % name)
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
    sql = "".join(parts)
    assert "\\" not in sql, "%s grew escapes: teach drain_bench.outbox_sql()" % name
    return sql


def claim_sql():
    return outbox_sql("claim_sql")


def time_claim(pg, numbers, paused, runs):
    """Median and max server time (ms) of the claim, as the drainer sends it with 16
    free slots: every number with pending rows listed, the paused ones with room 0.
    Returns (median ms, max ms, rows claimed)."""
    lim = [n for n in numbers]
    rooms = ["0" if n in paused else "80" for n in lim]
    args = "16, 60, 80, '{%s}', '{%s}', '{%s}'" % (",".join(lim), ",".join("0" for _ in lim),
                                                   ",".join(rooms))
    script = ["PREPARE claim AS " + claim_sql() + ";"]
    for _ in range(runs):
        script += ["BEGIN;", "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) EXECUTE claim(%s);"
                   % args, "ROLLBACK;"]
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", pg.dsn],
                       input="\n".join(script), capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit("bench: claim timing failed:\n" + r.stderr)
    ms = [float(x) for x in re.findall(r"Execution Time: ([\d.]+) ms", r.stdout)]
    got = re.findall(r"^Update on wa_outbox o \(actual rows=(\d+)", r.stdout, re.M)
    # the first executions are planned each time; the steady state is what a drainer sees
    steady = ms[5:] if len(ms) > 10 else ms
    return statistics.median(steady), max(steady), int(got[-1]) if got else -1


# the head of its conversation: no earlier pending row (cgi/drainer/outbox.c's test)
HEAD = ("NOT EXISTS (SELECT 1 FROM wa_outbox e WHERE e.state = 'pending' "
        "AND e.phone_number_id = o.phone_number_id AND e.sender = o.sender AND "
        "(e.wa_timestamp, e.received_at, e.position, e.message_id) < "
        "(o.wa_timestamp, o.received_at, o.position, o.message_id))")


def run_claim(pg):
    res = {}
    numbers = [str(106540352260000 + i) for i in range(50)]
    paused = set(numbers[:10])
    for case, rows in (("small", 1000), ("large", 100000)):
        pg.truncate()
        t0 = time.monotonic()
        seed(pg, "C", rows, 50, rows // 10 if rows >= 10000 else 100)
        seeded = time.monotonic() - t0
        med, top, got = time_claim(pg, numbers, paused, CLAIM_RUNS)
        res[case] = {"rows": rows, "ms": med, "max_ms": top, "claimed": got,
                     "seed_s": seeded, "load": load()}
        log("claim: %d pending rows over 50 numbers (10 paused): %.2f ms median, %.2f max "
            "(%d rows claimed)  load %s" % (rows, med, top, got, load()))
    # a Graph outage over the backlog: every head was claimed and its call failed,
    # recorded by outbox.c's own retry statement (retry in an hour), which gives
    # the 9 rows behind each head its retry time
    pg.psql("UPDATE wa_outbox o SET claim_token = gen_random_uuid(), "
            "lease_until = now() + interval '5 minutes' WHERE " + HEAD)
    t0 = time.monotonic()
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", pg.dsn],
                       # one transaction: the drainer commits each, but 10,000 fsyncs
                       # would time the disk, not the statement
                       input="PREPARE retry(text, text, float8, text, int) AS %s;\n"
                             "BEGIN;\n"
                             "SELECT format('EXECUTE retry(%%L, %%L, 3600, ''http=503'', 0)',"
                             " message_id, claim_token) FROM wa_outbox"
                             " WHERE claim_token IS NOT NULL \\gexec\n"
                             "COMMIT;\n" % outbox_sql("retry_sql"),
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise SystemExit("bench: the retry statement failed:\n" + r.stderr)
    retried = time.monotonic() - t0
    pg.psql("VACUUM ANALYZE wa_outbox")
    waiting = int(pg.scalar("SELECT count(*) FROM wa_outbox WHERE next_attempt_at > now()"))
    med, top, got = time_claim(pg, numbers, paused, CLAIM_RUNS)
    res["heads_waiting"] = {"rows": 100000, "ms": med, "max_ms": top, "claimed": got,
                            "waiting": waiting, "retry_s": retried, "load": load(),
                            "limit_ms": 2 * res["large"]["ms"]}
    log("claim: the same 100,000 rows, every head's call failed (retry in an hour, "
        "%d rows waiting): %.2f ms median, %.2f max (%d claimed; limit 2 x %.2f ms)  "
        "load %s" % (waiting, med, top, got, res["large"]["ms"], load()))
    # what is left: rows that arrived behind a waiting head after its last failure
    # are due until its next one, and the due scan checks each to learn it is not
    # a head (the worst of it: all 90,000 of them)
    pg.psql("UPDATE wa_outbox o SET next_attempt_at = received_at WHERE NOT " + HEAD)
    pg.psql("VACUUM ANALYZE wa_outbox")
    med, top, got = time_claim(pg, numbers, paused, 4)    # seconds each: a few do
    res["arrived_behind"] = {"rows": 100000, "ms": med, "max_ms": top, "claimed": got,
                             "load": load()}
    log("claim: the same, the 90,000 rows behind the waiting heads arrived after their "
        "failure: %.2f ms median, %.2f max (%d claimed)  load %s" % (med, top, got, load()))
    pg.truncate()
    return res


# --- entry points ---------------------------------------------------------------------

def run(pg, out):
    """Every part on pg (its tables are emptied before and after); returns the figures."""
    g = GraphStandin(TOKEN)
    try:
        log("drain_bench: a paused number beside a healthy one")
        R = {"paused": run_paused(pg, g, out)}
        log("drain_bench: the body libcurl cannot resend, against the rewindable build")
        R["rewind"] = run_rewind(pg, g, out)
    finally:
        g.stop()
    log("drain_bench: the claim against a large backlog")
    R["claim"] = run_claim(pg)
    return R


def report(R):
    """Markdown lines for bench.py's table."""
    L = []
    w = L.append
    w("### The drainer: numbers side by side, single replies, the claim\n")
    w("| figure | measured | beside | load (1 min) |")
    w("|---|---:|---|---|")
    p = R["paused"]
    a, b = p["alone"], p["beside"]
    w("| healthy number, %d messages, while another number answers every call 429 "
      "(Retry-After 30) | %.0f msgs/s (%d calls to the paused one) | the healthy number "
      "alone: %.0f msgs/s; limit %d / (2 x %.0f ms) = %.0f | %s |"
      % (p["rows"], b["msgs_s"], b["paused_calls"], a["msgs_s"], CONCURRENCY,
         GRAPH_DELAY * 1000, p["limit"], b["load"]))
    rw = R["rewind"]
    s, v = rw["shipped"], rw["rewindable"]
    w("| shipped drainer (body read callback that will not rewind, idle connections "
      "reused for 4 s at most), %d messages, median of %d | %.0f msgs/s, %.0f us CPU a call "
      "| rewindable body (libcurl may resend): %.0f msgs/s, %.0f us CPU a call "
      "(%+.0f %% CPU) | %s |"
      % (rw["rows"], REWIND_ROUNDS, s["msgs_s"], s["cpu_us_call"], v["msgs_s"],
         v["cpu_us_call"], 100 * (s["cpu_us_call"] / v["cpu_us_call"] - 1)
         if v["cpu_us_call"] else 0, s["load"]))
    c = R["claim"]
    w("| the claim, 100,000 pending rows, 50 numbers (10 paused), 10,000 conversations | "
      "%.2f ms (max %.2f) | 1,000 rows, same numbers: %.2f ms (max %.2f) | %s |"
      % (c["large"]["ms"], c["large"]["max_ms"], c["small"]["ms"], c["small"]["max_ms"],
         c["large"]["load"]))
    h = c["heads_waiting"]
    w("| the claim, same 100,000 rows, every head's call failed (its retry statement: "
      "{:,} rows waiting an hour, nothing to claim) | %.2f ms (max %.2f) | limit 2 x the "
      "claim above = %.2f ms (%s); polled every 50 ms when idle | %s |"
      .format(h["waiting"]) % (h["ms"], h["max_ms"], h["limit_ms"],
         "within" if h["ms"] <= h["limit_ms"] else "OVER", h["load"]))
    a = c["arrived_behind"]
    w("| the claim, same, the 90,000 rows behind the waiting heads arrived after their "
      "failure (due until the head's next retry; nothing to claim) | %.2f ms (max %.2f) | "
      "what is left: the due scan checks each such row | %s |"
      % (a["ms"], a["max_ms"], a["load"]))
    w("")
    return L


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                          os.path.join(harness.ROOT, "build", "bench"))
    os.makedirs(out, exist_ok=True)
    pg = harness.Postgres()
    try:
        pg.migrate()
        R = run(pg, out)
    finally:
        pg.stop("fast")
    print("\n".join(report(R)))


if __name__ == "__main__":
    main()
