"""test_logs_land.py - for every documented way of running the responder, each
request's log line and a start-up error (an app secret file that is not
there: exit 2, a line naming WAHOOK_APP_SECRET_FILE) land where doc/servers.md's
"Where the logs go" says:

  spawn-fcgi (forking, as in production) with WAHOOK_LOG  -> that file
  spawn-fcgi without WAHOOK_LOG (children's stderr is /dev/null) -> syslog
  socket activation (the unit unsets WAHOOK_LOG)           -> stderr (the journal)
  lighttpd's own spawning, lighttpd under systemd (-D)    -> its stderr (the journal)
  lighttpd's own spawning, lighttpd daemonized (no -D)     -> syslog (its children's
                                                              stderr is /dev/null)
  Apache mod_fcgid, CGI                                    -> Apache's ErrorLog

Each runs the responder as installed behind the shipped example of its server.
Syslog is caught without touching the machine's /dev: spawn-fcgi runs in a
private mount namespace whose /dev is a fresh tmpfs holding null, zero,
urandom and a /dev/log that leads to this test's datagram socket.
"""
import os
import re
import socket
import subprocess
import threading
import unittest
import uuid

import harness as h
import servers

BAD = {"WAHOOK_APP_SECRET_FILE": "/nonexistent/app-secret"}
PRIV = servers.AS_ROOT


def bad(env):
    return env.get("WAHOOK_APP_SECRET_FILE") == BAD["WAHOOK_APP_SECRET_FILE"]


def mid(tag):
    return "wamid.logs.%s.%s" % (tag, uuid.uuid4().hex[:10])


def post_one(server, m):
    body = h.meta_json(servers.webhook([servers.text_message(m, "16505551234",
                                                             1700000000, "log me")]))
    return server.post(body, path="/webhook")


def request_line(m):
    return re.compile(r"level=info ev=request method=POST .*ids=\"?%s:new.*status=200"
                      % re.escape(m))


CONFIG_LINE = re.compile(r"level=error ev=config msg=\"?WAHOOK_APP_SECRET_FILE: cannot open")


class ForkingSpawnFcgi:
    """spawn-fcgi as the README runs it: forking (-F 2), its children's stdout and
    stderr on /dev/null, pids in a pid file; prefix runs it in a namespace."""

    def __init__(self, binary, env, dirpath, prefix=()):
        self.dir = dirpath
        self.sock = os.path.join(dirpath, "wahook.sock")
        self.pidfile = os.path.join(dirpath, "spawn-fcgi.pid")
        self.log = os.path.join(dirpath, "spawn-fcgi.out")
        users = (["-U", servers.WWW, "-u", servers.RESPONDER_USER, "-g", "nogroup"]
                 if PRIV else [])
        r = subprocess.run(list(prefix) + ["spawn-fcgi", "-s", self.sock, "-M", "0600",
                                           "-F", "2", "-P", self.pidfile] + users +
                           ["--", binary],
                           env=dict(env, PATH=os.environ.get("PATH", "/usr/bin:/bin")),
                           capture_output=True, text=True, timeout=30)
        self.output = r.stdout + r.stderr
        self.rc = r.returncode

    def pids(self):
        try:
            with open(self.pidfile) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def stop(self):
        for p in self.pids():
            try:
                os.kill(p, 15)
            except ProcessLookupError:
                pass
        servers.wait_until_stopped(self.pids())


class SyslogCatcher:
    """A datagram socket standing in for /dev/log; collects what arrives."""

    def __init__(self, dirpath):
        self.path = os.path.join(dirpath, "devlog")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.lines = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            self.lines.append(data.decode(errors="replace"))

    def text(self):
        return "\n".join(self.lines)

    def stop(self):
        self.sock.close()


def private_dev(devlog):
    """argv prefix: a private mount namespace with a fresh /dev whose log is devlog."""
    script = ('mount -t tmpfs -o mode=0755 wahook-dev /dev && '
              'mknod -m 0666 /dev/null c 1 3 && mknod -m 0666 /dev/zero c 1 5 && '
              'mknod -m 0666 /dev/urandom c 1 9 && ln -s "$0" /dev/log && exec "$@"')
    return servers.unshare_mount() + ["sh", "-c", script, devlog]


class Case:
    """Mixed into a TestCase: start(env) returns (server, logtext callable, stop)."""

    def start(self, env, tag):
        raise NotImplementedError

    def env(self, d, owner):
        return servers.responder_env(d, owner)

    def test_request_line_lands(self):
        d = h.tmpdir("wahook-logs-%s-" % self.tag)
        server, logs, stop = self.start(self.env(d, self.owner), d)
        try:
            m = mid(self.tag)
            st, _, out = post_one(server, m)
            self.assertEqual((st, out), (200, b"EVENT_RECEIVED"), logs()[-2000:])
            h.wait_for(lambda: request_line(m).search(logs()), 10,
                       "the request line in " + self.where)
        finally:
            stop()

    def test_startup_error_lands(self):
        d = h.tmpdir("wahook-logs-%s-bad-" % self.tag)
        server, logs, stop = self.start(dict(self.env(d, self.owner), **BAD), d)
        try:
            if server is not None:
                st, _, _ = post_one(server, mid(self.tag + "-bad"))
                self.assertIn(st, (500, 502, 503))
            h.wait_for(lambda: CONFIG_LINE.search(logs()), 10,
                       "the configuration error in " + self.where)
        finally:
            stop()


class SpawnFcgiLogFile(Case, unittest.TestCase):
    tag, owner, where = "spawn-file", servers.RESPONDER_USER, "WAHOOK_LOG's file"

    def env(self, d, owner):
        e = servers.responder_env(d, owner)
        e["WAHOOK_LOG"] = os.path.join(d, "wahook.fcgi.log")
        with open(e["WAHOOK_LOG"], "w"):
            pass
        if PRIV:
            os.chown(e["WAHOOK_LOG"], *servers.uid_gid(owner))
        os.chmod(e["WAHOOK_LOG"], 0o640)
        h.register_log(e["WAHOOK_LOG"])
        self.logfile = e["WAHOOK_LOG"]
        return e

    def start(self, env, d):
        b = ForkingSpawnFcgi(servers.installed().fcgi, env, d)

        def logs():
            with open(self.logfile, errors="replace") as f:
                return f.read()
        if bad(env):
            # spawn-fcgi itself says at most "child exited with: 2", and only
            # when the child is that quick
            return None, logs, b.stop
        self.assertEqual(b.rc, 0, b.output)
        srv = servers.NginxExample(b, d, servers.installed().example("nginx.conf"))

        def stop():
            srv.stop()
            b.stop()
        return srv, logs, stop


@unittest.skipUnless(PRIV, "a private /dev needs root")
class SpawnFcgiSyslog(Case, unittest.TestCase):
    tag, owner, where = "spawn-syslog", servers.RESPONDER_USER, "syslog"

    def start(self, env, d):
        catcher = SyslogCatcher(d)
        b = ForkingSpawnFcgi(servers.installed().fcgi, env, d, private_dev(catcher.path))

        def logs():
            return catcher.text()
        if bad(env):
            return None, logs, catcher.stop
        self.assertEqual(b.rc, 0, b.output)
        srv = servers.NginxExample(b, d, servers.installed().example("nginx.conf"))

        def stop():
            srv.stop()
            b.stop()
            catcher.stop()
        return srv, logs, stop

    def test_syslog_lines_carry_ident_and_priority(self):
        """daemon.info for requests, daemon.err for errors, tagged wahook.fcgi[pid]."""
        d = h.tmpdir("wahook-logs-syslog-prio-")
        server, logs, stop = self.start(self.env(d, self.owner), d)
        try:
            st, _, _ = post_one(server, mid("prio"))
            self.assertEqual(st, 200)
            h.wait_for(lambda: "ev=request" in logs(), 10, "a request line")
            self.assertRegex(logs(), r"<30>.*wahook\.fcgi\[\d+\]: level=info ev=request")
        finally:
            stop()


class SocketActivationJournal(Case, unittest.TestCase):
    tag, owner, where = "socket", servers.RESPONDER_USER, "stderr (the journal)"

    def start(self, env, d):
        b = servers.SocketActivation(servers.installed().fcgi, env, d)

        def logs():
            with open(b.log, errors="replace") as f:
                return f.read()
        if bad(env):
            # the first connection starts the responder, which exits 2; the
            # connection waits in the backlog, as it would for systemd's restart
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(b.sock)

            def stop_bad():
                c.close()
                b.stop()
            return None, logs, stop_bad
        srv = servers.NginxExample(b, d, servers.installed().example("nginx.conf"))

        def stop():
            srv.stop()
            b.stop()
        return srv, logs, stop


class DaemonLighttpd(h.Server):
    """lighttpd running lighttpd.conf.example as a service runs it: daemonized
    (no -D), with server.errorlog set, stopped by the pid in its pid file."""

    def __init__(self, env, dirpath, prefix=()):
        self.dir, self.port = dirpath, h.free_port()
        self.errlog = os.path.join(dirpath, "error.log")
        self.pidfile = os.path.join(dirpath, "lighttpd.pid")
        conf = os.path.join(dirpath, "lighttpd.conf")
        e = dict((k, v) for k, v in env.items() if v is not None)
        with open(conf, "w") as f:
            f.write(h.lighttpd_conf_from_example(dirpath, self.port, servers.installed().fcgi,
                                                 e, procs=1))
            f.write('\nserver.errorlog = "%s"\n' % self.errlog)
        h.register_log(self.errlog)
        r = subprocess.run(list(prefix) + ["lighttpd", "-f", conf], capture_output=True,
                           text=True, timeout=30)
        self.started = r.returncode == 0
        self.output = r.stdout + r.stderr

    def _up_port(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self):
        p = self.pid()
        if p is not None:
            try:
                os.kill(p, 15)
            except ProcessLookupError:
                pass
            servers.wait_until_stopped([p])


class LighttpdStderr(Case, unittest.TestCase):
    """lighttpd -D, as Debian's lighttpd.service runs it: the responders inherit
    lighttpd's stderr, which systemd gives to the journal."""
    tag, owner, where = "lighttpd-D", h.LIGHTTPD_USER, "lighttpd's stderr"

    def env(self, d, owner):
        e = servers.responder_env(d, owner)
        e.update(WAHOOK_APP_SECRET=None, WAHOOK_VERIFY_TOKEN=None)
        return e

    def start(self, env, d):
        holder = {}

        def logs():
            try:
                with open(holder["stderr"], errors="replace") as f:
                    return f.read()
            except (KeyError, FileNotFoundError):
                return ""
        before = set(h._tmpdirs)
        try:
            s = h.Lighttpd(None, procs=1, env=env, binary=servers.installed().fcgi)
        except AssertionError:
            if not bad(env):
                raise
            # lighttpd gave up on a backend that cannot start; its stderr stays
            new = [x for x in h._tmpdirs if x not in before and "wahook-lighttpd-" in x]
            holder["stderr"] = os.path.join(new[-1], "error.log.stderr")
            return None, logs, lambda: None
        holder["stderr"] = s.errlog + ".stderr"
        return (None if bad(env) else s), logs, s.stop


@unittest.skipUnless(PRIV, "a private /dev needs root")
class LighttpdDaemonSyslog(LighttpdStderr):
    """lighttpd daemonized, as without systemd: stderr is /dev/null, so syslog."""
    tag, where = "lighttpd-daemon", "syslog"

    def start(self, env, d):
        catcher = SyslogCatcher(d)
        s = DaemonLighttpd(env, d, private_dev(catcher.path))

        def stop():
            s.stop()
            catcher.stop()
        if bad(env):
            return None, catcher.text, stop
        self.assertTrue(s.started, s.output)
        h.wait_for(lambda: s.pid() and s._up_port(), 10, "lighttpd on its port")
        return s, catcher.text, stop


class ApacheErrorLog(Case):
    owner, where = servers.WWW, "Apache's ErrorLog"
    mode = None

    def start(self, env, d):
        s = servers.Apache(self.mode, d, servers.installed().example("apache.conf"),
                           servers.installed().fcgi, env=env)

        def logs():
            with open(s.errlog, errors="replace") as f:
                return f.read()
        return s, logs, s.stop


class ApacheFcgidErrorLog(ApacheErrorLog, unittest.TestCase):
    tag, mode = "fcgid", "fcgid"


class ApacheCgiErrorLog(ApacheErrorLog, unittest.TestCase):
    tag, mode = "cgi", "cgi"


if __name__ == "__main__":
    unittest.main()
