"""test_servers_cgi.py - the same installed binary as a plain CGI program under
Apache's mod_cgid (examples/apache.conf, WAHOOK_VIA_CGI): FCGX_IsCGI() sees no
FastCGI socket on fd 0, so it serves the one request in its environment (set
by the example's SetEnv lines; Apache's own environment is bare) and stdin,
then exits. Reload: apachectl graceful, then requests still succeed."""
import unittest

import harness as h
import servers


class ApacheCgi(servers.Contract, unittest.TestCase):
    tag = "cgi"

    @classmethod
    def setUpClass(cls):
        inst = servers.installed()
        cls.dir = h.tmpdir("wahook-apache-cgi-")
        env = servers.responder_env(cls.dir, servers.WWW)    # mod_cgid runs it as Apache's user
        cls.server = servers.Apache("cgi", cls.dir, inst.example("apache.conf"), inst.fcgi,
                                    env=env)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def responder_pids(self):
        return None     # a CGI program lives for one request

    def test_one_process_per_request_exits(self):
        self.post_ok(self.mid("exit"))
        fcgi = servers.installed().fcgi
        h.wait_for(lambda: not servers.pids_of(fcgi, self.server.proc.pid), 5,
                   "the CGI process to exit")
        logs = self.server.logs()
        self.assertIn("ev=request", logs)          # its log line reached Apache's error log
        self.assertNotIn("ev=start", logs)         # and it never took the FastCGI path


if __name__ == "__main__":
    unittest.main()
