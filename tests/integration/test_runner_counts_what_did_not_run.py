"""test_runner_counts_what_did_not_run.py - tests/run.py's closing line adds up to
every test selected: a failed setUpModule counts each test of its module as
failed, a failed setUpClass each test of its class, a skipped test and a failed
subtest count as failed, and a module that cannot be imported counts once.
Runs a copy of run.py on a throwaway tests/ tree.
"""
import os
import shutil
import subprocess
import textwrap
import unittest

import harness

MODULES = {
    "test_a_module_setup_fails.py": """
        import unittest
        def setUpModule():
            raise RuntimeError("no database")
        class A(unittest.TestCase):
            def test_1(self): pass
            def test_2(self): pass
        class B(unittest.TestCase):
            def test_3(self): pass
    """,
    "test_b_class_setup_fails.py": """
        import unittest
        class C(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                raise RuntimeError("no server")
            def test_4(self): pass
            def test_5(self): pass
        class D(unittest.TestCase):
            def test_passes(self): pass
            def test_skipped(self): self.skipTest("not here")
            def test_optional(self):
                raise unittest.SkipTest("optional extra: ../shared/fixtures/x not present")
            def test_subtest(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertNotEqual(i, 1)
    """,
    "test_c_cannot_import.py": """
        import no_such_module_anywhere
    """,
}


class Runner(unittest.TestCase):
    def test_closing_line_counts_every_test_that_did_not_pass(self):
        top = harness.tmpdir("wahook-runner-")
        os.makedirs(os.path.join(top, "tests", "integration"))
        os.makedirs(os.path.join(top, "tests", "lib"))
        os.makedirs(os.path.join(top, "build"))
        unit = os.path.join(top, "build", "test_extra")     # a cmocka unit's TAP
        with open(unit, "w") as f:
            f.write("#!/bin/sh\necho 1..2\necho 'not ok 1 # SKIP optional'\n"
                    "echo 'ok 2 - present'\n")
        os.chmod(unit, 0o755)
        shutil.copy(os.path.join(harness.ROOT, "tests", "run.py"), os.path.join(top, "tests"))
        for name, src in MODULES.items():
            with open(os.path.join(top, "tests", "integration", name), "w") as f:
                f.write(textwrap.dedent(src))
        r = subprocess.run(["python3", os.path.join(top, "tests", "run.py")],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, WAHOOK_BUILD="build"))
        out = r.stdout
        # passed: test_passes, unit ok; failed: 3 (module) + 2 (class) + skip + subtest
        # + import; skipped: the optional extra, the unit's skip()
        self.assertEqual(out.strip().splitlines()[-1], "2 passed, 8 failed, 2 skipped",
                         out + r.stderr)
        self.assertNotEqual(r.returncode, 0)
        for t in ("A.test_1", "A.test_2", "B.test_3"):
            self.assertRegex(out, r"FAIL test_a_module_setup_fails\.%s \(not run: "
                                  r"setUpModule \(test_a_module_setup_fails\) failed\)" % t)
        for t in ("test_4", "test_5"):
            self.assertRegex(out, r"FAIL test_b_class_setup_fails\.C\.%s \(not run: "
                                  r"setUpClass \(test_b_class_setup_fails\.C\) failed\)" % t)
        self.assertIn("no database", out)       # the reason is shown once
        self.assertIn("skipped: not here", out)
        self.assertRegex(out, r"skip test_b_class_setup_fails\.D\.test_optional ")
        self.assertIn("skip unit/test_extra: optional", out)
        self.assertIn("FAIL unittest.loader._FailedTest.test_c_cannot_import", out)


if __name__ == "__main__":
    unittest.main()
