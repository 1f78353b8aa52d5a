"""test_mtls_apache.py - Meta's mutual TLS as shipped in examples/apache-mtls.conf,
beside examples/apache.conf (mod_proxy_fcgi to a spawn-fcgi socket), run by a
private real Apache with mod_ssl on loopback: the same certificates and promises
as test_mtls_nginx. mod_ssl ends the handshake without a certificate Meta's CA
signed, and the Require expr answers 403 to one for another name."""
import os
import subprocess
import unittest

import harness as h
import mtls
import servers

@unittest.skipUnless(os.path.exists(os.path.join(servers.APACHE_MODULES, "mod_ssl.so")),
                     "apache2 with mod_ssl not installed")
class MutualTlsApache(mtls.Contract, unittest.TestCase):
    # Apache: no certificate or another CA's: the handshake fails (0); another
    # name: the Require expr's 403
    refused = {"none": 0, "wrongcn": 403, "othersigned": 0}

    @classmethod
    def setUpClass(cls):
        cls.dir = h.tmpdir("wahook-mtls-apache-")
        for d in ("run", "htdocs"):
            os.makedirs(os.path.join(cls.dir, d))
        cls.pki = mtls.Pki(h.tmpdir("wahook-pki-"))
        mtls.start_responder(cls, cls.dir)
        cls.port = h.free_port()
        with open(os.path.join(h.ROOT, "examples", "apache.conf")) as f:
            # the environment blocks are for the other modes: unused here
            unused = {k: "unused" for k in ("WAHOOK_APP_SECRET_FILE", "WAHOOK_DB",
                                            "WAHOOK_VERIFY_TOKEN_FILE")}
            site = servers.apache_conf_from_example(f.read(), "proxy_fcgi", "/nonexistent",
                                                    cls.sock, unused)
        site += "\n" + mtls.from_example("apache-mtls.conf", cls.pki, [
            (r"<VirtualHost \*:443>", "<VirtualHost 127.0.0.1:%d>" % cls.port)])
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
        mtls.stop_responder(cls)


if __name__ == "__main__":
    unittest.main()
