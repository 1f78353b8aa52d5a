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
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("WAHOOK_BUILD", "build"))
SHARED = os.path.abspath(os.environ.get("WAHOOK_SHARED", os.path.join(ROOT, "..", "shared")))
FIXTURES = os.path.join(SHARED, "fixtures")
PGBIN = "/usr/lib/postgresql/15/bin"
SECRET = "test-app-secret-7f3a9c"
TOKEN = "test-verify-token-51b2"

_procs = []        # Popen objects still to reap
_tmpdirs = []


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


def spawn(argv, **kw):
    """Starts a process in its own process group and tracks it for cleanup."""
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(argv, **kw)
    _procs.append(p)
    return p


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

    def psql(self, sql, dsn=None, check=True):
        """Runs sql; returns rows as lists of strings (NULL as None)."""
        r = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                            "-P", "null=\x1e", dsn or self.dsn, "-c", sql],
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError("psql failed: %s\n%s" % (sql, r.stderr))
        rows = []
        for line in r.stdout.splitlines():
            rows.append([None if v == "\x1e" else v for v in line.split("\x1f")])
        return rows

    def scalar(self, sql):
        rows = self.psql(sql)
        return rows[0][0] if rows else None

    def migrate(self):
        env = dict(os.environ, WAHOOK_DB=self.dsn)
        subprocess.run([os.path.join(ROOT, "scripts", "migrate")], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    def truncate(self):
        self.psql("TRUNCATE wa_outbox, wa_messages, wa_conversations, wa_reactions, "
                  "wa_statuses, wa_events, wa_quarantine")


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


class Server:
    """Base: an HTTP front end on 127.0.0.1:port with the responder behind it."""
    port = None
    errlog = None

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


def lighttpd_conf_from_example(dirpath, port, bin_path, env, procs=2):
    """The shipped lighttpd.conf.example with its site-specific values pointed at
    this test; every other setting (fastcgi.server, max-request-size, check-local,
    ...) is the file's own."""
    import re
    with open(os.path.join(ROOT, "lighttpd.conf.example")) as f:
        conf = f.read()
    envlines = "".join('            "%s" => "%s",\n' % (k, v.replace('"', '\\"'))
                       for k, v in sorted(env.items()))
    subs = [
        (r"(?m)^server\.port\s*=.*$", "server.port = %d" % port),
        (r"(?m)^server\.document-root\s*=.*$", 'server.document-root = "%s"' % dirpath),
        (r"(?m)^server\.pid-file\s*=.*$", 'server.pid-file = "%s/lighttpd.pid"' % dirpath),
        (r"(?m)^var\.wahook_bin\s*=.*$", 'var.wahook_bin = "%s"' % bin_path),
        (r"(?m)^var\.wahook_socket\s*=.*$", 'var.wahook_socket = "%s/wahook.sock"' % dirpath),
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
        e = responder_env(pg, **(env or {}))
        e.pop("PATH", None)
        with open(self.conf, "w") as f:
            f.write(lighttpd_conf_from_example(self.dir, self.port,
                    binary or os.path.join(BUILD, "wahook.fcgi"), e, procs))
            f.write('\nserver.errorlog = "%s"\nserver.breakagelog = "%s"\n'
                    % (self.errlog, self.errlog))
        self.proc = spawn(["lighttpd", "-D", "-f", self.conf],
                          stdout=subprocess.DEVNULL, stderr=open(self.errlog + ".stderr", "w"))
        wait_for(self._up, 10, "lighttpd on port %d" % self.port)

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("lighttpd exited: " + self.logs())
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def logfiles(self):
        return [self.errlog, self.errlog + ".stderr"]

    def stop(self):
        kill(self.proc)


class Nginx(Server):
    """nginx with fastcgi_pass to a unix socket served by spawn-fcgi (N processes)."""

    def __init__(self, pg, procs=2, env=None, binary=None, max_body="8m"):
        self.dir = tmpdir("wahook-nginx-")
        self.port = free_port()
        self.sock = os.path.join(self.dir, "wahook.sock")
        self.errlog = os.path.join(self.dir, "error.log")
        self.applog = os.path.join(self.dir, "wahook.log")
        self.binary = binary or os.path.join(BUILD, "wahook.fcgi")
        self.env = responder_env(pg, **(env or {}))
        self.procs = procs
        self.start_fcgi()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"dir": self.dir, "port": self.port, "sock": self.sock,
                                  "errlog": self.errlog, "max_body": max_body})
        self.proc = spawn(["nginx", "-c", conf, "-p", self.dir, "-g", "daemon off;"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 10, "nginx on port %d" % self.port)

    def start_fcgi(self):
        """spawn-fcgi -n keeps the parent in the foreground; it forks procs children."""
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.log_fh = open(self.applog, "a")
        self.fcgi = spawn(["spawn-fcgi", "-n", "-s", self.sock, "-M", "0600", "-F",
                           str(self.procs), "--", self.binary],
                          env=self.env, stdout=self.log_fh, stderr=self.log_fh)
        wait_for(lambda: os.path.exists(self.sock), 10, "spawn-fcgi socket")

    def fcgi_pids(self):
        """pids of the responder processes (children of spawn-fcgi or itself)."""
        out = subprocess.run(["pgrep", "-f", "-x", self.binary], capture_output=True,
                             text=True).stdout.split()
        return [int(p) for p in out]

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("nginx exited: " + self.logs())
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def logfiles(self):
        return [self.errlog, self.applog]

    def stop(self):
        kill(self.proc)
        kill(self.fcgi)


NGINX_CONF = """
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(errlog)s info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    fastcgi_temp_path %(dir)s/fastcgi;
    proxy_temp_path %(dir)s/proxy;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        client_max_body_size %(max_body)s;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:%(sock)s;
        }
    }
}
"""


def fixture_bodies():
    """Every pywa variant as (name, obj): 74 webhook bodies."""
    d = os.path.join(FIXTURES, "pywa")
    out = []
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".json"):
            with open(os.path.join(d, fn)) as f:
                for k, v in json.load(f).items():
                    out.append((fn[:-5] + "/" + k, v))
    return out
