"""harness.py - real components for wahook's integration tests.

A throwaway PostgreSQL cluster (initdb/pg_ctl as a non-root user, in a temp dir,
on a unix socket), process tracking that kills what a test started (by pid,
also on failure), signing, and launchers for the responder behind lighttpd and
nginx+spawn-fcgi. Standard library only.
"""
import atexit
import hashlib
import hmac
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("WAHOOK_BUILD", "build"))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
# Meta's own sample bodies (pywa's) and a request signed by Meta, when a copy sits
# beside the clone: an extra check only; the project's own fixtures are enough
EXTRA_FIXTURES = os.path.abspath(os.environ.get(
    "WAHOOK_EXTRA_FIXTURES", os.path.join(ROOT, "..", "shared", "fixtures")))
PGBIN = "/usr/lib/postgresql/15/bin"
# the binary itself: /usr/bin/psql is Debian's Perl wrapper, which costs about
# 60 ms a call on a quiet machine (seconds on a loaded one), and tests call it often
PSQL = PGBIN + "/psql"
SECRET = "test-app-secret-7f3a9c"
TOKEN = "test-verify-token-51b2"

_procs = []        # Popen objects still to reap
_tmpdirs = []
LOGS = set()       # every log file a started process writes (read by the secrets check)
AT_END = []        # unittest cases tests/run.py runs once every other test has run


def _cleanup():
    for p in list(_procs):
        kill(p)
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def tmpdir(prefix="wahook-"):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    _tmpdirs.append(d)
    return d


_staged = {}


def staged(name):
    """The path of a copy of BUILD/name that any user can execute. Servers drop
    to www-data (lighttpd, nginx, Apache) or run their children as nobody, and
    a clone may sit under a 0700 home such as /root: they could not open
    BUILD/name there. One copy per run, in a 0755 temp dir, so a rebuild during
    the run does not change what is tested either."""
    if name not in _staged:
        if "bin" not in _staged:
            _staged["bin"] = tmpdir("wahook-bin-")
        dst = os.path.join(_staged["bin"], name)
        shutil.copy2(os.path.join(BUILD, name), dst)
        os.chmod(dst, 0o755)
        _staged[name] = dst
    return _staged[name]


def spawn(argv, **kw):
    """Starts a process in its own process group and tracks it for cleanup."""
    kw.setdefault("start_new_session", True)
    for k in ("stdout", "stderr"):
        if isinstance(getattr(kw.get(k), "name", None), str):
            register_log(kw[k].name)
    p = subprocess.Popen(argv, **kw)
    _procs.append(p)
    return p


def register_log(path):
    """Adds a log file to LOGS (a process's stdout/stderr files are added by spawn)."""
    LOGS.add(os.path.abspath(path))


def log_files():
    """Every log file the run's processes wrote that still exists: LOGS, and each
    log-like file in the temp dirs (server error logs named in their configs; a
    cluster's data dir only for its log/; never files holding secrets)."""
    files = set(LOGS)
    for d in _tmpdirs:
        for root, dirs, names in os.walk(d):
            if os.path.basename(root) == "data":
                dirs[:] = [x for x in dirs if x == "log"]
                continue
            for n in names:
                low = n.lower()
                if any(k in low for k in ("log", "stderr", "stdout", "error", "out", "err")) \
                        and "secret" not in low and "token" not in low:
                    files.add(os.path.join(root, n))
    return sorted(f for f in files if os.path.isfile(f))


def kill(p, sig=signal.SIGTERM, timeout=10):
    """Stops p and its process group (by pid), escalating to SIGKILL."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    else:
        # the leader is gone; children in its group may not be
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if p in _procs:
        _procs.remove(p)


def vm_hwm_kb(pid):
    """The process's peak resident size (VmHWM) in KiB, or 0 once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def sign(body, secret=SECRET):
    if isinstance(body, str):
        body = body.encode()
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def meta_json(obj):
    """JSON as Meta writes it: compact, ASCII only, non-ASCII as \\uXXXX, '/' as '\\/'."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def run_as_pg_user():
    """argv prefix that runs a PostgreSQL server binary as a non-root user."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


class Postgres:
    """A throwaway cluster on a unix socket in a temp dir. Use .dsn for libpq."""

    def __init__(self):
        self.dir = tmpdir("wahook-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.dsn = "host=%s dbname=postgres user=%s" % (self.sock, self.user)
        self.log = os.path.join(self.dir, "postgres.log")
        subprocess.run(run_as_pg_user() + [PGBIN + "/initdb", "-D", self.data, "-A", "trust",
                        "-U", self.user, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = ''\nunix_socket_directories = '%s'\n"
                    "fsync = on\nsynchronous_commit = on\nmax_connections = 200\n"
                    "shared_buffers = 128MB\n" % self.sock)
        self.start()
        atexit.register(self.stop, "immediate")

    def pg_ctl(self, *args, check=True):
        return subprocess.run(run_as_pg_user() + [PGBIN + "/pg_ctl", "-D", self.data, "-l",
                              self.log, "-w"] + list(args), check=check,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self):
        self.pg_ctl("start")

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.pg_ctl("stop", "-m", mode, check=False)

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def psql(self, sql, dsn=None, check=True):
        """Runs sql; returns rows as lists of strings (NULL as None). Records end
        with \\x02 and NULL is \\x01: values may hold newlines, and str.splitlines()
        would also split on \\x1c-\\x1e."""
        r = subprocess.run([PSQL, "-X", "-q", "-At", "-F", "\x1f", "-R", "\x02",
                            "-v", "ON_ERROR_STOP=1", "-P", "null=\x01", dsn or self.dsn,
                            "-c", sql], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError("psql failed: %s\n%s" % (sql, r.stderr))
        out = r.stdout
        if out == "":
            return []           # no rows at all; one empty value would be "\n"
        if out.endswith("\n"):
            out = out[:-1]
        return [[None if v == "\x01" else v for v in rec.split("\x1f")]
                for rec in out.split("\x02")]

    def scalar(self, sql):
        rows = self.psql(sql)
        return rows[0][0] if rows else None

    def migrate(self):
        env = dict(os.environ, WAHOOK_DB=self.dsn)
        subprocess.run([os.path.join(ROOT, "scripts", "migrate")], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    def truncate(self):
        """Empties every table between tests. A session of the previous test
        (a stopped drainer's backend finishing its statement) may still hold a
        row lock that TRUNCATE's lock must wait for, and lose a deadlock with
        it: then TRUNCATE is the one rolled back, and is tried again."""
        sql = ("TRUNCATE wa_outbox, wa_messages, wa_conversations, wa_reactions, "
               "wa_statuses, wa_events, wa_quarantine, wa_media, wa_ops_number, wa_ops_drainer")
        for attempt in range(10):
            try:
                self.psql(sql)
                return
            except AssertionError as e:     # psql() puts psql's stderr in it
                if "deadlock detected" not in str(e) or attempt == 9:
                    raise
            time.sleep(0.2)


def module_services(g, pg="PG", web=None, **web_kw):
    """setUpModule and tearDownModule for a test module whose tests share a
    migrated throwaway PostgreSQL, bound to the module global named pg, and
    with web=(name, cls) a web server in front of it, cls(pg, **web_kw), bound
    to name. tearDownModule stops them newest first; a setUpModule that fails
    half-way stops what it started (unittest then skips tearDownModule).

        PG = SRV = None
        setUpModule, tearDownModule = harness.module_services(
            globals(), web=("SRV", harness.Lighttpd), procs=2)
    """
    started = []

    def tearDownModule():
        while started:
            started.pop().stop()

    def setUpModule():
        try:
            started.append(Postgres())
            started[-1].migrate()
            g[pg] = started[-1]
            if web is not None:
                started.append(web[1](started[0], **web_kw))
                g[web[0]] = started[-1]
        except BaseException:
            tearDownModule()
            raise

    return setUpModule, tearDownModule


def responder_env(pg, **extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "WAHOOK_APP_SECRET": SECRET, "WAHOOK_VERIFY_TOKEN": TOKEN,
           "WAHOOK_DB": pg.dsn if pg else ""}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update({k: v for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


def responder_pids(binary, match):
    """Sorted pids of live processes running binary for which match(pid, ppid) holds
    (other tests may run the same binary: never match on the name alone)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            exe = os.readlink("/proc/%s/exe" % d)
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and exe == os.path.realpath(binary) and match(int(d), int(fields[1])):
            pids.append(int(d))
    return sorted(pids)


class Server:
    """Base: an HTTP front end on 127.0.0.1:port with the responder behind it.
    Subclasses set proc (the server's Popen), port and errlog."""
    port = None
    errlog = None
    proc = None

    def _up(self):
        """True once the port accepts; raises if the server process died."""
        if self.proc.poll() is not None:
            raise AssertionError("%s exited: %s" % (type(self).__name__, self.logs()))
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def request(self, method, path="/", body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def post(self, body, secret=SECRET, signature=None, path="/webhook", headers=None):
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"}
        sig = signature if signature is not None else sign(body, secret)
        if sig is not False:
            h["X-Hub-Signature-256"] = sig
        h.update(headers or {})
        return self.request("POST", path, body, h)

    def logs(self):
        out = ""
        for f in self.logfiles():
            try:
                with open(f, errors="replace") as fh:
                    out += fh.read()
            except FileNotFoundError:
                pass
        return out

    def logfiles(self):
        return [self.errlog]


LIGHTTPD_USER = "www-data"      # the example's server.username


def lighttpd_conf_from_example(dirpath, port, bin_path, env, procs=2):
    """The shipped lighttpd.conf.example with its site-specific values pointed at
    this test; every other setting (fastcgi.server, max-request-size, check-local,
    server.username, ...) is the file's own. As root, lighttpd then runs itself and
    the responders as LIGHTTPD_USER, so the socket goes in a directory of theirs
    (files a test hands the responder must be readable by that user); as anyone
    else lighttpd ignores server.username."""
    import re
    rundir = os.path.join(dirpath, "run")
    os.makedirs(rundir, exist_ok=True)
    if os.geteuid() == 0:
        # lighttpd opens its logs and sockets after dropping to the user
        pw = pwd.getpwnam(LIGHTTPD_USER)
        for d in (dirpath, rundir):
            os.chown(d, pw.pw_uid, pw.pw_gid)
    with open(os.path.join(ROOT, "lighttpd.conf.example")) as f:
        conf = f.read()
    envlines = "".join('            "%s" => "%s",\n' % (k, v.replace('"', '\\"'))
                       for k, v in sorted(env.items()))
    subs = [
        (r"(?m)^server\.port\s*=.*$", "server.port = %d" % port),
        (r"(?m)^server\.document-root\s*=.*$", 'server.document-root = "%s"' % dirpath),
        (r"(?m)^server\.pid-file\s*=.*$", 'server.pid-file = "%s/lighttpd.pid"' % dirpath),
        (r"(?m)^var\.wahook_bin\s*=.*$", 'var.wahook_bin = "%s"' % bin_path),
        (r"(?m)^var\.wahook_socket\s*=.*$", 'var.wahook_socket = "%s/wahook.sock"' % rundir),
        (r'"max-procs"\s*=>\s*\d+', '"max-procs" => %d' % procs),
        (r"(?s)# BEGIN wahook environment\n.*?# END wahook environment",
         "# BEGIN wahook environment\n" + envlines + "            # END wahook environment"),
    ]
    for pat, rep in subs:
        conf, n = re.subn(pat, lambda m: rep, conf)
        if n != 1:
            raise AssertionError("lighttpd.conf.example: %r not found once" % pat)
    return conf


class Lighttpd(Server):
    """lighttpd running lighttpd.conf.example's settings, spawning wahook.fcgi itself."""

    def __init__(self, pg, procs=2, env=None, binary=None):
        self.dir = tmpdir("wahook-lighttpd-")
        self.port = free_port()
        self.errlog = os.path.join(self.dir, "error.log")
        self.conf = os.path.join(self.dir, "lighttpd.conf")
        self.binary = binary or staged("wahook.fcgi")
        e = responder_env(pg, **(env or {}))
        e.pop("PATH", None)
        with open(self.conf, "w") as f:
            f.write(lighttpd_conf_from_example(self.dir, self.port, self.binary, e, procs))
            f.write('\nserver.errorlog = "%s"\nserver.breakagelog = "%s"\n'
                    % (self.errlog, self.errlog))
        self.proc = spawn(["lighttpd", "-D", "-f", self.conf],
                          stdout=subprocess.DEVNULL, stderr=open(self.errlog + ".stderr", "w"))
        wait_for(self._up, 10, "lighttpd on port %d" % self.port)

    def logfiles(self):
        return [self.errlog, self.errlog + ".stderr"]

    def fcgi_pids(self):
        """pids of the responders lighttpd spawned (its children)."""
        return responder_pids(self.binary, lambda pid, ppid: ppid == self.proc.pid)

    def stop(self):
        kill(self.proc)


class Nginx(Server):
    """nginx with fastcgi_pass to a unix socket served by spawn-fcgi (N processes)."""

    def __init__(self, pg, procs=2, env=None, binary=None, max_body="8m", read_timeout="60s",
                 keep_conn=False):
        """keep_conn: nginx keeps its FastCGI connections open between requests
        (fastcgi_keep_conn on, upstream keepalive), as sites do to save connects."""
        self.dir = tmpdir("wahook-nginx-")
        self.port = free_port()
        self.sock = os.path.join(self.dir, "wahook.sock")
        self.errlog = os.path.join(self.dir, "error.log")
        self.applog = os.path.join(self.dir, "wahook.log")
        self.binary = binary or staged("wahook.fcgi")
        self.env = responder_env(pg, **(env or {}))
        self.procs = procs
        self.start_fcgi()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(self.dir, NGINX_SITE % {
                "port": self.port, "max_body": max_body, "read_timeout": read_timeout,
                "servers": "".join("        server unix:%s;\n" % x for x in self.socks),
                "keepalive": "        keepalive 16;\n" if keep_conn else "",
                "keep_conn": "fastcgi_keep_conn on;" if keep_conn else ""}))
        self.proc = spawn(["nginx", "-c", conf, "-p", self.dir, "-g", "daemon off;"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 10, "nginx on port %d" % self.port)

    def start_fcgi(self):
        """One `spawn-fcgi -n` per process, each on its own socket, all in one nginx
        upstream: -n execs the responder in the foreground (so self.fcgis are the
        responders themselves, exit status included), and -n ignores -F, while
        without -n the children setsid() away and nobody reaps them here."""
        self.log_fh = open(self.applog, "a")
        # as root, nginx's workers run as NGINX_USER: the sockets are theirs alone
        owner = ["-U", NGINX_USER] if os.geteuid() == 0 else []
        self.socks = [os.path.join(self.dir, "wahook-%d.sock" % i) for i in range(self.procs)]
        self.sock = self.socks[0]
        self.fcgis = []
        for sock in self.socks:
            if os.path.exists(sock):
                os.unlink(sock)
            self.fcgis.append(spawn(["spawn-fcgi", "-n", "-s", sock, "-M", "0600"] + owner +
                                    ["--", self.binary],
                                    env=self.env, stdout=self.log_fh, stderr=self.log_fh))
        self.fcgi = self.fcgis[0]
        for sock in self.socks:
            wait_for(lambda: os.path.exists(sock), 10, "spawn-fcgi socket")

    def fcgi_pids(self):
        """pids of this server's responders (each spawn-fcgi -n became one)."""
        mine = set(p.pid for p in self.fcgis)
        return responder_pids(self.binary, lambda pid, ppid: pid in mine)

    def logfiles(self):
        return [self.errlog, self.applog]

    def stop(self):
        kill(self.proc)
        for p in self.fcgis:
            kill(p)


NGINX_USER = "www-data"
# the site of the Nginx above: one upstream of the responders' sockets
NGINX_SITE = """
    upstream wahook {
%(servers)s%(keepalive)s    }
    server {
        listen 127.0.0.1:%(port)d;
        client_max_body_size %(max_body)s;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass wahook;
            fastcgi_read_timeout %(read_timeout)s;
            %(keep_conn)s
        }
    }
"""


def nginx_conf(dirpath, http, workers=1, connections=1024, access_log="off",
               error_level="info"):
    """The whole configuration of a private nginx, for `nginx -c ... -p dirpath`:
    its pid file, error log (dirpath/error.log) and temp paths under dirpath,
    the user its workers run as when started as root (NGINX_USER), and http,
    what goes inside http {} (upstream and server blocks, or an include)."""
    return ("%(user)s\nworker_processes %(workers)d;\npid %(dir)s/nginx.pid;\n"
            "error_log %(dir)s/error.log%(level)s;\n"
            "events { worker_connections %(connections)d; }\n"
            "http {\n    access_log %(access_log)s;\n"
            "    client_body_temp_path %(dir)s/body;\n    fastcgi_temp_path %(dir)s/fastcgi;\n"
            "    proxy_temp_path %(dir)s/proxy;\n    uwsgi_temp_path %(dir)s/uwsgi;\n"
            "    scgi_temp_path %(dir)s/scgi;\n%(http)s\n}\n"
            % {"user": "user %s;" % NGINX_USER if os.geteuid() == 0 else "",
               "workers": workers, "dir": dirpath, "connections": connections,
               "level": " " + error_level if error_level else "", "access_log": access_log,
               "http": http})


def nginx_site_from_example(text, port, sock):
    """examples/nginx.conf with its listen address and socket path swapped."""
    subs = [(r"(?m)^(\s*)listen\s+127\.0\.0\.1:8080;", r"\g<1>listen 127.0.0.1:%d;" % port),
            (r"unix:/run/wahook/wahook\.sock;", "unix:%s;" % sock)]
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text)
        if n != 1:
            raise AssertionError("examples/nginx.conf: %r not found once" % pat)
    return text


def _variant_files(d, prefix=""):
    out = []
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".json"):
            with open(os.path.join(d, fn)) as f:
                for k, v in json.load(f).items():
                    out.append((prefix + fn[:-5] + "/" + k, v))
    return out


def fixture_bodies():
    """The project's own webhook fixtures as (name, obj), e.g. ("messages/text",
    {...}): every message type, status, echo, event, error shape and batch."""
    return _variant_files(os.path.join(FIXTURES, "webhooks"))


def extra_fixture_bodies():
    """pywa's collection of Meta's sample bodies (74), or None when no copy is
    beside the clone: an extra check only."""
    d = os.path.join(EXTRA_FIXTURES, "pywa")
    if not os.path.isdir(d):
        return None
    return _variant_files(d, "pywa/")


def build_variant(defines, target="wahook.fcgi"):
    """target built with -D for each of defines (e.g. "PARK_MAX=8": a small
    table a test can fill) into a temp dir of its own, never build/; with the
    sanitizers when the suite runs a SAN=1 build. Returns the binary's path."""
    out = os.path.join(tmpdir("wahook-variant-"), "build")
    args = ["make", "-s", "-C", ROOT, "B=" + out,
            "CPPFLAGS=" + " ".join("-D" + d for d in defines), os.path.join(out, target)]
    if BUILD.rstrip("/").endswith("/san"):
        args.insert(1, "SAN=1")
    r = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return os.path.join(out, target)


def extra_skip(what):
    """Ends an optional extra check whose copy (what, under ../shared/fixtures)
    is not beside the clone: tests/run.py reports it as skipped, not passed."""
    raise unittest.SkipTest("optional extra: %s not present" % what)


def extra_note(what, done):
    """The line every optional extra check prints, so the output says whether it
    ran: done says what was done with what (None: it was not there)."""
    if done is None:
        print("note extra: %s not present: skipped the extra check" % what, flush=True)
    else:
        print("note extra: %s present: %s" % (what, done), flush=True)
