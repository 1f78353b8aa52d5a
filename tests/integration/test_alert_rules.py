"""test_alert_rules.py - examples/prometheus/wahook.rules.yml as shipped: Debian's
promtool accepts it (`promtool check rules`) and its unit tests pass (`promtool
test rules wahook.rules.test.yml`), in which every alert fires on series that
should fire it and stays quiet on healthy ones; each alert has a runbook; and
every alert reads metrics wahook-drain --metrics (or node_exporter) really
prints, so no rule watches a name that does not exist."""
import os
import re
import shutil
import subprocess
import unittest

import yaml

import harness

DIR = os.path.join(harness.ROOT, "examples", "prometheus")
RULES = os.path.join(DIR, "wahook.rules.yml")
TESTS = os.path.join(DIR, "wahook.rules.test.yml")
PROMTOOL = shutil.which("promtool")
# what the issue asks alerting to cover, by alert
WANTED = {"WahookNumberDeaf", "WahookBacklogOld", "WahookDeadRows", "WahookTokenRefused",
          "WahookQuarantineGrowing", "WahookMediaFailing", "WahookDrainerNotRunning"}


def promtool(*args, cwd=DIR):
    return subprocess.run([PROMTOOL] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def rules():
    with open(RULES) as f:
        return yaml.safe_load(f)["groups"][0]["rules"]


@unittest.skipUnless(PROMTOOL, "promtool (Debian package prometheus) not installed")
class AlertRules(unittest.TestCase):
    def test_promtool_checks_the_rules(self):
        r = promtool("check", "rules", RULES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: %d rules found" % len(rules()), r.stdout)

    def test_promtool_unit_tests_pass(self):
        r = promtool("test", "rules", TESTS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_each_alert_fires_and_stays_quiet_and_has_a_runbook(self):
        names = {r["alert"] for r in rules()}
        self.assertLessEqual(WANTED, names)
        for r in rules():
            self.assertTrue(r["annotations"].get("runbook", "").strip(), r["alert"])
            self.assertTrue(r["annotations"].get("summary", "").strip(), r["alert"])
            self.assertIn(r["labels"].get("severity"), ("page", "ticket"), r["alert"])
        with open(TESTS) as f:
            doc = yaml.safe_load(f)
        fires, quiet = set(), set()
        for group in doc["tests"]:
            for t in group["alert_rule_test"]:
                (fires if t["exp_alerts"] else quiet).add(t["alertname"])
        self.assertEqual(fires, names)
        self.assertEqual(quiet, names)

    def test_a_broken_rule_fails_the_unit_tests(self):
        """The unit tests are not vacuous: an alert that can never fire fails them."""
        d = harness.tmpdir("wahook-rules-")
        shutil.copy(TESTS, d)
        for name in sorted(WANTED):
            with open(RULES) as f:
                doc = yaml.safe_load(f)
            for r in doc["groups"][0]["rules"]:
                if r["alert"] == name:
                    r["expr"] = "vector(1) < 0"
            with open(os.path.join(d, "wahook.rules.yml"), "w") as f:
                yaml.safe_dump(doc, f)
            r = promtool("test", "rules", "wahook.rules.test.yml", cwd=d)
            self.assertNotEqual(r.returncode, 0, name)
            self.assertIn("alertname: " + name, r.stdout + r.stderr)

    def test_rules_read_metrics_that_exist(self):
        """Every wahook_ name in an expression is one report.c prints."""
        with open(os.path.join(harness.ROOT, "cgi", "drainer", "report.c")) as f:
            printed = set(re.findall(r'"(wahook_\w+)', f.read()))
        for r in rules():
            for name in re.findall(r"\b(wahook_\w+)", r["expr"]):
                self.assertIn(name, printed, r["alert"])


if __name__ == "__main__":
    unittest.main()
