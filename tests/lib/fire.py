"""fire.py - what the tests of behaviour under faults and hostile input share: a pool of
responder processes on one listening socket that the test supervises itself,
nginx in front of it, a raw FastCGI client, raw HTTP, and table counts.

Why a pool of our own: `spawn-fcgi -n` execs the program in place, so -F N
gives one process, not N (harness.Nginx runs one spawn-fcgi per process, each
on its own socket), and nothing respawns a process that dies. The pool
does what spawn-fcgi without -n does (bind the socket once, hand it to N
processes as fd 0, FCGI_LISTENSOCK_FILENO) and, like a supervisor
(daemontools, systemd), starts a replacement only when the test asks for it.
Pids are the pool's own, never looked up by name: other engineers' responders
run on the same machine. Standard library only.
"""
import os
import pwd
import socket
import struct
import time

import harness

COUNT_SQL = ("SELECT (SELECT count(*) FROM wa_messages), (SELECT count(*) FROM wa_outbox), "
             "(SELECT count(*) FROM wa_conversations), (SELECT count(*) FROM wa_reactions), "
             "(SELECT count(*) FROM wa_statuses), (SELECT count(*) FROM wa_events), "
             "(SELECT count(*) FROM wa_quarantine)")
COUNT_KEYS = ("m", "o", "c", "r", "s", "e", "q")


def counts(pg):
    """Row counts of every table the responder writes, as a dict m/o/c/r/s/e/q."""
    row = pg.psql(COUNT_SQL)[0]
    return dict(zip(COUNT_KEYS, (int(v) for v in row)))


def consistency(pg):
    """Problems with the stored rows as a list of strings (empty: consistent).
    An answerable message without its outbox row, an outbox row that says
    otherwise, a column that disagrees with the message object stored beside it."""
    bad = []
    for sql, what in (
        ("SELECT count(*) FROM wa_messages m WHERE answered AND NOT EXISTS "
         "(SELECT 1 FROM wa_outbox o WHERE o.message_id = m.message_id)",
         "answerable messages without an outbox row"),
        ("SELECT count(*) FROM wa_outbox o JOIN wa_messages m USING (message_id) "
         "WHERE NOT m.answered", "outbox rows for messages not to be answered"),
        ("SELECT count(*) FROM wa_messages WHERE message_id IS DISTINCT FROM payload->>'id' "
         "OR sender IS DISTINCT FROM payload->>'from' OR type IS DISTINCT FROM "
         "payload->>'type'", "messages whose columns disagree with their payload"),
    ):
        n = int(pg.scalar(sql))
        if n:
            bad.append("%d %s" % (n, what))
    return bad


class Pool:
    """N wahook.fcgi processes sharing one unix listening socket (fd 0)."""

    def __init__(self, sock_path, n, env, binary, logfile, owner=None):
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(sock_path)
        os.chmod(sock_path, 0o600)
        if owner is not None:
            pw = pwd.getpwnam(owner)
            os.chown(sock_path, pw.pw_uid, pw.pw_gid)
        self.sock.listen(128)
        self.sock.set_inheritable(True)
        self.path = sock_path
        self.env = env
        self.binary = binary
        self.log = open(logfile, "a")
        self.procs = []
        for _ in range(n):
            self.start_one()

    def start_one(self):
        p = harness.spawn([self.binary], stdin=self.sock.fileno(), stdout=self.log,
                          stderr=self.log, env=self.env, close_fds=True)
        self.procs.append(p)
        return p

    def pids(self):
        return sorted(p.pid for p in self.procs)

    def alive(self):
        return [p for p in self.procs if p.poll() is None]

    def sigkill(self, p, respawn=True):
        """SIGKILLs p (as a crash would); with respawn, starts its replacement."""
        try:
            os.kill(p.pid, 9)
        except ProcessLookupError:
            pass
        p.wait()
        self.procs.remove(p)
        if p in harness._procs:
            harness._procs.remove(p)
        return self.start_one() if respawn else None

    def stop(self):
        for p in list(self.procs):
            harness.kill(p)
        self.procs = []
        self.sock.close()
        self.log.close()


class NginxPool(harness.Nginx):
    """harness.Nginx (the same nginx.conf) with a supervised Pool behind it."""

    def __init__(self, pg, procs=4, env=None, binary=None, max_body="8m"):
        self._pool_procs = procs
        super().__init__(pg, procs=procs, env=env, binary=binary, max_body=max_body)

    def start_fcgi(self):
        owner = harness.NGINX_USER if os.geteuid() == 0 else None
        self.sock = os.path.join(self.dir, "wahook.sock")
        self.socks = [self.sock]        # the nginx upstream: one socket, N processes
        self.pool = Pool(self.sock, self._pool_procs, self.env, self.binary, self.applog,
                         owner)
        self.fcgi = None
        self.fcgis = []

    def fcgi_pids(self):
        return self.pool.pids()

    def stop(self):
        harness.kill(self.proc)
        self.pool.stop()


# --- a raw FastCGI client (the web server's side of the socket) ---

FCGI_BEGIN, FCGI_END, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 1, 3, 4, 5, 6, 7


def _record(rtype, content, req_id=1):
    out = b""
    for i in range(0, max(len(content), 1), 65535):
        chunk = content[i:i + 65535]
        pad = (-len(chunk)) % 8
        out += struct.pack(">BBHHBB", 1, rtype, req_id, len(chunk), pad, 0) + chunk + b"\0" * pad
        if not content:
            break
    return out


def _nv(name, value):
    def ln(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return ln(len(name)) + ln(len(value)) + name + value


def fcgi_begin(params, keep=False):
    """Bytes of BEGIN_REQUEST (responder; keep: FCGI_KEEP_CONN, the connection
    stays open after the answer) and every PARAMS record."""
    body = b"".join(_nv(k.encode(), v if isinstance(v, bytes) else v.encode())
                    for k, v in params.items())
    return (_record(FCGI_BEGIN, struct.pack(">HB5x", 1, 1 if keep else 0)) +
            _record(FCGI_PARAMS, body) +
            _record(FCGI_PARAMS, b""))


def fcgi_stdin(data, end=True):
    return (_record(FCGI_STDIN, data) if data else b"") + (_record(FCGI_STDIN, b"")
                                                           if end else b"")


def fcgi_read_response(s, timeout=20):
    """Reads records until END_REQUEST; returns (status or None, stdout bytes)."""
    s.settimeout(timeout)
    buf, out = b"", b""
    while True:
        while len(buf) < 8:
            d = s.recv(65536)
            if not d:
                return None, out
            buf += d
        _, rtype, _, clen, pad, _ = struct.unpack(">BBHHBB", buf[:8])
        while len(buf) < 8 + clen + pad:
            d = s.recv(65536)
            if not d:
                return None, out
            buf += d
        content, buf = buf[8:8 + clen], buf[8 + clen + pad:]
        if rtype == FCGI_STDOUT:
            out += content
        elif rtype == FCGI_END:
            break
    status = None
    for line in out.split(b"\r\n"):
        if line.lower().startswith(b"status:"):
            status = int(line.split()[1])
            break
        if not line:
            break
    return status, out


def fcgi_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def post_params(body_len, signature=None, extra=None):
    p = {"REQUEST_METHOD": "POST", "SCRIPT_NAME": "/webhook", "REQUEST_URI": "/webhook",
         "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/json"}
    if body_len is not None:
        p["CONTENT_LENGTH"] = str(body_len)
    if signature is not None:
        p["HTTP_X_HUB_SIGNATURE_256"] = signature
    p.update(extra or {})
    return p


# --- raw HTTP ---

def raw_http(port, data, read=True, timeout=10, close_write=False):
    """Sends data as is; returns (status or None, raw answer bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        if not read:
            return None, b""
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except (socket.timeout, ConnectionResetError):
            pass
        status = None
        if out.startswith(b"HTTP/"):
            status = int(out.split(b" ", 2)[1])
        return status, out
    finally:
        s.close()


def wait_quiet(seconds=0.2):
    time.sleep(seconds)
