"""test_servers_roles.py - least privilege (sql/003_roles.sql): the responder as
installed, logged in as a member of wahook_ingest, stores every kind of row
(messages, outbox, conversations, reactions set and removed, statuses moving
forward, events, quarantine); the drainer as installed, as a member of
wahook_drain, does its whole job against the Graph stand-in; and neither can
do what it has no business doing. The group roles cannot log in, and the
migrations apply to a second database of the same cluster (roles are
cluster-wide)."""
import os
import subprocess
import unittest

import harness as h
import servers

NO = "permission denied"


def psql_as(dsn, sql):
    return subprocess.run([h.PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
                          capture_output=True, text=True)


class Roles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = servers.Database()     # its own: the drainer works every pending row
        cls.inst = servers.installed()
        cls.dir = h.tmpdir("wahook-roles-")
        cls.env = servers.responder_env(cls.dir, None, cls.db)

    def post(self, obj_or_bytes):
        body = (obj_or_bytes if isinstance(obj_or_bytes, bytes)
                else h.meta_json(obj_or_bytes).encode())
        st, _, out, err = servers.cgi_request(self.inst.fcgi, self.env, "POST", body=body,
                                              headers={"X-Hub-Signature-256": h.sign(body)})
        self.assertEqual((st, out), (200, b"EVENT_RECEIVED"), err)
        return err

    def q(self, sql):
        return self.db.pg.psql(sql)

    def test_group_roles_cannot_log_in(self):
        for role in ("wahook_ingest", "wahook_drain"):
            r = psql_as("host=%s dbname=postgres user=%s" % (self.db.pg.sock, role), "SELECT 1")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not permitted to log in", r.stderr)

    def test_ingest_role_stores_every_kind_of_row(self):
        sender = "16505550042"
        m1 = "wamid.roles.m1"
        msg = servers.text_message(m1, sender, 1700000100, "hi")
        react = {"from": sender, "id": "wamid.roles.r1", "timestamp": "1700000101",
                 "type": "reaction",
                 "reaction": {"message_id": "wamid.ours.1", "emoji": "\U0001f44d"}}
        unreact = {"from": sender, "id": "wamid.roles.r2", "timestamp": "1700000102",
                   "type": "reaction", "reaction": {"message_id": "wamid.ours.1"}}
        self.post(servers.webhook([msg, react], sender=sender))
        self.assertEqual(self.q("SELECT emoji FROM wa_reactions WHERE message_id='wamid.ours.1'"),
                         [["\U0001f44d"]])
        self.post(servers.webhook([unreact], sender=sender))          # DELETE
        self.assertEqual(self.q("SELECT count(*) FROM wa_reactions WHERE "
                                "message_id='wamid.ours.1'"), [["0"]])
        self.assertEqual(self.q("SELECT unread_count FROM wa_conversations WHERE sender='%s'"
                                % sender), [["1"]])
        for status, ts in (("sent", 1700000200), ("read", 1700000202)):   # INSERT, then UPDATE
            self.post({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
                {"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881",
                                 "phone_number_id": "106540352242922"},
                    "statuses": [{"id": "wamid.ours.1", "status": status, "timestamp": str(ts),
                                  "recipient_id": sender}]}}]}]})
        self.assertEqual(self.q("SELECT status FROM wa_statuses WHERE message_id='wamid.ours.1'"),
                         [["read"]])
        ev = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT", "roles": 1}}]}]}
        self.post(ev)
        self.post(ev)                                                 # ON CONFLICT on dedupe_key
        self.assertEqual(self.q("SELECT count(*) FROM wa_events WHERE field='account_update'"),
                         [["1"]])
        self.post(b"this is not json, but it is signed")              # quarantine
        self.assertEqual(self.q("SELECT count(*) FROM wa_quarantine WHERE body = "
                                "'this is not json, but it is signed'::bytea"), [["1"]])
        self.post(servers.webhook([msg], sender=sender))              # duplicate: nothing new
        self.assertEqual(self.q("SELECT count(*) FROM wa_outbox WHERE message_id='%s'" % m1),
                         [["1"]])

    def test_ingest_role_cannot_overstep(self):
        for sql in ("DELETE FROM wa_messages",
                    "TRUNCATE wa_messages",
                    # (it reads wa_messages.payload: a reply program is given the message)
                    "SELECT waba_id, received_at FROM wa_messages",
                    "SELECT * FROM wa_outbox",
                    "UPDATE wa_outbox SET state = 'done'",
                    "DELETE FROM wa_outbox",
                    "INSERT INTO wa_outbox (message_id, phone_number_id, sender, wa_timestamp, "
                    "position, state) VALUES ('x', 'p', 's', now(), 1, 'done')",
                    "SELECT body FROM wa_quarantine",
                    "UPDATE wa_messages SET text_body = 'x'",
                    "CREATE TABLE wahook_owned (x int)"):
            r = psql_as(self.db.ingest_dsn, sql)
            self.assertNotEqual(r.returncode, 0, sql)
            self.assertIn(NO, r.stderr, sql)

    def test_drain_role_cannot_overstep(self):
        for sql in ("INSERT INTO wa_messages (message_id) VALUES ('x')",
                    "DELETE FROM wa_messages",
                    "DELETE FROM wa_outbox",
                    # (it reads wa_messages.payload: a reply program is given the message)
                    "SELECT waba_id, received_at FROM wa_messages",
                    "UPDATE wa_outbox SET sender = 'someone else'",
                    "INSERT INTO wa_outbox (message_id) VALUES ('x')",
                    "DELETE FROM wa_statuses",
                    "SELECT body FROM wa_quarantine"):
            r = psql_as(self.db.drain_dsn, sql)
            self.assertNotEqual(r.returncode, 0, sql)
            self.assertIn(NO, r.stderr, sql)

    def test_drain_role_may_run_every_outbox_statement(self):
        """The shapes of cgi/drainer/outbox.c's statements, including the retry, dead and
        release paths a good day does not take. Privileges are checked when a
        statement starts, whatever its WHERE matches."""
        for sql in ("UPDATE wa_outbox SET attempts = attempts + 1, next_attempt_at = now(), "
                    "last_error = 'x', lease_until = NULL, claim_token = NULL WHERE false",
                    "UPDATE wa_outbox SET state = 'dead', done_at = now(), last_error = 'x' "
                    "WHERE false",
                    "UPDATE wa_outbox SET state = 'pending', attempts = 0, done_at = NULL, "
                    "requeued_at = now() WHERE false",
                    "UPDATE wa_outbox SET reply_message_id = 'w', replied_at = now(), "
                    "read_at = now(), claim_token = gen_random_uuid() WHERE false",
                    "UPDATE wa_conversations SET unread_count = 0, updated_at = now() "
                    "WHERE phone_number_id = '' AND sender = ''",
                    "SELECT message_id FROM wa_outbox WHERE false FOR UPDATE SKIP LOCKED",
                    # a reply program's question and its recorded reply
                    "SELECT payload::text, type, display_phone_number, profile_name "
                    "FROM wa_messages WHERE false",
                    "UPDATE wa_outbox SET reply = '[]', reply_state = 'none', reply_sent = 0, "
                    "reply_message_ids = '{}', reply_reason = 'x' WHERE false"):
            r = psql_as(self.db.drain_dsn, sql)
            self.assertEqual(r.returncode, 0, sql + "\n" + r.stderr)

    def test_drainer_does_its_job_as_wahook_drain(self):
        import drainkit as dk
        g = dk.new_standin()
        try:
            ids = ["wamid.roles.d%d" % i for i in range(3)]
            self.post(servers.webhook([servers.text_message(m, "16505550077", 1700000300 + i,
                                                            "drain me")
                                       for i, m in enumerate(ids)], sender="16505550077"))
            env = dk.env(self.db.pg, g, WAHOOK_DB=self.db.drain_dsn)
            for args in ([], ["--status"], ["--metrics"], ["--requeue-dead"]):
                p = h.spawn([self.inst.drain] + args, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
                out, err = p.communicate(timeout=60)
                h.kill(p)
                self.assertEqual(p.returncode, 0, (args, err.decode(errors="replace")[-3000:]))
                # the alerting record (sql/008_ops.sql) is the drainer's to write
                self.assertNotIn(b"ev=ops_note", err)
            for m in ids:
                self.assertEqual(g.count("read", m, ok_only=True), 1, m)
                self.assertEqual(g.count("reply", m, ok_only=True), 1, m)
            self.assertEqual(self.q("SELECT count(*) FROM wa_outbox WHERE message_id LIKE "
                                    "'wamid.roles.d%' AND state = 'done'"), [["3"]])
            self.assertEqual(self.q("SELECT unread_count FROM wa_conversations WHERE "
                                    "sender = '16505550077'"), [["0"]])
        finally:
            g.stop()

    def test_migrations_apply_to_a_second_database(self):
        """Roles exist cluster-wide after the first database: 003 must not trip on
        them, and grants the second database's tables; applying twice is a no-op."""
        self.db.pg.psql("CREATE DATABASE wahook_second")
        dsn = "host=%s dbname=wahook_second user=%s" % (self.db.pg.sock, self.db.pg.user)
        for _ in range(2):
            r = subprocess.run([os.path.join(self.inst.share, "scripts", "migrate")],
                               env=dict(os.environ, WAHOOK_DB=dsn), capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            # the newest migration shipped, whatever its number
            newest = max(f[:3] for f in os.listdir(os.path.join(h.ROOT, "sql"))
                         if f[:3].isdigit())
            self.assertIn("at version %s" % newest, r.stdout)
        r = psql_as(dsn, "SELECT has_table_privilege('wahook_ingest', 'wa_outbox', 'INSERT'), "
                         "has_table_privilege('wahook_ingest', 'wa_outbox', 'UPDATE'), "
                         "has_column_privilege('wahook_drain', 'wa_outbox', 'read_at', 'UPDATE')")
        self.assertEqual(r.stdout.strip(), "f|f|t")   # INSERT is per column for the responder


if __name__ == "__main__":
    unittest.main()
