"""test_mtls_lighttpd.py - Meta's mutual TLS as shipped in examples/lighttpd-mtls.conf,
added to lighttpd.conf.example and run by real lighttpd (mod_openssl) with TLS
on loopback: the same certificates and promises as test_mtls_nginx. lighttpd
ends the handshake without a certificate Meta's CA signed, and mod_auth
answers 401 to one for another name: the responder never sees either."""
import os
import re
import shutil
import subprocess
import unittest

import harness as h
import mtls

EXAMPLE = os.path.join(h.ROOT, "examples", "lighttpd-mtls.conf")


def snippet_from_example(text, port, pki):
    """examples/lighttpd-mtls.conf with its socket and certificate paths swapped."""
    subs = [(r'\$SERVER\["socket"\] == ":443"', '$SERVER["socket"] == "127.0.0.1:%d"' % port),
            (r"/etc/ssl/certs/webhook\.example\.com\.pem", pki.path("server-chain.pem")),
            (r"/etc/ssl/private/webhook\.example\.com\.key", pki.path("server.key")),
            (r"/etc/ssl/certs/meta-outbound-api-ca-2025-12\.pem", pki.path("meta-root.pem"))]
    for pat, rep in subs:
        text, n = re.subn(pat, lambda m, rep=rep: rep, text)
        if n != 1:
            raise AssertionError("examples/lighttpd-mtls.conf: %r not found once" % pat)
    return text


@unittest.skipUnless(os.path.exists("/usr/lib/lighttpd/mod_openssl.so"),
                     "lighttpd-mod-openssl not installed")
class MutualTlsLighttpd(mtls.Contract, unittest.TestCase):
    # lighttpd: no certificate or another CA's: the handshake fails (0);
    # another name: mod_auth's 401
    refused = {"none": 0, "wrongcn": 401, "othersigned": 0}

    @classmethod
    def setUpClass(cls):
        cls.pg = h.Postgres()
        cls.pg.migrate()
        cls.dir = h.tmpdir("wahook-mtls-lighttpd-")
        cls.pki = mtls.Pki(h.tmpdir("wahook-pki-"))
        cls.applog_path = os.path.join(cls.dir, "wahook.log")
        cls.port = h.free_port()
        env = h.responder_env(cls.pg, WAHOOK_LOG=cls.applog_path)
        conf = h.lighttpd_conf_from_example(cls.dir, h.free_port(), h.staged("wahook.fcgi"),
                                            env)
        with open(EXAMPLE) as f:
            conf += "\n" + snippet_from_example(f.read(), cls.port, cls.pki)
        errlog = os.path.join(cls.dir, "error.log")
        conf += '\nserver.errorlog = "%s"\n' % errlog
        path = os.path.join(cls.dir, "lighttpd.conf")
        with open(path, "w") as f:
            f.write(conf)
        if os.geteuid() == 0:       # lighttpd and the responder run as www-data
            open(cls.applog_path, "a").close()
            shutil.chown(cls.applog_path, h.LIGHTTPD_USER, h.LIGHTTPD_USER)
        cls.proc = h.spawn(["lighttpd", "-D", "-f", path], stdout=subprocess.DEVNULL,
                           stderr=open(errlog + ".stderr", "w"))
        h.wait_for(lambda: cls.curl("GET", "/", "meta-chain.pem", "meta.key")[0] != 0, 10,
                   "lighttpd with TLS")

    @classmethod
    def tearDownClass(cls):
        h.kill(cls.proc)
        cls.pg.stop()


if __name__ == "__main__":
    unittest.main()
