#!/usr/bin/env python3
"""run.py - wahook's test runner: the cmocka unit binaries (TAP), then every
tests/integration/test_*.py (unittest), one line per test, and a closing line
CI reads: "N passed, N failed".

Usage: tests/run.py [SUBSTRING...]   run only tests whose name contains one of them.
"""
import glob
import os
import subprocess
import sys
import time
import traceback
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, os.environ.get("WAHOOK_BUILD", "build"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

passed = failed = 0
failures = []


def want(name, filters):
    return not filters or any(f in name for f in filters)


def run_units(filters):
    global passed, failed
    for exe in sorted(glob.glob(os.path.join(BUILD, "test_*"))):
        name = os.path.basename(exe)
        if not os.access(exe, os.X_OK) or not want(name, filters):
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
        r = subprocess.run([exe], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=300)
        seen = 0
        for line in r.stdout.splitlines():
            if line.startswith("ok "):
                passed += 1
                seen += 1
                print("ok   unit/%s: %s" % (name, line.split(" - ", 1)[-1]))
            elif line.startswith("not ok "):
                failed += 1
                seen += 1
                failures.append("unit/%s: %s" % (name, line))
                print("FAIL unit/%s: %s" % (name, line.split(" - ", 1)[-1]))
        if r.returncode != 0 and seen == 0 or (r.returncode != 0 and
                                                 not any(l.startswith("not ok") for l in r.stdout.splitlines())):
            failed += 1
            failures.append("unit/%s exited %d\n%s%s" % (name, r.returncode, r.stdout[-2000:],
                                                          r.stderr[-2000:]))
            print("FAIL unit/%s exited %d" % (name, r.returncode))


class Result(unittest.TestResult):
    t0 = 0.0

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()

    def _line(self, word, test):
        dt = time.monotonic() - self.t0 if self.t0 else 0.0
        print("%-4s %s (%.1fs)" % (word, test.id(), dt), flush=True)

    def addSuccess(self, test):
        global passed
        passed += 1
        self._line("ok", test)

    def _fail(self, test, err):
        global failed
        failed += 1
        self._line("FAIL", test)
        text = "".join(traceback.format_exception(*err))
        failures.append("%s\n%s" % (test.id(), text))
        print(text, flush=True)

    addFailure = _fail
    addError = _fail

    def addSkip(self, test, reason):
        # a skipped test proves nothing: count it as a failure so CI sees it
        self._fail(test, (AssertionError, AssertionError("skipped: " + reason), None))


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def run_integration(filters):
    loader = unittest.TestLoader()
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py"))):
        mod = os.path.basename(path)[:-3]
        suite = loader.loadTestsFromName(mod)
        tests = [t for t in flatten(suite) if want(t.id(), filters)]
        if not tests:
            continue
        # errors in setUpModule/setUpClass arrive through addError too
        unittest.TestSuite(tests).run(Result())


def main():
    filters = sys.argv[1:]
    t0 = time.monotonic()
    run_units(filters)
    run_integration(filters)
    if failures:
        print("\nFailures:")
        for f in failures:
            print("  " + f.splitlines()[0])
    print("\n(%.0f s)" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
