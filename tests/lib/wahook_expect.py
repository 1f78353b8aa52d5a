"""wahook_expect.py - helpers of the responder's integration tests:
webhook bodies built the way Meta shapes them, one-query snapshots of every
table, the outbox rule and other expectations computed independently of the C
code from a webhook object, and the responder's own logfmt lines.
Standard library only.
"""
import json
import re

import harness

TABLES = ("wa_messages", "wa_outbox", "wa_conversations", "wa_reactions", "wa_statuses",
          "wa_events", "wa_quarantine")

# one psql round trip: every table as JSON (timestamps as Unix seconds); jsonb
# because json_agg puts newlines between elements and psql splits rows on them
_SNAPSHOT_SQL = """
SELECT json_build_object(
 'wa_messages', (SELECT coalesce(json_agg(x ORDER BY x.message_id), '[]') FROM (
    SELECT message_id, phone_number_id, display_phone_number, waba_id, field, sender,
           recipient, type, extract(epoch FROM wa_timestamp)::bigint AS ts, text_body,
           profile_name, context_message_id, answered, payload, user_id, parent_user_id,
           username, group_id FROM wa_messages) x),
 'wa_outbox', (SELECT coalesce(json_agg(x ORDER BY x.position), '[]') FROM (
    SELECT message_id, phone_number_id, sender, extract(epoch FROM wa_timestamp)::bigint
           AS ts, position, state, attempts FROM wa_outbox) x),
 'wa_conversations', (SELECT coalesce(json_agg(x ORDER BY x.sender), '[]') FROM (
    SELECT phone_number_id, sender, profile_name,
           extract(epoch FROM last_message_at)::bigint AS ts, unread_count, user_id,
           username, phone
    FROM wa_conversations) x),
 'wa_reactions', (SELECT coalesce(json_agg(x ORDER BY x.message_id, x.sender), '[]') FROM (
    SELECT message_id, sender, phone_number_id, emoji, reaction_message_id,
           extract(epoch FROM wa_timestamp)::bigint AS ts FROM wa_reactions) x),
 'wa_statuses', (SELECT coalesce(json_agg(x ORDER BY x.message_id), '[]') FROM (
    SELECT message_id, phone_number_id, recipient_id, status,
           extract(epoch FROM wa_timestamp)::bigint AS ts, errors,
           biz_opaque_callback_data, payload, recipient_user_id,
           recipient_parent_user_id FROM wa_statuses) x),
 'wa_events', (SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (
    SELECT id, waba_id, field, payload FROM wa_events) x),
 'wa_quarantine', (SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (
    SELECT id, reason, path, encode(body, 'hex') AS body_hex FROM wa_quarantine) x))::jsonb
"""


def snapshot(pg):
    """Every wahook table's rows as lists of dicts (one psql call)."""
    return json.loads(pg.scalar(_SNAPSHOT_SQL))


def clear(pg):
    """Empties every table the responder writes (DELETE: a TRUNCATE of seven
    tables costs several fsyncs, and the fixture test does this 80 times)."""
    pg.psql("; ".join("DELETE FROM %s" % t for t in TABLES))


def counts(pg):
    """{table: row count} for every table the responder writes."""
    row = pg.psql("SELECT " + ", ".join("(SELECT count(*) FROM %s)" % t for t in TABLES))[0]
    return dict(zip(TABLES, (int(v) for v in row)))


EMPTY = dict((t, 0) for t in TABLES)


# --- building webhooks -----------------------------------------------------------

PNID = "106540352242922"
DISPLAY = "15550783881"
WABA = "102290129340398"


def text_msg(mid, sender, ts, body="hello", **extra):
    m = {"from": sender, "id": mid, "timestamp": str(ts), "type": "text", "text": {"body": body}}
    m.update(extra)
    return m


def reaction_msg(mid, sender, ts, to, emoji):
    r = {"message_id": to}
    if emoji is not None:
        r["emoji"] = emoji
    return {"from": sender, "id": mid, "timestamp": str(ts), "type": "reaction", "reaction": r}


def status(mid, st, ts, recipient="16505551234", **extra):
    s = {"id": mid, "status": st, "timestamp": str(ts), "recipient_id": recipient}
    s.update(extra)
    return s


def messages_value(messages=None, statuses=None, contacts=None, pnid=PNID, display=DISPLAY):
    v = {"messaging_product": "whatsapp",
         "metadata": {"display_phone_number": display, "phone_number_id": pnid}}
    if contacts is None and messages:
        seen = []
        for m in messages:
            if m["from"] not in seen:
                seen.append(m["from"])
        contacts = [{"profile": {"name": "Name " + s}, "wa_id": s} for s in seen]
    if contacts:
        v["contacts"] = contacts
    if messages is not None:
        v["messages"] = messages
    if statuses is not None:
        v["statuses"] = statuses
    return v


def webhook(*entries):
    """entries: lists of (field, value) changes, one list per entry."""
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA, "changes": [{"value": v, "field": f} for f, v in changes]}
                      for changes in entries]}


def one(messages=None, statuses=None, **kw):
    """A webhook with one entry holding one messages change."""
    return webhook([("messages", messages_value(messages, statuses, **kw))])


# --- what the responder must store, computed from the object ----------------------

NOT_ANSWERED = ("reaction", "system", "unsupported", "edit", "revoke")


def _digits(s):
    return re.sub(r"[^0-9]", "", s)


def _phone(s):
    return bool(s) and re.fullmatch(r"[0-9+ \-]+", s) is not None


def text_of(m):
    t = m["type"]
    o = m.get(t)
    if not isinstance(o, dict):
        return None
    if t == "text":
        return o.get("body")
    if t == "button":
        return o.get("text")
    if t == "interactive":
        for k in ("button_reply", "list_reply"):
            if isinstance(o.get(k), dict):
                return o[k].get("title")
        if isinstance(o.get("nfm_reply"), dict):
            return o["nfm_reply"].get("body")
        return None
    return o.get("caption")


def _ident(v):
    """An identifier as wahook takes one: a non-empty string of at most 1024 bytes."""
    return v if isinstance(v, str) and v and len(v.encode()) <= 1024 and "\0" not in v \
        else None


def _bsuid_like(s):
    return re.match(r"[A-Z][A-Z]\.", s or "") is not None


def contact_of(contacts, frm, user_id):
    """The contact a message speaks for: by wa_id == from or user_id == its BSUID
    (or from), else the only one."""
    contacts = contacts if isinstance(contacts, list) else []
    for c in contacts:
        if not isinstance(c, dict):
            continue
        if frm is not None and c.get("wa_id") == frm:
            return c
        if c.get("user_id") is not None and c.get("user_id") in (user_id, frm):
            return c
    if len(contacts) == 1 and isinstance(contacts[0], dict):
        return contacts[0]
    return None


def person(m, contacts, echo):
    """(sender, user_id, parent_user_id, username, profile_name) of message m, or
    None when it names nobody (no from, no BSUID)."""
    frm = m.get("from")
    uid = _ident(m.get("from_user_id"))
    sysm = m.get("system") if m.get("type") == "system" and isinstance(m.get("system"), dict) \
        else {}
    if sysm.get("type") in ("user_changed_number", "user_changed_user_id") and \
            _ident(sysm.get("previous_user_id")):
        uid = sysm["previous_user_id"]     # about the identity the person leaves
    c = None if echo else contact_of(contacts, frm, uid)
    c = c or {}
    uid = uid or _ident(c.get("user_id"))
    if uid is None and _bsuid_like(frm):
        uid = frm
    parent = _ident(m.get("from_parent_user_id")) or _ident(c.get("parent_user_id"))
    prof = c.get("profile") if isinstance(c.get("profile"), dict) else {}
    name = prof.get("name") if isinstance(prof.get("name"), str) else None
    username = prof.get("username") if isinstance(prof.get("username"), str) else None
    sender = frm if frm is not None else uid
    if sender is None:
        return None
    return sender, uid, parent, username, name


def _ts_ok(v):
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return 0 <= v <= 253402300799
    return isinstance(v, str) and re.fullmatch(r"[0-9]{1,12}", v) is not None and \
        int(v) <= 253402300799


def message_ok(m):
    """Whether wahook can store message m (else it is quarantined alone)."""
    return isinstance(m, dict) and _ident(m.get("id")) is not None and \
        isinstance(m.get("type"), str) and 0 < len(m["type"]) <= 64 and \
        _ts_ok(m.get("timestamp")) and \
        (m.get("to") is None or isinstance(m.get("to"), str)) and \
        (m.get("from") is None or _ident(m.get("from")) is not None)


def status_ok(s):
    return isinstance(s, dict) and _ident(s.get("id")) is not None and \
        isinstance(s.get("status"), str) and _ts_ok(s.get("timestamp")) and \
        (s.get("recipient_id") is None or isinstance(s.get("recipient_id"), str))


def context_of(m):
    t = m["type"]
    if t in ("edit", "revoke"):
        o = m.get(t) if isinstance(m.get(t), dict) else {}
        return _ident(o.get("original_message_id")) or _ident(o.get("message_id"))
    return (m.get("context") or {}).get("id")


def expect(obj):
    """What one webhook must leave in the tables: a dict with
    messages {id: row}, answered [ids in webhook order], outbox {id: conversation},
    reactions {(to, person): emoji or None}, statuses {id: row}, events
    [(field, value)], conversations {(pnid, conversation): unread}, broken
    [paths of the items quarantined alone]."""
    e = {"messages": {}, "answered": [], "outbox": {}, "reactions": {}, "statuses": {},
         "events": [], "conversations": {}, "broken": []}
    for i, entry in enumerate(obj["entry"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("id", ""), (str, type(None))) \
                or not isinstance(entry.get("changes"), list):
            e["broken"].append("entry[%d]" % i)
            continue
        for j, ch in enumerate(entry["changes"]):
            where = "entry[%d].changes[%d]" % (i, j)
            if not isinstance(ch, dict) or not isinstance(ch.get("field"), str) or \
                    not ch["field"] or ch.get("value") is None:
                e["broken"].append(where)
                continue
            field, value = ch["field"], ch["value"]
            if field not in ("messages", "smb_message_echoes"):
                e["events"].append((field, value))
                continue
            echo_field = field == "smb_message_echoes"
            listname = "message_echoes" if echo_field else "messages"
            meta = value.get("metadata") if isinstance(value, dict) else None
            meta = meta if isinstance(meta, dict) else {}
            pnid, display = meta.get("phone_number_id"), meta.get("display_phone_number")
            if not isinstance(value, dict) or not isinstance(pnid, str) or not pnid or \
                    not isinstance(display, (str, type(None))) or \
                    not isinstance(value.get(listname, []), (list, type(None))) or \
                    not isinstance(value.get("statuses", []), (list, type(None))):
                e["broken"].append(where)
                continue
            change_errors = bool(value.get("errors"))
            if change_errors:
                e["events"].append((field, value))
            for k, m in enumerate(value.get(listname) or []):
                who = person(m, value.get("contacts"), echo_field) if message_ok(m) else None
                if who is None:
                    e["broken"].append("entry[%d].changes[%d].%s[%d]" % (i, j, listname, k))
                    continue
                sender, uid, parent, username, name = who
                if m["id"] in e["messages"]:
                    continue
                own = display is not None and _phone(sender) and _phone(display) and \
                    _digits(sender) == _digits(display)
                answer = not echo_field and not own and m["type"] not in NOT_ANSWERED \
                    and not m.get("errors") and not change_errors
                group = _ident(m.get("group_id"))
                conv = group or uid or sender
                e["messages"][m["id"]] = {
                    "message_id": m["id"], "phone_number_id": pnid,
                    "display_phone_number": display, "waba_id": entry.get("id"),
                    "field": field, "sender": sender,
                    "recipient": m.get("to") if m.get("to") is not None
                    else _ident(m.get("to_user_id")),
                    "type": m["type"], "ts": int(m["timestamp"]), "text_body": text_of(m),
                    "profile_name": None if echo_field else name,
                    "context_message_id": context_of(m),
                    "answered": answer, "payload": m, "user_id": uid,
                    "parent_user_id": parent, "username": username, "group_id": group}
                if answer:
                    e["answered"].append(m["id"])
                    e["outbox"][m["id"]] = conv
                if not echo_field and not own:
                    key = (pnid, conv)
                    e["conversations"][key] = e["conversations"].get(key, 0) + answer
                if m["type"] == "reaction" and not echo_field and not own:
                    r = m.get("reaction") or {}
                    e["reactions"][(r.get("message_id"), uid or sender)] = \
                        r.get("emoji") or None
            for k, s in enumerate(value.get("statuses") or []):
                if not status_ok(s):
                    e["broken"].append("entry[%d].changes[%d].statuses[%d]" % (i, j, k))
                    continue
                e["statuses"][s["id"]] = {
                    "message_id": s["id"], "phone_number_id": pnid,
                    "recipient_id": s.get("recipient_id"), "status": s["status"],
                    "ts": int(s["timestamp"]), "errors": s.get("errors"),
                    "biz_opaque_callback_data": s.get("biz_opaque_callback_data"),
                    "payload": s, "recipient_user_id": _ident(s.get("recipient_user_id")),
                    "recipient_parent_user_id":
                        _ident(s.get("recipient_parent_user_id"))}
    return e


def item_at(obj, where, alone=False):
    """The item at where ("entry[0].changes[1].messages[2]") of a webhook
    object; alone=True reads a quarantined item's own webhook, where every
    index is 0 (the item stands alone in it)."""
    cur = obj
    for name, idx in re.findall(r"([a-z_]+)\[(\d+)\]", where):
        if name not in ("entry", "changes"):
            cur = cur["value"]
        cur = cur[name][0 if alone else int(idx)]
    return cur


def assert_quarantined_alone(test, row_body, obj, where):
    """A broken item's quarantine row holds a webhook of its own: the envelope
    with that item, and nothing else of its list."""
    q = json.loads(row_body)
    test.assertEqual(q["object"], obj["object"])
    test.assertEqual(len(q["entry"]), 1, where)
    test.assertEqual(item_at(q, where, alone=True), item_at(obj, where), where)


# --- the responder's log -----------------------------------------------------------

def parse_logfmt(line):
    """'k=v k2="a b"' -> dict (values unquoted; escapes kept as written)."""
    out = {}
    for m in re.finditer(r'([A-Za-z0-9_.]+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1]
        out[m.group(1)] = v
    return out


def responder_lines(server):
    """The responder's own log lines (logfmt, begin with level=), in order."""
    return [l for l in server.logs().splitlines() if l.startswith("level=")]


def request_lines(server):
    return [parse_logfmt(l) for l in responder_lines(server) if " ev=request " in l]


def next_request_line(server, before):
    """Waits for the request log line after the first `before` ones and returns it."""
    lines = harness.wait_for(lambda: (lambda ls: ls if len(ls) > before else None)(
        request_lines(server)), 10, "the request's log line")
    return lines[before]
