"""test_metrics_node_exporter.py - scraping the Debian way: the metrics line of
examples/crontab (scripts/export-metrics) writes `wahook-drain --metrics` into a
textfile directory, and Debian's real prometheus-node-exporter, on loopback
with its textfile collector pointed there, serves the wahook_ metrics without
a parse error. The write is atomic: a failed query leaves the old file whole
and no temp file behind. wahook-metrics.service runs the same script."""
import os
import re
import shutil
import subprocess
import time
import unittest
import urllib.request

import harness
import drainkit as dk

EXPORTER = "/usr/bin/prometheus-node-exporter"
EXAMPLES = os.path.join(harness.ROOT, "examples")
SCRIPT = os.path.join(harness.ROOT, "scripts", "export-metrics")
pg = server = None


def setUpModule():
    global pg, server
    pg, server = dk.start_stack()


tearDownModule = dk.stop_stack


def cron_command():
    """The metrics line of examples/crontab: (user, shell command)."""
    with open(os.path.join(EXAMPLES, "crontab")) as f:
        lines = [l for l in f if not l.startswith("#") and "export-metrics" in l]
    assert len(lines) == 1, lines
    fields = lines[0].split(None, 6)
    return fields[5], fields[6].strip()


@unittest.skipUnless(os.path.exists(EXPORTER), "prometheus-node-exporter not installed")
class NodeExporter(dk.DrainCase):
    def setUp(self):
        super().setUp()
        self.dir = harness.tmpdir("wahook-textfile-")
        self.envfile = os.path.join(self.dir, "wahook-drain.env")
        self.textdir = os.path.join(self.dir, "node-exporter")
        os.mkdir(self.textdir)
        os.chmod(self.textdir, 0o755)

    def export(self, db):
        """Runs the crontab's metrics line as cron would (sh -c, the crontab's
        user), the environment file and the script's path swapped for the
        test's, the query as an unprivileged user when root."""
        user, cmd = cron_command()
        self.assertEqual(user, "root")
        with open(self.envfile, "w") as f:
            f.write("WAHOOK_DB='%s'\n" % db)
        n = cmd.count("/etc/wahook/wahook-drain.env") + \
            cmd.count("/usr/local/share/wahook/scripts/export-metrics")
        self.assertEqual(n, 2, cmd)
        cmd = cmd.replace("/etc/wahook/wahook-drain.env", self.envfile)
        cmd = cmd.replace("/usr/local/share/wahook/scripts/export-metrics",
                          SCRIPT + (" -u nobody" if os.geteuid() == 0 else "") +
                          " " + self.textdir)
        env = {"PATH": os.path.dirname(dk.DRAIN) + ":/usr/bin:/bin"}
        return subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True,
                              timeout=60)

    def test_node_exporter_serves_the_wahook_metrics(self):
        dk.post(server, [("4915100000077", dk.mid("x"), None)])
        r = self.export(pg.dsn)
        self.assertEqual(r.returncode, 0, r.stderr)
        prom = os.path.join(self.textdir, "wahook.prom")
        self.assertEqual(os.listdir(self.textdir), ["wahook.prom"])
        self.assertEqual(os.stat(prom).st_mode & 0o777, 0o644)

        port = harness.free_port()
        p = harness.spawn([EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
                           "--collector.disable-defaults", "--collector.textfile",
                           "--collector.textfile.directory=" + self.textdir],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            def scrape():
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                                timeout=5) as resp:
                        return resp.read().decode()
                except OSError:
                    return None
            text = harness.wait_for(scrape, 15, "prometheus-node-exporter")
            self.assertRegex(text, r"(?m)^wahook_outbox_pending 1$")
            self.assertRegex(text, r'(?m)^wahook_number_last_inbound_timestamp_seconds'
                             r'\{phone_number_id="%s"\} \d' % dk.PNID)
            self.assertRegex(text, r"(?m)^wahook_quarantine_rows 0$")
            self.assertRegex(text, r"(?m)^node_textfile_scrape_error 0$")
            self.assertRegex(text, r'(?m)^node_textfile_mtime_seconds\{file="[^"]*'
                             r'wahook\.prom"\} \d')

            # the database goes away: the script fails, the file stays whole
            before = open(prom).read()
            time.sleep(1.1)
            r = self.export("host=%s dbname=nonexistent" % pg.dir)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(os.listdir(self.textdir), ["wahook.prom"])
            self.assertEqual(open(prom).read(), before)
            text = scrape()
            self.assertRegex(text, r"(?m)^wahook_outbox_pending 1$")
            self.assertRegex(text, r"(?m)^node_textfile_scrape_error 0$")
        finally:
            harness.kill(p)

    def test_the_timer_runs_the_same_script(self):
        with open(os.path.join(EXAMPLES, "wahook-metrics.service")) as f:
            unit = f.read()
        self.assertRegex(unit, r"(?m)^ExecStart=/usr/local/share/wahook/scripts/"
                         r"export-metrics$")
        self.assertRegex(unit, r"(?m)^EnvironmentFile=/etc/wahook/wahook-drain.env$")
        self.assertRegex(unit, r"(?m)^ReadWritePaths=-/var/lib/prometheus/node-exporter$")
        with open(os.path.join(EXAMPLES, "wahook-metrics.timer")) as f:
            self.assertRegex(f.read(), r"(?m)^OnCalendar=minutely$")
        with open(os.path.join(harness.ROOT, "debian", "rules")) as f:
            rules = f.read()
        for unit in ("wahook-metrics.service", "wahook-metrics.timer"):
            self.assertIn("examples/" + unit, rules)


if __name__ == "__main__":
    unittest.main()
