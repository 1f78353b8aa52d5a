#!/usr/bin/env python3
"""seeds.py OUTDIR - writes the fuzzers' seed corpora from ../shared/fixtures into
OUTDIR/payload and OUTDIR/verify (a build dir: seeds never go into the repo).
payload: every pywa body as Meta writes it, plus the Meta-signed body.
verify: "secrets\\nheader\\nbody" for the Meta-signed request and each pywa body
signed with a test secret, plus a few near misses."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

out = sys.argv[1]
for d in ("payload", "verify"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
ms = os.path.join(harness.FIXTURES, "meta-signed")
with open(os.path.join(ms, "body.json"), "rb") as f:
    meta_body = f.read()
with open(os.path.join(ms, "app-secret")) as f:
    meta_secret = f.read().strip()
with open(os.path.join(ms, "x-hub-signature-256")) as f:
    meta_sig = f.read().strip()


def put(kind, name, data):
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data)


put("payload", "meta-signed", meta_body)
put("verify", "meta-signed", b"%s\n%s\n%s" % (meta_secret.encode(), meta_sig.encode(), meta_body))
upper = "sha256=" + meta_sig[7:].upper()
put("verify", "rotated", b"old, %s\n %s\t\n%s" % (meta_secret.encode(), upper.encode(), meta_body))
put("verify", "query", b"s\nhub.mode=subscribe&hub.verify_token=a%20b+c&hub.challenge=123\n")
for i, (name, obj) in enumerate(harness.fixture_bodies()):
    body = harness.meta_json(obj).encode()
    put("payload", "pywa-%02d" % i, body)
    if i % 4 == 0:
        sig = harness.sign(body)
        put("verify", "pywa-%02d" % i, b"%s\n%s\n%s" % (harness.SECRET.encode(), sig.encode(),
                                                       body))
