"""test_mtls_nginx.py - Meta's mutual TLS as shipped in examples/nginx-mtls.conf,
run by real nginx with TLS on loopback: a CA, an intermediate (Meta sends its
client certificate with the intermediate that signed it), a server certificate
and client certificates, all made here with openssl. No client certificate,
one for another name, or one another CA signed: refused by nginx, the
responder never sees the request. The right one: served, 200 from wahook,
whose signature check still holds (a bad X-Hub-Signature-256 is 401)."""
import os
import re
import subprocess
import unittest

import harness as h
import mtls
import servers

EXAMPLE = os.path.join(h.ROOT, "examples", "nginx-mtls.conf")


def site_from_example(text, port, pki, sock):
    """examples/nginx-mtls.conf with its port, certificate paths and socket
    swapped for the test's; every directive is the file's own."""
    subs = [(r"(?m)^(\s*)listen 443 ssl;", r"\g<1>listen 127.0.0.1:%d ssl;" % port),
            (r"/etc/ssl/certs/webhook\.example\.com\.pem", pki.path("server.pem")),
            (r"/etc/ssl/private/webhook\.example\.com\.key", pki.path("server.key")),
            (r"/etc/ssl/certs/meta-outbound-api-ca-2025-12\.pem", pki.path("meta-root.pem")),
            (r"unix:/run/wahook/wahook\.sock;", "unix:%s;" % sock)]
    for pat, rep in subs:
        text, n = re.subn(pat, lambda m, rep=rep: m.expand(rep) if "\\g" in rep else rep,
                          text)
        if n != 1:
            raise AssertionError("examples/nginx-mtls.conf: %r not found once" % pat)
    return text


class MutualTlsNginx(mtls.Contract, unittest.TestCase):
    # nginx: no certificate or another CA's: 400; another name: 403 (the map)
    refused = {"none": 400, "wrongcn": 403, "othersigned": 400}

    @classmethod
    def setUpClass(cls):
        cls.pg = h.Postgres()
        cls.pg.migrate()
        cls.dir = h.tmpdir("wahook-mtls-")
        cls.pki = mtls.Pki(h.tmpdir("wahook-pki-"))
        cls.sock = os.path.join(cls.dir, "wahook.sock")
        cls.applog_path = os.path.join(cls.dir, "wahook.log")
        cls.applog = open(cls.applog_path, "a")
        owner = ["-U", servers.WWW] if os.geteuid() == 0 else []
        cls.fcgi = h.spawn(["spawn-fcgi", "-n", "-s", cls.sock, "-M", "0600"] + owner +
                           ["--", h.staged("wahook.fcgi")], env=h.responder_env(cls.pg),
                           stdout=cls.applog, stderr=cls.applog)
        h.wait_for(lambda: os.path.exists(cls.sock), 10, "spawn-fcgi socket")
        cls.port = h.free_port()
        site = os.path.join(cls.dir, "site.conf")
        with open(EXAMPLE) as f:
            text = f.read()
        with open(site, "w") as f:
            f.write(site_from_example(text, cls.port, cls.pki, cls.sock))
        conf = os.path.join(cls.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(servers.nginx_main_conf(cls.dir, site))
        cls.nginx = h.spawn(["nginx", "-c", conf, "-p", cls.dir, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        h.wait_for(lambda: cls.curl("GET", "/")[0] in (400, 404), 10, "nginx with TLS")

    @classmethod
    def tearDownClass(cls):
        h.kill(cls.nginx)
        h.kill(cls.fcgi)
        cls.pg.stop()


if __name__ == "__main__":
    unittest.main()
