"""test_media_kept.py - every inbound photo, voice note, video, document and
sticker is fetched from the (stand-in) Graph API and kept: in wa_media.data by
default, or as a file named by its sha256 under WAHOOK_MEDIA_DIR. Checked bytes
only (size and sha256, hex or base64), retries with a fresh URL, a refused token
stops only its number (in both lanes, exit 3), oversized items are recorded and
not fetched, and a slow download never holds up a reply. Media is on by
default: no test here switches it on.
"""
import hashlib
import os
import time
import unittest

import harness
import drainkit as dk

pg = server = None
TYPES = [("image", "image/jpeg", "hex", "int"), ("audio", "audio/ogg", "base64", "str"),
         ("video", "video/mp4", "base64", "int"), ("document", "application/pdf", "hex", "str"),
         ("sticker", "image/webp", "base64", "int")]


setUpModule, tearDownModule = dk.module_stack(globals())


def blob(n, seed=b"x"):
    """n bytes that differ from any other blob of another seed or length."""
    h = hashlib.sha256(seed + str(n).encode()).digest()
    return (h * (n // len(h) + 1))[:n]


class MediaCase(dk.DrainCase):
    def send(self, items, ts=None, pnid=dk.PNID):
        """One webhook with one media message per (type, item); returns message ids."""
        sender = "4915200%06d" % (int(time.monotonic() * 1000) % 1000000)
        msgs, ids = [], []
        for mtype, item in items:
            m = dk.mid("media")
            ids.append(m)
            msgs.append(dk.media_message(sender, m, mtype, item, ts))
        dk.post_objects(dk.stack_server(), msgs, pnid=pnid)
        return ids


class MediaKept(MediaCase):
    def test_each_type_stored_in_the_database_with_hex_and_base64_hashes(self):
        items = []
        for i, (mtype, mime, sha, size_as) in enumerate(TYPES):
            items.append((mtype, self.g.add_media(blob(1000 + 7919 * i, mtype.encode()),
                                                  mime=mime, sha=sha, size_as=size_as)))
        mids = self.send(items)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        rows = dk.media_rows(pg)
        self.assertEqual(len(rows), 5, rows)
        for (mtype, item), m in zip(items, mids):
            row = rows[item.id]
            self.assertEqual(row["state"], "done", row)
            self.assertEqual(row["message_id"], m)
            self.assertEqual(row["media_type"], mtype)
            self.assertEqual(row["mime_type"], item.mime)
            self.assertEqual(row["sha256"], item.hex)
            self.assertEqual(row["file_size"], str(len(item.data)))
            self.assertEqual(row["data_len"], str(len(item.data)))
            self.assertEqual(row["data_sha"], item.hex)
            self.assertIsNone(row["path"])
            self.assertIsNone(row["claim_token"])
        # the token went with every call, to the Graph API and the download host only
        calls = self.g.media_calls
        self.assertEqual(len([c for c in calls if c["step"] == "meta"]), 5)
        self.assertEqual(len([c for c in calls if c["step"] == "download"]), 5)
        for c in calls:
            self.assertEqual(c["auth"], "Bearer " + dk.ACCESS_TOKEN)
        # the conversation was answered as always
        self.assertEqual(len(self.g.ok("reply")), 5)
        self.assertNotIn(dk.ACCESS_TOKEN, r.err + r.out)
        self.assertEqual(r.err.count("ev=media "), 5, r)
        self.assertIn("ev=media_end stored=5", r.err)

    def test_wrong_hash_is_a_failed_attempt_then_the_right_bytes_are_kept(self):
        item = self.g.add_media(blob(20000, b"wrong"), sha="base64")
        self.g.media_answer("wrong_hash", step="download", media_id=item.id, times=1)
        self.send([("image", item)])
        r = dk.run(pg, self.g, WAHOOK_RETRY_MIN=30, WAHOOK_RETRY_MAX=30)
        self.assertEqual(r.rc, 1, r)
        row = dk.media_rows(pg)[item.id]
        self.assertEqual(row["state"], "pending")
        self.assertEqual(row["attempts"], "1")
        self.assertIn("sha256 mismatch", row["last_error"])
        self.assertIsNone(row["data_len"], "bytes with a wrong hash were stored")
        pg.psql("UPDATE wa_media SET next_attempt_at = now()")
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        row = dk.media_rows(pg)[item.id]
        self.assertEqual((row["state"], row["data_sha"]), ("done", item.hex))

    def test_expired_url_is_retried_with_a_fresh_one(self):
        item = self.g.add_media(blob(3000, b"exp"))
        self.g.media_answer("404", step="download", media_id=item.id, times=1)
        self.send([("document", item)])
        dk.drain_until_done(pg, self.g)
        row = dk.media_rows(pg)[item.id]
        self.assertEqual((row["state"], row["data_sha"]), ("done", item.hex))
        dls = [c for c in self.g.media_calls if c["step"] == "download"]
        self.assertEqual([c["status"] for c in dls], [404, 200])
        self.assertNotEqual(dls[0]["path"], dls[1]["path"], "the URL was not fresh")
        self.assertEqual(self.g.media_count("meta", item.id), 2)

    def test_refused_token_stops_only_its_number_and_marks_nothing(self):
        one, two = sorted(dk.NUMBER_TOKENS)[:2]
        tok = dk.NUMBER_TOKENS
        self.g.stop()
        self.g = dk.GraphStandin(dk.ACCESS_TOKEN, tokens={one: tok[one], two: tok[two]})
        self.g.refused.add(tok[two])
        tf = dk.tokens_file(harness.tmpdir("wahook-media-tokens-"),
                            [(one, tok[one]), (two, tok[two])])
        refused = self.g.add_media(blob(500, b"401"))
        fine = self.g.add_media(blob(600, b"fine"))
        self.send([("image", refused)], pnid=two)
        self.send([("image", fine)], pnid=one)
        r = dk.run(pg, self.g, WAHOOK_ACCESS_TOKENS_FILE=tf)
        self.assertEqual(r.rc, 3, r)
        self.assertRegex(r.err, r"ev=credentials (lane=media )?number=%s" % two)
        for t in tok.values():
            self.assertNotIn(t, r.err + r.out)
        rows = dk.media_rows(pg)
        row = rows[refused.id]
        self.assertEqual((row["state"], row["attempts"], row["claim_token"]),
                         ("pending", "0", None))
        self.assertEqual(self.g.media_count("download", refused.id), 0)
        # the other number's media went on, fetched with its own token
        self.assertEqual(rows[fine.id]["state"], "done", rows[fine.id])
        self.assertEqual({c["auth"] for c in self.g.media_calls
                          if c["media_id"] == fine.id}, {"Bearer " + tok[one]})
        # the refused number's conversation waits as well: one rule, both lanes
        self.assertEqual({s for n, s in dk.query(pg, "SELECT phone_number_id, state "
                                                 "FROM wa_outbox") if n == two},
                         {"pending"})

    def test_oversized_item_is_recorded_and_not_fetched(self):
        big = self.g.add_media(blob(5000, b"big"), mime="video/mp4")
        small = self.g.add_media(blob(900, b"small"))
        self.send([("video", big), ("image", small)])
        r = dk.run(pg, self.g, WAHOOK_MEDIA_MAX=1000)
        self.assertEqual(r.rc, 0, r)
        rows = dk.media_rows(pg)
        self.assertEqual(rows[big.id]["state"], "too_large")
        self.assertEqual(rows[big.id]["file_size"], "5000")
        self.assertIn("WAHOOK_MEDIA_MAX", rows[big.id]["last_error"])
        self.assertEqual(self.g.media_count("download", big.id), 0)
        self.assertEqual(rows[small.id]["state"], "done")

    def test_a_slow_download_does_not_hold_up_the_replies(self):
        item = self.g.add_media(blob(400000, b"slow"), mime="video/mp4")
        self.g.media_slow_s = 3.0
        self.g.media_answer("slow", step="download", media_id=item.id)
        mids = self.send([("video", item)])
        convs = dk.feed(server, conversations=3, per_conv=2)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        dl = [c for c in self.g.media_calls if c["step"] == "download"][0]
        harness.wait_for(lambda: dl["t_end"] is not None, 5, "the download's end")
        replies = self.g.ok("reply")
        self.assertEqual(len(replies), 7)
        own = [c for c in replies if c["message_id"] == mids[0]][0]
        # the media message's own reply and every other went out while the
        # download was still trickling in
        self.assertLess(max(c["t_end"] for c in replies), dl["t_end"] - 1.5)
        self.assertLess(own["t_end"], dl["t"] + 1.0)
        self.assertEqual(dk.media_rows(pg)[item.id]["data_sha"], item.hex)
        self.assertEqual(len(convs), 3)

    def test_a_stalled_download_is_cut_and_a_slow_one_is_not(self):
        """Time limits on the transfer: a download trickling for 2.5 s with
        WAHOOK_HTTP_TIMEOUT=1 is kept at the first try; one that stops sending
        is cut after 1 s without a byte and fetched again."""
        slow = self.g.add_media(blob(300000, b"trickle"), mime="audio/ogg")
        stall = self.g.add_media(blob(300000, b"stall"), mime="audio/ogg")
        self.g.media_slow_s = 2.5
        self.g.media_answer("slow", step="download", media_id=slow.id)
        self.g.media_answer("hang", step="download", media_id=stall.id, times=1)
        self.send([("audio", slow), ("audio", stall)])
        env = dict(WAHOOK_HTTP_TIMEOUT=1, WAHOOK_RETRY_MIN=0.5, WAHOOK_RETRY_MAX=0.5)
        r = dk.run(pg, self.g, **env)
        self.assertIn(r.rc, (0, 1), r)
        self.assertRegex(r.err, r"ev=media media_id=%s .*outcome=retry .*no byte within "
                         r"WAHOOK_HTTP_TIMEOUT" % stall.id)
        if r.rc == 1:
            time.sleep(0.6)
            r = dk.run(pg, self.g, **env)
            self.assertEqual(r.rc, 0, r)
        rows = dk.media_rows(pg)
        self.assertEqual((rows[slow.id]["state"], rows[slow.id]["data_sha"]),
                         ("done", slow.hex))
        self.assertEqual((rows[stall.id]["state"], rows[stall.id]["data_sha"]),
                         ("done", stall.hex))
        self.assertEqual(self.g.media_count("download", slow.id), 1)
        self.assertEqual(self.g.media_count("download", stall.id), 2)

    def test_media_off_fetches_nothing(self):
        item = self.g.add_media(blob(100, b"off"))
        self.send([("image", item)])
        r = dk.run(pg, self.g, WAHOOK_MEDIA="off")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(dk.media_rows(pg), {})
        self.assertEqual(self.g.media_count(), 0)
        self.assertEqual(len(self.g.ok("reply")), 1)

    def test_bad_media_settings_exit_2_naming_the_variable(self):
        f = os.path.join(harness.tmpdir("wahook-media-"), "a-file")
        open(f, "w").close()
        cases = [({"WAHOOK_MEDIA": "yes"}, "WAHOOK_MEDIA:"),
                 ({"WAHOOK_MEDIA_DIR": "relative/dir"}, "WAHOOK_MEDIA_DIR: want an absolute"),
                 ({"WAHOOK_MEDIA_DIR": "/nonexistent/media"}, "WAHOOK_MEDIA_DIR: not a dir"),
                 ({"WAHOOK_MEDIA_DIR": f}, "WAHOOK_MEDIA_DIR: not a dir"),
                 ({"WAHOOK_MEDIA_MAX": "0"}, "WAHOOK_MEDIA_MAX"),
                 ({"WAHOOK_MEDIA_MAX": "2000000000"}, "bytea's limit"),
                 ({"WAHOOK_MEDIA_CONCURRENCY": "65"}, "WAHOOK_MEDIA_CONCURRENCY")]
        for extra, want in cases:
            r = dk.run(pg, self.g, **extra)
            self.assertEqual(r.rc, 2, (extra, r))
            self.assertIn(want, r.err, extra)
        self.assertEqual(self.g.snapshot(), [])

    def test_a_redirect_is_not_followed_with_the_token(self):
        item = self.g.add_media(blob(100, b"redir"))
        self.g.media_answer("redirect", step="download", media_id=item.id)
        self.send([("image", item)])
        r = dk.run(pg, self.g, WAHOOK_RETRY_MIN=30, WAHOOK_RETRY_MAX=30)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual([c for c in self.g.media_calls if "followed" in c["path"]], [])
        row = dk.media_rows(pg)[item.id]
        self.assertEqual(row["state"], "pending")
        self.assertIn("HTTP 302", row["last_error"])

    def test_a_retrieve_answer_over_64_kib_is_a_failed_attempt(self):
        """The answer is cut at 64 KiB and judged as an answer all the same: a
        200 is a failed attempt that says why, a 500 one is retried on its
        status (not as a network error); the next attempt keeps both items."""
        big = self.g.add_media(blob(2000, b"big"))
        err = self.g.add_media(blob(2000, b"err"))
        self.g.media_answer("big_body", step="meta", media_id=big.id, times=1)
        self.g.media_answer("big_500", step="meta", media_id=err.id, times=1)
        self.send([("image", big), ("image", err)])
        r = dk.run(pg, self.g, WAHOOK_RETRY_MIN=30, WAHOOK_RETRY_MAX=30)
        self.assertEqual(r.rc, 1, r)
        rows = dk.media_rows(pg)
        for item in (big, err):
            self.assertEqual((rows[item.id]["state"], rows[item.id]["attempts"]),
                             ("pending", "1"), rows[item.id])
        self.assertIn("retrieve answer: over 65536 bytes", rows[big.id]["last_error"])
        self.assertIn("http=500", rows[err.id]["last_error"])
        self.assertNotIn("curl", rows[err.id]["last_error"])
        pg.psql("UPDATE wa_media SET next_attempt_at = now()")
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        rows = dk.media_rows(pg)
        for item in (big, err):
            self.assertEqual((rows[item.id]["state"], rows[item.id]["data_sha"]),
                             ("done", item.hex))


if __name__ == "__main__":
    unittest.main()


PROGRAM = """#!/usr/bin/env python3
import json, sys
d = json.load(sys.stdin)
print("media: " + ", ".join("%s %s %s %s" % (m["type"], m["state"], m["sha256"] or "-",
                                             m["in_database"]) for m in d["media"]))
"""


# what the database holds for each item at the moment the program runs: the
# order is proved by what the program itself sees, not by comparing clocks
LOOK = """
import os, subprocess
for m in d["media"]:
    r = subprocess.run([%r, "-X", "-At", "-F", " ", %r, "-c",
                        "SELECT state, encode(sha256(data), 'hex') FROM wa_media "
                        "WHERE sha256 = '%%s'" %% m["sha256"]],
                       capture_output=True, text=True)
    with open(os.path.join(os.path.dirname(sys.argv[0]), "seen"), "a") as f:
        f.write("[%%s]\\n" %% r.stdout.strip())
    if r.stdout.strip() != "done " + m["sha256"]:
        sys.exit("not stored yet: " + r.stdout + r.stderr)
"""


class MediaForReplyPrograms(MediaCase):
    def program(self, look=False):
        d = harness.tmpdir("wahook-reply-")
        path = os.path.join(d, "describe-media")
        with open(path, "w") as f:
            f.write(PROGRAM + (LOOK % (harness.PSQL, pg.dsn) if look else ""))
        os.chmod(path, 0o755)
        return path

    def test_program_runs_after_the_media_is_stored_and_is_told_where(self):
        item = self.g.add_media(blob(250000, b"prog"), mime="image/png")
        self.g.media_slow_s = 1.5
        self.g.media_answer("slow", step="download", media_id=item.id)
        mids = self.send([("image", item)])
        # the program fails (and no reply goes) unless the row is done and its
        # bytes are in the database when it runs
        prog = self.program(look=True)
        r = dk.run(pg, self.g, WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(r.rc, 0, r)
        with open(os.path.join(os.path.dirname(prog), "seen")) as f:
            self.assertEqual(f.read(), "[done %s]\n" % item.hex)
        reply = [c for c in self.g.ok("reply") if c["message_id"] == mids[0]]
        self.assertEqual(len(reply), 1, r)
        self.assertEqual(reply[0]["body"]["text"]["body"],
                         "media: image done %s True" % item.hex)

    def test_media_that_fails_for_good_lets_the_reply_go_out(self):
        gone = self.g.add_media(blob(100, b"gone"))
        del self.g.media[gone.id]           # Meta no longer knows it: code 100
        mids = self.send([("audio", gone)])
        r = dk.run(pg, self.g, WAHOOK_REPLY_COMMAND=self.program())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(dk.media_rows(pg)[gone.id]["state"], "dead")
        reply = [c for c in self.g.ok("reply") if c["message_id"] == mids[0]]
        self.assertEqual([c["body"]["text"]["body"] for c in reply],
                         ["media: audio dead - False"])
