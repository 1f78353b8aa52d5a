"""media_bench.py - `make bench`'s media part: wahook-drain fetching inbound media
from the stand-in Graph API, in both storage modes, with its resident size.

The media messages are inserted into wa_messages directly (the drainer finds
media there; the responder is not what is measured), then one wahook-drain run
(WAHOOK_MEDIA_CONCURRENCY=4) fetches, checks and stores every item: photos of
200 KB and documents of 20 MB, as a mix. Printed: items/s and MB/s (wall time of
the run, start to exit) beside the drainer's VmHWM and its 64 MB limit.

Standalone: python3 tests/bench/media_bench.py (a throwaway cluster of its own).
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from graph_standin import GraphStandin  # noqa: E402

TOKEN = "EAAGbench-token"
PHOTOS, PHOTO_BYTES = 100, 200 * 1024
DOCS, DOC_BYTES = 3, 20 * 1024 * 1024
RSS_LIMIT_KB = 64 * 1024


def load_media(pg, g, tag):
    """Serves the items and inserts one media message per item; returns total bytes."""
    items = [("image", "image/jpeg", PHOTO_BYTES)] * PHOTOS + \
            [("document", "application/pdf", DOC_BYTES)] * DOCS
    rows, total = [], 0
    for i, (mtype, mime, size) in enumerate(items):
        item = g.add_media(os.urandom(size), mime=mime, sha="base64" if i % 2 else "hex")
        total += size
        payload = {"from": "4915100%05d" % i, "id": "wamid.bench%s%05d" % (tag, i),
                   "timestamp": str(int(time.time())), "type": mtype,
                   mtype: {"id": item.id, "mime_type": mime}}
        rows.append("('wamid.bench%s%05d', '106540352242922', '4915100%05d', '%s', now(), "
                    "false, '%s'::jsonb)" % (tag, i, i, mtype, json.dumps(payload)))
    pg.psql("INSERT INTO wa_messages (message_id, phone_number_id, sender, type, "
            "wa_timestamp, answered, payload) VALUES " + ", ".join(rows))
    return len(items), total


def run_mode(pg, g, mode, out):
    tag = mode[:3]
    n, total = load_media(pg, g, tag)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "WAHOOK_DB": pg.dsn,
           "WAHOOK_ACCESS_TOKEN": TOKEN, "WAHOOK_GRAPH_URL": g.url, "WAHOOK_MEDIA": "on",
           "WAHOOK_MEDIA_CONCURRENCY": "4", "WAHOOK_LEASE": "120", "WAHOOK_HTTP_TIMEOUT": "20"}
    d = None
    if mode == "directory":
        d = harness.tmpdir("wahook-bench-media-")
        env["WAHOOK_MEDIA_DIR"] = d
    t0 = time.monotonic()
    p = harness.spawn([os.path.join(harness.BUILD, "wahook-drain")], env=env,
                      stdout=subprocess.DEVNULL,
                      stderr=open(os.path.join(out, "media-%s.log" % mode), "w"))
    peak = 0
    while p.poll() is None:
        peak = max(peak, harness.vm_hwm_kb(p.pid))
        time.sleep(0.05)
    wall = time.monotonic() - t0
    harness.kill(p)
    done = int(pg.scalar("SELECT count(*) FROM wa_media WHERE state = 'done' AND "
                         "message_id LIKE 'wamid.bench%s%%'" % tag))
    r = {"mode": mode, "items": n, "done": done, "mb": total / 1e6, "wall_s": wall,
         "items_s": done / wall, "mb_s": total / 1e6 / wall, "peak_kb": peak,
         "exit": p.returncode, "load": open("/proc/loadavg").read().split()[0]}
    print("media %-9s: %d of %d items (%.0f MB) in %.1f s: %.1f items/s, %.1f MB/s; "
          "drainer VmHWM %.1f MB (limit %d MB); exit %d; load %s"
          % (mode, done, n, r["mb"], wall, r["items_s"], r["mb_s"], peak / 1024,
             RSS_LIMIT_KB // 1024, r["exit"], r["load"]), flush=True)
    if d:
        subprocess.run(["rm", "-rf", d])
    return r


def run(pg, g, out):
    """Both storage modes, database first; returns the result dicts."""
    return [run_mode(pg, g, m, out) for m in ("database", "directory")]


def table(results):
    """Markdown lines for the report."""
    L = ["### Media (wahook-drain fetching from the stand-in, %d photos of 200 KB + %d "
         "documents of 20 MB per mode, WAHOOK_MEDIA_CONCURRENCY=4)\n" % (PHOTOS, DOCS),
         "| storage | items stored | MB | s | items/s | MB/s | drainer VmHWM | limit | verdict | load (1 min) |",
         "|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in results:
        ok = r["done"] == r["items"] and r["peak_kb"] < RSS_LIMIT_KB
        L.append("| %s | %d of %d | %.0f | %.1f | %.1f | %.1f | %.1f MB | < 64 MB | %s | %s |"
                 % (r["mode"], r["done"], r["items"], r["mb"], r["wall_s"], r["items_s"],
                    r["mb_s"], r["peak_kb"] / 1024, "met" if ok else "**missed**",
                    r["load"]))
    return L


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(harness.ROOT, "build", "bench")
    os.makedirs(out, exist_ok=True)
    pg = harness.Postgres()
    pg.migrate()
    g = GraphStandin(TOKEN)
    try:
        print("\n".join(table(run(pg, g, out))))
    finally:
        g.stop()
        pg.stop("fast")
