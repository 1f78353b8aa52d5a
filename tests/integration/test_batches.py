"""test_batches.py - what one POST may carry (doc/meta-webhooks.md: up to 1000 updates over
many entries and changes) is stored whole, never only entry[0].changes[0] or
messages[0]; and what arrives over several POSTs converges: statuses never move
backwards, reactions follow their latest state, conversations count unread
messages, duplicates inside one body count once.
"""
import unittest

import harness
import wahook_expect as wx

PG = None
SRV = None
ME = wx.DISPLAY


setUpModule, tearDownModule = harness.module_services(
    globals(), web=("SRV", harness.Lighttpd), procs=2)


def post(obj):
    return SRV.post(harness.meta_json(obj))


class Batches(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        wx.clear(PG)

    def assertReceived(self, resp):
        self.assertEqual((resp[0], resp[2]), (200, b"EVENT_RECEIVED"))

    def test_1000_messages_in_one_post_are_stored_whole_in_position_order(self):
        # 4 entries x 5 changes x 50 messages; 10 senders; 7 messages per second
        entries, ids, n = [], [], 0
        for e in range(4):
            changes = []
            for c in range(5):
                msgs = []
                for _ in range(50):
                    mid = "wamid.batch.%04d" % n
                    msgs.append(wx.text_msg(mid, "1650555%04d" % (n % 10),
                                            1700000000 + n // 7, "m%d" % n))
                    ids.append(mid)
                    n += 1
                changes.append(("messages", wx.messages_value(msgs)))
            entries.append(changes)
        obj = wx.webhook(*entries)
        before = len(wx.request_lines(SRV))
        self.assertReceived(post(obj))
        line = wx.next_request_line(SRV, before)
        self.assertEqual((line["msgs"], line["new"], line["dup"]), ("1000", "1000", "0"))
        got = wx.snapshot(PG)
        self.assertEqual(sorted(r["message_id"] for r in got["wa_messages"]), ids)
        # wa_outbox comes back ordered by position: the webhook's own order
        self.assertEqual([r["message_id"] for r in got["wa_outbox"]], ids)
        self.assertEqual([r["position"] for r in got["wa_outbox"]], list(range(1, 1001)))
        rows = PG.psql("SELECT message_id FROM wa_outbox ORDER BY wa_timestamp, received_at, "
                       "position")
        self.assertEqual([r[0] for r in rows], ids, "the drainer's order key")
        self.assertEqual(sorted(r["unread_count"] for r in got["wa_conversations"]),
                         [100] * 10)
        texts = dict((r["message_id"], r["text_body"]) for r in got["wa_messages"])
        self.assertEqual(texts["wamid.batch.0999"], "m999")
        # Meta retries the whole batch: nothing more
        self.assertReceived(post(obj))
        line = wx.next_request_line(SRV, before + 1)
        self.assertEqual((line["new"], line["dup"]), ("0", "1000"))
        c = wx.counts(PG)
        self.assertEqual((c["wa_messages"], c["wa_outbox"]), (1000, 1000))

    def test_every_entry_change_and_kind_in_one_body_is_stored(self):
        obj = wx.webhook(
            [("messages", wx.messages_value([wx.text_msg("wamid.e0c0a", "111", 1700000000),
                                             wx.text_msg("wamid.e0c0b", "222", 1700000001)])),
             ("messages", wx.messages_value(statuses=[
                 wx.status("wamid.out.1", "delivered", 1700000002),
                 wx.status("wamid.out.2", "sent", 1700000003)])),
             ("message_template_status_update", {"event": "APPROVED",
                                                 "message_template_id": 42})],
            [("messages", wx.messages_value([wx.text_msg("wamid.e1c0a", "333", 1700000004)],
                                            pnid="999000111")),
             ("smb_message_echoes", {"messaging_product": "whatsapp", "metadata": {
                 "display_phone_number": ME, "phone_number_id": wx.PNID},
                 "message_echoes": [wx.text_msg("wamid.echo1", ME, 1700000005, "hi",
                                                to="111")]}),
             ("messages", wx.messages_value([
                 wx.text_msg("wamid.e1c2a", "444", 1700000006),
                 wx.reaction_msg("wamid.e1c2b", "444", 1700000007, "wamid.out.1", "\u2764")],
                 statuses=[wx.status("wamid.out.3", "read", 1700000008)]))])
        self.assertReceived(post(obj))
        got = wx.snapshot(PG)
        self.assertEqual(sorted(r["message_id"] for r in got["wa_messages"]),
                         ["wamid.e0c0a", "wamid.e0c0b", "wamid.e1c0a", "wamid.e1c2a",
                          "wamid.e1c2b", "wamid.echo1"])
        self.assertEqual([r["message_id"] for r in got["wa_outbox"]],
                         ["wamid.e0c0a", "wamid.e0c0b", "wamid.e1c0a", "wamid.e1c2a"])
        self.assertEqual(dict((r["message_id"], r["phone_number_id"])
                              for r in got["wa_outbox"])["wamid.e1c0a"], "999000111")
        self.assertEqual(sorted((r["message_id"], r["status"]) for r in got["wa_statuses"]),
                         [("wamid.out.1", "delivered"), ("wamid.out.2", "sent"),
                          ("wamid.out.3", "read")])
        self.assertEqual([(r["field"], r["payload"]["message_template_id"])
                          for r in got["wa_events"]],
                         [("message_template_status_update", 42)])
        self.assertEqual([(r["message_id"], r["emoji"]) for r in got["wa_reactions"]],
                         [("wamid.out.1", "\u2764")])
        echo = [r for r in got["wa_messages"] if r["message_id"] == "wamid.echo1"][0]
        self.assertEqual((echo["field"], echo["recipient"], echo["answered"]),
                         ("smb_message_echoes", "111", False))

    def test_statuses_out_of_order_never_move_backwards(self):
        # (sequence of (status, ts) posted one by one, the status that must remain)
        cases = [
            ("read then delivered", [("read", 20), ("delivered", 10)], "read", 20),
            ("delivered then sent", [("delivered", 10), ("sent", 5)], "delivered", 10),
            ("sent, read, played", [("sent", 1), ("read", 3), ("played", 4)], "played", 4),
            ("played then read", [("played", 4), ("read", 3)], "played", 4),
            ("failed is final", [("sent", 1), ("failed", 2), ("delivered", 3), ("read", 4)],
             "failed", 2),
        ]
        for i, (name, seq, want, want_ts) in enumerate(cases):
            mid = "wamid.st.%d" % i
            for st, ts in seq:
                extra = {"errors": [{"code": 131026, "title": "undeliverable"}]} \
                    if st == "failed" else {}
                self.assertReceived(post(wx.one(statuses=[wx.status(mid, st, 1700000000 + ts,
                                                                    **extra)])))
        # the same, all in one body, in the worst order
        self.assertReceived(post(wx.one(statuses=[
            wx.status("wamid.st.one", "read", 1700000030),
            wx.status("wamid.st.one", "sent", 1700000010),
            wx.status("wamid.st.one", "delivered", 1700000020)])))
        got = dict((r["message_id"], r) for r in wx.snapshot(PG)["wa_statuses"])
        for i, (name, seq, want, want_ts) in enumerate(cases):
            r = got["wamid.st.%d" % i]
            self.assertEqual((r["status"], r["ts"]), (want, 1700000000 + want_ts), name)
        self.assertEqual(got["wamid.st.4"]["errors"][0]["code"], 131026)
        self.assertEqual((got["wamid.st.one"]["status"], got["wamid.st.one"]["ts"]),
                         ("read", 1700000030))

    def test_reaction_set_changed_then_removed(self):
        def react(mid, ts, emoji):
            self.assertReceived(post(wx.one([wx.reaction_msg(mid, "555", ts, "wamid.ours",
                                                             emoji)])))
            return dict(((r["message_id"], r["sender"]), r["emoji"])
                        for r in wx.snapshot(PG)["wa_reactions"])

        key = ("wamid.ours", "555")
        self.assertEqual(react("wamid.r1", 1700000001, "\U0001F44D"), {key: "\U0001F44D"})
        self.assertEqual(react("wamid.r2", 1700000002, "\u2764\ufe0f"), {key: "\u2764\ufe0f"})
        # an older reaction arriving late does not win
        self.assertEqual(react("wamid.r0", 1700000000, "\U0001F622"), {key: "\u2764\ufe0f"})
        self.assertEqual(react("wamid.r3", 1700000003, ""), {}, "empty emoji removes")
        self.assertEqual(react("wamid.r4", 1700000004, "\U0001F389"), {key: "\U0001F389"})
        self.assertEqual(react("wamid.r5", 1700000005, None), {}, "absent emoji removes")
        got = wx.snapshot(PG)
        self.assertEqual(len(got["wa_messages"]), 6, "reactions are messages too")
        self.assertEqual(got["wa_outbox"], [], "reactions are not answered")

    def test_conversations_count_unread_answerable_messages(self):
        self.assertReceived(post(wx.one([wx.text_msg("wamid.c1", "777", 1700000001),
                                         wx.text_msg("wamid.c2", "777", 1700000002),
                                         wx.text_msg("wamid.c3", "888", 1700000003)])))
        self.assertReceived(post(wx.one(
            [wx.text_msg("wamid.c2", "777", 1700000002),          # a retry
             wx.text_msg("wamid.c4", "777", 1700000009),
             wx.reaction_msg("wamid.c5", "777", 1700000010, "wamid.x", "\U0001F44D"),
             {"from": "777", "id": "wamid.c6", "timestamp": "1700000011", "type": "system",
              "system": {"body": "changed number"}},
             wx.text_msg("wamid.c7", ME, 1700000012)],             # our own number
            contacts=[{"profile": {"name": "Newer Name"}, "wa_id": "777"}])))
        conv = dict((r["sender"], r) for r in wx.snapshot(PG)["wa_conversations"])
        self.assertEqual(sorted(conv), ["777", "888"], "no conversation with ourselves")
        self.assertEqual((conv["777"]["unread_count"], conv["777"]["ts"],
                          conv["777"]["profile_name"]), (3, 1700000011, "Newer Name"))
        self.assertEqual(conv["888"]["unread_count"], 1)

    def test_duplicate_ids_inside_one_body_count_once(self):
        a = wx.text_msg("wamid.same", "999", 1700000000, "first")
        b = wx.text_msg("wamid.same", "999", 1700000000, "first")
        c = wx.text_msg("wamid.other", "999", 1700000001)
        obj = wx.webhook([("messages", wx.messages_value([a, c]))],
                         [("messages", wx.messages_value([b]))])
        before = len(wx.request_lines(SRV))
        self.assertReceived(post(obj))
        line = wx.next_request_line(SRV, before)
        self.assertEqual((line["msgs"], line["new"], line["dup"]), ("3", "2", "1"))
        got = wx.snapshot(PG)
        self.assertEqual(sorted(r["message_id"] for r in got["wa_messages"]),
                         ["wamid.other", "wamid.same"])
        self.assertEqual([r["message_id"] for r in got["wa_outbox"]],
                         ["wamid.same", "wamid.other"])
        self.assertEqual(got["wa_conversations"][0]["unread_count"], 2)


if __name__ == "__main__":
    unittest.main()
