"""test_servers_apache.py - the responder as installed, behind our own apache2
(Debian's modules, -f, -DFOREGROUND) running examples/apache.conf two ways:
mod_proxy_fcgi with ProxyPass to a spawn-fcgi unix socket (0600, owned by
Apache's user), and mod_fcgid, where Apache starts the responder itself with
nothing but the FcgidInitialEnv lines as its configuration (Apache's own
environment is bare) and FcgidMaxRequestLen must be raised for real batches.
Reload: apachectl graceful (SIGUSR1)."""
import unittest

import harness as h
import servers


class ApacheProxyFcgi(servers.BackendContract, unittest.TestCase):
    tag = "apache-proxy"

    @classmethod
    def setUpClass(cls):
        inst = servers.installed()
        cls.dir = h.tmpdir("wahook-apache-proxy-")
        env = servers.responder_env(cls.dir, servers.RESPONDER_USER)
        cls.backend = servers.SpawnFcgi(inst.fcgi, env, cls.dir)
        cls.server = servers.Apache("proxy_fcgi", cls.dir, inst.example("apache.conf"),
                                    inst.fcgi, backend=cls.backend, env=env)

    def test_chunked_body_without_content_length(self):
        """mod_proxy_fcgi passes a chunked request on without CONTENT_LENGTH."""
        import http.client
        mid = self.mid("chunked")
        body = h.meta_json(servers.webhook([servers.text_message(mid, "1", 1700000000, "c")]))
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            c.request("POST", "/webhook", body=iter([body[:100].encode(), body[100:].encode()]),
                      headers={"X-Hub-Signature-256": h.sign(body),
                               "Content-Type": "application/json"}, encode_chunked=True)
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"EVENT_RECEIVED"),
                             self.server.logs()[-2000:])
        finally:
            c.close()
        self.assertEqual(self.stored(mid), 1)


class ApacheFcgid(servers.Contract, unittest.TestCase):
    tag = "apache-fcgid"

    @classmethod
    def setUpClass(cls):
        inst = servers.installed()
        cls.dir = h.tmpdir("wahook-apache-fcgid-")
        # mod_fcgid runs the responder as Apache's user: the secret files are its
        cls.env = servers.responder_env(cls.dir, servers.WWW)
        cls.server = servers.Apache("fcgid", cls.dir, inst.example("apache.conf"), inst.fcgi,
                                    env=cls.env)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def reload(self):
        old = self.responder_pids()
        self.server.reload()
        servers.wait_until_stopped(old)

    def test_default_request_len_would_refuse_a_batch(self):
        """The trap the example avoids: FcgidMaxRequestLen's 128 KiB default answers
        500 to a real batch."""
        d = h.tmpdir("wahook-apache-fcgid-default-")
        text = servers.installed().example("apache.conf")
        text = "\n".join(l for l in text.split("\n") if "FcgidMaxRequestLen" not in l)
        srv = servers.Apache("fcgid", d, text, servers.installed().fcgi, env=self.env)
        try:
            st, _, _ = srv.post(servers.batch_3mb(self.mid("nolimit")), path="/webhook")
            self.assertEqual(st, 500)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
