"""test_scale_pgbouncer.py - both programs through Debian's pgbouncer (1.18), in
pool_mode = transaction and session: every webhook answered 200 is stored,
none answered otherwise, and the drainer answers every message once, in order.

In transaction mode pgbouncer 1.18 hands each transaction to any server
connection, so prepared statements vanish between them. With the default
WAHOOK_DB_PREPARE=auto the programs notice (SQLSTATE 26000 or 42P05, logged as
ev=db_prepare) and go on unprepared without a failed request; with
WAHOOK_DB_PREPARE=off they never prepare. A pool of one server connection
makes the detection certain: the first client's statements sit on it.

And a 200 is a synchronous commit through such a pooler too, on a server whose
default is synchronous_commit=off: the setting is made in each statement's own
transaction, not once per session.
"""
import collections
import json
import threading
import unittest

import harness
import drainkit as dk
import pgtopo

pg = None
bouncers = {}


def setUpModule():
    global pg
    pg = harness.Postgres()
    pg.migrate()
    bouncers["transaction"] = pgtopo.PgBouncer(pg, "transaction", pool_size=1)
    bouncers["session"] = pgtopo.PgBouncer(pg, "session", pool_size=12)


def tearDownModule():
    for b in bouncers.values():
        b.stop()
    pg.stop()


class ThroughPgBouncer(unittest.TestCase):
    def setUp(self):
        pg.truncate()
        self.g = dk.new_standin()

    def tearDown(self):
        self.g.stop()

    def through(self, mode, prepare):
        """Webhooks from 6 clients to 3 responders, then a drainer, all through
        the mode's pgbouncer; returns the logs of both programs."""
        b = bouncers[mode]
        env = {"WAHOOK_DB_PREPARE": prepare} if prepare else {}
        srv = harness.Lighttpd(pgtopo.Dsn(b.dsn), procs=3, env=env)
        try:
            convs, statuses, lock = {}, collections.Counter(), threading.Lock()

            def client(k):
                for i in range(8):
                    sender = "4916%02d%06d" % (k, i)
                    ids = [dk.mid("pgb") for _ in range(2)]
                    st, _, _ = srv.post(harness.meta_json(dk.webhook(
                        [(sender, m, 1700000000 + i) for m in ids])))
                    with lock:
                        statuses[st] += 1
                        if st == 200:
                            convs[sender] = ids
            threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(dict(statuses), {200: 48}, srv.logs()[-3000:])
            stored = {r[0] for r in dk.query(pg, "SELECT message_id FROM wa_messages")}
            self.assertEqual(stored, {m for v in convs.values() for m in v})
            self.assertEqual(int(pg.scalar("SELECT count(*) FROM wa_outbox")), 96)
            r = dk.run(pgtopo.Dsn(b.dsn), self.g, WAHOOK_CONCURRENCY=6,
                       WAHOOK_MAX_RPS=1000, **env)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual({x["state"] for x in dk.outbox(pg).values()}, {"done"})
            counts = collections.Counter((c["step"], c["message_id"])
                                         for c in self.g.snapshot())
            self.assertEqual(len(counts), 192)
            self.assertEqual(set(counts.values()), {1})
            self.assertEqual(self.g.violations, [])
            seen = {c[0] for c in pg.psql(
                "SELECT DISTINCT application_name FROM pg_stat_activity")}
            return srv.logs() + r.err, seen
        finally:
            srv.stop()

    def test_transaction_mode_detects_lost_prepared_statements(self):
        logs, _ = self.through("transaction", None)
        self.assertIn("ev=db_prepare", logs, "WAHOOK_DB_PREPARE=auto did not notice")
        self.assertRegex(logs, r"ev=db_prepare sqlstate=(26000|42P05)")
        print("\n  transaction mode, auto: %d switches to unprepared statements"
              % logs.count("ev=db_prepare"))

    def test_transaction_mode_prepare_off(self):
        logs, _ = self.through("transaction", "off")
        self.assertNotIn("ev=db_prepare", logs)

    def test_session_mode_keeps_prepared_statements(self):
        logs, names = self.through("session", None)
        self.assertNotIn("ev=db_prepare", logs)
        # pgbouncer passes application_name on in session mode
        self.assertTrue({"wahook.fcgi", "wahook-drain"} & names, names)


# records, for each row stored, the synchronous_commit its transaction ran with
RECORD_SYNC = """
CREATE TABLE wahook_test_sync (what text, sync text);
CREATE FUNCTION wahook_test_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO wahook_test_sync VALUES (TG_TABLE_NAME || ':'
    || coalesce(to_jsonb(NEW) ->> 'message_id', ''), current_setting('synchronous_commit'));
  RETURN NULL;
END $$;
CREATE TRIGGER wahook_test_sync AFTER INSERT ON wa_messages
  FOR EACH ROW EXECUTE FUNCTION wahook_test_sync();
CREATE TRIGGER wahook_test_sync AFTER INSERT ON wa_quarantine
  FOR EACH ROW EXECUTE FUNCTION wahook_test_sync();
ALTER DATABASE postgres SET synchronous_commit = off;
"""
FORGET_SYNC = """
ALTER DATABASE postgres RESET synchronous_commit;
DROP TRIGGER wahook_test_sync ON wa_messages;
DROP TRIGGER wahook_test_sync ON wa_quarantine;
DROP FUNCTION wahook_test_sync();
DROP TABLE wahook_test_sync;
"""


class DurableThroughPgBouncer(unittest.TestCase):
    def test_each_200_was_a_synchronous_commit_on_a_server_with_it_off(self):
        """pgbouncer in transaction mode that resets its server connections
        after every transaction (server_reset_query_always): a setting made once
        per session is gone by the next one, as on a server connection that
        never saw it."""
        pg.truncate()
        dk.query(pg, RECORD_SYNC)
        self.addCleanup(dk.query, pg, FORGET_SYNC)
        b = pgtopo.PgBouncer(pg, "transaction", pool_size=2, reset_always=True)
        self.addCleanup(b.stop)
        srv = harness.Lighttpd(pgtopo.Dsn(b.dsn), procs=1, env={"WAHOOK_DB_PREPARE": "off"})
        self.addCleanup(srv.stop)
        ids = [dk.mid("sync") for _ in range(6)]
        for k, m in enumerate(ids):
            st, _, out = srv.post(harness.meta_json(dk.webhook(
                [("49170%07d" % k, m, 1700000000 + k)])))
            self.assertEqual(st, 200, srv.logs()[-3000:])
        # jsonb refuses \u0000: this body is kept in wa_quarantine, also a 200
        bad = dk.webhook([("491709999999", dk.mid("sync-bad"), 1700000000)])
        bad["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "a\u0000b"
        st, _, out = srv.post(harness.meta_json(bad))
        self.assertEqual(st, 200, srv.logs()[-3000:])
        got = dk.query(pg, "SELECT what, sync FROM wahook_test_sync")
        self.assertEqual(sorted(w for w, _ in got if w.startswith("wa_messages:")),
                         sorted("wa_messages:" + m for m in ids))
        self.assertEqual(len([w for w, _ in got if w.startswith("wa_quarantine:")]), 1, got)
        self.assertEqual({s for _, s in got}, {"on"}, json.dumps(got))
