"""test_reference_complete.py - the manual pages are the reference, and it is complete.

For each program, three lists of WAHOOK_* names must be the same set:
- the names its C sources read: a getenv() or env_*() call with the name as a
  literal (env_secret("X") reads X_FILE too), or an entry {"X", ...} of a
  configuration table; which sources make which program is read from the
  Makefile's module lists (COMMON_OBJS, FCGI_OBJS, DRAIN_OBJS);
- the names its manual page's ENVIRONMENT section describes, one entry each;
- the names of its table of known names in cgi/env.c (a name missing there is
  warned about as a typo; a name there that nothing reads is a stale promise).
Also: every log event (ev=) a program's sources write is described in its
page, wahook-drain's exit codes (drain.h) are exactly its page's EXIT STATUS,
the scripts' known names are read by a script, the README keeps no table of
variables (they are said once, in the pages), and every C file opens with the
comment that says what it is for (the README's map of cgi/ points there).
It reads files only: no build, no database, no server.
"""
import glob
import os
import re
import unittest

import harness

ROOT = harness.ROOT
CGI = os.path.join(ROOT, "cgi")

PROGRAMS = {
    # program: (Makefile module lists, manual page, table of known names)
    "wahook.fcgi": (("COMMON_OBJS", "FCGI_OBJS"), "man/wahook.fcgi.8", "env_names_fcgi"),
    "wahook-drain": (("COMMON_OBJS", "DRAIN_OBJS"), "man/wahook-drain.8", "env_names_drain"),
}

NAME = r"WAHOOK_[A-Z0-9_]+"


def read(path):
    with open(os.path.join(ROOT, path) if not os.path.isabs(path) else path) as f:
        return f.read()


def makefile_modules(var):
    """The module names of a Makefile variable (`VAR = a b \\` continued)."""
    text = read("Makefile").replace("\\\n", " ")
    m = re.search(r"(?m)^%s\s*[:+]?=\s*(.*)$" % var, text)
    if m is None:
        raise AssertionError("the Makefile has no %s: tell this test which modules "
                             "make each program" % var)
    return m.group(1).split()


def module_source(mod):
    """cgi/<mod>.c, wherever under cgi/ it lives."""
    found = glob.glob(os.path.join(CGI, "**", mod + ".c"), recursive=True)
    if len(found) != 1:
        raise AssertionError("module %s: want one %s.c under cgi/, found %s"
                             % (mod, mod, found))
    return found[0]


def program_sources(program):
    mods = []
    for var in PROGRAMS[program][0]:
        mods += makefile_modules(var)
    return sorted({module_source(m) for m in mods})


def known_table(table):
    """The names listed in cgi/env.c's `const char *const <table>[] = {...}`."""
    for path in glob.glob(os.path.join(CGI, "**", "*.c"), recursive=True):
        m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % table, read(path), re.S)
        if m:
            return set(re.findall(r'"(%s)"' % NAME, m.group(1)))
    raise AssertionError("no table %s[] in cgi/" % table)


def names_read(paths):
    """name -> the files that read it."""
    names = {}
    for path in paths:
        # the tables of known names list names, they do not read them
        text = re.sub(r"\benv_names_\w+\[\]\s*=\s*\{.*?\};", "", read(path), flags=re.S)
        found = set(re.findall(r'\b(?:secure_)?getenv\(\s*"(%s)"\s*\)' % NAME, text))
        found |= set(re.findall(r'\b(?:env|load)_[a-z_]+\(\s*"(%s)"\s*,' % NAME, text))
        found |= {n + "_FILE" for n in re.findall(r'\benv_secret\(\s*"(%s)"' % NAME, text)}
        found |= set(re.findall(r'\{\s*"(%s)"\s*,' % NAME, text))   # a config table entry
        for n in found:
            names.setdefault(n, []).append(os.path.relpath(path, ROOT))
    return names


def man_section(text, title):
    m = re.search(r"(?ms)^\.SH %s\n(.*?)(?=^\.SH |\Z)" % re.escape(title), text)
    if m is None:
        raise AssertionError("no .SH %s" % title)
    return m.group(1)


def man_tags(section):
    """The tag lines of the section's .TP entries."""
    lines = section.splitlines()
    return [lines[i + 1] for i, l in enumerate(lines[:-1]) if l.startswith(".TP")]


def events_written(paths):
    """ev -> files: log_begin(..., "ev"), log_msg("level", "ev", ...) and the
    like, where the event is a literal."""
    evs = {}
    for path in paths:
        text = read(path)
        found = set(re.findall(r'\blog_begin\([^;]*?"([a-z_]+)"\s*\)', text))
        found |= set(re.findall(r'\blog_(?:msg|outage)\([^;]*?"(?:info|warn|error)"\s*,\s*'
                                r'"([a-z_]+)"', text))
        for ev in found:
            evs.setdefault(ev, []).append(os.path.relpath(path, ROOT))
    return evs


class Environment(unittest.TestCase):
    def check_program(self, program):
        _, page, table = PROGRAMS[program]
        read_by = names_read(program_sources(program))
        self.assertGreaterEqual(len(read_by), 10, (program, read_by))
        tags = man_tags(man_section(read(page), "ENVIRONMENT"))
        described = [n for t in tags for n in re.findall(NAME, t)]
        twice = sorted({n for n in described if described.count(n) > 1})
        self.assertEqual(twice, [], "%s describes these more than once" % page)
        missing = sorted(set(read_by) - set(described))
        self.assertEqual(missing, [], "%s reads these (%s), %s's ENVIRONMENT does not "
                         "describe them" % (program, {n: read_by[n] for n in missing}, page))
        unread = sorted(set(described) - set(read_by))
        self.assertEqual(unread, [], "%s's ENVIRONMENT describes these, %s reads none "
                         "of them" % (page, program))
        known = known_table(table)
        self.assertEqual(sorted(set(read_by) - known), [],
                         "%s reads these but %s[] does not list them: they would be "
                         "warned about as typos" % (program, table))
        self.assertEqual(sorted(known - set(read_by)), [],
                         "%s[] lists these but %s reads none of them" % (table, program))

    def test_the_responder_reads_what_wahook_fcgi_8_describes(self):
        self.check_program("wahook.fcgi")

    def test_the_drainer_reads_what_wahook_drain_8_describes(self):
        self.check_program("wahook-drain")

    def test_the_scripts_names_are_read_by_a_script(self):
        scripts = "".join(read(p) for p in glob.glob(os.path.join(ROOT, "scripts", "*")))
        for n in sorted(known_table("env_names_scripts")):
            self.assertRegex(scripts, r"\b%s\b" % n, "no script reads " + n)

    def test_the_readme_has_no_table_of_variables(self):
        rows = re.findall(r"(?m)^\| *`?(%s)" % NAME, read("README.md"))
        self.assertEqual(rows, [], "the variables are described in the manual pages")


class LogEventsAndExitCodes(unittest.TestCase):
    def test_every_event_is_in_its_programs_page(self):
        for program, (_, page, _) in sorted(PROGRAMS.items()):
            text = read(page).replace("\\-", "-")
            evs = events_written(program_sources(program))
            self.assertGreaterEqual(len(evs), 5, (program, evs))
            missing = {ev: files for ev, files in evs.items()
                       if not re.search(r"\bev=%s\b" % ev, text)}
            self.assertEqual(missing, {}, "%s logs these events, %s does not describe "
                             "them" % (program, page))

    def test_drain_exit_codes_are_the_pages_exit_status(self):
        header = glob.glob(os.path.join(CGI, "**", "drain.h"), recursive=True)
        self.assertEqual(len(header), 1, header)
        codes = {int(c) for c in re.findall(r"\bDRAIN_[A-Z]+\s*=\s*(\d+)", read(header[0]))}
        self.assertEqual(codes, set(range(6)))
        tags = man_tags(man_section(read("man/wahook-drain.8"), "EXIT STATUS"))
        listed = [int(m) for t in tags for m in re.findall(r"^\.B (\d+)$", t)]
        self.assertEqual(sorted(listed), sorted(codes), tags)


class SourceMap(unittest.TestCase):
    def test_every_c_file_opens_with_what_it_is_for(self):
        paths = sorted(glob.glob(os.path.join(CGI, "**", "*.[ch]"), recursive=True))
        self.assertGreater(len(paths), 20)
        bare = [os.path.relpath(p, ROOT) for p in paths
                if not re.match(r"/\*\n? ?\*? ?\S", read(p))]
        self.assertEqual(bare, [], "each file opens with a comment saying what it is for")


if __name__ == "__main__":
    unittest.main()
