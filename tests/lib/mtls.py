"""mtls.py - what the mutual TLS tests share: a PKI made with openssl in a temp
dir (Meta's stand-in root and intermediate, another CA, a server CA; client
certificates with the right name, another name, and the right name from
another CA), curl over TLS with or without a client certificate, and a
signed webhook."""
import os
import re
import subprocess

import harness as h

CN = "client.webhooks.fbclientcerts.com"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Pki:
    """Certificates in d: name.key and name.pem for each, chain files for clients."""

    def __init__(self, d):
        self.d = d
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("[ca]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,"
                    "cRLSign\n[leaf_client]\nbasicConstraints=CA:false\n"
                    "extendedKeyUsage=clientAuth\n[leaf_server]\nbasicConstraints=CA:false\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self.ca("meta-root", "Meta Test Root CA")
        self.ca("meta-int", "Meta Test Intermediate", signer="meta-root")
        self.ca("other-root", "Some Other CA")
        self.ca("server-root", "Server CA")
        self.leaf("server", "localhost", "server-root", "leaf_server")
        self.leaf("meta", CN, "meta-int", "leaf_client", org="Meta Platforms, Inc.")
        self.leaf("wrongcn", CN + ".example.org", "meta-int", "leaf_client")
        self.leaf("othersigned", CN, "other-root", "leaf_client")
        for leaf, inter in (("meta", "meta-int"), ("wrongcn", "meta-int"),
                            ("server", "server-root")):
            with open(self.path(leaf + "-chain.pem"), "w") as out:
                for n in (leaf, inter):
                    out.write(open(self.path(n + ".pem")).read())

    def path(self, name):
        return os.path.join(self.d, name)

    def ca(self, name, cn, signer=None):
        if signer is None:
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + cn, "-keyout", name + ".key", "-out", name + ".pem",
                    "-extensions", "ca", "-config", self._req_config(), cwd=self.d)
        else:
            self._signed(name, "/CN=" + cn, signer, "ca")

    def leaf(self, name, cn, signer, ext, org=None):
        subj = ("/C=US/O=%s/CN=%s" % (org, cn)) if org else "/CN=" + cn
        self._signed(name, subj, signer, ext)

    def _req_config(self):
        p = self.path("req.cnf")
        with open(p, "w") as f:
            f.write("[req]\ndistinguished_name=dn\n[dn]\n" + open(self.path("ext.cnf")).read())
        return p

    def _signed(self, name, subj, signer, ext):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout",
                name + ".key", "-out", name + ".csr", cwd=self.d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", signer + ".pem", "-CAkey",
                signer + ".key", "-CAcreateserial", "-days", "2", "-out", name + ".pem",
                "-extfile", "ext.cnf", "-extensions", ext, cwd=self.d)


def curl(pki, port, method, path, cert=None, key=None, body=None, headers=()):
    """(HTTP status, body) over TLS to 127.0.0.1:port, the server checked
    against pki's server CA; status 0 when the handshake failed."""
    argv = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10",
            "--http1.1", "--cacert", pki.path("server-root.pem"), "-X", method]
    if cert:
        argv += ["--cert", pki.path(cert), "--key", pki.path(key)]
    for hd in headers:
        argv += ["-H", hd]
    if body is not None:
        argv += ["--data-binary", "@-"]
    r = subprocess.run(argv + ["https://127.0.0.1:%d%s" % (port, path)],
                       input=body, capture_output=True, timeout=20)
    out, _, code = r.stdout.rpartition(b"\n")
    return int(code or 0), out


def webhook(mid):
    """A signed-to-be text message webhook (bytes) with message id mid."""
    return h.meta_json({"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881",
                         "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "T"}, "wa_id": "4915100000001"}],
            "messages": [{"from": "4915100000001", "id": mid, "timestamp": "1700000000",
                          "type": "text", "text": {"body": "hi"}}]}}]}]}).encode()


def post(pki, port, mid, cert=None, key=None, secret=h.SECRET):
    body = webhook(mid)
    return curl(pki, port, "POST", "/webhook", cert, key, body,
                ["Content-Type: application/json",
                 "X-Hub-Signature-256: " + h.sign(body, secret)])


class Contract:
    """What a web server running a shipped mutual TLS example must do. The
    test class sets pki, port, pg, applog_path (the responder's log) and
    refused: the status each refusal gets ("none", "wrongcn", "othersigned";
    0 when the TLS handshake itself fails)."""
    refused = {}

    @classmethod
    def curl(cls, method, path, cert=None, key=None):
        return curl(cls.pki, cls.port, method, path, cert, key)

    def requests_seen_by_wahook(self):
        """Requests the responder answered: its ev=request log lines."""
        with open(self.applog_path, errors="replace") as f:
            return len(re.findall(r"\bev=request\b", f.read()))

    def post(self, mid, cert=None, key=None, secret=h.SECRET):
        return post(self.pki, self.port, mid, cert, key, secret)

    def stored(self, mid):
        return self.pg.scalar("SELECT count(*) FROM wa_messages WHERE message_id = '%s'" % mid)

    def test_meta_certificate_is_served(self):
        st, out = self.post("wamid.mtls.ok", "meta-chain.pem", "meta.key")
        self.assertEqual(st, 200, out)
        self.assertEqual(self.stored("wamid.mtls.ok"), "1")
        # the verification GET too
        st, out = self.curl("GET", "/webhook?hub.mode=subscribe&hub.verify_token=%s&"
                            "hub.challenge=4242" % h.TOKEN, "meta-chain.pem", "meta.key")
        self.assertEqual((st, out), (200, b"4242"))

    def test_hmac_stays_the_authentication(self):
        """A right certificate does not make a wrong signature acceptable."""
        st, _ = self.post("wamid.mtls.badsig", "meta-chain.pem", "meta.key",
                          secret="not-the-app-secret")
        self.assertEqual(st, 401)
        self.assertEqual(self.stored("wamid.mtls.badsig"), "0")

    def test_refused_before_wahook(self):
        seen = self.requests_seen_by_wahook()
        cases = [("none", None, None), ("wrongcn", "wrongcn-chain.pem", "wrongcn.key"),
                 ("othersigned", "othersigned.pem", "othersigned.key")]
        for i, (what, cert, key) in enumerate(cases):
            want = self.refused[what]
            with self.subTest(what):
                mid = "wamid.mtls.refused.%d" % i
                st, _ = self.post(mid, cert, key)
                self.assertEqual(st, want)
                self.assertEqual(self.stored(mid), "0")
        # the verification GET, which needs no database, is refused the same way
        for cert, key in ((None, None), ("wrongcn-chain.pem", "wrongcn.key")):
            st, out = self.curl("GET", "/webhook?hub.mode=subscribe&hub.verify_token=%s&"
                                "hub.challenge=77" % h.TOKEN, cert, key)
            self.assertIn(st, set(self.refused.values()))
            self.assertNotEqual(out, b"77")
        # none of them reached the responder; the next right one does
        self.assertEqual(self.requests_seen_by_wahook(), seen)
        st, _ = self.curl("GET", "/webhook?hub.mode=subscribe&hub.verify_token=%s&"
                          "hub.challenge=78" % h.TOKEN, "meta-chain.pem", "meta.key")
        self.assertEqual(st, 200)
        h.wait_for(lambda: self.requests_seen_by_wahook() > seen, 10, "the responder's log")
