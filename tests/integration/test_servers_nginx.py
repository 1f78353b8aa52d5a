"""test_servers_nginx.py - the responder as installed, behind nginx running
examples/nginx.conf (client_max_body_size raised, Debian's fastcgi_params,
fastcgi_pass to a unix socket), served by spawn-fcgi on a socket of mode 0600
owned by nginx's user, the responder itself unprivileged and logged in as
wahook_ingest. Reload: nginx -s reload (SIGHUP) and a restart of the
spawn-fcgi service."""
import os
import stat
import unittest

import harness as h
import servers


class NginxSpawnFcgi(servers.BackendContract, unittest.TestCase):
    tag = "nginx"

    @classmethod
    def setUpClass(cls):
        inst = servers.installed()
        cls.dir = h.tmpdir("wahook-nginx-ex-")
        env = servers.responder_env(cls.dir, servers.RESPONDER_USER)
        cls.backend = servers.SpawnFcgi(inst.fcgi, env, cls.dir)
        cls.server = servers.NginxExample(cls.backend, cls.dir, inst.example("nginx.conf"))

    def test_socket_reachable_by_the_web_server_alone(self):
        st = os.stat(self.backend.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode) & 0o077, 0, oct(st.st_mode))
        if servers.AS_ROOT:
            self.assertEqual(st.st_uid, servers.uid_gid(servers.WWW)[0])

    def test_verify_token_stays_out_of_the_access_log(self):
        """The main configuration logs every request (as Debian's does); the
        shipped location keeps verification GETs, token and all, out of it."""
        st, _, out = self.server.request("GET", "/webhook?hub.mode=subscribe&hub."
                                         "verify_token=%s&hub.challenge=77" % h.TOKEN)
        self.assertEqual((st, out), (200, b"77"))
        self.assertEqual(self.server.request("GET", "/elsewhere?probe=1")[0], 404)
        log = os.path.join(self.dir, "access.log")
        h.wait_for(lambda: os.path.exists(log) and "probe=1" in open(log).read(), 10,
                   "the access log to record /elsewhere")
        with open(log) as f:
            text = f.read()
        self.assertNotIn(h.TOKEN, text)
        self.assertNotIn("verify_token", text)

    def test_default_body_limit_would_refuse_a_batch(self):
        """The trap the example avoids: without client_max_body_size nginx itself
        answers 413 to a real batch (and Meta retries it for a week)."""
        d = h.tmpdir("wahook-nginx-nolimit-")
        text = servers.installed().example("nginx.conf")
        text = "\n".join(l for l in text.split("\n") if "client_max_body_size" not in l)
        srv = servers.NginxExample(self.backend, d, text)
        try:
            st, _, _ = srv.post(servers.batch_3mb(self.mid("nolimit")), path="/webhook")
            self.assertEqual(st, 413)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
