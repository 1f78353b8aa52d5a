"""test_media_durability.py - media survives what operators live through: the
directory mode writes atomically (a drainer killed between the write and the
rename leaves no file under the final name, and its temp file is cleaned
later), a SIGKILL mid-download loses nothing, a 50 MB document is streamed
with the drainer's resident size measured, an item Meta has forgotten goes
dead with the reason and comes back with --requeue-dead, --status and
--metrics show it, and scripts/prune removes old media with their files.
"""
import glob
import os
import signal
import subprocess
import time
import unittest

import harness
import drainkit as dk
from test_media_kept import MediaCase, blob

pg = server = None
RSS_LIMIT_KB = 64 * 1024


setUpModule, tearDownModule = dk.module_stack(globals())


class MediaDurability(MediaCase):
    def test_directory_mode_files_named_by_sha256(self):
        d = harness.tmpdir("wahook-media-")
        a = self.g.add_media(blob(70000, b"dir-a"), mime="application/pdf")
        b = self.g.add_media(blob(300, b"dir-b"), sha="base64", size_as="str")
        self.send([("document", a), ("image", b)])
        r = dk.run(pg, self.g, WAHOOK_MEDIA_DIR=d)
        self.assertEqual(r.rc, 0, r)
        rows = dk.media_rows(pg)
        for item in (a, b):
            row = rows[item.id]
            self.assertEqual(row["state"], "done")
            self.assertEqual(row["path"], os.path.join(d, item.hex))
            self.assertIsNone(row["data_len"], "bytes in the table in directory mode")
            with open(row["path"], "rb") as f:
                self.assertEqual(f.read(), item.data)
        self.assertEqual(sorted(os.listdir(d)), sorted([a.hex, b.hex]))

    def test_directory_mode_crash_between_write_and_rename(self):
        d = harness.tmpdir("wahook-media-")
        item = self.g.add_media(blob(200000, b"crash"))
        # every byte arrives, then the answer never ends: the file is written,
        # not renamed, when the drainer dies
        self.g.media_answer("stall_end", step="download", media_id=item.id, times=1)
        mid, = self.send([("image", item)])
        p = dk.start(pg, self.g, ["--for", "20"], WAHOOK_MEDIA_DIR=d, WAHOOK_LEASE=20,
                     WAHOOK_HTTP_TIMEOUT=8)
        try:
            tmp = harness.wait_for(lambda: [
                x for x in glob.glob(os.path.join(d, ".wahook-tmp-*"))
                if os.path.getsize(x) == len(item.data)], 40, "the complete temp file")[0]
            # the message's reply goes beside the download: killed before it is
            # recorded, its row would stay leased and the next run exit 1
            harness.wait_for(lambda: dk.outbox(pg)[mid]["state"] == "done", 40,
                             "the reply recorded")
            harness.kill(p, signal.SIGKILL)
        except AssertionError:
            harness.kill(p)
            with open(p.errfile, errors="replace") as f:
                raise AssertionError("no complete temp file; drainer said:\n" + f.read()
                                     + "\nmedia calls: %r" % self.g.media_calls)
        finally:
            harness.kill(p)
        self.assertFalse(os.path.exists(os.path.join(d, item.hex)),
                         "a file under its final name before the rename")
        row = dk.media_rows(pg)[item.id]
        self.assertEqual(row["state"], "pending")
        self.assertIsNotNone(row["claim_token"])
        self.assertTrue(os.path.exists(tmp))
        # its lease ends; the left-over temp file is old by then
        pg.psql("UPDATE wa_media SET lease_until = now()")
        os.utime(tmp, (time.time() - 3600, time.time() - 3600))
        r = dk.run(pg, self.g, WAHOOK_MEDIA_DIR=d)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("ev=media_tmp_cleaned files=1", r.err)
        self.assertEqual(os.listdir(d), [item.hex])
        with open(os.path.join(d, item.hex), "rb") as f:
            self.assertEqual(f.read(), item.data)
        self.assertEqual(dk.media_rows(pg)[item.id]["state"], "done")

    def test_sigkill_mid_download_loses_nothing(self):
        spool = harness.tmpdir("wahook-spool-")
        item = self.g.add_media(blob(1500000, b"kill"), mime="video/mp4")
        self.g.media_answer("hang", step="download", media_id=item.id, times=1)
        mid, = self.send([("video", item)])
        p = dk.start(pg, self.g, ["--for", "20"], TMPDIR=spool)
        try:
            harness.wait_for(lambda: [c for c in self.g.media_calls
                          if c["step"] == "download" and c["bytes"] > 0], 40,
                 "the download to start")
            harness.wait_for(lambda: dk.outbox(pg)[mid]["state"] == "done", 40,
                             "the reply recorded")
            time.sleep(0.3)
            self.assertEqual(os.listdir(spool), [], "the spool file has a name")
            harness.kill(p, signal.SIGKILL)
        finally:
            harness.kill(p)
        row = dk.media_rows(pg)[item.id]
        self.assertEqual((row["state"], row["data_len"]), ("pending", None))
        pg.psql("UPDATE wa_media SET lease_until = now()")
        r = dk.run(pg, self.g, TMPDIR=spool)
        self.assertEqual(r.rc, 0, r)
        row = dk.media_rows(pg)[item.id]
        self.assertEqual((row["state"], row["data_sha"]), ("done", item.hex))
        self.assertEqual(os.listdir(spool), [])
        self.assertEqual(pg.scalar("SELECT count(*) FROM pg_largeobject_metadata"), "0",
                         "a large object outlived its upload")

    def test_upload_connection_that_stops_answering_fails_within_its_deadline(self):
        """The upload's own connection stops answering (its backend stopped, as
        in a stuck server or a vanished host that sends no reset): the upload
        fails within WAHOOK_DB_TIMEOUT, the item is retried on a new connection
        and stored in the same run. Before, the media lane waited for ever."""
        first = self.g.add_media(blob(1500000, b"up-a"), mime="video/mp4")
        second = self.g.add_media(blob(1500000, b"up-b"), mime="video/mp4")
        self.send([("video", first)])
        p = dk.start(pg, self.g, ["--for", "60"], WAHOOK_DB_TIMEOUT=2,
                     WAHOOK_RETRY_MIN=0.1, WAHOOK_RETRY_MAX=0.2)
        stopped = []

        def cont():
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
        self.addCleanup(cont)
        try:
            harness.wait_for(lambda: dk.media_rows(pg).get(first.id, {}).get("state")
                             == "done", 40, "the first item stored")
            # the upload connection stays open between uploads: stop its backend
            (pid,), = dk.query(pg, "SELECT pid FROM pg_stat_activity "
                                   "WHERE application_name = 'wahook-drain-media'")
            os.kill(int(pid), signal.SIGSTOP)
            stopped.append(int(pid))
            self.send([("video", second)])
            harness.wait_for(lambda: dk.media_rows(pg).get(second.id, {}).get("state")
                             == "done", 40, "the second item stored on a new connection")
        finally:
            harness.kill(p)
        r = dk.finish(p)
        self.assertIn("upload: no answer from the database within its deadline", r.err)
        row = dk.media_rows(pg)[second.id]
        self.assertEqual((row["data_sha"], row["attempts"]), (second.hex, "1"))

    def test_50mb_document_streams_in_bounded_memory(self):
        big = self.g.add_media(os.urandom(50 * 1024 * 1024), mime="application/pdf")
        others = [self.g.add_media(os.urandom(10 * 1024 * 1024), mime="video/mp4")
                  for _ in range(2)]
        self.send([("document", big)] + [("video", o) for o in others])
        p = dk.start(pg, self.g, ["--for", "120"])
        peak = 0
        try:
            end = time.monotonic() + 110
            while time.monotonic() < end:
                peak = max(peak, harness.vm_hwm_kb(p.pid))
                if pg.scalar("SELECT count(*) FROM wa_media WHERE state = 'done'") == "3":
                    break
                time.sleep(0.1)
            peak = max(peak, harness.vm_hwm_kb(p.pid))
        finally:
            harness.kill(p)
        r = dk.finish(p)
        print("  drainer peak resident size while fetching 50 + 2 x 10 MB at once: "
              "%.1f MB (limit %d MB)" % (peak / 1024, RSS_LIMIT_KB // 1024))
        rows = dk.media_rows(pg)
        for item in [big] + others:
            self.assertEqual((rows[item.id]["state"], rows[item.id]["data_sha"]),
                             ("done", item.hex), r)
        self.assertGreater(peak, 0)
        self.assertLess(peak, RSS_LIMIT_KB, r)
        # the three downloads ran at the same time
        dls = [c for c in self.g.media_calls if c["step"] == "download"]
        self.assertLess(max(c["t"] for c in dls), min(c["t_end"] for c in dls))

    def test_forgotten_item_goes_dead_and_requeue_brings_it_back(self):
        old = int(time.time()) - 8 * 86400
        gone = self.g.add_media(blob(800, b"gone"))
        failing = self.g.add_media(blob(900, b"failing"))
        self.g.media_answer("404", step="download", media_id=gone.id, times=1)
        self.g.media_answer("wrong_hash", step="download", media_id=failing.id, times=1)
        self.send([("image", gone)], ts=old)
        self.send([("audio", failing)])
        r = dk.run(pg, self.g, WAHOOK_RETRY_MIN=300, WAHOOK_RETRY_MAX=300)
        self.assertEqual(r.rc, 1, r)
        rows = dk.media_rows(pg)
        self.assertEqual(rows[gone.id]["state"], "dead")
        self.assertIn("7 days", rows[gone.id]["last_error"])
        self.assertIn("HTTP 404", rows[gone.id]["last_error"])
        self.assertEqual(rows[failing.id]["state"], "pending")
        # operators see it
        st = dk.run(pg, None, ["--status"], WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(st.rc, 0, st)
        lines = {l.rsplit(None, 1)[0].strip(): l.rsplit(None, 1)[1]
                 for l in st.out.splitlines() if l.strip() and not l.endswith(" s")}
        self.assertEqual(lines["media pending"], "1", st.out)
        self.assertEqual(lines["failed, retrying"], "1", st.out)
        self.assertEqual(lines["media dead"], "1", st.out)
        age = [l for l in st.out.splitlines() if l.startswith("oldest pending media")][0]
        self.assertGreaterEqual(float(age.split()[-2]), 0.0)
        mt = dk.run(pg, None, ["--metrics"], WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(mt.rc, 0, mt)
        gauges = dict(l.split() for l in mt.out.splitlines() if not l.startswith("#"))
        self.assertEqual(gauges["wahook_media_pending"], "1")
        self.assertEqual(gauges["wahook_media_failed"], "1")
        self.assertEqual(gauges["wahook_media_dead"], "1")
        self.assertIn("wahook_media_oldest_pending_age_seconds", gauges)
        # requeued by its message id, fetched again (Meta still had it here)
        mid = rows[gone.id]["message_id"]
        rq = dk.run(pg, None, ["--requeue-dead", mid], WAHOOK_ACCESS_TOKEN=None)
        self.assertEqual(rq.rc, 0, rq)
        self.assertIn("requeued 1 dead media item", rq.out)
        r = dk.run(pg, self.g)
        row = dk.media_rows(pg)[gone.id]
        self.assertEqual((row["state"], row["data_sha"]), ("done", gone.hex), r)

    def test_prune_removes_old_media_and_their_files(self):
        d = harness.tmpdir("wahook-media-")
        same = blob(500, b"same")
        old = self.g.add_media(same)
        young = self.g.add_media(same)          # same bytes, same file
        alone = self.g.add_media(blob(600, b"alone"))
        self.send([("image", old), ("image", alone)])
        self.send([("sticker", young)])
        r = dk.run(pg, self.g, WAHOOK_MEDIA_DIR=d)
        self.assertEqual(r.rc, 0, r)
        for f in os.listdir(d):
            os.utime(os.path.join(d, f), (time.time() - 7200, time.time() - 7200))
        pg.psql("UPDATE wa_messages SET received_at = now() - interval '40 days' "
                "WHERE message_id IN (SELECT message_id FROM wa_media WHERE media_id IN "
                "('%s', '%s'))" % (old.id, alone.id))
        pg.psql("UPDATE wa_outbox SET done_at = now() - interval '40 days'")
        out = subprocess.run([os.path.join(harness.ROOT, "scripts", "prune"), "30"],
                             env=dict(os.environ, WAHOOK_DB=pg.dsn), capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("2 media items (1 files)", out.stdout)
        self.assertEqual(sorted(dk.media_rows(pg)), [young.id])
        self.assertEqual(os.listdir(d), [old.hex], "the file still named by a row went")


if __name__ == "__main__":
    unittest.main()
