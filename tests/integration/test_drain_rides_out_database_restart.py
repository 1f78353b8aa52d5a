"""test_drain_rides_out_database_restart.py - a PostgreSQL restart (pg_ctl -m
fast) in the middle of a `wahook-drain --for` run: the drainer reconnects with
backoff and carries on, the calls in flight when the database went away are
recorded once it is back, nothing is lost, no call is made twice, exit 0. A
database that stays away longer than WAHOOK_DB_OUTAGE_MAX ends the run with
exit 4 within that bound, saying so. The media lane rides out the same restart:
the item being fetched is fetched again once the database is back and kept.
"""
import collections
import signal
import time

import harness

import drainkit as dk
from test_media_kept import MediaCase, blob

pg = server = None


setUpModule, tearDownModule = dk.module_stack(globals())


class RidesOutRestart(MediaCase):
    def test_restart_mid_run_loses_nothing_and_repeats_nothing(self):
        convs = dk.feed(server, conversations=24, per_conv=4)
        total = sum(len(v) for v in convs.values())
        self.g.delay = 0.03
        # a lease long enough to ride out a restart (WAHOOK_DB_OUTAGE_MAX 14 s)
        p = dk.start(pg, self.g, ["--for", "300"], WAHOOK_CONCURRENCY=6,
                     WAHOOK_MAX_RPS=1000, WAHOOK_LEASE=20)
        self.g.wait_calls(40, timeout=30)
        pg.stop("fast")
        down_at = len(self.g.snapshot())
        time.sleep(2)
        pg.start()
        # done when every row is; SIGTERM then ends the run (0: nothing pending)
        harness.wait_for(lambda: pg.scalar("SELECT count(*) FROM wa_outbox WHERE "
                                           "state <> 'done'") == "0", 120, "the drain")
        p.send_signal(signal.SIGTERM)
        r = dk.finish(p, timeout=30)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("ev=db_outage", r.err)
        self.assertIn("ev=db_back", r.err)
        self.assertNotIn("ev=lost_claim", r.err)
        rows = dk.outbox(pg)
        self.assertEqual(len(rows), total)
        self.assertEqual({x["state"] for x in rows.values()}, {"done"})
        counts = collections.Counter((c["step"], c["message_id"]) for c in self.g.snapshot())
        self.assertEqual(len(counts), 2 * total)
        self.assertEqual([k for k, n in counts.items() if n > 1], [],
                         "a call was made twice")
        self.assert_in_order(convs)
        self.assertEqual(self.g.violations, [])
        print("  restart: %d of %d calls made before the stop, all %d messages answered "
              "once" % (down_at, 2 * total, total))

    def test_outage_past_the_bound_exits_4(self):
        dk.feed(server, conversations=2, per_conv=1)
        p = dk.start(pg, self.g, ["--for", "30"], WAHOOK_DB_OUTAGE_MAX=2)
        self.g.wait_calls(4, ok_only=True)
        t0 = time.monotonic()
        pg.stop("fast")
        try:
            r = dk.finish(p, timeout=20)
            took = time.monotonic() - t0
        finally:
            pg.start()
        self.assertEqual(r.rc, 4, r)
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 15)
        self.assertRegex(r.err, r"level=error ev=db_outage ms=[0-9.]+ .*WAHOOK_DB_OUTAGE_MAX")

    def test_media_fetch_rides_out_a_restart(self):
        item = self.g.add_media(blob(300000, b"restart"), mime="video/mp4")
        self.g.media_slow_s = 1.0
        self.g.media_answer("slow", step="download", media_id=item.id, times=1)
        self.send([("video", item)])
        p = dk.start(pg, self.g, ["--for", "120"], WAHOOK_LEASE=16, WAHOOK_HTTP_TIMEOUT=2)
        try:
            harness.wait_for(lambda: self.g.media_count("download") > 0, 30,
                             "the download to start")
            pg.stop("fast")
            time.sleep(3)       # longer than the download: its store meets no database
        finally:
            pg.start()
        harness.wait_for(lambda: pg.scalar("SELECT state FROM wa_media WHERE media_id = "
                                           "'%s'" % item.id) == "done", 60, "the item kept")
        p.send_signal(signal.SIGTERM)
        r = dk.finish(p, timeout=30)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("ev=db_outage lane=media", r.err)
        self.assertIn("ev=db_back lane=media", r.err)
        row = dk.media_rows(pg)[item.id]
        self.assertEqual((row["data_sha"], row["attempts"]), (item.hex, "0"), row)
        self.assertEqual({x["state"] for x in dk.outbox(pg).values()}, {"done"})
