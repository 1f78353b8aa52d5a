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
           profile_name, context_message_id, answered, payload FROM wa_messages) x),
 'wa_outbox', (SELECT coalesce(json_agg(x ORDER BY x.position), '[]') FROM (
    SELECT message_id, phone_number_id, sender, extract(epoch FROM wa_timestamp)::bigint
           AS ts, position, state, attempts FROM wa_outbox) x),
 'wa_conversations', (SELECT coalesce(json_agg(x ORDER BY x.sender), '[]') FROM (
    SELECT phone_number_id, sender, profile_name,
           extract(epoch FROM last_message_at)::bigint AS ts, unread_count
    FROM wa_conversations) x),
 'wa_reactions', (SELECT coalesce(json_agg(x ORDER BY x.message_id, x.sender), '[]') FROM (
    SELECT message_id, sender, phone_number_id, emoji, reaction_message_id,
           extract(epoch FROM wa_timestamp)::bigint AS ts FROM wa_reactions) x),
 'wa_statuses', (SELECT coalesce(json_agg(x ORDER BY x.message_id), '[]') FROM (
    SELECT message_id, phone_number_id, recipient_id, status,
           extract(epoch FROM wa_timestamp)::bigint AS ts, errors,
           biz_opaque_callback_data, payload FROM wa_statuses) x),
 'wa_events', (SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (
    SELECT id, waba_id, field, payload FROM wa_events) x),
 'wa_quarantine', (SELECT coalesce(json_agg(x ORDER BY x.id), '[]') FROM (
    SELECT id, reason, encode(body, 'hex') AS body_hex FROM wa_quarantine) x))::jsonb
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


def profile_of(contacts, sender):
    for c in contacts or []:
        if sender in (c.get("wa_id"), c.get("user_id")) or len(contacts) == 1:
            return (c.get("profile") or {}).get("name")
    return None


def expect(obj):
    """What one webhook must leave in the tables: a dict with
    messages {id: row}, answered [ids in webhook order], reactions {(to, sender): emoji
    or None}, statuses {id: row}, events [(field, value)], conversations
    {(pnid, sender): unread}."""
    e = {"messages": {}, "answered": [], "reactions": {}, "statuses": {}, "events": [],
         "conversations": {}}
    for entry in obj["entry"]:
        for ch in entry["changes"]:
            field, value = ch["field"], ch["value"]
            if field not in ("messages", "smb_message_echoes"):
                e["events"].append((field, value))
                continue
            echo_field = field == "smb_message_echoes"
            meta = value["metadata"]
            pnid, display = meta["phone_number_id"], meta.get("display_phone_number")
            change_errors = bool(value.get("errors"))
            if change_errors:
                e["events"].append((field, value))
            for m in value.get("message_echoes" if echo_field else "messages", []):
                if m["id"] in e["messages"]:
                    continue
                own = display is not None and _phone(m["from"]) and _phone(display) and \
                    _digits(m["from"]) == _digits(display)
                answer = not echo_field and not own and m["type"] not in NOT_ANSWERED \
                    and not m.get("errors") and not change_errors
                e["messages"][m["id"]] = {
                    "message_id": m["id"], "phone_number_id": pnid,
                    "display_phone_number": display, "waba_id": entry.get("id"),
                    "field": field, "sender": m["from"], "recipient": m.get("to"),
                    "type": m["type"], "ts": int(m["timestamp"]), "text_body": text_of(m),
                    "profile_name": None if echo_field else profile_of(value.get("contacts"),
                                                                       m["from"]),
                    "context_message_id": (m.get("context") or {}).get("id"),
                    "answered": answer, "payload": m}
                if answer:
                    e["answered"].append(m["id"])
                if not echo_field and not own:
                    k = (pnid, m["from"])
                    e["conversations"][k] = e["conversations"].get(k, 0) + answer
                if m["type"] == "reaction" and not echo_field and not own:
                    r = m.get("reaction") or {}
                    e["reactions"][(r.get("message_id"), m["from"])] = r.get("emoji") or None
            for s in value.get("statuses", []):
                e["statuses"][s["id"]] = {
                    "message_id": s["id"], "phone_number_id": pnid,
                    "recipient_id": s.get("recipient_id"), "status": s["status"],
                    "ts": int(s["timestamp"]), "errors": s.get("errors"),
                    "biz_opaque_callback_data": s.get("biz_opaque_callback_data"),
                    "payload": s}
    return e


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
