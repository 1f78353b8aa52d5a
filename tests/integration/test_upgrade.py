"""test_upgrade.py - today's package installed over the previous release, as an
operator does it, keeps everything and loses no webhook.

The previous release's package is built from git (PREVIOUS, exported with git
archive into a temporary directory, `make deb` there), installed with apt-get
and set up as README.md's production section does: Debian's cluster 15/main,
wahook-setup, the secret files, spawn-fcgi with /etc/wahook/wahook.env, nginx
in front with the package's example site. The operator's edit: both
/etc/wahook/*.env name a database of their own (WAHOOK_DB). Webhooks go in.
Then, while a loop keeps posting signed webhooks through nginx, today's package
(`make deb` in this tree) is installed over it with
`apt-get install -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold`
and wahook-setup applies the migrations it brings. Checked: every webhook of the
loop answered 200 and stored (none lost, none refused), the rows from before
kept, the edited conffiles kept byte for byte (the package's new version beside
them as .dpkg-dist when it changed), the migrations now those of today's
package, the restarted responder (the new binary) answering, and the new
drainer marking read and answering every stored message through the stand-in
Graph API.

As root only; the machine's own package, users, /run/wahook and cluster are
used, so it takes the lock test_readme_production takes, and whatever it made
goes at the end, also on failure: the processes it started (by pid), the
package (purged), the database, the roles it created, the cluster if it started
it. Run it under `flock /tmp/wahook-system.lock` beside other engineers.
"""
import os
import pwd
import subprocess
import threading
import time
import unittest
import uuid

import harness as h
import graph_standin
import servers
import machine
from machine import CLUSTER, cluster_online, pids_in, stop_pids

# the last landed main before 0.2.0: its package is the release an operator has
PREVIOUS = "e1ffe1a"
DB = "wahook_upgrade_test"
ENV_FILES = ("/etc/wahook/wahook.env", "/etc/wahook/wahook-drain.env")
SOCK_PID = "/run/wahook/spawn-fcgi.pid"
APP_SECRET = "upgrade-app-secret-" + uuid.uuid4().hex[:10]
VERIFY_TOKEN = "upgrade-verify-" + uuid.uuid4().hex[:10]
ACCESS_TOKEN = "upgrade-access-" + uuid.uuid4().hex[:10]
ROLES = ("wahook", "wahook-drain", "wahook_ingest", "wahook_drain")
# README.md's responder line, as written there
SPAWN = ("set -a; . /etc/wahook/wahook.env; exec spawn-fcgi -s /run/wahook/wahook.sock "
         "-M 0600 -U www-data -u wahook -g wahook -F 2 -P /run/wahook/spawn-fcgi.pid "
         "-- /usr/lib/cgi-bin/wahook.fcgi")


def run(argv, timeout=900, **kw):
    """Runs argv (a list, or a string for bash -e); returns the CompletedProcess,
    asserting exit 0 with its output in the message."""
    if isinstance(argv, str):
        argv = ["bash", "-e", "-c", argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, "%s exited %d:\n%s%s" % (argv, r.returncode, r.stdout[-4000:],
                                                       r.stderr[-4000:])
    return r


def psql(sql, db=DB):
    return run(["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-v",
                "ON_ERROR_STOP=1", "-d", db, "-c", sql], cwd="/").stdout.strip()


def package_version():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "wahook"],
                       capture_output=True, text=True)
    return r.stdout.split()[-1] if "ok installed" in r.stdout else None


def migrations(sql_dir):
    """The versions (file name prefixes) of the migrations in sql_dir."""
    return sorted(f[:3] for f in os.listdir(sql_dir) if f[:3].isdigit() and f.endswith(".sql"))


class Poster(threading.Thread):
    """Posts one signed text webhook after another through nginx until stopped;
    .sent is [(message id, status or the exception's text)]."""

    def __init__(self, port, tag):
        super().__init__(daemon=True)
        self.port, self.tag = port, tag
        self.sent, self.halt = [], threading.Event()

    def run(self):
        srv = h.Server()
        srv.port = self.port
        n = 0
        while not self.halt.is_set():
            n += 1
            mid = "wamid.upgrade.%s.%05d" % (self.tag, n)
            body = h.meta_json(servers.webhook([servers.text_message(
                mid, "4915400%06d" % (n % 7), int(time.time()), "during the upgrade")],
                sender="4915400%06d" % (n % 7)))
            try:
                status = srv.post(body, secret=APP_SECRET, path="/webhook")[0]
            except OSError as e:
                status = "%s: %s" % (type(e).__name__, e)
            self.sent.append((mid, status))
            time.sleep(0.05)


@unittest.skipUnless(os.geteuid() == 0, "installs the package: root only")
@unittest.skipIf(h.BUILD.rstrip("/").endswith("/san"),
                 "the packages are built without sanitizers: the ordinary run covers it")
class Upgrade(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lock = machine.take_lock(wait=1800)
        cls.addClassCleanup(cls.lock.close)
        cls.tmp = h.tmpdir("wahook-upgrade-")
        cls.apt_conf = os.path.join(cls.tmp, "apt.conf")
        with open(cls.apt_conf, "w") as f:      # another apt-get on the machine: wait
            f.write('DPkg::Lock::Timeout "600";\n')
        cls.apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive",
                           APT_CONFIG=cls.apt_conf)
        cls.nginx = None
        cls.roles_before = set(psql_roles()) if cluster_online() else None
        cls.cluster_was_online = cls.roles_before is not None
        cls.addClassCleanup(cls.clean_up)

        # the two packages: the previous release from git, today's from this tree
        old = os.path.join(cls.tmp, "previous")
        os.mkdir(old)
        run("git -C %s archive %s | tar -x -C %s" % (h.ROOT, PREVIOUS, old))
        cls.old_version = run(["dpkg-parsechangelog", "-S", "Version"], cwd=old).stdout.strip()
        cls.new_version = run(["dpkg-parsechangelog", "-S", "Version"],
                              cwd=h.ROOT).stdout.strip()
        run(["make", "-s", "deb"], cwd=old, timeout=1800)
        run(["make", "-s", "deb"], cwd=h.ROOT, timeout=1800)
        arch = run(["dpkg-architecture", "-qDEB_HOST_ARCH"]).stdout.strip()
        cls.old_deb = os.path.join(old, "build", "wahook_%s_%s.deb" % (cls.old_version, arch))
        cls.new_deb = os.path.join(h.ROOT, "build", "wahook_%s_%s.deb"
                                   % (cls.new_version, arch))
        cls.old_sql = os.path.join(old, "sql")
        cls.old_examples = os.path.join(old, "examples")

        # a machine with the previous release, set up as README.md says
        if package_version() is not None:
            stop_pids(pids_in(SOCK_PID))
            run(["dpkg", "--purge", "wahook"])
        run(["apt-get", "install", "-y", cls.old_deb], env=cls.apt_env)
        if not cluster_online():
            run(["pg_ctlcluster"] + list(CLUSTER) + ["start"])
        if cls.roles_before is None:
            cls.roles_before = set(psql_roles())
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, db="postgres")
        cls.setup_old = run(["wahook-setup", "--db", DB]).stdout
        for path, value in (("app-secret", APP_SECRET), ("verify-token", VERIFY_TOKEN),
                            ("access-token", ACCESS_TOKEN)):
            with open("/etc/wahook/" + path, "w") as f:   # keeps the package's owner, mode
                f.write(value + "\n")
        # the operator's edit of both conffiles: their own database
        cls.edited = {}
        for path in ENV_FILES:
            with open(path) as f:
                text = f.read()
            assert "dbname=wahook " in text, path
            text = text.replace("dbname=wahook ", "dbname=%s " % DB)
            text += "# edited by the operator: database %s\n" % DB
            with open(path, "w") as f:
                f.write(text)
            cls.edited[path] = text
        run(SPAWN, cwd="/")
        cls.port = h.free_port()
        cls.nginx = cls.start_nginx(cls.port)

    @classmethod
    def start_nginx(cls, port):
        """nginx with the package's example site (its port changed), from a
        configuration of its own: the machine's /etc/nginx stays untouched."""
        d = os.path.join(cls.tmp, "nginx")
        os.makedirs(d, exist_ok=True)
        with open("/usr/share/doc/wahook/examples/nginx.conf") as f:
            site = f.read().replace("listen 127.0.0.1:8080;", "listen 127.0.0.1:%d;" % port)
        with open(os.path.join(d, "site.conf"), "w") as f:
            f.write(site)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("user www-data; daemon off; pid %(d)s/nginx.pid; error_log %(d)s/error.log;\n"
                    "events { worker_connections 256; }\n"
                    "http { access_log %(d)s/access.log; client_body_temp_path %(d)s/body;\n"
                    "  fastcgi_temp_path %(d)s/fastcgi; proxy_temp_path %(d)s/proxy;\n"
                    "  uwsgi_temp_path %(d)s/uwsgi; scgi_temp_path %(d)s/scgi;\n"
                    "  include %(d)s/site.conf; }\n" % {"d": d})
        run(["nginx", "-t", "-q", "-c", conf])
        p = subprocess.Popen(["nginx", "-c", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        srv = h.Server()
        srv.proc, srv.port = p, port
        h.wait_for(srv._up, 10, "nginx on port %d" % port)
        return p

    @classmethod
    def clean_up(cls):
        if cls.nginx is not None:
            stop_pids([cls.nginx.pid])
            cls.nginx.wait(timeout=10)
        stop_pids(pids_in(SOCK_PID))
        subprocess.run(["dpkg", "--purge", "wahook"], capture_output=True)
        if cluster_online():
            subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-c",
                            "DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB], cwd="/",
                           capture_output=True)
            made = [r for r in ROLES if r not in (cls.roles_before or set(ROLES))]
            for role in made:
                subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-c",
                                'DROP ROLE IF EXISTS "%s"' % role], cwd="/",
                               capture_output=True)
            if not cls.cluster_was_online:
                subprocess.run(["pg_ctlcluster"] + list(CLUSTER) + ["stop", "-m", "fast"],
                               capture_output=True)

    def post(self, mid, text="hello"):
        srv = h.Server()
        srv.port = self.port
        body = h.meta_json(servers.webhook([servers.text_message(mid, "16505550177",
                                                                 int(time.time()), text)],
                                           sender="16505550177"))
        return srv.post(body, secret=APP_SECRET, path="/webhook")

    def stored(self, ids):
        if not ids:
            return set()
        got = psql("SELECT message_id FROM wa_messages WHERE message_id IN (%s)"
                   % ",".join("'%s'" % i for i in ids))
        return set(got.split())

    def test_upgrade_keeps_data_and_conffiles_and_loses_no_webhook(self):
        self.assertNotEqual(self.old_version, self.new_version,
                            "debian/changelog: today's version is the previous release's")
        self.assertEqual(package_version(), self.old_version)
        self.assertIn("checked: OS user wahook logs in to %s as wahook" % DB, self.setup_old)
        self.assertEqual(psql("SELECT string_agg(version, ' ' ORDER BY version) "
                              "FROM schema_migrations").split(), migrations(self.old_sql))

        # webhooks to the previous release
        before = ["wamid.upgrade.before.%02d" % i for i in range(20)]
        for mid in before:
            self.assertEqual(self.post(mid)[::2], (200, b"EVENT_RECEIVED"), mid)
        self.assertEqual(self.stored(before), set(before))
        outbox_before = psql("SELECT count(*) FROM wa_outbox")

        # the upgrade, while webhooks keep coming
        loop = Poster(self.port, "during")
        loop.start()
        try:
            h.wait_for(lambda: len(loop.sent) >= 20, 30, "the loop's first webhooks")
            apt = run(["apt-get", "install", "-y", "-o", "Dpkg::Options::=--force-confdef",
                       "-o", "Dpkg::Options::=--force-confold", self.new_deb],
                      env=self.apt_env)
            setup = run(["wahook-setup", "--db", DB]).stdout
            n = len(loop.sent)
            h.wait_for(lambda: len(loop.sent) >= n + 20, 30, "webhooks after the migration")
        finally:
            loop.halt.set()
            loop.join(30)
        self.assertEqual(package_version(), self.new_version, apt.stdout[-3000:])
        refused = [(m, s) for m, s in loop.sent if s != 200]
        self.assertEqual(refused, [], "webhooks not answered 200 during the upgrade")
        ids = [m for m, _ in loop.sent]
        self.assertEqual(self.stored(ids), set(ids), "webhooks lost during the upgrade")
        print("note test_upgrade: %s -> %s, %d webhooks posted during the upgrade, all stored"
              % (self.old_version, self.new_version, len(ids)), flush=True)

        # the migrations: today's package's, the new ones applied by this run
        new_sql = "/usr/share/wahook/sql"
        now = psql("SELECT string_agg(version, ' ' ORDER BY version) FROM schema_migrations")
        self.assertEqual(now.split(), migrations(new_sql))
        added = sorted(set(migrations(new_sql)) - set(migrations(self.old_sql)))
        if added:
            self.assertIn("migrations: applied " + " ".join(added), setup)
        else:
            self.assertIn("migrations: all applied already", setup)
        print("note test_upgrade: migrations the upgrade applied: %s"
              % (" ".join(added) or "none (today's package brings none)"), flush=True)

        # data and the operator's edits kept
        self.assertEqual(self.stored(before), set(before))
        self.assertGreaterEqual(int(psql("SELECT count(*) FROM wa_outbox")),
                                int(outbox_before) + len(ids))
        for path, text in self.edited.items():
            with open(path) as f:
                self.assertEqual(f.read(), text, path + ": the operator's edit is gone")
            name = os.path.basename(path)
            with open(os.path.join(self.old_examples, name)) as f:
                old_shipped = f.read()
            with open(os.path.join(h.ROOT, "examples", name)) as f:
                new_shipped = f.read()
            # dpkg keeps the edited file and puts the package's changed one beside it
            self.assertEqual(os.path.exists(path + ".dpkg-dist"), old_shipped != new_shipped,
                             path)
        with open("/etc/wahook/app-secret") as f:
            self.assertEqual(f.read(), APP_SECRET + "\n")

        # the new responder, restarted as README.md's restart does, answers
        old_pids = pids_in(SOCK_PID)
        stop_pids(old_pids)
        run(SPAWN, cwd="/")
        new_pids = pids_in(SOCK_PID)
        self.assertEqual(len(new_pids), 2)
        for pid in new_pids:
            self.assertEqual(os.readlink("/proc/%d/exe" % pid), "/usr/lib/cgi-bin/wahook.fcgi")
            self.assertEqual(pwd.getpwuid(os.stat("/proc/%d" % pid).st_uid).pw_name, "wahook")
        after = ["wamid.upgrade.after.%02d" % i for i in range(5)]
        for mid in after:
            self.assertEqual(self.post(mid)[::2], (200, b"EVENT_RECEIVED"), mid)
        self.assertEqual(self.stored(after), set(after))

        # the new drainer answers everything, old rows and new, as its user
        g = graph_standin.GraphStandin(ACCESS_TOKEN)
        try:
            pw = pwd.getpwnam("wahook-drain")
            r = run("set -a; . /etc/wahook/wahook-drain.env; WAHOOK_GRAPH_URL=%s; "
                    "WAHOOK_LOG=stderr; exec wahook-drain" % g.url, cwd="/", user=pw.pw_uid,
                    group=pw.pw_gid, extra_groups=[],
                    env={"PATH": "/usr/bin:/bin", "HOME": "/"}, timeout=600)
            self.assertEqual(g.violations, [])
            want = before + ids + after
            for mid in want:
                self.assertEqual((g.count("read", mid, ok_only=True),
                                  g.count("reply", mid, ok_only=True)), (1, 1), mid)
            self.assertNotIn(ACCESS_TOKEN, r.stdout + r.stderr)
        finally:
            g.stop()
        self.assertEqual(psql("SELECT count(*) FROM wa_outbox WHERE state <> 'done'"), "0")


def psql_roles():
    return psql("SELECT rolname FROM pg_roles", db="postgres").split()


if __name__ == "__main__":
    unittest.main()
