"""test_reference_complete.py - the manual pages are the reference, and it is complete.

Each program has one configuration table (conf.h): a `const struct conf_var
NAME[] = {...}` in its C sources (which sources make which program is read
from the directories, as the Makefile does: cgi/shared and the program's own). Its
names (and X_FILE for a CONF_SECRET) are the program's known names (the
Makefile generates env_names_* from them) and must be:
- exactly the names its manual page's ENVIRONMENT section describes, one entry
  each; each default the table holds is the one the page states, and each
  number's bounds are the ones it states;
- a superset of the names its sources read by name: a getenv(), env_*() or
  conf_get() call with the name as a literal (a name read but not in the table
  would be warned about as a typo); and an entry the table does not store
  itself (no .off) is read so by some source (else it is a stale promise).
Also: every log event (ev=) a program's sources write is described in its
page, wahook-drain's exit codes (drain_exit.h) are exactly its page's EXIT STATUS,
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
    # program: (its module directories under cgi/, manual page)
    "wahook.fcgi": (("shared", "responder"), "man/wahook.fcgi.8"),
    "wahook-drain": (("shared", "drainer"), "man/wahook-drain.8"),
}

NAME = r"WAHOOK_[A-Z0-9_]+"


def read(path):
    with open(os.path.join(ROOT, path) if not os.path.isabs(path) else path) as f:
        return f.read()


def program_sources(program):
    """The C sources that make program: every .c in its directories under cgi/
    (the Makefile takes each program's modules so, by wildcard)."""
    found = []
    for d in PROGRAMS[program][0]:
        found += glob.glob(os.path.join(CGI, d, "*.c"))
    if not found:
        raise AssertionError("no sources for %s under cgi/%s" % (program, PROGRAMS[program][0]))
    return sorted(found)


def known_table(table):
    """The names listed in cgi/shared/env.c's `const char *const <table>[] = {...}`
    (the scripts'; the programs' are generated from their tables)."""
    for path in glob.glob(os.path.join(CGI, "**", "*.c"), recursive=True):
        m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % table, read(path), re.S)
        if m:
            return set(re.findall(r'"(%s)"' % NAME, m.group(1)))
    raise AssertionError("no table %s[] in cgi/" % table)


TABLE = r"(?ms)^(?:static )?const struct conf_var (\w+)\[\] = \{\n(.*?)^\t\{ NULL \}"


def config_table(program):
    """The program's one configuration table: (file, table name, entries), each
    entry a dict of name, kind, default (None when the table has none), stored
    (has an .off)."""
    found = []
    for path in program_sources(program):
        for m in re.finditer(TABLE, read(path)):
            entries = []
            for e in re.split(r"(?m)^\t\{ (?=\")", m.group(2))[1:]:
                em = re.match(r'"(%s)", CONF_([A-Z]+)(?:, "([^"]*)")?' % NAME, e)
                if em is None:
                    raise AssertionError("%s: an entry that does not open with "
                                         '{ "WAHOOK_NAME", CONF_KIND: %r' % (path, e[:60]))
                bm = re.match(r'[^,]*, CONF_[A-Z]+, (?:"[^"]*"|NULL), ([^,]+?), ([^,]+?),\s*\.',
                              e, re.S)
                entries.append(dict(name=em.group(1), kind=em.group(2),
                                    default=em.group(3), stored=".off =" in e,
                                    bounds=bm and (c_number(bm.group(1)),
                                                   c_number(bm.group(2)))))
            found.append((os.path.relpath(path, ROOT), m.group(1), entries))
    if len(found) != 1:
        raise AssertionError("%s: want one configuration table, found %s"
                             % (program, [f[:2] for f in found]))
    return found[0]


def c_number(expr):
    """The value of a table's bound: a constant expression of numbers, * and the
    #define'd constants of cgi/'s headers."""
    defines = {}
    for path in glob.glob(os.path.join(CGI, "**", "*.h"), recursive=True):
        defines.update(re.findall(r"(?m)^#define ([A-Z_]+)\s+(.+?)\s*(?:/\*.*)?$", read(path)))
    for _ in range(4):
        expr = re.sub(r"\b[A-Z_]+\b", lambda m: "(%s)" % defines.get(m.group(0), "None"), expr)
    expr = re.sub(r"(\d)L+\b", r"\1", expr).replace(">>", "//2**")
    if not re.fullmatch(r"[0-9.*/+\- ()]+", expr):
        raise AssertionError("a bound the test cannot read: %r" % expr)
    return eval(expr)


def table_names(entries):
    names = set()
    for e in entries:
        names.add(e["name"])
        if e["kind"] == "SECRET":
            names.add(e["name"] + "_FILE")
    return names


def names_read(paths):
    """name -> the files that read it by name, outside the tables."""
    names = {}
    for path in paths:
        # the tables list names, they do not read them
        text = re.sub(r"\benv_names_\w+\[\]\s*=\s*\{.*?\};", "", read(path), flags=re.S)
        text = re.sub(TABLE, "", text)
        found = set(re.findall(r'\b(?:secure_)?getenv\(\s*"(%s)"\s*\)' % NAME, text))
        found |= set(re.findall(r'\b(?:env|load)_[a-z_]+\(\s*"(%s)"\s*,' % NAME, text))
        found |= set(re.findall(r'\bconf_(?:get|find)\(\s*\w+\s*,\s*"(%s)"' % NAME, text))
        found |= {n + "_FILE" for n in re.findall(r'\benv_secret\(\s*"(%s)"' % NAME, text)}
        for n in found:
            names.setdefault(n, []).append(os.path.relpath(path, ROOT))
    return names


def flat(roff):
    """Text of roff lines, font macros and quotes dropped, blanks folded."""
    text = re.sub(r"(?m)^\.(?:B|BR|RB|I|IR|RI|BI|IB)\s+", "", roff)
    text = text.replace("\\-", "-").replace("\\&", "").replace('"', "")
    return " ".join(text.split())


def stated_defaults(body):
    """The defaults an ENVIRONMENT entry states, in order: "default X",
    "defaults X and Y" or "X (the default)"; [] when it states none."""
    text = flat(body)
    m = re.search(r"\bdefaults ((?:\S+(?:,| and) )+\S+)", text)
    if m:
        return [w.rstrip(".,;") for w in re.split(r",? and |, ", m.group(1))]
    m = re.search(r"\b[Dd]efault (\S+)", text) or re.search(r"(\S+) \((?:the )?default\)", text)
    return [m.group(1).rstrip(".,;:)")] if m else []


def stated_bounds(body):
    """The bounds an ENVIRONMENT entry states, in order: [(low, high)] of each
    "from 1 to 256", "0.05 to 3600" or "1-64"."""
    num = r"(\d+(?:\.\d+)?)"
    return [(float(a), float(b)) for a, b in
            re.findall(r"(?<![\d.])%s(?: to |-)%s(?![\d.])" % (num, num), flat(body))]


def man_entries(section):
    """[(tag line, body)] of the section's .TP entries."""
    out = []
    for part in re.split(r"(?m)^\.TP\n", section)[1:]:
        tag, _, body = part.partition("\n")
        out.append((tag, re.split(r"(?m)^\.(?:PP|SH|SS)\b", body)[0]))
    return out


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
        _, page = PROGRAMS[program]
        where, table, entries = config_table(program)
        names = table_names(entries)
        self.assertGreaterEqual(len(names), 10, (program, names))
        listed = [e["name"] for e in entries]
        self.assertEqual(sorted({n for n in listed if listed.count(n) > 1}), [],
                         "%s[] (%s) lists these twice" % (table, where))
        read_by = names_read(program_sources(program))
        self.assertEqual(sorted(set(read_by) - names), [],
                         "%s reads these (%s) but its table %s[] (%s) does not list them: "
                         "they would be warned about as typos"
                         % (program, {n: read_by[n] for n in set(read_by) - names}, table,
                            where))
        unread = sorted(e["name"] for e in entries if not e["stored"] and
                        e["name"] not in read_by)
        self.assertEqual(unread, [], "%s[] lists these without storing them (no .off), "
                         "and no source of %s reads them" % (table, program))
        entries_ = man_entries(man_section(read(page), "ENVIRONMENT"))
        described = [n for t, _ in entries_ for n in re.findall(NAME, t)]
        twice = sorted({n for n in described if described.count(n) > 1})
        self.assertEqual(twice, [], "%s describes these more than once" % page)
        missing = sorted(names - set(described))
        self.assertEqual(missing, [], "%s[] (%s) lists these, %s's ENVIRONMENT does not "
                         "describe them" % (table, where, page))
        unread = sorted(set(described) - names)
        self.assertEqual(unread, [], "%s's ENVIRONMENT describes these, %s[] (%s) does "
                         "not list them" % (page, table, where))
        # each default of the table is the one the page states
        default = {e["name"]: e["default"] for e in entries}
        for tag, body in entries_:
            tagged = [n for n in re.findall(NAME, tag) if n in default]
            want = [default[n] for n in tagged if default[n] is not None]
            if not want:
                continue
            self.assertEqual(stated_defaults(body), want, "%s states these defaults for %s; "
                             "%s[] says %s" % (page, tagged, table, want))
        # and each number's bounds (a 0-or-1 switch aside), in the order of the tag
        bounds = {e["name"]: e["bounds"] for e in entries if e["kind"] != "BOOL"}
        for tag, body in entries_:
            want = [bounds[n] for n in re.findall(NAME, tag) if bounds.get(n)]
            if want:
                self.assertEqual(stated_bounds(body)[:len(want)], want,
                                 "%s states these bounds for %s; %s[] says %s"
                                 % (page, tag, table, want))

    def test_the_responder_reads_what_wahook_fcgi_8_describes(self):
        self.check_program("wahook.fcgi")

    def test_the_drainer_reads_what_wahook_drain_8_describes(self):
        self.check_program("wahook-drain")

    def test_the_scripts_names_are_read_by_a_script(self):
        paths = glob.glob(os.path.join(ROOT, "scripts", "*")) + \
            glob.glob(os.path.join(ROOT, "tools", "*"))
        scripts = "".join(read(p) for p in paths)
        for n in sorted(known_table("env_names_scripts")):
            self.assertRegex(scripts, r"\b%s\b" % n, "no script reads " + n)

    def test_the_readme_has_no_table_of_variables(self):
        rows = re.findall(r"(?m)^\| *`?(%s)" % NAME, read("README.md"))
        self.assertEqual(rows, [], "the variables are described in the manual pages")


class LogEventsAndExitCodes(unittest.TestCase):
    def test_every_event_is_in_its_programs_page(self):
        for program, (_, page) in sorted(PROGRAMS.items()):
            text = read(page).replace("\\-", "-")
            evs = events_written(program_sources(program))
            self.assertGreaterEqual(len(evs), 5, (program, evs))
            missing = {ev: files for ev, files in evs.items()
                       if not re.search(r"\bev=%s\b" % ev, text)}
            self.assertEqual(missing, {}, "%s logs these events, %s does not describe "
                             "them" % (program, page))

    def test_drain_exit_codes_are_the_pages_exit_status(self):
        header = glob.glob(os.path.join(CGI, "**", "drain_exit.h"), recursive=True)
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
