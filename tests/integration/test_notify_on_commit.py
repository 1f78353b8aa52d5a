"""test_notify_on_commit.py - NOTIFY wahook on commit, heard by a real LISTEN
connection (psql): one notification per committed batch that stored a new
message, its payload the number stored, none for a retry Meta sends again or a
batch of statuses only; and wahook-drain --for listens instead of polling the
outbox every 50 ms when idle, yet answers a new message at once."""
import re
import subprocess
import threading
import time
import unittest

import harness
import drainkit as dk

pg = server = None


def setUpModule():
    global pg, server
    pg, server = dk.start_stack()


tearDownModule = dk.stop_stack


class Listener:
    """psql LISTENing on wahook; collect() returns the payloads heard so far."""

    def __init__(self):
        self.p = harness.spawn([harness.PSQL, "-X", "-q", pg.dsn], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               bufsize=1)
        self.marks = 0
        self.collect()
        self.p.stdin.write("LISTEN wahook;\n")
        self.collect()

    def collect(self):
        """psql prints what arrived while idle after its next command."""
        self.marks += 1
        mark = "LISTENER-MARK-%d" % self.marks
        self.p.stdin.write("SELECT 1;\n\\echo %s\n" % mark)
        self.p.stdin.flush()
        heard = []
        while True:
            line = self.p.stdout.readline()
            assert line, "psql ended"
            if line.strip() == mark:
                return heard
            m = re.match(r'Asynchronous notification "wahook" with payload "([^"]*)"', line)
            if m:
                heard.append(m.group(1))

    def close(self):
        self.p.stdin.close()
        harness.kill(self.p)


def statuses_only(mid):
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
            "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": dk.DISPLAY, "phone_number_id": dk.PNID},
                "statuses": [{"id": mid, "status": "delivered", "timestamp": "1700000000",
                              "recipient_id": "4915100000001"}]}}]}]}


def outbox_scans():
    """Scans of wa_outbox so far, by index or not (every claim makes some)."""
    return int(pg.scalar("SELECT coalesce(idx_scan, 0) + seq_scan FROM pg_stat_user_tables "
                         "WHERE relname = 'wa_outbox'"))


class NotifyOnCommit(dk.DrainCase):
    def setUp(self):
        super().setUp()
        self.listener = Listener()

    def tearDown(self):
        self.listener.close()
        super().tearDown()

    def test_one_notification_per_committed_batch(self):
        ids = [dk.mid("n") for _ in range(3)]
        dk.post(server, [("4915100000001", m, None) for m in ids])
        self.assertEqual(self.listener.collect(), ["3"])
        # Meta's retry of the same webhook stores nothing new: no notification
        dk.post(server, [("4915100000001", m, None) for m in ids])
        st, _, _ = server.post(harness.meta_json(statuses_only("wamid.ours.1")))
        self.assertEqual(st, 200)
        self.assertEqual(self.listener.collect(), [])
        # many webhooks at once: group commit may store several in one batch,
        # each batch notifies once, and the payloads add up to what was stored
        posts = [[("49151000001%02d" % i, dk.mid("g"), None)] for i in range(24)]
        threads = [threading.Thread(target=dk.post, args=(server, p)) for p in posts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        heard = self.listener.collect()
        self.assertEqual(sum(int(x) for x in heard), 24)
        self.assertLessEqual(len(heard), 24)

    def test_drainer_listens_instead_of_polling(self):
        """Idle for 3 s, a --for drainer that listens claims a few times at most
        (the retries' timer, the 2 s fallback); one behind a transaction pooler
        (WAHOOK_DB_PREPARE=off: no LISTEN) polls every 50 ms. Each new message
        is claimed at once all the same."""
        def idle_scans(**extra):
            p = dk.start(pg, self.g, ["--for", "30"], **extra)
            try:
                time.sleep(1.0)                 # started and idle
                before = outbox_scans()
                time.sleep(3.0)
                time.sleep(0.6)                 # its statistics are flushed every 0.5 s+
                return outbox_scans() - before, p
            except BaseException:
                harness.kill(p)
                raise

        polled, p = idle_scans(WAHOOK_DB_PREPARE="off")
        p.terminate()
        dk.finish(p)
        listened, p = idle_scans()
        try:
            self.assertLess(listened * 4, polled, (listened, polled))
            # new messages are claimed at once, not at the next fallback claim
            for i in range(5):
                time.sleep(0.3 * i)
                m = dk.mid("l")
                t0 = time.monotonic()
                dk.post(server, [("4915100000%03d" % i, m, None)])
                harness.wait_for(lambda: pg.scalar(
                    "SELECT claim_token IS NOT NULL OR state <> 'pending' FROM wa_outbox "
                    "WHERE message_id = '%s'" % m) == "t", 10, "the claim of " + m)
                self.assertLess(time.monotonic() - t0, 1.2, "message %d" % i)
        finally:
            p.terminate()
            r = dk.finish(p)
        self.assertIn(r.rc, (0, 1), r)
        self.assertEqual({x["state"] for x in dk.outbox(pg).values()}, {"done"})


if __name__ == "__main__":
    unittest.main()
