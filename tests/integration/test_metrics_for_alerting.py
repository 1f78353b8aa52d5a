"""test_metrics_for_alerting.py - wahook-drain --metrics gives alerting what it
needs, from the database alone: the last inbound message per business number
(before and after a drainer run), a refused token per number, each host's
drainer (alive, last completed run, its exit code), quarantined bodies, media,
in Prometheus's text format; and none of it reads all of a big wa_messages.
"""
import re
import socket
import time
import unittest

import harness
import drainkit as dk

pg = server = None
OTHER = "106540352242999"


def setUpModule():
    global pg, server
    pg, server = dk.start_stack()


tearDownModule = dk.stop_stack


def samples(text):
    """{(name, labels): value} of every sample line."""
    out = {}
    for m in re.finditer(r'(?m)^(wahook_\w+)(?:\{(\w+)="([^"]*)"\})? (\S+)$', text):
        out[(m.group(1), m.group(3))] = float(m.group(4))
    return out


def metrics():
    r = dk.run(pg, None, ["--metrics"], WAHOOK_ACCESS_TOKEN=None)
    assert r.rc == 0, r
    for line in r.out.splitlines():     # the exposition format, line by line
        assert re.match(r'^(# (HELP|TYPE) wahook_\w+ .+|wahook_\w+(\{\w+="[^"]*"\})? '
                        r'[0-9.e+-]+)$', line), line
    return samples(r.out), r.out


class MetricsForAlerting(dk.DrainCase):
    def test_numbers_tokens_drainer_and_quarantine(self):
        t0 = time.time()
        dk.post(server, [("4915100000001", dk.mid("a"), None)])
        dk.post(server, [("4915100000002", dk.mid("b"), None)], pnid=OTHER)
        # no drainer has run yet: the numbers show from the messages themselves
        v, text = metrics()
        for n in (dk.PNID, OTHER):
            at = v[("wahook_number_last_inbound_timestamp_seconds", n)]
            self.assertGreaterEqual(at, t0 - 2)
            self.assertLessEqual(at, time.time() + 2)
        self.assertEqual(v[("wahook_numbers", None)], 2)
        self.assertNotIn("wahook_drain_alive_timestamp_seconds{", text)
        for name in ("wahook_media_pending", "wahook_media_dead", "wahook_outbox_dead",
                     "wahook_outbox_oldest_pending_age_seconds", "wahook_quarantine_rows"):
            self.assertIn((name, None), v)
            self.assertIn("# TYPE %s gauge" % name, text)

        # a run that answers everything: this host's drainer on record, exit 0
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        host = socket.gethostname()
        v, text = metrics()
        self.assertEqual(v[("wahook_drain_last_run_exit_code", host)], 0)
        done_at = v[("wahook_drain_last_run_timestamp_seconds", host)]
        self.assertGreaterEqual(done_at, t0 - 2)
        self.assertGreaterEqual(v[("wahook_drain_alive_timestamp_seconds", host)], done_at)
        rows = dk.query(pg, "SELECT phone_number_id FROM wa_ops_number "
                        "WHERE last_inbound_at IS NOT NULL ORDER BY 1")
        self.assertEqual([x[0] for x in rows], sorted([dk.PNID, OTHER]))
        self.assertNotIn("wahook_number_token_refused_timestamp_seconds{", text)

        # the token is refused: that number (the only one with work) is stamped
        time.sleep(1.1)
        t1 = time.time()
        dk.post(server, [("4915100000001", dk.mid("a"), None)])
        self.g.refused.add(dk.ACCESS_TOKEN)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 3, r)
        v, text = metrics()
        self.assertGreaterEqual(v[("wahook_number_token_refused_timestamp_seconds",
                                   dk.PNID)], t1 - 1)
        self.assertNotIn(("wahook_number_token_refused_timestamp_seconds", OTHER), v)
        self.assertEqual(v[("wahook_drain_last_run_exit_code", host)], 3)
        self.assertGreater(v[("wahook_number_last_inbound_timestamp_seconds", dk.PNID)],
                           v[("wahook_number_last_inbound_timestamp_seconds", OTHER)])
        self.assertEqual(v[("wahook_outbox_token_refused_pending", dk.PNID)], 1)

        # the messages are pruned: the record still knows both numbers
        pg.psql("DELETE FROM wa_messages")
        v, _ = metrics()
        self.assertEqual(v[("wahook_numbers", None)], 2)
        self.assertIn(("wahook_number_last_inbound_timestamp_seconds", OTHER), v)

        # a signed body that is not a webhook: quarantined, counted, newest stamped
        self.assertEqual(v[("wahook_quarantine_rows", None)], 0)
        self.assertEqual(v[("wahook_quarantine_newest_timestamp_seconds", None)], 0)
        st, _, _ = server.post(b"this is not JSON")
        self.assertEqual(st, 200)
        v, _ = metrics()
        self.assertEqual(v[("wahook_quarantine_rows", None)], 1)
        self.assertGreaterEqual(v[("wahook_quarantine_newest_timestamp_seconds", None)],
                                t1 - 1)

    def test_a_long_run_says_it_is_alive(self):
        """A --for run is on record from its start, before it completes."""
        p = dk.start(pg, self.g, ["--for", "30"])
        try:
            host = socket.gethostname()
            harness.wait_for(lambda: dk.query(pg, "SELECT 1 FROM wa_ops_drainer WHERE "
                                              "host = '%s'" % host), 10, "the start note")
            v, _ = metrics()
            self.assertNotIn(("wahook_drain_last_run_exit_code", host), v)
            self.assertEqual(v[("wahook_drain_last_run_timestamp_seconds", host)], 0)
            self.assertGreater(v[("wahook_drain_alive_timestamp_seconds", host)], 0)
        finally:
            p.terminate()
            r = dk.finish(p)
        self.assertIn(r.rc, (0, 1), r)
        v, _ = metrics()
        self.assertIn(("wahook_drain_last_run_exit_code", host), v)

    def test_no_full_scan_of_a_big_wa_messages(self):
        """100,000 messages on record: --metrics and a drain run read only the
        tail since the record's newest time (an index), never the whole table."""
        pg.psql("INSERT INTO wa_messages (message_id, phone_number_id, sender, type, "
                "wa_timestamp, answered, payload, received_at) "
                "SELECT 'wamid.bulk' || i, 'pn' || (i % 50), 's' || i, 'text', now(), "
                "false, '{}', now() - interval '2 days' + i * interval '1 second' "
                "FROM generate_series(1, 100000) i")
        r = dk.run(pg, self.g)      # folds them into the record (one scan, once)
        self.assertEqual(r.rc, 0, r)
        pg.psql("ANALYZE wa_messages")
        dk.post(server, [("4915100000009", dk.mid("t"), None)])

        def reads():
            """(sequential scans, rows read by them, index scans, rows fetched
            through an index) of wa_messages so far"""
            rows = dk.query(pg, "SELECT seq_scan, seq_tup_read, coalesce(idx_scan, 0), "
                            "coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
                            "WHERE relname = 'wa_messages'")
            return [int(x) for x in rows[0]]

        time.sleep(1.5)       # statistics of the sessions so far have landed
        before = reads()
        v, _ = metrics()
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(v[("wahook_numbers", None)], 51)
        harness.wait_for(lambda: reads()[2] >= before[2] + 2, 10,
                         "the index scans' statistics")
        after = reads()
        self.assertEqual(after[0], before[0], "a sequential scan of wa_messages")
        # each of the two reads the tail: the message posted and the bulk's
        # last ten minutes (the margin for late commits: 600 rows at one a
        # second), not the 100,000 rows
        self.assertLess(after[3] - before[3], 2 * 700, (before, after))


if __name__ == "__main__":
    unittest.main()
