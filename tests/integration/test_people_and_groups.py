"""test_people_and_groups.py - Meta's 2026 platform end to end, through the real
web server, responder, PostgreSQL, drainer and the stand-in Graph API:

- a user who keeps the phone number back (a BSUID and a username, no `from`) is
  stored, queued, marked read and answered with "recipient": <BSUID> and no "to";
- a user with both is answered by phone number ("to"), and the BSUID and
  username are stored in their own columns;
- one person's messages with and without the phone number are one conversation,
  answered in order;
- the reply program is told user_id, username and group_id (input and
  environment), WAHOOK_SENDER is the phone number when known, else the BSUID;
- a group message is marked read, never answered 1:1: the fixed text skips it,
  a reply program's answer goes to the group;
- a changed identity (user_changed_user_id) is stored, never answered, and the
  person's next message continues their conversation;
- a status to a BSUID is stored with recipient_user_id.
"""
import json
import os
import stat
import unittest

import drainkit as dk
import harness
import wahook_expect as wx

pg = server = None
BSUID = "US.13491208655302741918"
PHONE = "16505551234"


def setUpModule():
    global pg, server
    pg, server = dk.start_stack()


tearDownModule = dk.stop_stack


def value(contacts, messages=None, statuses=None):
    """A messages change's value; contacts None: none at all (system messages)."""
    return wx.messages_value(messages, statuses, contacts=contacts or [], pnid=dk.PNID,
                             display=dk.DISPLAY)


def post(v):
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
                                                             "value": v}]}]}
    status, _, text = server.post(harness.meta_json(body))
    assert status == 200, (status, text, server.logs()[-2000:])


def text(mid, ts, body="hello", **who):
    m = {"id": mid, "timestamp": str(ts), "type": "text", "text": {"body": body}}
    m.update(who)
    return m


def username_only(mid, ts, uid=BSUID, name="Sheena", username="@sheena"):
    """Meta's shape for a user who adopted a username: no from, no wa_id."""
    return value([{"profile": {"name": name, "username": username}, "user_id": uid}],
                 [text(mid, ts, from_user_id=uid)])


def replies(g):
    return [c for c in g.snapshot() if c["step"] == "reply"]


class People(dk.DrainCase):

    def test_username_only_is_stored_read_and_answered_by_bsuid(self):
        m = dk.mid("bsuid")
        post(username_only(m, 1700000000))
        row = dk.query(pg, "SELECT sender, user_id, username, group_id FROM wa_messages "
                       "WHERE message_id = '%s'" % m)
        self.assertEqual(row, [[BSUID, BSUID, "@sheena", None]])
        self.assertEqual(dk.outbox(pg)[m]["sender"], BSUID)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(dk.outbox(pg)[m]["state"], "done")
        steps = [(c["step"], c["message_id"]) for c in self.g.snapshot()]
        self.assertEqual(steps, [("read", m), ("reply", m)])
        body = replies(self.g)[0]["body"]
        self.assertEqual(body["recipient"], BSUID)
        self.assertNotIn("to", body, "a BSUID alone goes in recipient, never to")
        self.assertEqual(body["recipient_type"], "individual")
        self.assertEqual(self.g.violations, [])
        conv = dk.query(pg, "SELECT sender, user_id, username, phone, unread_count "
                        "FROM wa_conversations")
        self.assertEqual(conv, [[BSUID, BSUID, "@sheena", None, "0"]])

    def test_phone_and_bsuid_is_answered_by_phone_and_one_conversation_in_order(self):
        first, second, third = dk.mid("p1"), dk.mid("p2"), dk.mid("p3")
        # the phone number shown, then withheld, then shown again: one person
        post(value([{"profile": {"name": "Sheena"}, "wa_id": PHONE, "user_id": BSUID}],
                   [text(first, 1700000100, **{"from": PHONE, "from_user_id": BSUID})]))
        post(username_only(second, 1700000100))
        post(value([{"profile": {"name": "Sheena"}, "wa_id": PHONE, "user_id": BSUID}],
                   [text(third, 1700000100, **{"from": PHONE, "from_user_id": BSUID})]))
        ob = dk.outbox(pg)
        self.assertEqual({ob[m]["sender"] for m in (first, second, third)}, {BSUID},
                         "one conversation, keyed by the BSUID")
        self.assertEqual(dk.query(pg, "SELECT sender, user_id FROM wa_messages WHERE "
                                  "message_id = '%s'" % first), [[PHONE, BSUID]])
        dk.drain_until_done(pg, self.g)
        self.assert_in_order({BSUID: [first, second, third]})
        to = [(c["message_id"], c["body"].get("to"), c["body"].get("recipient"))
              for c in replies(self.g)]
        self.assertEqual(to, [(first, PHONE, None), (second, None, BSUID),
                              (third, PHONE, None)])
        self.assertEqual(dk.query(pg, "SELECT count(*), min(phone), min(username) "
                                  "FROM wa_conversations"), [["1", PHONE, "@sheena"]])

    def test_reply_program_is_told_who_and_sender_is_the_bsuid_without_phone(self):
        d = harness.tmpdir("wahook-people-")
        seen = os.path.join(d, "seen")
        prog = os.path.join(d, "prog")
        with open(prog, "w") as f:
            f.write("#!/usr/bin/python3\nimport json, os, sys\n"
                    "i = json.loads(sys.stdin.readline())\n"
                    "keep = {k: os.environ.get(k) for k in ('WAHOOK_SENDER',"
                    " 'WAHOOK_USER_ID', 'WAHOOK_USERNAME', 'WAHOOK_GROUP_ID')}\n"
                    "keep['input'] = {k: i[k] for k in ('sender', 'user_id', 'username',"
                    " 'group_id')}\n"
                    "open(%r, 'a').write(json.dumps(keep) + '\\n')\n"
                    "print('hi ' + (i['username'] or i['sender']))\n" % seen)
        os.chmod(prog, stat.S_IRWXU)
        a, b = dk.mid("rp"), dk.mid("rp")
        post(username_only(a, 1700000200))
        post(value([{"profile": {"name": "Tom"}, "wa_id": "4915550100", "user_id":
                     "DE.77"}], [text(b, 1700000201, **{"from": "4915550100"})]))
        r = dk.run(pg, self.g, WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(r.rc, 0, r)
        with open(seen) as f:
            got = sorted((json.loads(l) for l in f), key=lambda x: x["WAHOOK_SENDER"])
        self.assertEqual(got, [
            {"WAHOOK_SENDER": "4915550100", "WAHOOK_USER_ID": "DE.77",
             "WAHOOK_USERNAME": None, "WAHOOK_GROUP_ID": None,
             "input": {"sender": "4915550100", "user_id": "DE.77", "username": None,
                       "group_id": None}},
            {"WAHOOK_SENDER": BSUID, "WAHOOK_USER_ID": BSUID,
             "WAHOOK_USERNAME": "@sheena", "WAHOOK_GROUP_ID": None,
             "input": {"sender": BSUID, "user_id": BSUID, "username": "@sheena",
                       "group_id": None}}])
        bodies = {c["message_id"]: c["body"] for c in replies(self.g)}
        self.assertEqual((bodies[a].get("recipient"), bodies[a].get("to")), (BSUID, None))
        self.assertEqual(bodies[a]["text"]["body"], "hi @sheena")
        self.assertEqual((bodies[b].get("to"), bodies[b].get("recipient")),
                         ("4915550100", None))

    def test_changed_user_id_is_stored_not_answered_and_continues_the_conversation(self):
        old, new = "US.55500011", "US.55500022"
        m1, sysm, m2 = dk.mid("id1"), dk.mid("idsys"), dk.mid("id2")
        post(username_only(m1, 1700000300, uid=old))
        # Meta's system message: no contacts, no from; the old and new BSUID in system
        post(value(None, [{"id": sysm, "timestamp": "1700000301", "type": "system",
                           "system": {"body": "User Sheena changed from %s to %s" % (old, new),
                                      "type": "user_changed_user_id",
                                      "previous_user_id": old, "user_id": new}}]))
        post(username_only(m2, 1700000302, uid=new))
        ob = dk.outbox(pg)
        self.assertNotIn(sysm, ob, "a system message is never answered")
        self.assertEqual(dk.query(pg, "SELECT type, answered FROM wa_messages WHERE "
                                  "message_id = '%s'" % sysm), [["system", "f"]])
        self.assertEqual((ob[m1]["sender"], ob[m2]["sender"]), (old, old),
                         "the new BSUID continues the conversation")
        self.assertEqual(dk.query(pg, "SELECT new_id, conversation FROM wa_identity_links"),
                         [[new, old]])
        dk.drain_until_done(pg, self.g)
        self.assert_in_order({old: [m1, m2]})
        # the reply still goes to whom the message came from: the new BSUID
        self.assertEqual(replies(self.g)[-1]["body"]["recipient"], new)

    def test_status_to_a_bsuid_is_stored(self):
        post(value([{"profile": {"name": "S", "username": "@s"}, "user_id": BSUID}],
                   statuses=[{"id": "wamid.out.bsuid", "status": "delivered",
                              "timestamp": "1700000400", "recipient_user_id": BSUID}]))
        self.assertEqual(dk.query(pg, "SELECT status, recipient_id, recipient_user_id FROM "
                                  "wa_statuses"), [["delivered", None, BSUID]])


class BrokenItem(dk.DrainCase):

    def test_broken_item_alone_in_quarantine_fixed_and_replayed(self):
        good1, broken, good2 = dk.mid("ok"), dk.mid("bad"), dk.mid("ok")
        bad = text(broken, 1700000700, **{"from": PHONE})
        del bad["timestamp"]
        post(value([{"profile": {"name": "S"}, "wa_id": PHONE}],
                   [text(good1, 1700000700, **{"from": PHONE}), bad,
                    text(good2, 1700000701, **{"from": PHONE})]))
        self.assertEqual(sorted(dk.outbox(pg)), sorted([good1, good2]),
                         "the good ones are stored and queued")
        q = dk.query(pg, "SELECT id, path, reason FROM wa_quarantine")
        self.assertEqual(len(q), 1)
        qid, path, reason = q[0]
        self.assertEqual(path, "entry[0].changes[0].messages[1]")
        self.assertIn("timestamp", reason)
        # the operator mends the item and posts it again with scripts/replay
        pg.psql("UPDATE wa_quarantine SET body = convert_to(jsonb_set(convert_from(body, "
                "'UTF8')::jsonb, '{entry,0,changes,0,value,messages,0,timestamp}', "
                "'\"1700000700\"')::text, 'UTF8') WHERE id = %s" % qid)
        d = harness.tmpdir("wahook-replay-")
        secret = os.path.join(d, "app-secret")
        with open(secret, "w") as f:
            f.write(harness.SECRET)
        r = harness.subprocess.run(
            [os.path.join(harness.ROOT, "scripts", "replay"), "--delete",
             "http://127.0.0.1:%d/webhook" % server.port, qid],
            env=dict(os.environ, WAHOOK_DB=pg.dsn, WAHOOK_APP_SECRET_FILE=secret),
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("stored", r.stdout)
        self.assertEqual(sorted(dk.outbox(pg)), sorted([good1, broken, good2]))
        self.assertEqual(dk.query(pg, "SELECT count(*) FROM wa_quarantine"), [["0"]])


GROUP = "Y2FwaV9ncm91cDoxNTU1MDEwMDAwMToxMjAzNjM0MDQ2OTQyMzM5MTcZD"


def group_message(mid, ts, sender=PHONE, uid=BSUID):
    return value([{"profile": {"name": "Member"}, "wa_id": sender, "user_id": uid}],
                 [text(mid, ts, body="hello all", **{"from": sender, "from_user_id": uid,
                                                     "group_id": GROUP})])


class Groups(dk.DrainCase):

    def test_group_message_is_read_but_the_fixed_text_never_answers_it(self):
        g1, private = dk.mid("g"), dk.mid("priv")
        post(group_message(g1, 1700000500))
        post(username_only(private, 1700000501))
        self.assertEqual(dk.query(pg, "SELECT group_id FROM wa_messages WHERE message_id = "
                                  "'%s'" % g1), [[GROUP]])
        self.assertEqual(dk.outbox(pg)[g1]["sender"], GROUP)
        r = dk.run(pg, self.g)
        self.assertEqual(r.rc, 0, r)
        steps = sorted((c["step"], c["message_id"]) for c in self.g.snapshot())
        self.assertEqual(steps, sorted([("read", g1), ("read", private),
                                        ("reply", private)]),
                         "no reply to a group message, none to its author alone")
        row = dk.query(pg, "SELECT state, reply_state, reply_reason FROM wa_outbox WHERE "
                       "message_id = '%s'" % g1)
        self.assertEqual(row[0][:2], ["done", "none"])
        self.assertIn("group", row[0][2])

    def test_reply_program_answers_a_group_message_in_the_group(self):
        d = harness.tmpdir("wahook-group-")
        prog = os.path.join(d, "prog")
        with open(prog, "w") as f:
            # tries to answer the author alone: wahook sends it to the group
            f.write("#!/bin/sh\necho '{\"type\":\"text\",\"text\":{\"body\":\"'"
                    "\"$WAHOOK_GROUP_ID\"'\"},\"to\":\"'\"$WAHOOK_SENDER\"'\"}'\n")
        os.chmod(prog, stat.S_IRWXU)
        g1 = dk.mid("gp")
        post(group_message(g1, 1700000600))
        r = dk.run(pg, self.g, WAHOOK_REPLY_COMMAND=prog)
        self.assertEqual(r.rc, 0, r)
        body = replies(self.g)[0]["body"]
        self.assertEqual((body["recipient_type"], body["to"]), ("group", GROUP))
        self.assertNotIn("recipient", body)
        self.assertEqual(body["text"]["body"], GROUP, "the program saw WAHOOK_GROUP_ID")
        self.assertEqual(self.g.violations, [])


if __name__ == "__main__":
    unittest.main()
