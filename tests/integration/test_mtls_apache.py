"""test_mtls_apache.py - Meta's mutual TLS as shipped in examples/apache-mtls.conf,
beside examples/apache.conf (mod_proxy_fcgi to a spawn-fcgi socket), run by a
private real Apache with mod_ssl on loopback: the same certificates and promises
as test_mtls_nginx. mod_ssl ends the handshake without a certificate Meta's CA
signed, and the Require expr answers 403 to one for another name."""
import os
import re
import subprocess
import unittest

import harness as h
import mtls
import servers

EXAMPLE = os.path.join(h.ROOT, "examples", "apache-mtls.conf")


def vhost_from_example(text, port, pki):
    """examples/apache-mtls.conf with its address and certificate paths swapped."""
    subs = [(r"<VirtualHost \*:443>", "<VirtualHost 127.0.0.1:%d>" % port),
            (r"/etc/ssl/certs/webhook\.example\.com\.pem", pki.path("server.pem")),
            (r"/etc/ssl/private/webhook\.example\.com\.key", pki.path("server.key")),
            (r"/etc/ssl/certs/meta-outbound-api-ca-2025-12\.pem", pki.path("meta-root.pem"))]
    for pat, rep in subs:
        text, n = re.subn(pat, lambda m, rep=rep: rep, text)
        if n != 1:
            raise AssertionError("examples/apache-mtls.conf: %r not found once" % pat)
    return text


@unittest.skipUnless(os.path.exists(os.path.join(servers.APACHE_MODULES, "mod_ssl.so")),
                     "apache2 with mod_ssl not installed")
class MutualTlsApache(mtls.Contract, unittest.TestCase):
    # Apache: no certificate or another CA's: the handshake fails (0); another
    # name: the Require expr's 403
    refused = {"none": 0, "wrongcn": 403, "othersigned": 0}

    @classmethod
    def setUpClass(cls):
        cls.pg = h.Postgres()
        cls.pg.migrate()
        cls.dir = h.tmpdir("wahook-mtls-apache-")
        for d in ("run", "htdocs"):
            os.makedirs(os.path.join(cls.dir, d))
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
        with open(os.path.join(h.ROOT, "examples", "apache.conf")) as f:
            # the environment blocks are for the other modes: unused here
            unused = {k: "unused" for k in ("WAHOOK_APP_SECRET_FILE", "WAHOOK_DB",
                                            "WAHOOK_VERIFY_TOKEN_FILE")}
            site = servers.apache_conf_from_example(f.read(), "proxy_fcgi", "/nonexistent",
                                                    cls.sock, unused)
        with open(EXAMPLE) as f:
            site += "\n" + vhost_from_example(f.read(), cls.port, cls.pki)
        with open(os.path.join(cls.dir, "wahook.conf"), "w") as f:
            f.write(site)
        main = servers.apache_main_conf(cls.dir, h.free_port(), "proxy_fcgi")
        main = main.replace('Include "%s/wahook.conf"' % cls.dir,
                            "LoadModule ssl_module %s/mod_ssl.so\n"
                            "LoadModule socache_shmcb_module %s/mod_socache_shmcb.so\n"
                            "Listen 127.0.0.1:%d\nInclude \"%s/wahook.conf\""
                            % (servers.APACHE_MODULES, servers.APACHE_MODULES, cls.port,
                               cls.dir))
        conf = os.path.join(cls.dir, "apache2.conf")
        with open(conf, "w") as f:
            f.write(main)
        cls.errlog = os.path.join(cls.dir, "error.log")
        cls.proc = h.spawn(["apache2", "-f", conf, "-DFOREGROUND"],
                           env={"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"},
                           stdout=subprocess.DEVNULL,
                           stderr=open(cls.errlog + ".stderr", "w"))
        h.wait_for(lambda: cls.curl("GET", "/", "meta-chain.pem", "meta.key")[0] != 0, 15,
                   "apache2 with TLS")

    @classmethod
    def tearDownClass(cls):
        h.kill(cls.proc)
        h.kill(cls.fcgi)
        cls.pg.stop()


if __name__ == "__main__":
    unittest.main()
