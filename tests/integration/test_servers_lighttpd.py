"""test_servers_lighttpd.py - the responder as installed, behind lighttpd running
lighttpd.conf.example (mod_fastcgi spawning it with bin-path, max-procs, a unix
socket, bin-environment, max-request-size), logged in as wahook_ingest. A
graceful restart (SIGUSR1) replaces the responders lighttpd spawned."""
import os
import signal
import unittest

import harness as h
import servers


class LighttpdServer(servers.Contract, unittest.TestCase):
    tag = "lighttpd"

    @classmethod
    def setUpClass(cls):
        inst = servers.installed()
        cls.dir = h.tmpdir("wahook-lighttpd-env-")
        env = servers.responder_env(cls.dir, h.LIGHTTPD_USER)   # the example drops to it
        env.update(WAHOOK_APP_SECRET=None, WAHOOK_VERIFY_TOKEN=None)   # files only
        cls.server = h.Lighttpd(None, procs=2, env=env, binary=inst.fcgi)
        h.wait_for(lambda: len(servers.pids_of(inst.fcgi, cls.server.proc.pid)) == 2, 10,
                   "2 responders")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def reload(self):
        """lighttpd's graceful restart: finish requests, read the config again,
        stop the backends (SIGTERM) and spawn new ones."""
        old = self.responder_pids()
        os.kill(self.server.proc.pid, signal.SIGUSR1)
        servers.wait_until_stopped(old)
        h.wait_for(lambda: len(self.responder_pids()) == 2, 10, "2 new responders")
        h.wait_for(self.server._up, 10, "lighttpd back")


if __name__ == "__main__":
    unittest.main()
