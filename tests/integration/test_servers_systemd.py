"""test_servers_systemd.py - systemd socket activation: the shipped units pass
`systemd-analyze verify` (and its offline security review) as installed, and the
responder as installed serves nginx (examples/nginx.conf) from a socket it was
handed the way wahook.socket hands it: fd 3 with LISTEN_FDS/LISTEN_PID, through
systemd's own systemd-socket-activate (see servers.SocketActivation; systemd
itself is not PID 1 on a build machine). The socket outlives the responder:
requests sent while it restarts wait and succeed."""
import os
import shutil
import stat
import subprocess
import threading
import unittest

import harness as h
import servers

UNITS = ["wahook.socket", "wahook.service", "wahook-drain.service", "wahook-drain.timer",
         "wahook-metrics.service", "wahook-metrics.timer"]


def in_installed_root(script):
    """Runs script in a private mount namespace where the DESTDIR tree is mounted on
    /usr/local: the units are checked as shipped, naming /usr/local paths that
    exist. (Nothing outside the namespace sees the mount.)"""
    inst = servers.installed()
    return subprocess.run(servers.unshare_mount() + ["sh", "-c",
                           'mount --bind "$0" /usr/local && cd "$1" && ' + script,
                           inst.root, "/usr/local/share/doc/wahook/examples"],
                          capture_output=True, text=True, timeout=60)


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
class SystemdUnits(unittest.TestCase):
    def test_units_verify_as_installed(self):
        r = in_installed_root("systemd-analyze verify " + " ".join(UNITS))
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_verify_notices_a_missing_program(self):
        """The check above is not vacuous: without the installed tree, verify
        complains about the units' ExecStart= paths."""
        inst = servers.installed()
        d = h.tmpdir("wahook-units-")
        for u in UNITS:
            shutil.copy(os.path.join(inst.examples, u), d)
        r = subprocess.run(servers.unshare_mount() + ["sh", "-c",
                            'mount -t tmpfs none /usr/local && cd "$0" && '
                            "systemd-analyze verify --man=no " + " ".join(UNITS), d],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("wahook.fcgi is not executable", r.stderr)

    def test_services_are_hardened(self):
        for svc in ("wahook.service", "wahook-drain.service"):
            r = in_installed_root("systemd-analyze security --offline=yes --threshold=20 " + svc)
            self.assertEqual(r.returncode, 0, r.stdout[-1500:] + r.stderr)


class ListenFds(unittest.TestCase):
    """wahook.fcgi's side of sd_listen_fds(3), without a socket to serve."""

    def run_with(self, listen_pid, listen_fds):
        env = {"PATH": "/usr/bin:/bin", "LISTEN_FDS": listen_fds, "WAHOOK_VERIFY_TOKEN": "t",
               "REQUEST_METHOD": "GET",
               "QUERY_STRING": "hub.mode=subscribe&hub.verify_token=t&hub.challenge=77"}
        script = ('LISTEN_PID=$$ exec "$0"' if listen_pid == "self"
                  else 'LISTEN_PID=%s exec "$0"' % listen_pid)
        return subprocess.run(["sh", "-c", script, servers.installed().fcgi], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=10)

    def test_more_than_one_socket_is_a_configuration_error(self):
        r = self.run_with("self", "2")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"LISTEN_FDS", r.stderr)

    def test_variables_meant_for_another_process_are_ignored(self):
        """LISTEN_PID not ours (inherited from a parent): fd 0 is left alone and
        the process serves the CGI request it was started for."""
        r = self.run_with("1", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b"Status: 200"), r.stdout)
        self.assertTrue(r.stdout.endswith(b"\r\n\r\n77"), r.stdout)


@unittest.skipUnless(shutil.which("systemd-socket-activate"), "systemd-socket-activate missing")
class NginxSocketActivated(servers.BackendContract, unittest.TestCase):
    tag = "systemd"

    @classmethod
    def setUpClass(cls):
        inst = servers.installed()
        cls.dir = h.tmpdir("wahook-sd-")
        env = servers.responder_env(cls.dir, servers.RESPONDER_USER)
        cls.backend = servers.SocketActivation(inst.fcgi, env, cls.dir)
        cls.server = servers.NginxExample(cls.backend, cls.dir, inst.example("nginx.conf"))

    def test_socket_root_www_data_0660(self):
        st = os.stat(self.backend.sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        if servers.AS_ROOT:
            self.assertEqual((st.st_uid, st.st_gid), (0, servers.uid_gid(servers.WWW)[1]))

    def test_listening_socket_moved_to_fd0(self):
        self.post_ok(self.mid("fd"))
        pid = self.backend.proc.pid
        self.assertTrue(self.backend.exec_done())
        ino = os.fstat(self.backend.lsock.fileno()).st_ino
        fds = "/proc/%d/fd" % pid
        on_socket = []
        for fd in os.listdir(fds):
            try:
                if os.readlink(os.path.join(fds, fd)) == "socket:[%d]" % ino:
                    on_socket.append(fd)
            except OSError:
                pass
        # on fd 0 only: fd 3 was closed (it may hold the database connection now)
        self.assertEqual(on_socket, ["0"])

    def test_requests_wait_through_a_restart(self):
        """systemctl restart wahook.service: between the old responder's exit and
        the new one's start, a webhook waits on the socket instead of failing."""
        self.post_ok(self.mid("warm"))
        old = self.responder_pids()
        h.kill(self.backend.proc)                 # the service is down, the socket is not
        servers.wait_until_stopped(old)
        mid, out = self.mid("queued"), {}

        def send():
            out["r"] = self.server.post(h.meta_json(servers.webhook(
                [servers.text_message(mid, "16505551234", 1700000000, "q")])), path="/webhook")

        t = threading.Thread(target=send)
        t.start()
        t.join(0.5)
        self.assertTrue(t.is_alive(), "answered with no responder running: %r" % out)
        self.backend.start()
        t.join(30)
        self.assertEqual(out["r"][:1] + out["r"][2:], (200, b"EVENT_RECEIVED"))
        self.assertEqual(self.stored(mid), 1)


if __name__ == "__main__":
    unittest.main()
