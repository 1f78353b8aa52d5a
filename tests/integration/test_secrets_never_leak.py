"""test_secrets_never_leak.py - the app secret, the verify token and the access token
never appear in a log, an error message or `ps` output.

Two parts. Here: the responder (behind nginx and lighttpd, secrets from the
environment and from files) and the drainer run, are driven through their
error paths (bad signatures, wrong tokens, configuration errors naming the
secret variables, a Graph API refusing the token), and the argv of every one
of those processes is read from /proc while they run. At the end of the whole
run (harness.AT_END, run by tests/run.py after every other test): every log
file any test's process wrote (harness.LOGS, filled by harness.spawn) and
every log-like file in the harness's temp dirs is searched for each secret.
"""
import os
import subprocess
import time
import unittest

import fire
import harness

try:
    import drainkit
    from graph_standin import GraphStandin
except ImportError:   # the drainer's kit is not there yet: its part is skipped (a failure)
    drainkit = None

SECRET_FILES = {
    "signed fixture's app secret": os.path.join(harness.FIXTURES, "signed", "app-secret"),
    "Meta-signed extra fixture's app secret": os.path.join(harness.EXTRA_FIXTURES,
                                                           "meta-signed", "app-secret"),
}


def secrets():
    """name -> value of every secret the suite uses."""
    s = {"app secret": harness.SECRET, "verify token": harness.TOKEN}
    if drainkit is not None:
        s["access token"] = drainkit.ACCESS_TOKEN
        for n, t in drainkit.NUMBER_TOKENS.items():
            s["access token of number %s" % n] = t
    for name, path in SECRET_FILES.items():
        if os.path.exists(path):        # the extra one is there only beside a clone
            with open(path) as f:
                s[name] = f.read().strip()
    return s


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ")
    except OSError:
        return b""


def descendants(pid):
    """pid and every live process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def grep(files, values):
    """[(file, secret name)] for each secret found in a file."""
    hits = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for name, v in values.items():
            if v.encode() in data:
                hits.append((f, name))
    return hits


class SecretsStayHidden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.Postgres()
        cls.pg.migrate()
        cls.dir = harness.tmpdir("wahook-secrets-")

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop("immediate")

    def assert_no_secret(self, data, where):
        if isinstance(data, str):
            data = data.encode()
        for name, v in secrets().items():
            self.assertNotIn(v.encode(), data, "%s found in %s" % (name, where))

    def provoke_responder(self, srv):
        """Every answer of the responder that could echo something back."""
        body = harness.meta_json({"object": "whatsapp_business_account", "entry": []})
        outs = []
        for sig in (False, "", "sha256=" + "0" * 64, "sha256=zz", harness.sign(body, "x"),
                    harness.sign(body)):
            outs.append(srv.post(body, signature=sig))
        outs.append(srv.post(b"not json at all"))
        for q in ("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
                  "hub.mode=subscribe&hub.verify_token=%s&hub.challenge=4242" % harness.TOKEN,
                  "hub.mode=subscribe&hub.verify_token=%s" % harness.TOKEN):
            outs.append(srv.request("GET", "/webhook?" + q))
        outs.append(srv.request("DELETE", "/webhook"))
        for st, headers, answer in outs:
            self.assert_no_secret(answer, "an HTTP answer (%d)" % st)
            self.assert_no_secret(repr(headers), "HTTP headers")

    def test_responder_argv_and_answers(self):
        # secrets in the environment (nginx + our pool) and in files (lighttpd)
        srv = fire.NginxPool(self.pg, procs=2)
        sfile = os.path.join(self.dir, "app-secret")
        tfile = os.path.join(self.dir, "verify-token")
        for path, v in ((sfile, harness.SECRET), (tfile, harness.TOKEN)):
            with open(path, "w") as f:
                f.write(v + "\n")
            os.chmod(path, 0o644)   # lighttpd may run its children as another user
        lt = harness.Lighttpd(self.pg, procs=2, env={
            "WAHOOK_APP_SECRET": None, "WAHOOK_VERIFY_TOKEN": None,
            "WAHOOK_APP_SECRET_FILE": sfile, "WAHOOK_VERIFY_TOKEN_FILE": tfile})
        try:
            for s in (srv, lt):
                self.provoke_responder(s)
            pids = srv.fcgi_pids() + descendants(srv.proc.pid) + descendants(lt.proc.pid)
            self.assertGreaterEqual(len(pids), 5)
            for pid in pids:
                self.assert_no_secret(cmdline(pid), "argv of pid %d (%s)"
                                      % (pid, cmdline(pid)[:80]))
        finally:
            srv.stop()
            lt.stop()

    def test_configuration_errors_name_the_variable_not_the_value(self):
        fcgi = harness.staged("wahook.fcgi")
        cases = [
            {"WAHOOK_APP_SECRET": harness.SECRET, "WAHOOK_APP_SECRET_FILE": "/nonexistent"},
            {"WAHOOK_APP_SECRET": harness.SECRET + ",," + harness.SECRET},
            {"WAHOOK_VERIFY_TOKEN": harness.TOKEN, "WAHOOK_VERIFY_TOKEN_FILE": "/etc/hostname"},
            {"WAHOOK_APP_SECRET_FILE": os.path.join(self.dir, "missing-" + harness.SECRET)},
        ]
        for extra in cases:
            env = harness.responder_env(self.pg, **extra)
            if "WAHOOK_APP_SECRET_FILE" in extra and "WAHOOK_APP_SECRET" not in extra:
                env.pop("WAHOOK_APP_SECRET", None)
            env.update(REQUEST_METHOD="GET", QUERY_STRING="", GATEWAY_INTERFACE="CGI/1.1")
            r = subprocess.run([fcgi], env=env, capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 2, "exit 2 for %r: %r" % (list(extra), r.stderr))
            self.assertIn(b"WAHOOK_", r.stderr)
            # the file name in the last case holds the secret on purpose: the message
            # may name the path, so that one is checked for the token only
            if "missing-" in extra.get("WAHOOK_APP_SECRET_FILE", ""):
                self.assertNotIn(harness.TOKEN.encode(), r.stderr + r.stdout)
            else:
                self.assert_no_secret(r.stderr + r.stdout, "a configuration error")

    @unittest.skipIf(drainkit is None, "tests/lib/drainkit.py is missing")
    def test_drainer_argv_and_refused_token(self):
        self.pg.truncate()
        g = GraphStandin(drainkit.ACCESS_TOKEN)
        srv = fire.NginxPool(self.pg, procs=1)
        try:
            drainkit.post(srv, [("491700000001", "wamid.secrets.1", 1700000000)])
            g.delay = 0.3
            p = drainkit.start(self.pg, g, ["--for", "3"])
            time.sleep(0.5)
            for pid in descendants(p.pid):
                self.assert_no_secret(cmdline(pid), "argv of the drainer (%d)" % pid)
            drainkit.finish(p)
            # a token from a file, refused by the Graph API: exit 3, said loudly
            tfile = os.path.join(self.dir, "access-token")
            with open(tfile, "w") as f:
                f.write(drainkit.ACCESS_TOKEN + "\n")
            drainkit.post(srv, [("491700000002", "wamid.secrets.2", 1700000001)])
            g.delay = 0
            g.answer("401")
            r = drainkit.run(self.pg, g, WAHOOK_ACCESS_TOKEN=None,
                             WAHOOK_ACCESS_TOKEN_FILE=tfile)
            self.assertEqual(r.rc, 3, r)
            self.assert_no_secret(r.err + r.out, "the drainer's output")
            # both set: a configuration error naming the variables
            r = drainkit.run(self.pg, g, WAHOOK_ACCESS_TOKEN_FILE=tfile)
            self.assertEqual(r.rc, 2, r)
            self.assertIn("WAHOOK_ACCESS_TOKEN", r.err + r.out)
            self.assert_no_secret(r.err + r.out, "the drainer's configuration error")
            # per-number tokens from WAHOOK_ACCESS_TOKENS_FILE, one refused
            pairs = sorted(drainkit.NUMBER_TOKENS.items())[:2]
            g.clear_rules()
            g.tokens = dict(pairs)
            g.refused.add(pairs[1][1])
            for i, (n, _) in enumerate(pairs):
                drainkit.post(srv, [("4917000001%d" % i, "wamid.secrets.t%d" % i,
                                     1700000010 + i)], pnid=n)
            tf = drainkit.tokens_file(self.dir, pairs)
            r = drainkit.run(self.pg, g, WAHOOK_ACCESS_TOKENS_FILE=tf)
            self.assertEqual(r.rc, 3, r)
            self.assertIn("ev=credentials", r.err)
            self.assert_no_secret(r.err + r.out, "the drainer's output (tokens file)")
            for p2, mode in ((tf, 0o644), (drainkit.tokens_file(
                    self.dir, [(t, n) for n, t in pairs] + [("x", "y z")],
                    name="swapped"), 0o600)):
                os.chmod(p2, mode)
                r = drainkit.run(self.pg, g, WAHOOK_ACCESS_TOKENS_FILE=p2)
                self.assertEqual(r.rc, 2, r)
                self.assertIn("WAHOOK_ACCESS_TOKENS_FILE", r.err)
                self.assert_no_secret(r.err + r.out, "a tokens file's configuration error")
        finally:
            srv.stop()
            g.stop()


class SecretsInEveryLog(unittest.TestCase):
    """Run by tests/run.py after every other test (harness.AT_END)."""

    def final_no_secret_in_any_log(self):
        files = harness.log_files()
        self.assertGreater(len(files), 0, "no log files seen")
        hits = grep(files, secrets())
        print("\n  secrets: searched %d log files, %d MB"
              % (len(files), sum(os.path.getsize(f) for f in files) >> 20))
        self.assertEqual(hits, [], "secrets found in logs")


harness.AT_END.append(SecretsInEveryLog("final_no_secret_in_any_log"))


if __name__ == "__main__":
    unittest.main()
