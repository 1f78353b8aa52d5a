"""test_config_errors_at_start.py - configuration errors surface when a program
starts, each in its class:
- WAHOOK_DB is parsed at start: a typo ("dbnam=") or a malformed value exits 2
  with a message naming WAHOOK_DB and never a piece of the password, in the
  responder (CGI and FastCGI under lighttpd) and in the drainer;
- a database that cannot be reached at start is a warning line naming WAHOOK_DB
  from the FastCGI responder, which then serves (GET verification 200, POST 503
  until the database works); the drainer exits 4 naming WAHOOK_DB;
- WAHOOK_DB_OUTAGE_MAX longer than a lease can cover after a call exits 2
  naming it and the variables of the rule;
- WAHOOK_MAX_BODY and WAHOOK_BATCH_BYTES past what one statement holds
  (128 MiB) exit 2 naming them;
- WAHOOK_GRAPH_URL may be http:// only to a loopback address (the token would
  travel in clear), WAHOOK_REPLY_URL to another host only with
  WAHOOK_REPLY_URL_INSECURE=1, and then with a warning at start;
- an unknown WAHOOK_* variable (WAHOOK_APP_SECRETFILE) is a warning naming it,
  in both programs; a variable of the other program is not (one environment
  file may serve both).
"""
import os
import re
import subprocess
import time
import unittest

import harness
import drainkit as dk

PG = None
PASSWORD = "pw-never-in-a-log-5b1c"


setUpModule, tearDownModule = harness.module_services(globals())


def cgi(env):
    """One GET verification through the responder as a CGI program."""
    e = harness.responder_env(PG, **env)
    e.update(GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET", SERVER_PROTOCOL="HTTP/1.1",
             QUERY_STRING="hub.mode=subscribe&hub.verify_token=%s&hub.challenge=42"
             % harness.TOKEN)
    return subprocess.run([harness.staged("wahook.fcgi")], env=e, capture_output=True,
                          timeout=30)


BAD_DB = [
    # (value, what the message must name)
    ("host=/run/postgresql dbnam=wahook password=" + PASSWORD, 'keyword \\"dbnam'),
    ("host=/run/postgresql password=" + PASSWORD + " dbname", "WAHOOK_DB"),
    ("host=/run/postgresql " + PASSWORD, "WAHOOK_DB"),
    ("postgresql://wahook:" + PASSWORD + "@localhost/wahook?sslmod=require", "WAHOOK_DB"),
]


class Responder(unittest.TestCase):
    def test_bad_wahook_db_exits_2_naming_it(self):
        for value, named in BAD_DB:
            r = cgi({"WAHOOK_DB": value})
            self.assertEqual(r.returncode, 2, (value, r.stderr))
            err = r.stderr.decode()
            self.assertIn("level=error ev=config", err)
            self.assertIn("WAHOOK_DB", err)
            self.assertIn(named, err)
            self.assertNotIn(PASSWORD, err + r.stdout.decode())
            self.assertNotIn("Status: 200", r.stdout.decode())

    def test_sizes_past_what_one_statement_holds_exit_2_naming_them(self):
        """A body the statement cannot hold would get 503 on every one of Meta's
        retries, for a week: refused at start instead."""
        for name, value in (("WAHOOK_MAX_BODY", "268435456"),
                            ("WAHOOK_BATCH_BYTES", "1073741824"),
                            ("WAHOOK_BATCH_BYTES", "134217729")):
            r = cgi({name: value})
            self.assertEqual(r.returncode, 2, (name, value, r.stderr))
            self.assertIn('level=error ev=config msg="%s=%s: want a whole number from 1024 '
                          'to 134217728 (128 MiB of bodies is the most one statement holds)"'
                          % (name, value), r.stderr.decode())
        for name in ("WAHOOK_MAX_BODY", "WAHOOK_BATCH_BYTES"):
            r = cgi({name: "134217728"})
            self.assertEqual(r.returncode, 0, (name, r.stderr))
            self.assertIn(b"Status: 200", r.stdout)

    def test_bad_wahook_db_under_lighttpd_is_in_its_log(self):
        srv = harness.Lighttpd(PG, procs=1, env={"WAHOOK_DB": BAD_DB[0][0]})
        try:
            harness.wait_for(lambda: "WAHOOK_DB" in srv.logs(), 10, "the config error")
            logs = srv.logs()
            self.assertIn('keyword \\"dbnam', logs)
            self.assertNotIn(PASSWORD, logs)
        finally:
            srv.stop()

    def test_unreachable_database_at_start_is_a_warning_then_503(self):
        down = "host=%s/nonexistent dbname=postgres connect_timeout=2" % PG.dir
        srv = harness.Lighttpd(PG, procs=1, env={"WAHOOK_DB": down})
        try:
            harness.wait_for(lambda: "ev=db" in srv.logs(), 15, "the start-up warning")
            logs = srv.logs()
            self.assertRegex(logs, r"level=warn ev=db msg=\"cannot use the database of "
                                   r"WAHOOK_DB at start")
            self.assertNotRegex(logs, r"level=error ev=config")
            q = ("/webhook?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=77"
                 % harness.TOKEN)
            self.assertEqual(srv.request("GET", q)[::2], (200, b"77"))
            body = harness.meta_json(dk.webhook([("15550100123", dk.mid("down"), None)]))
            self.assertEqual(srv.post(body)[0], 503)
            # still the same responder: it warned, it did not exit
            self.assertEqual(len(srv.fcgi_pids()), 1)
        finally:
            srv.stop()

    def test_unknown_variable_is_a_warning_naming_it(self):
        r = cgi({"WAHOOK_APP_SECRETFILE": "/etc/wahook/app-secret",
                 "WAHOOK_ACCESS_TOKEN_FILE": "/etc/wahook/access-token",
                 "WAHOOK_RETENTION_DAYS": "30"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Status: 200", r.stdout)
        err = r.stderr.decode()
        self.assertRegex(err, r"level=warn ev=config msg=\"unknown variable ignored "
                              r"\(a typo\?\)\" var=WAHOOK_APP_SECRETFILE")
        self.assertEqual(err.count("unknown variable"), 1, err)   # not the drainer's


class KnownNames(unittest.TestCase):
    """The known names cannot drift from what the code reads: they are generated
    from each program's configuration table (config_vars in cgi/responder/config.c,
    drain_vars in cgi/drainer/drain_config.c; NAME_FILE too for a secret), and every
    WAHOOK_* name read by name in cgi/ is in the table of the program that
    reads it, so it never draws a typo warning."""

    def table(self, fn, name):
        with open(os.path.join(harness.ROOT, "cgi", fn)) as f:
            src = f.read()
        m = re.search(r"%s\[\] = \{(.*?)\n\t\{ NULL \}" % name, src, re.S)
        self.assertIsNotNone(m, name)
        names = set()
        for n, kind in re.findall(r'\{ "(WAHOOK_\w+)", CONF_([A-Z]+)', m.group(1)):
            names.add(n)
            if kind == "SECRET":
                names.add(n + "_FILE")
        return names

    def read_in(self, files):
        names = set()
        for fn in files:
            with open(os.path.join(harness.ROOT, "cgi", fn)) as f:
                src = f.read()
            for kind, name in re.findall(r'(env_string|env_long|env_double|env_secret|'
                                         r'env_conninfo|env_choice|getenv|conf_get)'
                                         r'\(\s*(?:\w+,\s*)?"(WAHOOK_\w+)"', src):
                names.add(name)
                if kind == "env_secret":
                    names.add(name + "_FILE")
        return names

    def test_every_name_read_is_known(self):
        fcgi = self.table("responder/config.c", "config_vars")
        drain = self.table("drainer/drain_config.c", "drain_vars")

        def sources(d):
            return [os.path.join(d, f) for f in os.listdir(os.path.join(harness.ROOT, "cgi", d))
                    if f.endswith(".c")]
        common, responder, drainer = sources("shared"), sources("responder"), sources("drainer")
        self.assertIn("drainer/drain_config.c", drainer)
        self.assertLessEqual(self.read_in(common + responder), fcgi)
        self.assertLessEqual(self.read_in(common + drainer), drain)
        self.assertIn("WAHOOK_APP_SECRET_FILE", fcgi)
        self.assertIn("WAHOOK_ACCESS_TOKEN_FILE", drain)
        self.assertIn("WAHOOK_LOG", fcgi & drain)


class Drainer(unittest.TestCase):
    def status(self, **env):
        return dk.run(PG, None, ["--status"], WAHOOK_ACCESS_TOKEN=None, **env)

    def test_bad_wahook_db_exits_2_naming_it(self):
        for value, named in BAD_DB:
            r = self.status(WAHOOK_DB=value)
            self.assertEqual(r.rc, 2, r)
            self.assertIn("level=error ev=config", r.err)
            self.assertIn(named, r.err)
            self.assertIn("WAHOOK_DB", r.err)
            self.assertNotIn(PASSWORD, r.err + r.out)

    def test_unreachable_database_exits_4_naming_it(self):
        t0 = time.monotonic()
        r = self.status(WAHOOK_DB="host=%s/nonexistent dbname=postgres" % PG.dir)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("cannot use the database of WAHOOK_DB", r.err)
        self.assertLess(time.monotonic() - t0, 30)

    def test_graph_url_in_clear_only_to_loopback(self):
        """The access token travels in every call's Authorization header: http://
        is for a stand-in on this host, never for a host across a network."""
        for url in ("http://graph.facebook.com/v23.0", "http://192.0.2.7:8080/v23.0",
                    "http://[2001:db8::1]/v23.0", "http://127.0.0.1.example.org/v23.0",
                    "http://user:pw@10.0.0.1/v23.0"):
            r = self.status(WAHOOK_GRAPH_URL=url)
            self.assertEqual(r.rc, 2, (url, r))
            self.assertRegex(r.err, r"level=error ev=config msg=\"WAHOOK_GRAPH_URL: http:// "
                                    r"only to a loopback address")
        for url in ("http://127.0.0.1:9/v23.0", "http://127.8.9.10/v23.0",
                    "http://[::1]:9/v23.0", "http://localhost:9/v23.0",
                    "https://graph.facebook.com/v23.0"):
            r = self.status(WAHOOK_GRAPH_URL=url)
            self.assertEqual(r.rc, 0, (url, r))

    def test_reply_url_in_clear_to_another_host_needs_the_opt_in_and_warns(self):
        url = dict(WAHOOK_REPLY_URL_SECRET="s3cr3t-reply")
        r = self.status(WAHOOK_REPLY_URL="http://crm.internal.example:8080/hook", **url)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("WAHOOK_REPLY_URL: http:// to a host that is not loopback", r.err)
        self.assertIn("WAHOOK_REPLY_URL_INSECURE=1", r.err)
        r = self.status(WAHOOK_REPLY_URL="http://crm.internal.example:8080/hook",
                        WAHOOK_REPLY_URL_INSECURE="1", **url)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err, r"level=warn ev=config msg=\"WAHOOK_REPLY_URL is http:// to a "
                                r"host that is not loopback")
        self.assertNotIn("unknown variable", r.err)
        r = self.status(WAHOOK_REPLY_URL="http://crm.internal.example/hook",
                        WAHOOK_REPLY_URL_INSECURE="yes", **url)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("WAHOOK_REPLY_URL_INSECURE", r.err)
        for quiet in ("http://127.0.0.1:9/hook", "https://crm.internal.example/hook"):
            r = self.status(WAHOOK_REPLY_URL=quiet, **url)
            self.assertEqual(r.rc, 0, (quiet, r))
            self.assertNotIn("unencrypted", r.err)

    def test_outage_past_what_the_lease_covers_exits_2_naming_it(self):
        """A reply sent just before an outage must be recorded before its lease
        ends: WAHOOK_DB_OUTAGE_MAX at most lease - call timeout - WAHOOK_DB_TIMEOUT
        - 1 (here 60 - 20 - 10 - 1 = 29), or 0; unset, it is derived (28)."""
        prod = dict(WAHOOK_LEASE=60, WAHOOK_HTTP_TIMEOUT=20, WAHOOK_DB_TIMEOUT=10)
        for bad, env in (("60", prod), ("29.5", prod),
                         ("2", dict(WAHOOK_LEASE=4, WAHOOK_HTTP_TIMEOUT=2))):
            r = self.status(WAHOOK_DB_OUTAGE_MAX=bad, **env)
            self.assertEqual(r.rc, 2, (bad, r))
            self.assertRegex(r.err, r"level=error ev=config msg=\"WAHOOK_DB_OUTAGE_MAX "
                                    r"\(%s\) must be 0 or at most WAHOOK_LEASE .*"
                                    r"WAHOOK_HTTP_TIMEOUT .*WAHOOK_DB_TIMEOUT" % bad)
        # with a reply program, its timeout counts when it is the longer one
        prog = dict(prod, WAHOOK_REPLY_COMMAND="/bin/cat", WAHOOK_REPLY_TIMEOUT=25)
        r = self.status(WAHOOK_DB_OUTAGE_MAX="25", **prog)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("WAHOOK_REPLY_TIMEOUT (25)", r.err)
        for good, env in (("29", prod), ("0", prod), (None, prod), ("24", prog),
                          ("0", dict(WAHOOK_LEASE=4, WAHOOK_HTTP_TIMEOUT=2)),
                          (None, dict(WAHOOK_LEASE=4, WAHOOK_HTTP_TIMEOUT=2))):
            r = self.status(WAHOOK_DB_OUTAGE_MAX=good, **env)
            self.assertEqual(r.rc, 0, (good, r))

    def test_unknown_variable_is_a_warning_naming_it(self):
        r = self.status(WAHOOK_VERIFY_TOKENFILE="/etc/wahook/verify-token",
                        WAHOOK_APP_SECRET_FILE="/etc/wahook/app-secret",
                        WAHOOK_SQL_DIR="/usr/share/wahook/sql")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err, r"level=warn ev=config msg=\"unknown variable ignored "
                                r"\(a typo\?\)\" var=WAHOOK_VERIFY_TOKENFILE")
        self.assertEqual(r.err.count("unknown variable"), 1, r.err)   # not the responder's
        self.assertIn("pending", r.out)


if __name__ == "__main__":
    unittest.main()
