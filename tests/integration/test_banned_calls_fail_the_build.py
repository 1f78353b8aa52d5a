"""test_banned_calls_fail_the_build.py - `make checksrc` (run by `make check` and
`make lint`) passes on the repository as it is, and fails, naming file and line,
as soon as C source calls a banned function (sprintf, strcpy, atoi, strtok, ...),
while a longer identifier that merely contains the name (my_atoi) does not
trip it. It is a grep: a comment that writes a banned call with its "(" does.
"""
import os
import shutil
import subprocess
import unittest

import harness


class BannedCalls(unittest.TestCase):
    def setUp(self):
        # a copy of the parts the check reads, so the repository is never edited
        self.top = harness.tmpdir("wahook-checksrc-")
        shutil.copytree(os.path.join(harness.ROOT, "tools"), os.path.join(self.top, "tools"))
        shutil.copytree(os.path.join(harness.ROOT, "cgi"), os.path.join(self.top, "cgi"))
        for d in ("unit", "fuzz", "bench"):
            shutil.copytree(os.path.join(harness.ROOT, "tests", d),
                            os.path.join(self.top, "tests", d))
        shutil.copy(os.path.join(harness.ROOT, "Makefile"), self.top)

    def checksrc(self):
        return subprocess.run(["make", "-s", "-C", self.top, "checksrc"],
                              capture_output=True, text=True, timeout=60)

    def test_repository_passes(self):
        r = self.checksrc()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("no banned calls", r.stdout)

    def test_each_banned_call_fails_naming_file_and_line(self):
        path = os.path.join(self.top, "cgi", "shared", "log.c")
        with open(path) as f:
            orig = f.read()
        for call in ("sprintf(buf, \"%d\", n)", "vsprintf(buf, fmt, ap)", "strcpy(d, s)",
                     "strcat(d, s)", "atoi(s)", "atol(s)", "strtok(s, \",\")",
                     "gets(buf)", "strncpy(d, s, n)"):
            with self.subTest(call=call):
                with open(path, "w") as f:
                    f.write(orig + "\n/* harmless sprintf mention */\nstatic int\nbad(void)\n"
                            "{\n\treturn %s;\n}\n" % call)
                r = self.checksrc()
                self.assertNotEqual(r.returncode, 0, call)
                line = orig.count("\n") + 6
                self.assertIn("cgi/shared/log.c:%d:" % line, r.stderr, r.stderr)

    def test_names_that_only_contain_a_banned_word_pass(self):
        path = os.path.join(self.top, "cgi", "shared", "log.c")
        with open(path, "a") as f:
            f.write("\n/* never call sprintf or strcpy here */\n"
                    "static int my_atoi(const char *s) { return snprintf(0, 0, \"%s\", s); }\n"
                    "static int x_strcat_y;\n")
        r = self.checksrc()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
