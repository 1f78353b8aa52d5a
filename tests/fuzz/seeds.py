#!/usr/bin/env python3
"""seeds.py OUTDIR - writes the fuzzers' seed corpora from the project's fixtures
(tests/fixtures) into OUTDIR/payload and OUTDIR/verify (a build dir: seeds never go
into the repo), adding pywa's bodies and Meta's signed request when a copy sits
beside the clone (../shared/fixtures), and says which.
payload: every fixture body as Meta writes it, plus the signed bodies.
verify: "secrets\\nheader\\nbody" for each signed request and every fourth body
signed with a test secret, plus a few near misses."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

out = sys.argv[1]
for d in ("payload", "verify"):
    os.makedirs(os.path.join(out, d), exist_ok=True)


def put(kind, name, data):
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data)


def signed(name, d):
    with open(os.path.join(d, "body.json"), "rb") as f:
        body = f.read()
    with open(os.path.join(d, "app-secret")) as f:
        secret = f.read().strip()
    with open(os.path.join(d, "x-hub-signature-256")) as f:
        sig = f.read().strip()
    put("payload", name, body)
    put("verify", name, b"%s\n%s\n%s" % (secret.encode(), sig.encode(), body))
    upper = "sha256=" + sig[7:].upper()
    put("verify", name + "-rotated", b"old, %s\n %s\t\n%s" % (secret.encode(), upper.encode(),
                                                                body))


signed("signed", os.path.join(harness.FIXTURES, "signed"))
meta = os.path.join(harness.EXTRA_FIXTURES, "meta-signed")
if os.path.isdir(meta):
    signed("meta-signed", meta)
harness.extra_note("../shared/fixtures/meta-signed", "seeded from Meta's signed request"
                   if os.path.isdir(meta) else None)
put("verify", "query", b"s\nhub.mode=subscribe&hub.verify_token=a%20b+c&hub.challenge=123\n")
bodies = harness.fixture_bodies()
extra = harness.extra_fixture_bodies()
harness.extra_note("../shared/fixtures/pywa",
                   None if extra is None else "seeded from %d bodies" % len(extra))
for i, (name, obj) in enumerate(bodies + (extra or [])):
    body = harness.meta_json(obj).encode()
    tag = name.replace("/", "-")
    put("payload", tag, body)
    if i % 4 == 0:
        sig = harness.sign(body)
        put("verify", tag, b"%s\n%s\n%s" % (harness.SECRET.encode(), sig.encode(), body))
