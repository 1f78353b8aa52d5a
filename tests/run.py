#!/usr/bin/env python3
"""run.py - wahook's test runner: the cmocka unit binaries (TAP), then every
tests/integration/test_*.py (unittest), one line per test, and a closing line
CI reads: "N passed, N failed" (", N skipped" added when an optional extra
check found nothing to check).

A skip is a failure (a test that did not run proves nothing), except the
optional extra checks that need a copy of ../shared/fixtures beside the clone:
a Python test that raises unittest.SkipTest with a reason starting with
"optional extra:" (harness.extra_skip), and a unit that calls cmocka's skip()
(which the units do only for those extras), count as skipped.

Usage: tests/run.py [SUBSTRING...]   run only tests whose name contains one of them.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, os.environ.get("WAHOOK_BUILD", "build"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

passed = failed = skipped = 0
OPTIONAL = "optional extra:"    # the reason that makes a Python skip a skip
failures = []


def want(name, filters):
    return not filters or any(f in name for f in filters)


def run_units(filters):
    global passed, failed, skipped
    for exe in sorted(glob.glob(os.path.join(BUILD, "test_*"))):
        name = os.path.basename(exe)
        # matched as printed ("unit/test_verify"), so `run.py unit/` selects them
        if not os.access(exe, os.X_OK) or not want("unit/" + name, filters):
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
        r = subprocess.run([exe], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=300)
        seen = 0
        for line in r.stdout.splitlines():
            if line.startswith("# extra:"):
                # what an optional extra check found (or that it had nothing to check)
                print("note unit/%s: %s" % (name, line[2:]))
            elif re.match(r"(not )?ok \d+ # SKIP ", line):
                # cmocka's skip(): "not ok N # SKIP name"
                skipped += 1
                seen += 1
                print("skip unit/%s: %s" % (name, line.split("# SKIP ", 1)[1]))
            elif line.startswith("ok "):
                passed += 1
                seen += 1
                print("ok   unit/%s: %s" % (name, line.split(" - ", 1)[-1]))
            elif line.startswith("not ok "):
                failed += 1
                seen += 1
                failures.append("unit/%s: %s" % (name, line))
                print("FAIL unit/%s: %s" % (name, line.split(" - ", 1)[-1]))
        not_ok = [l for l in r.stdout.splitlines()
                  if l.startswith("not ok") and "# SKIP " not in l]
        if r.returncode != 0 and (seen == 0 or not not_ok):
            failed += 1
            failures.append("unit/%s exited %d\n%s%s" % (name, r.returncode, r.stdout[-2000:],
                                                          r.stderr[-2000:]))
            print("FAIL unit/%s exited %d" % (name, r.returncode))


class Result(unittest.TestResult):
    t0 = 0.0

    def __init__(self):
        super().__init__()
        self.started = set()
        self.setup_failed = []      # descriptions of failed setUpModule/setUpClass

    def startTest(self, test):
        super().startTest(test)
        self.started.add(test.id())
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
        text = "".join(traceback.format_exception(*err))
        if isinstance(test, unittest.suite._ErrorHolder) and \
                test.description.startswith("setUp"):
            # not a test: the tests it kept from running are counted by run_suite()
            self.setup_failed.append(test.description)
            print("FAIL %s\n%s" % (test.description, text), flush=True)
            failures.append("%s\n%s" % (test.description, text))
            return
        failed += 1
        self._line("FAIL", test)
        failures.append("%s\n%s" % (test.id(), text))
        print(text, flush=True)

    addFailure = _fail
    addError = _fail

    def addSubTest(self, test, subtest, err):
        # unittest's default only records it: a failed subtest must count
        if err is not None:
            self._fail(subtest, err)

    def addSkip(self, test, reason):
        global skipped
        if reason.startswith(OPTIONAL):
            skipped += 1
            self._line("skip", test)
            print("     " + reason, flush=True)
            return
        # a skipped test proves nothing: count it as a failure so CI sees it
        self._fail(test, (AssertionError, AssertionError("skipped: " + reason), None))


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def run_suite(tests):
    """Runs tests. A failed setUpModule or setUpClass runs none of the tests
    behind it: each of those counts as failed, so the closing line adds up to
    every test selected."""
    global failed
    r = Result()
    unittest.TestSuite(tests).run(r)
    for t in tests:
        if t.id() not in r.started:
            failed += 1
            why = "not run: %s failed" % ", ".join(r.setup_failed or ["its set-up"])
            print("FAIL %s (%s)" % (t.id(), why), flush=True)
            failures.append("%s %s" % (t.id(), why))


def run_integration(filters):
    global failed
    loader = unittest.TestLoader()
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py"))):
        mod = os.path.basename(path)[:-3]
        try:
            suite = loader.loadTestsFromName(mod)
        except Exception:       # noqa: BLE001 - a module that cannot load is one failure
            failed += 1
            text = traceback.format_exc()
            print("FAIL %s: cannot load\n%s" % (mod, text), flush=True)
            failures.append("%s: cannot load\n%s" % (mod, text))
            continue
        tests = [t for t in flatten(suite) if want(t.id(), filters)]
        if tests:
            t0 = time.monotonic()
            run_suite(tests)
            # with set-up and tear-down, which the per-test times leave out
            print("---- %s: %.0f s" % (mod, time.monotonic() - t0), flush=True)


def sanitizer_setup():
    """For a SAN=1 build (WAHOOK_BUILD=build/san): every ASan, LSan and UBSan
    report of any process the suite starts - units, responders under a web
    server, drainers - is written to a directory that
    sanitizer_reports() reads at the end: a report anywhere fails the run, even
    from a process whose exit status no test looks at. Leaks are checked
    (detect_leaks=1) at every orderly exit; a process killed by a signal (SIGKILL
    in the fault tests) runs no leak check at all, so it cannot report one.
    The directory is a world-writable (sticky) temp dir, not one in the clone:
    servers run their FastCGI children as another user, who cannot reach a
    clone in a 0700 home. It is removed at the end unless it holds a report."""
    if os.path.basename(os.path.normpath(BUILD)) != "san":
        return None
    d = tempfile.mkdtemp(prefix="wahook-san-reports-")
    os.chmod(d, 0o1777)
    for var, opts in (
        ("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0:"
                         "detect_stack_use_after_return=1:check_initialization_order=1:"
                         "log_path=%s/asan" % d),
        ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:log_path=%s/ubsan" % d),
    ):
        # ours last: later options win, and log_path must be ours
        os.environ[var] = (os.environ[var] + ":" if os.environ.get(var) else "") + opts
    return d


# a report's first line, at a line start (the programs' own lines start "level=")
SAN_REPORT = re.compile(rb"(?m)^(==\d+==ERROR: \w+Sanitizer|\S+:\d+:\d+: runtime error: |"
                        rb"SUMMARY: \w+Sanitizer)")


def sanitizer_reports(d):
    """Fails the run for each report in d, and for each one in the logs: GCC's
    UBSan runtime is a library of its own beside ASan's and writes to stderr
    whatever log_path says, and stderr of a server's FastCGI child is a log."""
    global failed
    if d is None:
        return
    time.sleep(0.5)     # a process stopped just now may still be writing
    found = [os.path.join(d, f) for f in sorted(os.listdir(d))]
    h = sys.modules.get("harness")
    for f in (h.log_files() if h is not None else []):
        with open(f, "rb") as fh:
            if SAN_REPORT.search(fh.read()):
                found.append(f)
    for f in found:
        with open(f, "rb") as fh:
            data = fh.read()
        m = SAN_REPORT.search(data)
        text = data[m.start() if m else 0:][:4000].decode(errors="replace")
        failed += 1
        failures.append("sanitizer report in %s\n%s" % (f, text))
        print("FAIL sanitizer report in %s:\n%s" % (f, text), flush=True)
    print("sanitizers: %d report(s)" % len(found))
    if not os.listdir(d):
        os.rmdir(d)


def run_at_end(filters):
    """Checks that need every other test behind them (harness.AT_END), such as
    the grep of every log the suite wrote for the secrets."""
    h = sys.modules.get("harness")
    tests = [t for t in getattr(h, "AT_END", []) if want(t.id(), filters)]
    if tests:
        run_suite(tests)


def main():
    filters = sys.argv[1:]
    t0 = time.monotonic()
    san = sanitizer_setup()
    run_units(filters)
    run_integration(filters)
    run_at_end(filters)
    sanitizer_reports(san)
    if failures:
        print("\nFailures:")
        for f in failures:
            print("  " + f.splitlines()[0])
    print("\n(%.0f s)" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed) +
          (", %d skipped" % skipped if skipped else ""))
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
