"""test_make_run_from_a_private_home.py - `make run` (tools/run, what it starts
after building) serves from a clone under a 0700 directory, like a clone in
/root: lighttpd drops to www-data and must still reach the responder. It
prints its URL, stores the signed sample webhook (HTTP 200), answers it through
wahook-drain and the stand-in Graph API, serves a signed webhook posted to the
printed URL, and on SIGINT stops what it started and removes its files.
"""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest
import urllib.request

import harness


class MakeRun(unittest.TestCase):
    def setUp(self):
        # the clone: the repository's files (no build products but the two
        # programs, no .git) under a directory only its owner may enter
        self.home = harness.tmpdir("wahook-home-")
        os.chmod(self.home, 0o700)
        self.top = os.path.join(self.home, "wahook")
        shutil.copytree(harness.ROOT, self.top,
                        ignore=shutil.ignore_patterns(".git", "build"))
        os.makedirs(os.path.join(self.top, "build"))
        for prog in ("wahook.fcgi", "wahook-drain"):
            shutil.copy2(os.path.join(harness.BUILD, prog), os.path.join(self.top, "build"))
        self.port = harness.free_port()
        self.out = os.path.join(harness.tmpdir("wahook-run-out-"), "stdout")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAHOOK_")}
        env["WAHOOK_PORT"] = str(self.port)
        # from another directory, as `make -C` or a user elsewhere would
        self.proc = harness.spawn([os.path.join(self.top, "tools", "run")], env=env,
                                  cwd="/", stdout=open(self.out, "w"),
                                  stderr=subprocess.STDOUT)

    def tearDown(self):
        harness.kill(self.proc, signal.SIGINT, timeout=120)

    def output(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def test_serves_from_a_0700_home(self):
        harness.wait_for(lambda: "run: Ctrl-C to stop" in self.output() or
                         self.proc.poll() is not None, 180, "make run to start")
        out = self.output()
        self.assertIsNone(self.proc.poll(), out)
        self.assertNotIn("Permission denied", out)
        url = "http://127.0.0.1:%d/webhook" % self.port
        self.assertIn("run: listening on " + url, out)
        self.assertIn("EVENT_RECEIVED (HTTP 200)", out)          # the sample was stored
        self.assertIn("1158201444", out)                         # the GET verification
        self.assertIn("wahook-drain exited 0", out)              # and answered
        self.assertRegex(out, r"Hello! Is the shop open today\?")

        # a webhook of our own, signed with the demo's secret, to the printed URL
        secret_file = re.search(r"app secret in (\S+),", out).group(1)
        with open(secret_file) as f:
            secret = f.read().strip()
        body = harness.meta_json({"object": "whatsapp_business_account", "entry": [{
            "id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111",
                             "phone_number_id": "100000000000001"},
                "messages": [{"from": "15557654321", "id": "wamid.make-run-test",
                              "timestamp": str(int(time.time())), "type": "text",
                              "text": {"body": "from the test"}}]}}]}]}).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": harness.sign(body, secret)})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.assertEqual((r.status, r.read()), (200, b"EVENT_RECEIVED"))

        work = re.search(r"run: PostgreSQL cluster in (\S+)/pg", out).group(1)
        self.assertTrue(os.path.isdir(work))
        harness.kill(self.proc, signal.SIGINT, timeout=120)
        out = self.output()
        self.assertIn("run: stopped, %s removed" % work, out)
        self.assertFalse(os.path.exists(work))
        # nothing it started is left: no process runs its copy of the responder
        # (lighttpd may respawn one while Ctrl-C reaches them all)
        left = [d for d in os.listdir("/proc") if d.isdigit() and
                self.exe(d).startswith(work + "/")]
        self.assertEqual(left, [], "processes left running: %s" % left)
        self.assertNotIn("could not change directory", out)

    @staticmethod
    def exe(pid):
        try:
            return os.readlink("/proc/%s/exe" % pid)
        except OSError:
            return ""


if __name__ == "__main__":
    unittest.main()
