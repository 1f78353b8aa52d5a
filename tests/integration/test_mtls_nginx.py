"""test_mtls_nginx.py - Meta's mutual TLS as shipped in examples/nginx-mtls.conf,
run by real nginx with TLS on loopback: a CA, an intermediate (Meta sends its
client certificate with the intermediate that signed it), a server certificate
and client certificates, all made here with openssl. No client certificate,
one for another name, or one another CA signed: refused by nginx, the
responder never sees the request. The right one: served, 200 from wahook,
whose signature check still holds (a bad X-Hub-Signature-256 is 401)."""
import os
import subprocess
import unittest

import harness as h
import mtls
import servers

class MutualTlsNginx(mtls.Contract, unittest.TestCase):
    # nginx: no certificate or another CA's: 400; another name: 403 (the map)
    refused = {"none": 400, "wrongcn": 403, "othersigned": 400}

    @classmethod
    def setUpClass(cls):
        cls.dir = h.tmpdir("wahook-mtls-")
        cls.pki = mtls.Pki(h.tmpdir("wahook-pki-"))
        mtls.start_responder(cls, cls.dir)
        cls.port = h.free_port()
        site = os.path.join(cls.dir, "site.conf")
        with open(site, "w") as f:
            f.write(mtls.from_example("nginx-mtls.conf", cls.pki, [
                (r"(?m)^    listen 443 ssl;", "    listen 127.0.0.1:%d ssl;" % cls.port),
                (r"unix:/run/wahook/wahook\.sock;", "unix:%s;" % cls.sock)]))
        conf = os.path.join(cls.dir, "nginx.conf")
        with open(conf, "w") as f:
            # Debian's error log level: at info nginx writes a refused request's
            # line there, and the verification GETs below carry the verify token
            f.write(servers.nginx_main_conf(cls.dir, site, error_level=None))
        cls.nginx = h.spawn(["nginx", "-c", conf, "-p", cls.dir, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        h.wait_for(lambda: cls.curl("GET", "/")[0] in (400, 404), 10, "nginx with TLS")

    @classmethod
    def tearDownClass(cls):
        h.kill(cls.nginx)
        mtls.stop_responder(cls)


if __name__ == "__main__":
    unittest.main()
