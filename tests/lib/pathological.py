"""pathological.py - signed bodies that are legal and as large as the cap
allows (4 MiB), made of the smallest items Meta's format allows: tiny
messages, events (one change each) and statuses. Each is one POST that makes
the responder build tens of thousands of parse-tree nodes and list items:
what memory must come back from."""
import json

CAP = 4 * 1024 * 1024       # WAHOOK_MAX_BODY's default
PNID = "106540352242922"


def _fill(head, item, tail, cap):
    """head + item(0), item(1), ... + tail, as many items as fit in cap bytes."""
    parts, size, i = [], len(head) + len(tail), 0
    while True:
        s = item(i)
        if size + len(s) + 1 > cap:
            break
        parts.append(s)
        size += len(s) + 1
        i += 1
    return (head + ",".join(parts) + tail).encode(), i


def tiny_messages(tag="p", cap=CAP):
    head = ('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{'
            '"field":"messages","value":{"messaging_product":"whatsapp","metadata":'
            '{"phone_number_id":"%s"},"messages":[' % PNID)
    return _fill(head, lambda i: '{"from":"1","id":"%s%x","timestamp":"1","type":"t"}'
                 % (tag, i), "]}}]}]}", cap)


def events(cap=CAP):
    head = '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":['
    return _fill(head, lambda i: '{"field":"x","value":%d}' % (i % 10), "]}]}", cap)


def statuses(tag="s", cap=CAP):
    head = ('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{'
            '"field":"messages","value":{"messaging_product":"whatsapp","metadata":'
            '{"phone_number_id":"%s"},"statuses":[' % PNID)
    return _fill(head, lambda i: '{"id":"%s%x","status":"sent","timestamp":"1"}' % (tag, i),
                 "]}}]}]}", cap)


def all_three(tag):
    """[(name, body, items)] for the three bodies."""
    m, nm = tiny_messages(tag + "m")
    e, ne = events()
    s, ns = statuses(tag + "s")
    return [("messages", m, nm), ("events", e, ne), ("statuses", s, ns)]


if __name__ == "__main__":
    for name, b, n in all_three("x"):
        json.loads(b)
        print(name, len(b), n)
