"""servers.py - the ways wahook drops in, beyond harness.py's launchers: the
responder as `make install` puts it (one temp DESTDIR per run, so a rebuild by
someone else mid-run cannot pull the binary away), PostgreSQL roles for least
privilege, FastCGI socket providers (spawn-fcgi; systemd socket activation),
and front ends running the shipped examples (examples/nginx.conf,
examples/apache.conf in its three modes). Every process goes through
harness.spawn/kill.

The shared checks every server must pass are in class Contract, mixed into one
unittest.TestCase per server by tests/integration/test_servers_*.py.
"""
import grp
import http.client
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import uuid

import harness as h

AS_ROOT = os.geteuid() == 0
WWW = "www-data"                 # Debian's web server user: the socket's only client
RESPONDER_USER = "nobody"        # what spawn-fcgi -u / systemd's DynamicUser stand for
APACHE_MODULES = "/usr/lib/apache2/modules"
INGEST_LOGIN = "wahook_t_ingest"     # LOGIN roles the tests create, as an operator would
DRAIN_LOGIN = "wahook_t_drain"


# --- make install ------------------------------------------------------------

class Install:
    """The tree of `make install DESTDIR=<temp> PREFIX=/usr/local`."""

    def __init__(self):
        self.destdir = h.tmpdir("wahook-destdir-")
        self.prefix = "/usr/local"
        args = ["make", "-s", "-C", h.ROOT, "install", "DESTDIR=" + self.destdir,
                "PREFIX=" + self.prefix]
        if h.BUILD.rstrip("/").endswith("/san"):
            args.append("SAN=1")
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("make install failed:\n" + r.stdout + r.stderr)
        self.root = self.destdir + self.prefix
        self.fcgi = self.root + "/lib/cgi-bin/wahook.fcgi"
        self.drain = self.root + "/bin/wahook-drain"
        self.share = self.root + "/share/wahook"
        self.examples = self.root + "/share/doc/wahook/examples"
        self.man8 = self.root + "/share/man/man8"

    def example(self, name):
        with open(os.path.join(self.examples, name)) as f:
            return f.read()


_install = None


def installed():
    """One `make install` per test run (cached)."""
    global _install
    if _install is None:
        _install = Install()
    return _install


def unshare_mount():
    """argv prefix for a private mount namespace: plain as root, inside a user
    namespace (root mapped to us) otherwise."""
    return ["unshare", "-m"] if AS_ROOT else ["unshare", "-r", "-m"]


# --- PostgreSQL with roles ---------------------------------------------------

class Database:
    """A migrated throwaway cluster and two LOGIN roles that are members of the
    NOLOGIN roles of sql/003_roles.sql: what the operator is told to create."""

    def __init__(self):
        self.pg = h.Postgres()
        self.pg.migrate()
        self.pg.psql("CREATE ROLE %s LOGIN IN ROLE wahook_ingest; "
                     "CREATE ROLE %s LOGIN IN ROLE wahook_drain" % (INGEST_LOGIN, DRAIN_LOGIN))
        self.ingest_dsn = "host=%s dbname=postgres user=%s" % (self.pg.sock, INGEST_LOGIN)
        self.drain_dsn = "host=%s dbname=postgres user=%s" % (self.pg.sock, DRAIN_LOGIN)

    def count(self, sql):
        return int(self.pg.scalar(sql))


_db = None


def database():
    global _db
    if _db is None:
        _db = Database()
    return _db


def uid_gid(user):
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def secret_files(dirpath, owner):
    """The app secret and verify token as files of mode 0400 owned by the user the
    responder runs as (as root; else ours); returns their *_FILE variables."""
    env = {}
    for name, value in (("WAHOOK_APP_SECRET", h.SECRET), ("WAHOOK_VERIFY_TOKEN", h.TOKEN)):
        path = os.path.join(dirpath, name.lower().replace("_", "-"))
        with open(path, "w") as f:
            f.write(value + "\n")
        if AS_ROOT and owner:
            os.chown(path, *uid_gid(owner))
        os.chmod(path, 0o400)
        env[name + "_FILE"] = path
    return env


def responder_env(dirpath, owner, db=None):
    """The configuration a site would give the responder: secrets from files, the
    database as the wahook_ingest member role."""
    db = db or database()
    env = secret_files(dirpath, owner)
    env["WAHOOK_DB"] = db.ingest_dsn
    return env


def _stat(pid):
    """(state, ppid) of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    fields = st[st.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _descends(pid, root):
    for _ in range(64):
        if pid == root:
            return True
        st = _stat(pid)
        if st is None or st[1] <= 1:
            return False
        pid = st[1]
    return False


def pids_of(binary, under=None):
    """Live processes whose executable is binary (each test run installs its own
    copy, so this never matches another engineer's responders), and with under,
    only that process or its descendants (a server still shutting down in another
    test keeps its own)."""
    want = os.path.realpath(binary)
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/exe" % d) != want:
                continue
        except OSError:
            continue
        st = _stat(int(d))
        if st is None or st[0] == "Z":
            continue
        if under is None or _descends(int(d), under):
            out.append(int(d))
    return sorted(out)


def _count(path, needle):
    try:
        with open(path, errors="replace") as f:
            return f.read().count(needle)
    except FileNotFoundError:
        return 0


# --- FastCGI socket providers (for nginx and Apache mod_proxy_fcgi) ----------

class SpawnFcgi:
    """spawn-fcgi -n on a unix socket of mode 0600 owned by the web server's user,
    the responder dropped to an unprivileged user, as examples/nginx.conf says."""

    def __init__(self, binary, env, dirpath):
        self.binary, self.env, self.dir = binary, env, dirpath
        self.sock = os.path.join(dirpath, "wahook.sock")
        self.log = os.path.join(dirpath, "wahook.log")
        self.start()

    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        users = (["-U", WWW, "-u", RESPONDER_USER, "-g", "nogroup"] if AS_ROOT else [])
        self.proc = h.spawn(["spawn-fcgi", "-n", "-s", self.sock, "-M", "0600"] + users +
                            ["--", self.binary],
                            env=dict(self.env, PATH=os.environ.get("PATH", "/usr/bin:/bin")),
                            stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        h.wait_for(lambda: os.path.exists(self.sock), 10, "spawn-fcgi socket")

    def restart(self):
        """What `systemctl restart` of a spawn-fcgi service does: stop (SIGTERM lets
        the request in hand finish), start again on a new socket."""
        h.kill(self.proc)
        self.start()

    def pids(self):
        return pids_of(self.binary, self.proc.pid)

    def stop(self):
        h.kill(self.proc)


class SocketActivation:
    """systemd's half of examples/wahook.socket + wahook.service: this object holds
    the listening socket (root:www-data 0660, like SocketGroup=/SocketMode=) for
    its whole life, across responder restarts. Each start runs systemd's own
    systemd-socket-activate, handed the socket the way systemd hands it over
    (fd 3, LISTEN_FDS=1, LISTEN_PID); it waits for the first connection and then
    execs the responder in the same process, with fd 3 and fresh LISTEN_*
    variables, and wahook.fcgi moves the socket to fd 0. As root the chain runs
    as an unprivileged user (what DynamicUser= gives)."""

    def __init__(self, binary, env, dirpath):
        self.binary, self.env, self.dir = binary, env, dirpath
        self.sock = os.path.join(dirpath, "wahook.sock")
        self.log = os.path.join(dirpath, "wahook.log")
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.sock)
        if AS_ROOT:
            os.chown(self.sock, 0, grp.getgrnam(WWW).gr_gid)
        os.chmod(self.sock, 0o660)
        self.lsock.listen(256)
        self.start()

    def start(self):
        fd = self.lsock.fileno()

        def to_fd3():
            if fd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(fd, 3)      # inheritable by default

        priv = (["setpriv", "--reuid", RESPONDER_USER, "--regid", "nogroup",
                 "--clear-groups"] if AS_ROOT else [])
        setenv = []
        for k in sorted(self.env):
            setenv += ["-E", k]
        argv = (["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh"] + priv +
                ["systemd-socket-activate"] + setenv + ["--", self.binary])
        self.proc = h.spawn(argv, env=dict(self.env, PATH=os.environ.get("PATH", "/usr/bin:/bin")),
                            preexec_fn=to_fd3, close_fds=False,
                            stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))

    def restart(self):
        """`systemctl restart wahook.service`: the responder gets SIGTERM, finishes
        what it holds and exits; the socket stays; the next start serves what
        queued meanwhile."""
        h.kill(self.proc)
        self.start()

    def exec_done(self):
        """True once the chain has exec'd into the responder."""
        try:
            return os.path.realpath(os.readlink("/proc/%d/exe" % self.proc.pid)) == \
                os.path.realpath(self.binary)
        except OSError:
            return False

    def pids(self):
        return pids_of(self.binary, self.proc.pid)

    def stop(self):
        h.kill(self.proc)
        self.lsock.close()


# --- front ends running the shipped examples ---------------------------------

nginx_site_from_example = h.nginx_site_from_example


def nginx_main_conf(dirpath, site, error_level="info"):
    """The part of /etc/nginx/nginx.conf a site file lives in, for a private nginx,
    with an access log; its error log at info (reload() waits for nginx's notice
    that it reconfigured), or at error_level (None: nginx's default, Debian's)."""
    return h.nginx_conf(dirpath, "    include %s;" % site, connections=256,
                        access_log=dirpath + "/access.log", error_level=error_level)


class NginxExample(h.Server):
    """nginx running examples/nginx.conf, in front of a socket provider."""

    def __init__(self, backend, dirpath, example_text):
        self.backend, self.dir = backend, dirpath
        self.port = h.free_port()
        self.errlog = os.path.join(dirpath, "error.log")
        site = os.path.join(dirpath, "wahook-site.conf")
        with open(site, "w") as f:
            f.write(nginx_site_from_example(example_text, self.port, backend.sock))
        conf = os.path.join(dirpath, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_main_conf(dirpath, site))
        self.proc = h.spawn(["nginx", "-c", conf, "-p", dirpath, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=open(self.errlog + ".stderr", "w"))
        h.wait_for(self._up, 10, "nginx on port %d" % self.port)

    def reload(self):
        """`nginx -s reload` (SIGHUP to the master): new workers with the config
        read again, the old ones finish what they hold."""
        n = _count(self.errlog, "reconfiguring")
        os.kill(self.proc.pid, signal.SIGHUP)
        h.wait_for(lambda: _count(self.errlog, "reconfiguring") > n, 10, "nginx reload")

    def logfiles(self):
        return [self.errlog, self.errlog + ".stderr", self.backend.log]

    def stop(self):
        h.kill(self.proc)


def apache_conf_from_example(text, mode, binary, sock, env):
    """examples/apache.conf with the mode chosen (its Define line), its paths and
    the values of its environment block swapped; every directive is the file's own."""
    subs = [(r"(?m)^Define WAHOOK_VIA_PROXY_FCGI$", "Define WAHOOK_VIA_" + mode.upper()),
            (r"(?m)^Define WAHOOK_BIN .*$", "Define WAHOOK_BIN " + binary),
            (r"(?m)^Define WAHOOK_SOCKET .*$", "Define WAHOOK_SOCKET " + sock)]
    for pat, rep in subs:
        text, n = re.subn(pat, lambda m: rep, text)
        if n != 1:
            raise AssertionError("examples/apache.conf: %r not found once" % pat)

    def values(m):
        def one(line):
            lm = re.match(r"(\s*)(FcgidInitialEnv|SetEnv)\s+(\S+)\s+.*$", line)
            if not lm:
                return line
            if lm.group(3) not in env:
                raise AssertionError("examples/apache.conf sets %s: no test value"
                                     % lm.group(3))
            return '%s%s %s "%s"' % (lm.group(1), lm.group(2), lm.group(3),
                                     env[lm.group(3)].replace('"', '\\"'))
        return "\n".join(one(l) for l in m.group(0).split("\n"))

    text, n = re.subn(r"(?s)# BEGIN wahook environment\n.*?# END wahook environment",
                      values, text)
    if n != 2:
        raise AssertionError("examples/apache.conf: want 2 environment blocks, found %d" % n)
    return text


APACHE_MAIN = """
ServerRoot "%(dir)s"
DefaultRuntimeDir "%(dir)s/run"
PidFile "%(dir)s/run/apache2.pid"
Mutex file:%(dir)s/run default
Listen 127.0.0.1:%(port)d
ServerName 127.0.0.1
%(user)s
ErrorLog "%(dir)s/error.log"
LogLevel info
%(modules)s
StartServers 1
ServerLimit 2
ThreadsPerChild 10
MinSpareThreads 5
MaxSpareThreads 20
MaxRequestWorkers 20
Timeout 60
# as in Debian's apache2.conf: nothing on disk is served unless allowed
<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
DocumentRoot "%(dir)s/htdocs"
%(extra)s
Include "%(dir)s/wahook.conf"
"""

APACHE_MODS = {
    "proxy_fcgi": ["proxy", "proxy_fcgi"],
    "fcgid": ["fcgid"],
    "cgi": ["cgid"],
}


def apache_main_conf(dirpath, port, mode):
    """What Debian's /etc/apache2/apache2.conf and a2enmod give, for a private
    instance: Debian's modules, our own root, pid file, port and runtime dir."""
    mods = ["mpm_event", "authz_core", "alias", "env", "setenvif"] + APACHE_MODS[mode]
    modules = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m)
                        for m in mods)
    extra = ""
    if mode == "fcgid":    # Debian puts these under /run/mod_fcgid
        extra = ('FcgidIPCDir "%s/fcgid"\nFcgidProcessTableFile "%s/fcgid/shm"\n'
                 % (dirpath, dirpath))
    elif mode == "cgi":
        extra = 'ScriptSock "%s/run/cgisock"\n' % dirpath
    return APACHE_MAIN % {"dir": dirpath, "port": port, "modules": modules, "extra": extra,
                          "user": "User %s\nGroup %s" % (WWW, WWW) if AS_ROOT else ""}


class Apache(h.Server):
    """Our own apache2 (-f, -DFOREGROUND) running examples/apache.conf in one of its
    modes: "proxy_fcgi" (a socket provider in backend), "fcgid" or "cgi" (Apache
    starts the responder itself, configured by the file's environment block)."""

    def __init__(self, mode, dirpath, example_text, binary, backend=None, env=None):
        self.mode, self.dir, self.backend, self.binary = mode, dirpath, backend, binary
        self.port = h.free_port()
        self.errlog = os.path.join(dirpath, "error.log")
        for d in ("run", "htdocs"):
            os.makedirs(os.path.join(dirpath, d), exist_ok=True)
        sock = backend.sock if backend else "/nonexistent/wahook.sock"
        with open(os.path.join(dirpath, "wahook.conf"), "w") as f:
            f.write(apache_conf_from_example(example_text, mode, binary, sock, env or {}))
        self.conf = os.path.join(dirpath, "apache2.conf")
        with open(self.conf, "w") as f:
            f.write(apache_main_conf(dirpath, self.port, mode))
        # Apache's own environment is bare: with mod_fcgid and CGI, the responder
        # gets exactly what the example's FcgidInitialEnv/SetEnv lines give it
        self.proc = h.spawn(["apache2", "-f", self.conf, "-DFOREGROUND"],
                            env={"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"},
                            stdout=subprocess.DEVNULL,
                            stderr=open(self.errlog + ".stderr", "w"))
        h.wait_for(self._up, 15, "apache2 on port %d" % self.port)

    def reload(self):
        """`apachectl graceful` (SIGUSR1 to the parent): children finish their
        requests, the configuration is read again; mod_fcgid's process manager
        and its responders are replaced."""
        n = _count(self.errlog, "resuming normal operations")
        os.kill(self.proc.pid, signal.SIGUSR1)
        h.wait_for(lambda: _count(self.errlog, "resuming normal operations") > n, 15,
                   "apache2 graceful restart")
        h.wait_for(self._up, 10, "apache2 back on port %d" % self.port)

    def logfiles(self):
        return [self.errlog, self.errlog + ".stderr"] + ([self.backend.log]
                                                         if self.backend else [])

    def stop(self):
        h.kill(self.proc)


# --- what every server must do ------------------------------------------------

def text_message(mid, sender, ts, body):
    return {"from": sender, "id": mid, "timestamp": str(ts), "type": "text",
            "text": {"body": body}}


def webhook(messages, sender="16505551234", name="Test User"):
    return {"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881",
                         "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
            "messages": messages}}]}]}


def batch_3mb(prefix):
    """1000 messages (Meta's batch maximum) padded to about 3 MB (its size limit)."""
    pad = "x" * 3000
    msgs = [text_message("%s.%04d" % (prefix, i), "1650555%04d" % (i % 50),
                         1700000000 + i // 10, "%d %s" % (i, pad)) for i in range(1000)]
    return h.meta_json(webhook(msgs)).encode()


class Contract:
    """Mixed into a TestCase whose setUpClass sets cls.server (a harness.Server with
    reload()) and cls.tag. The responder behind it logs in as a member of
    wahook_ingest, so every stored row also proves the grants of 003_roles.sql."""

    server = None
    tag = "srv"

    def mid(self, what):
        return "wamid.%s.%s.%s" % (self.tag, what, uuid.uuid4().hex[:12])

    def stored(self, like):
        return database().count("SELECT count(*) FROM wa_messages WHERE message_id LIKE '%s%%'"
                                % like.replace("'", "''"))

    def post_ok(self, mid, text="hello"):
        body = h.meta_json(webhook([text_message(mid, "16505551234", 1700000000, text)]))
        st, _, out = self.server.post(body, path="/webhook")
        self.assertEqual((st, out), (200, b"EVENT_RECEIVED"), self.server.logs()[-3000:])

    def test_signed_webhook_is_stored(self):
        mid = self.mid("one")
        self.post_ok(mid, "hello from " + self.tag)
        rows = database().pg.psql("SELECT m.text_body, m.sender, o.state FROM wa_messages m "
                                  "JOIN wa_outbox o USING (message_id) WHERE message_id = '%s'"
                                  % mid)
        self.assertEqual(rows, [["hello from " + self.tag, "16505551234", "pending"]])

    def test_3mb_batch_gets_through_whole(self):
        prefix = self.mid("batch")
        body = batch_3mb(prefix)
        self.assertGreater(len(body), 3000000)
        st, _, out = self.server.post(body, path="/webhook")
        self.assertEqual((st, out), (200, b"EVENT_RECEIVED"), self.server.logs()[-3000:])
        self.assertEqual(self.stored(prefix), 1000)
        self.assertEqual(database().count("SELECT count(*) FROM wa_outbox WHERE message_id "
                                          "LIKE '%s%%'" % prefix), 1000)

    def post_signatures(self, body, values):
        """POST body with one X-Hub-Signature-256 header line per value."""
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            c.putrequest("POST", "/webhook")
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(len(body)))
            for v in values:
                c.putheader("X-Hub-Signature-256", v)
            c.endheaders()
            c.send(body)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def test_repeated_signature_header_verifies_if_any_value_does(self):
        """lighttpd and Apache join repeated lines with ", ", nginx passes two
        params: every server gives the same answer."""
        wrong = "sha256=" + "0" * 64
        for name, values, want in (("first", ["good", wrong], 200),
                                   ("second", [wrong, "good"], 200),
                                   ("neither", [wrong, wrong], 401)):
            mid = self.mid("twice-" + name)
            body = h.meta_json(webhook([text_message(mid, "16505551234", 1700000000,
                                                     "x")])).encode()
            got = self.post_signatures(body, [h.sign(body) if v == "good" else v
                                              for v in values])
            self.assertEqual(got[0], want, (name, got, self.server.logs()[-2000:]))
            self.assertEqual(self.stored(mid), 1 if want == 200 else 0, name)

    def test_bad_signature_is_401_and_stores_nothing(self):
        mid = self.mid("badsig")
        body = h.meta_json(webhook([text_message(mid, "16505551234", 1700000000, "x")]))
        for sig in (h.sign(body, "not-the-secret"), False, "sha256=zz"):
            st, _, _ = self.server.post(body, signature=sig, path="/webhook")
            self.assertEqual(st, 401, sig)
        self.assertEqual(self.stored(mid), 0)

    def test_get_verification(self):
        q = "/webhook?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444" % h.TOKEN
        st, hdr, out = self.server.request("GET", q)
        self.assertEqual((st, out), (200, b"1158201444"), self.server.logs()[-2000:])
        self.assertTrue(hdr.get("content-type", "").startswith("text/plain"))
        st, _, _ = self.server.request(
            "GET", "/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
        self.assertEqual(st, 403)

    def test_reload_restarts_responder_cleanly(self):
        before = self.responder_pids()
        mid = self.mid("reload")
        self.post_ok(mid)
        self.reload()
        after_mid = self.mid("after")
        self.post_ok(after_mid)          # served by the new generation
        self.post_ok(mid)                # a retry after the reload: no second row
        self.assertEqual(self.stored(mid), 1)
        self.assertEqual(self.stored(after_mid), 1)
        after = self.responder_pids()
        if before is not None:
            self.assertTrue(after, "no responder after the reload")
            self.assertFalse(set(before) & set(after),
                             "responders %s survived the reload (now %s)" % (before, after))
        # the old generation stopped on SIGTERM the way it should: logged, no crash
        logs = self.server.logs()
        self.assertNotIn("level=error", logs)
        self.assertNotRegex(logs, r"(?i)segmentation fault|core dumped|signal (6|11)\b")
        if before is not None:
            self.assertRegex(logs, r"ev=stop pid=(%s) .*why=signal"
                             % "|".join(str(p) for p in before))

    # servers override these two
    def reload(self):
        self.server.reload()

    def responder_pids(self):
        """pids of this server's responders now, or None where no process lasts (CGI)."""
        backend = getattr(self, "backend", None)
        if backend is not None:
            return backend.pids()
        return pids_of(installed().fcgi, self.server.proc.pid)


class BackendContract(Contract):
    """Contract for a web server in front of a responder it does not start itself
    (spawn-fcgi, socket activation): setUpClass sets cls.backend too. A reload
    reloads the server and restarts the backend, as an operator's deploy would."""

    backend = None

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.backend.stop()

    def reload(self):
        old = self.responder_pids()
        self.server.reload()
        self.backend.restart()
        wait_until_stopped(old)


def wait_until_stopped(pids, timeout=10):
    h.wait_for(lambda: not [p for p in pids if (_stat(p) or ("Z",))[0] != "Z"], timeout,
               "old responders %s to exit" % pids)


def cgi_request(binary, env, method="GET", query="", body=b"", headers=None):
    """Runs binary once as a CGI program, the way a server would; returns
    (status, headers, body, stderr)."""
    e = dict(env, GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD=method, QUERY_STRING=query,
             SERVER_PROTOCOL="HTTP/1.1", PATH="/usr/bin:/bin")
    if body:
        e["CONTENT_LENGTH"] = str(len(body))
        e["CONTENT_TYPE"] = "application/json"
    for k, v in (headers or {}).items():
        e["HTTP_" + k.upper().replace("-", "_")] = v
    r = subprocess.run([binary], input=body, env=e, capture_output=True, timeout=30)
    head, _, out = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("Status:") else None
    return status, lines[1:], out, r.stderr.decode(errors="replace")


def json_body(obj):
    return json.dumps(obj).encode()
