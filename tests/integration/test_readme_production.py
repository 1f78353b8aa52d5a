"""test_readme_production.py - README.md's production section, run as written.

The ```sh production blocks are taken from README.md itself and run in order,
as root, by one `bash -e` in the repository: make deb, apt-get install of the
package, Debian's own PostgreSQL cluster 15/main (its pg_ctlcluster line starts
it when it is down; the test stops it again if so), wahook-setup, the secrets,
spawn-fcgi, nginx, lighttpd, the crontab. The test only sets what the README
tells the reader to set: APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN, NGINX_PORT and
LIGHTTPD_PORT (free loopback ports). Then a signed webhook goes through nginx
and another through lighttpd, the drainer runs from the installed
/etc/cron.d/wahook line the way cron runs it (its user, its environment lines,
/bin/sh -c) against the stand-in Graph API, and the rows, the calls and the log
lines are checked where the README says they are. A package installed by an
earlier run is purged first, so the users and files are the package's doing;
at the end the purge is checked (users, /etc/wahook, logs gone; the database
kept). Every process the commands started is
stopped by the pid its pid file names, also on failure. One run at a time on a
machine (a lock): the commands act on the machine itself.
"""
import os
import pwd
import re
import signal
import subprocess
import time
import unittest
import uuid

import harness as h
import graph_standin
import servers
import machine
from machine import CLUSTER, alive, cluster_online, pids_in, stop_pids

README = os.path.join(h.ROOT, "README.md")
PIDFILES = {"spawn-fcgi": "/run/wahook/spawn-fcgi.pid", "nginx": "/run/nginx.pid",
            "lighttpd": "/run/lighttpd-wahook.pid"}
FCGI_LOG = "/var/log/wahook/wahook.fcgi.log"
NGINX_LOGS = ["/var/log/nginx/access.log", "/var/log/nginx/error.log"]
LIGHTTPD_ACCESS = "/var/log/lighttpd/wahook-access.log"
DRAIN_LOG = "/var/log/wahook/wahook-drain.log"
APP_SECRET = "prod-app-secret-" + uuid.uuid4().hex[:10]
VERIFY_TOKEN = "prod-verify-" + uuid.uuid4().hex[:10]
ACCESS_TOKEN = "prod-access-" + uuid.uuid4().hex[:10]


def production_blocks(text, tag="production"):
    """The bodies of the fenced blocks whose info string is `sh <tag>`."""
    return re.findall(r"(?ms)^```sh %s\n(.*?)^```$" % tag, text)


def as_postgres(sql, db="wahook"):
    r = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-d", db,
                        "-c", sql], capture_output=True, text=True, cwd="/")
    if r.returncode != 0:
        raise AssertionError("psql: " + r.stderr)
    return r.stdout.strip()


def cron_jobs(path="/etc/cron.d/wahook"):
    """(environment, [(user, command)]) of an /etc/cron.d file, as cron reads it."""
    env, jobs = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
            if m:
                env[m.group(1)] = m.group(2)
                continue
            f5 = line.split(None, 6)
            jobs.append((f5[5], f5[6]))
    return env, jobs


def run_as_cron(user, command, cron_env, extra_env, **kw):
    """Starts command the way cron does: /bin/sh -c as user, in /, with the
    crontab's environment lines over HOME, LOGNAME, USER and cron's defaults."""
    pw = pwd.getpwnam(user)
    env = {"HOME": pw.pw_dir, "LOGNAME": user, "USER": user, "SHELL": "/bin/sh",
           "PATH": "/usr/bin:/bin"}
    env.update(cron_env)
    env.update(extra_env)
    return subprocess.Popen(["/bin/sh", "-c", command], env=env, cwd="/", user=pw.pw_uid,
                            group=pw.pw_gid, extra_groups=[], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, **kw)


@unittest.skipUnless(os.geteuid() == 0, "the README's production commands run as root")
@unittest.skipIf(h.BUILD.rstrip("/").endswith("/san"),
                 "the package is built without sanitizers: the ordinary run covers it")
class ReadmeProduction(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lock = machine.take_lock()
        cls.addClassCleanup(cls.lock.close)
        cls.cluster_was_online = cluster_online()
        cls.addClassCleanup(cls.stop_everything)
        cls.purge_before = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "wahook"],
                                          capture_output=True, text=True).stdout
        if "installed" in cls.purge_before:
            stop_pids(pids_in(PIDFILES["spawn-fcgi"]))
            r = subprocess.run(["dpkg", "--purge", "wahook"], capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr
        with open(README) as f:
            text = f.read()
        cls.blocks = production_blocks(text)
        cls.restart_blocks = production_blocks(text, "restart")
        cls.nginx_port, cls.lighttpd_port = h.free_port(), h.free_port()
        cls.g = graph_standin.GraphStandin(ACCESS_TOKEN)
        cls.addClassCleanup(cls.g.stop)
        apt_conf = os.path.join(h.tmpdir("wahook-apt-"), "apt.conf")
        with open(apt_conf, "w") as f:     # another apt-get on the machine: wait for it
            f.write('DPkg::Lock::Timeout "600";\n')
        env = dict(os.environ, APP_SECRET=APP_SECRET, VERIFY_TOKEN=VERIFY_TOKEN,
                   ACCESS_TOKEN=ACCESS_TOKEN, NGINX_PORT=str(cls.nginx_port),
                   LIGHTTPD_PORT=str(cls.lighttpd_port), DEBIAN_FRONTEND="noninteractive",
                   APT_CONFIG=apt_conf)
        cls.out = os.path.join(h.tmpdir("wahook-readme-prod-"), "commands.out")
        with open(cls.out, "w") as out:
            cls.rc = subprocess.run(["bash", "-e", "-c", "\n".join(cls.blocks)],
                                    cwd=h.ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=1500).returncode
        for p in (FCGI_LOG, DRAIN_LOG):
            h.register_log(p)      # the secrets check reads them too

    @classmethod
    def stop_everything(cls):
        stop_pids(pids_in(PIDFILES["nginx"])[:1])
        stop_pids(pids_in(PIDFILES["lighttpd"])[:1])
        stop_pids(pids_in(PIDFILES["spawn-fcgi"]))
        if not cls.cluster_was_online and cluster_online():
            subprocess.run(["pg_ctlcluster"] + list(CLUSTER) + ["stop", "-m", "fast"],
                           capture_output=True)

    def commands_output(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def setUp(self):
        self.assertEqual(self.rc, 0, "the README's production commands failed:\n" +
                         self.commands_output()[-6000:])

    def post(self, port, mid, text):
        body = h.meta_json(servers.webhook([servers.text_message(mid, "16505550199",
                                                                 int(time.time()), text)]))
        srv = h.Server()
        srv.port = port
        return srv.post(body, secret=APP_SECRET, path="/webhook")

    def test_1_the_section_is_about_a_dozen_commands(self):
        cmds = [l for b in self.blocks for l in b.splitlines()
                if l.strip() and not l.startswith((" ", "\t"))]
        self.assertGreaterEqual(len(self.blocks), 4)
        self.assertLessEqual(len(cmds), 20, cmds)
        self.assertIn("make deb", "\n".join(cmds))
        self.assertIn("wahook-setup", "\n".join(cmds))

    def test_2_package_made_users_files_and_modes(self):
        for user in ("wahook", "wahook-drain"):
            pw = pwd.getpwnam(user)
            self.assertLess(pw.pw_uid, 1000, user)          # a system user
            self.assertIn(pw.pw_shell, ("/usr/sbin/nologin", "/bin/false"))
        want = {"/etc/wahook/app-secret": ("wahook", 0o400),
                "/etc/wahook/verify-token": ("wahook", 0o400),
                "/etc/wahook/access-token": ("wahook-drain", 0o400),
                "/etc/wahook/wahook.env": ("root", 0o644),
                "/etc/wahook/wahook-drain.env": ("root", 0o644),
                FCGI_LOG: ("wahook", 0o640), DRAIN_LOG: ("wahook-drain", 0o640)}
        for path, (owner, mode) in want.items():
            st = os.stat(path)
            self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, st.st_mode & 0o7777),
                             (owner, mode), path)
        with open("/etc/wahook/app-secret") as f:
            self.assertEqual(f.read(), APP_SECRET + "\n")
        conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", "wahook"],
                                   capture_output=True, text=True).stdout
        for f in ("/etc/wahook/wahook.env", "/etc/wahook/wahook-drain.env"):
            self.assertIn(f, conffiles)
        # the documented WAHOOK_DB values, the ones wahook-setup made roles for
        for f, role in (("/etc/wahook/wahook.env", "wahook"),
                        ("/etc/wahook/wahook-drain.env", "wahook-drain")):
            with open(f) as fh:
                self.assertIn('WAHOOK_DB="host=/run/postgresql dbname=wahook user=%s"' % role,
                              fh.read())
        st = os.stat("/run/wahook")
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, st.st_mode & 0o777),
                         ("wahook", 0o750))
        units = subprocess.run(["dpkg", "-L", "wahook"], capture_output=True,
                               text=True).stdout
        for u in ("wahook.socket", "wahook.service", "wahook-drain.service",
                  "wahook-drain.timer"):
            self.assertIn("/lib/systemd/system/" + u, units)
            self.assertFalse(os.path.exists("/etc/systemd/system/sockets.target.wants/" + u))
            self.assertFalse(os.path.exists("/etc/systemd/system/timers.target.wants/" + u))

    def test_3_setup_made_roles_that_log_in_by_peer(self):
        out = self.commands_output()
        self.assertRegex(out, r"wahook-setup: checked: OS user wahook logs in to wahook as wahook")
        self.assertRegex(out, r"wahook-setup: checked: OS user wahook-drain logs in")
        self.assertEqual(as_postgres("SELECT datdba::regrole FROM pg_database "
                                     "WHERE datname = 'wahook'"), "postgres")
        roles = as_postgres("SELECT rolname || ':' || rolcanlogin || ':' || "
                            "pg_has_role(rolname, CASE rolname WHEN 'wahook' THEN "
                            "'wahook_ingest' ELSE 'wahook_drain' END, 'MEMBER') "
                            "FROM pg_roles WHERE rolname IN ('wahook', 'wahook-drain')")
        self.assertEqual(sorted(roles.split()), ["wahook-drain:true:true", "wahook:true:true"])
        # safe twice: a second run changes nothing and says so
        r = subprocess.run(["wahook-setup"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("database wahook exists", r.stdout)
        self.assertIn("migrations: all applied already", r.stdout)
        self.assertNotIn("created", r.stdout)
        # the same script from the repository (files read as root, fed to psql)
        r = subprocess.run([os.path.join(h.ROOT, "scripts", "setup")], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("migrations: all applied already", r.stdout)

    def test_3b_web_user_logs_in_as_wahook(self):
        """--web-user www-data: a responder the web server starts as its own user
        (lighttpd's bin-path, mod_fcgid, CGI) logs in as the role wahook; twice
        adds nothing twice."""
        for _ in range(2):
            r = subprocess.run(["wahook-setup", "--web-user", "www-data"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("checked: OS user www-data logs in to wahook as wahook", r.stdout)
        hba = as_postgres("SHOW hba_file", db="postgres")
        with open(hba) as f:
            self.assertEqual(f.read().count("peer map=wahook"), 1)
        r = subprocess.run(["runuser", "-u", "www-data", "--", "psql", "-X", "-At", "-c",
                            "SELECT current_user", "dbname=wahook user=wahook"],
                           capture_output=True, text=True, cwd="/")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "wahook"), r.stderr)
        # a user not in the map still cannot
        r = subprocess.run(["runuser", "-u", "nobody", "--", "psql", "-X", "-At", "-c",
                            "SELECT 1", "dbname=wahook user=wahook"],
                           capture_output=True, text=True, cwd="/")
        self.assertNotEqual(r.returncode, 0)

    def test_4_webhooks_through_both_servers_are_answered_by_the_cron_drainer(self):
        mids = {"nginx": "wamid.prod.nginx." + uuid.uuid4().hex[:12],
                "lighttpd": "wamid.prod.lighttpd." + uuid.uuid4().hex[:12]}
        # the web servers' logs, as they were before this test's requests: what
        # is asserted about them below is what this test's requests did
        before = {p: self.size(p) for p in NGINX_LOGS + [LIGHTTPD_ACCESS]}
        for name, port in (("nginx", self.nginx_port), ("lighttpd", self.lighttpd_port)):
            st, _, out = self.post(port, mids[name], "hello via " + name)
            self.assertEqual((st, out), (200, b"EVENT_RECEIVED"),
                             "%s: %s" % (name, self.tail(FCGI_LOG)))
        for mid in mids.values():
            self.assertEqual(as_postgres("SELECT count(*) FROM wa_messages WHERE message_id"
                                         " = '%s'" % mid), "1")
        # the drainer's line of /etc/cron.d/wahook, run as cron runs it
        cron_env, jobs = cron_jobs()
        drain = [(u, c) for u, c in jobs if "wahook-drain" in c and u == "wahook-drain"]
        self.assertEqual(len(drain), 1, jobs)
        p = run_as_cron(drain[0][0], drain[0][1], cron_env,
                        {"WAHOOK_GRAPH_URL": self.g.url})
        try:
            h.wait_for(lambda: all(self.g.count("reply", m, ok_only=True) == 1
                                   for m in mids.values()), 30, "both replies")
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)    # sh exec'd into wahook-drain
            mail = p.communicate(timeout=30)[0]
        self.assertIn(p.returncode, (0, 1), mail)
        self.assertEqual(mail, b"", "cron would mail this after a normal run")
        for mid in mids.values():
            self.assertEqual(self.g.count("read", mid, ok_only=True), 1)
            self.assertEqual(as_postgres(
                "SELECT state || ',' || (read_at IS NOT NULL) || ',' || "
                "(reply_message_id IS NOT NULL) FROM wa_outbox WHERE message_id = '%s'"
                % mid), "done,true,true")
        # the log lines, where the README says they land
        with open(FCGI_LOG) as f:
            fcgi = f.read()
        with open(DRAIN_LOG) as f:
            drainlog = f.read()
        for name, mid in mids.items():
            self.assertRegex(fcgi, r"ev=request method=POST .*ids=\"?%s:new.* status=200"
                             % re.escape(mid))
            for step in ("read", "reply"):
                self.assertRegex(drainlog, r"ev=graph id=%s step=%s .*outcome=ok"
                                 % (re.escape(mid), step))
        self.assertIn("ev=drain_end", drainlog)
        # examples/nginx.conf keeps /webhook out of nginx's access log (the
        # verification GET carries the verify token in its query): a GET through
        # nginx is answered, and neither it nor the POST reaches nginx's logs
        srv = h.Server()
        srv.port = self.nginx_port
        st, _, out = srv.request("GET", "/webhook?hub.mode=subscribe&hub.verify_token=%s"
                                 "&hub.challenge=4711" % VERIFY_TOKEN)
        self.assertEqual((st, out), (200, b"4711"), self.tail(FCGI_LOG))
        time.sleep(1)       # nginx writes a log line as the request ends
        for p in NGINX_LOGS:
            self.assertNotIn("/webhook", self.read_from(p, before[p]), p)
        # lighttpd's example logs requests: this test's POST is there
        h.wait_for(lambda: "POST /webhook" in self.read_from(LIGHTTPD_ACCESS,
                                                            before[LIGHTTPD_ACCESS]),
                   10, "this test's POST in " + LIGHTTPD_ACCESS)
        for text in (fcgi, drainlog):
            for secret in (APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN):
                self.assertNotIn(secret, text)

    def test_4b_the_restart_commands_bring_new_processes_that_answer(self):
        """README "Restarting", the spawn-fcgi block as written: every old
        process gone, new ones from the pid file, and a webhook answered 200
        and stored through nginx before and after."""
        self.assertEqual(len(self.restart_blocks), 1)
        mid = "wamid.prod.restart." + uuid.uuid4().hex[:12]
        st, _, _ = self.post(self.nginx_port, mid + ".before", "before the restart")
        self.assertEqual(st, 200)
        procs = int(re.search(r"spawn-fcgi .*?-F (\d+)", self.restart_blocks[0],
                              re.S).group(1))     # as many as the README starts
        old = pids_in(PIDFILES["spawn-fcgi"])
        self.assertEqual(len(old), procs, old)
        r = subprocess.run(["bash", "-e", "-c", self.restart_blocks[0]], cwd=h.ROOT,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        new = pids_in(PIDFILES["spawn-fcgi"])
        self.assertEqual(len(new), procs, new)
        self.assertFalse([p for p in old if alive(p)], "old responders still running")
        self.assertFalse(set(old) & set(new))
        st, _, out = self.post(self.nginx_port, mid + ".after", "after the restart")
        self.assertEqual((st, out), (200, b"EVENT_RECEIVED"), self.tail(FCGI_LOG))
        self.assertEqual(as_postgres("SELECT count(*) FROM wa_messages WHERE message_id"
                                     " LIKE '%s.%%'" % mid), "2")
        with open(FCGI_LOG) as f:
            self.assertRegex(f.read(), r"ev=stop")

    def test_5_a_refused_token_reaches_cron_mail(self):
        """The same environment file, the token refused: exit 3, and the error
        on stderr (what cron mails), not only in the log file."""
        mid = "wamid.prod.refused." + uuid.uuid4().hex[:12]
        st, _, _ = self.post(self.nginx_port, mid, "refused")
        self.assertEqual(st, 200)
        self.g.refused.add(ACCESS_TOKEN)
        try:
            cron_env, _ = cron_jobs()
            p = run_as_cron("wahook-drain", "set -a; . /etc/wahook/wahook-drain.env; "
                            "exec wahook-drain", cron_env, {"WAHOOK_GRAPH_URL": self.g.url})
            mail = p.communicate(timeout=60)[0].decode()
        finally:
            self.g.refused.discard(ACCESS_TOKEN)
        self.assertEqual(p.returncode, 3, mail)
        self.assertIn("level=error", mail)
        self.assertNotIn(ACCESS_TOKEN, mail)
        with open(DRAIN_LOG) as f:
            self.assertIn("level=error", f.read())

    def test_6_purge_removes_what_the_package_made_but_not_the_database(self):
        self.stop_everything_but_the_cluster()
        # what apt-get purge does, without apt's slow look at its lists
        r = subprocess.run(["dpkg", "--purge", "wahook"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for user in ("wahook", "wahook-drain"):
            with self.assertRaises(KeyError):
                pwd.getpwnam(user)
        for path in ("/etc/wahook", "/var/log/wahook", "/run/wahook",
                     "/usr/lib/cgi-bin/wahook.fcgi"):
            self.assertFalse(os.path.exists(path), path)
        self.assertEqual(as_postgres("SELECT count(*) FROM pg_database "
                                     "WHERE datname = 'wahook'", db="postgres"), "1")
        self.assertNotEqual(as_postgres("SELECT count(*) FROM wa_messages"), "0")

    def stop_everything_but_the_cluster(self):
        stop_pids(pids_in(PIDFILES["nginx"])[:1])
        stop_pids(pids_in(PIDFILES["lighttpd"])[:1])
        stop_pids(pids_in(PIDFILES["spawn-fcgi"]))

    @staticmethod
    def size(path):
        """path's size, 0 when it does not exist (a machine where nothing ran)."""
        try:
            return os.path.getsize(path)
        except FileNotFoundError:
            return 0

    @staticmethod
    def read_from(path, offset):
        """What path gained after offset ("" when it does not exist)."""
        try:
            with open(path, errors="replace") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return ""

    @staticmethod
    def tail(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()[-3000:]
        except OSError as e:
            return str(e)


if __name__ == "__main__":
    unittest.main()
