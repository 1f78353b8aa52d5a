"""pruneload.py - scripts/prune under a steady load of webhooks, measured.

Seeds old rows with one INSERT ... SELECT generate_series, posts paced
one-message webhooks through a web server, runs scripts/prune (its shipped batch,
pause and lock timeout) in the middle, and returns the responder's latencies in
the windows without prune (just before and just after it: a drift in the
machine's load moves both sides alike) and while it ran. Used by
test_scale_prune_under_load.py, which holds a loose bound, and by `make bench`,
which prints the ratio beside the 2x target.
"""
import os
import subprocess
import threading
import time

import harness
import drainkit as dk

TARGET = 2.0          # the design's aim: prune at most doubles the responder's p99


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def seed_old(pg, n):
    """n messages received 40 days ago and answered, each with its done outbox
    row (2n rows): one INSERT ... SELECT generate_series (a data-modifying
    CTE). The foreign key's checks are skipped for it (session_replication_role):
    they would lock every new message row once more, and the rows match by
    construction."""
    pg.psql("SET session_replication_role = replica; WITH m AS (INSERT INTO wa_messages "
            "(message_id, phone_number_id, sender, type, wa_timestamp, answered, payload, "
            "received_at) "
            "SELECT 'wamid.HBgLold' || g, '%s', '4915' || (g %% 20000), 'text', "
            "now() - interval '41 days', true, '{\"type\":\"text\"}', "
            "now() - interval '40 days' - g * interval '1 ms' "
            "FROM generate_series(1, %d) g "
            "RETURNING message_id, phone_number_id, sender, wa_timestamp, received_at) "
            "INSERT INTO wa_outbox (message_id, phone_number_id, sender, wa_timestamp, "
            "received_at, position, state, read_at, reply_message_id, replied_at, done_at) "
            "SELECT message_id, phone_number_id, sender, wa_timestamp, received_at, 1, "
            "'done', received_at, 'wamid.r' || message_id, received_at, received_at FROM m"
            % (dk.PNID, n))
    pg.psql("ANALYZE wa_messages")
    pg.psql("ANALYZE wa_outbox")


def _load(post, stop, out, clients, pace_s, tag):
    """Threads posting one-message webhooks every pace_s until stop; each appends
    (t_start, seconds, status, message_id) to out."""
    def client(k):
        n = 0
        while not stop.is_set():
            m = "wamid.HBgL%s%d_%06d" % (tag, k, n)
            body = harness.meta_json(dk.webhook([("4917%07d" % (k * 1000 + n % 50), m,
                                                  1_700_000_000 + n)]))
            t0 = time.monotonic()
            try:
                st = post(body)
            except OSError:
                st = 0
            dt = time.monotonic() - t0
            out.append((t0, dt, st, m))
            n += 1
            time.sleep(max(0.0, pace_s - dt))
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    return threads


def measure(pg, post, old, clients=4, pace_s=0.02, quiet_s=6.0, tag="pl"):
    """Seeds old messages (and as many outbox rows), then: quiet_s of load, prune
    under the same load, quiet_s more. post(body) -> HTTP status. Returns a dict:
    seeded_s, prune_s, prune (the CompletedProcess), samples, quiet and during
    (latencies in s of the requests that started and ended inside a window),
    quiet_p99_ms, during_p99_ms, ratio, rate (webhooks/s during prune)."""
    t = time.monotonic()
    seed_old(pg, old)
    seeded = time.monotonic() - t
    stop, samples = threading.Event(), []
    threads = _load(post, stop, samples, clients, pace_s, tag)
    try:
        time.sleep(1)                    # warm up: connections, caches
        t_before = time.monotonic()
        time.sleep(quiet_s)
        t_prune = time.monotonic()
        p = subprocess.run([os.path.join(harness.ROOT, "scripts", "prune")],
                           env=dict(os.environ, WAHOOK_DB=pg.dsn), capture_output=True,
                           text=True, timeout=1800)
        t_pruned = time.monotonic()
        time.sleep(quiet_s)
        t_after = time.monotonic()
    finally:
        stop.set()
        for th in threads:
            th.join(30)
    quiet = [s[1] for s in samples if (t_before <= s[0] and s[0] + s[1] <= t_prune)
             or (t_pruned <= s[0] and s[0] + s[1] <= t_after)]
    during = [s[1] for s in samples if t_prune <= s[0] and s[0] + s[1] <= t_pruned]
    r = {"old": old, "seeded_s": seeded, "prune_s": t_pruned - t_prune, "prune": p,
         "samples": samples, "quiet": quiet, "during": during,
         "rate": len(during) / max(1e-9, t_pruned - t_prune),
         "quiet_p99_ms": p99(quiet) * 1000 if quiet else None,
         "during_p99_ms": p99(during) * 1000 if during else None}
    r["ratio"] = (r["during_p99_ms"] / r["quiet_p99_ms"]
                  if quiet and during and r["quiet_p99_ms"] else None)
    return r


def describe(r):
    """One line of the figures."""
    return ("%d rows seeded in %.1f s, pruned in %.1f s while %.0f webhooks/s arrived; "
            "responder p99 %.1f ms without prune, %.1f ms during (%.2fx; %d and %d requests)"
            % (2 * r["old"], r["seeded_s"], r["prune_s"], r["rate"], r["quiet_p99_ms"] or -1,
               r["during_p99_ms"] or -1, r["ratio"] or -1, len(r["quiet"]), len(r["during"])))


def summary(r):
    """The figures of measure()'s result, without the samples (for a JSON copy)."""
    keep = ("old", "seeded_s", "prune_s", "rate", "quiet_p99_ms", "during_p99_ms", "ratio")
    out = {k: r[k] for k in keep}
    out.update(n_quiet=len(r["quiet"]), n_during=len(r["during"]),
               exit=r["prune"].returncode, prune_out=r["prune"].stdout.strip(),
               errors=len([s for s in r["samples"] if s[2] != 200]))
    return out


def met(s):
    """Whether summary s meets TARGET: prune succeeded, every webhook was
    answered 200, and the responder's p99 during prune is at most TARGET times
    its p99 without (make bench prints it in its targets table)."""
    return (s["exit"] == 0 and s["errors"] == 0 and s["ratio"] is not None
            and s["ratio"] <= TARGET)
