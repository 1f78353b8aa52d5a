"""test_servers_install.py - `make install` / `make uninstall` with PREFIX and
DESTDIR, the manual pages (clean under groff -ww, naming every variable the
code reads), and the shipped server configurations passing their servers'
own checks as installed: lighttpd -tt, nginx -t, apache2 -t."""
import glob
import os
import re
import stat
import subprocess
import unittest

import harness as h
import servers


def files_under(d):
    return sorted(os.path.relpath(os.path.join(r, f), d)
                  for r, _, fs in os.walk(d) for f in fs)


class MakeInstall(unittest.TestCase):
    def test_layout_and_modes(self):
        inst = servers.installed()
        want = {"lib/cgi-bin/wahook.fcgi": 0o755, "bin/wahook-drain": 0o755,
                "share/wahook/scripts/migrate": 0o755,
                "share/wahook/scripts/export-metrics": 0o755,
                "share/man/man8/wahook.fcgi.8": 0o644, "share/man/man8/wahook-drain.8": 0o644,
                "share/doc/wahook/examples/lighttpd.conf.example": 0o644}
        for f in sorted(glob.glob(os.path.join(h.ROOT, "sql", "[0-9][0-9][0-9]_*.sql"))):
            want["share/wahook/sql/" + os.path.basename(f)] = 0o644
        for f in sorted(os.listdir(os.path.join(h.ROOT, "examples"))):
            if f == "reply":    # reply programs: executable, beside the scripts
                for p in os.listdir(os.path.join(h.ROOT, "examples", f)):
                    want["share/wahook/reply/" + p] = 0o755
            elif f == "prometheus":     # the alert rules and their tests
                want["share/doc/wahook/examples/" + f] = 0o755
                for p in os.listdir(os.path.join(h.ROOT, "examples", f)):
                    want["share/doc/wahook/examples/%s/%s" % (f, p)] = 0o644
            else:
                want["share/doc/wahook/examples/" + f] = 0o644
        for rel, mode in want.items():
            st = os.stat(os.path.join(inst.root, rel))
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, rel)
        # the installed migrate finds the installed sql/ beside it
        with open(os.path.join(inst.share, "scripts", "migrate")) as f:
            self.assertIn("/../sql", f.read())

    def test_prefix_destdir_and_uninstall(self):
        d = h.tmpdir("wahook-destdir-usr-")
        make = ["make", "-s", "-C", h.ROOT, "DESTDIR=" + d, "PREFIX=/usr"]
        if h.BUILD.rstrip("/").endswith("/san"):
            make.append("SAN=1")
        r = subprocess.run(make + ["install"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        files = files_under(d)
        self.assertIn("usr/lib/cgi-bin/wahook.fcgi", files)   # where Debian's CGI lives
        self.assertIn("usr/bin/wahook-drain", files)
        self.assertTrue(all(f.startswith("usr/") for f in files), files)
        r = subprocess.run(make + ["uninstall"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(files_under(d), [])


def env_names(*sources):
    names = set()
    for src in sources:
        path = os.path.join(h.ROOT, "cgi", src)
        with open(path) as f:
            text = f.read()
        names |= set(re.findall(r'"(WAHOOK_[A-Z_]+)"', text))
        # env_secret("X", ...) also reads X_FILE
        names |= {n + "_FILE" for n in re.findall(r'env_secret\("(WAHOOK_[A-Z_]+)"', text)}
    return names


class ManPages(unittest.TestCase):
    def render(self, page):
        path = os.path.join(servers.installed().man8, page)
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""), page)
        r = subprocess.run(["man", "-l", path], capture_output=True, text=True,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100",
                                    LC_ALL="C.UTF-8"))
        self.assertEqual((r.returncode, r.stderr), (0, ""), page)
        return r.stdout.replace("\u2010", "-")

    def test_wahook_fcgi_8(self):
        text = self.render("wahook.fcgi.8")
        names = env_names("responder/config.c", "responder/wahook_fcgi.c") | {"LISTEN_FDS", "LISTEN_PID"}
        self.assertGreaterEqual(len(names), 6)
        for n in sorted(names):
            self.assertIn(n, text)
        for section in ("ENVIRONMENT", "EXIT STATUS", "FILES", "EXAMPLES", "SIGNALS"):
            self.assertIn(section, text)
        for code in ("200", "401", "403", "405", "413", "500", "503"):
            self.assertIn(code, text)

    def test_wahook_drain_8(self):
        text = self.render("wahook-drain.8")
        names = env_names("drainer/drain_config.c", "drainer/wahook_drain.c")
        self.assertGreaterEqual(len(names), 12)
        for n in sorted(names):
            self.assertIn(n, text)
        opts = {"--for", "--status", "--metrics", "--requeue-dead"}
        drain_c = os.path.join(h.ROOT, "cgi", "drainer", "wahook_drain.c")
        with open(drain_c) as f:
            opts |= set(re.findall(r'"(--[a-z][a-z-]+)"', f.read()))
        for o in sorted(opts):
            self.assertIn(o, text)
        status = text.split("EXIT STATUS", 1)[1].split("FILES", 1)[0]
        for code in "01234":
            self.assertRegex(status, r"(?m)^\s+%s\s" % code)


class Crontab(unittest.TestCase):
    def test_lines_are_cron_d_lines_naming_installed_programs(self):
        """examples/crontab is an /etc/cron.d file: five time fields, a user, a
        command whose program make install put where the line looks for it."""
        inst = servers.installed()
        env, jobs = {}, []
        for line in inst.example("crontab").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            m = re.match(r"^([A-Z_]+)=(.*)$", line)
            if m:
                env[m.group(1)] = m.group(2)
                continue
            f = line.split()
            for field, hi in zip(f[:5], (59, 23, 31, 12, 7)):
                self.assertRegex(field, r"^(\*|\d+)$", line)
                self.assertTrue(field == "*" or int(field) <= hi, line)
            jobs.append(f)
        self.assertEqual(len(jobs), 3)     # drainer, prune, metrics
        path = env["PATH"].split(":")
        for f in jobs:
            # the program: the last simple command, less exec and assignments
            last = " ".join(f[6:]).split(";")[-1].split()
            cmd = [w for w in last if "=" not in w and w != "exec"][0]
            # nothing hides the program's stderr (and so its failures) from
            # cron's mail: no pipe into logger, no 2>/dev/null
            self.assertNotIn("|", " ".join(f[6:]), f)
            self.assertNotRegex(" ".join(f[6:]), r"2>|&>", f)
            if cmd.startswith("/"):
                found = os.path.exists(inst.destdir + cmd)
            else:
                found = any(os.access(os.path.join(inst.destdir + d, cmd), os.X_OK)
                            for d in path)
            self.assertTrue(found, "%s not installed where the crontab looks" % cmd)
        self.assertIn("--for", jobs[0])
        # the metrics line: root's (it writes into root's directory), the script
        # make install put in share/wahook/scripts
        self.assertEqual(jobs[2][5], "root")
        self.assertTrue(jobs[2][-1].endswith("/share/wahook/scripts/export-metrics"), jobs[2])


class ShippedConfigsCheck(unittest.TestCase):
    def in_root(self, script, usr_local=None):
        """script in a private mount namespace whose /usr/local is the installed
        tree (or an empty one): the configs name /usr/local paths as shipped."""
        src = usr_local or servers.installed().root
        mnt = ('mount --bind "$0" /usr/local' if usr_local is None
               else 'mount -t tmpfs none /usr/local')
        return subprocess.run(servers.unshare_mount() + ["sh", "-c", mnt + " && " + script,
                                                         src],
                              capture_output=True, text=True, timeout=60)

    def test_lighttpd_tt_as_shipped(self):
        ex = "/usr/local/share/doc/wahook/examples/lighttpd.conf.example"
        r = self.in_root("lighttpd -tt -f " + ex)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        # lighttpd -tt exits 0 even for a missing bin-path: its complaint is the signal
        r = self.in_root("mkdir -p /usr/local/share/doc && cp -r '%s/share/doc/wahook' "
                         "/usr/local/share/doc/ && lighttpd -tt -f %s"
                         % (servers.installed().root, ex), usr_local="empty")
        self.assertIn('invalid "bin-path"', r.stdout + r.stderr)

    def test_nginx_t_as_shipped(self):
        d = h.tmpdir("wahook-nginx-t-")
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(servers.nginx_main_conf(
                d, os.path.join(servers.installed().examples, "nginx.conf")))
        r = subprocess.run(["nginx", "-t", "-q", "-c", conf, "-p", d],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_apache2_t_as_shipped_each_way(self):
        for mode in ("proxy_fcgi", "fcgid", "cgi"):
            d = h.tmpdir("wahook-apache-t-")
            os.makedirs(os.path.join(d, "run"))
            os.makedirs(os.path.join(d, "htdocs"))
            text = servers.installed().example("apache.conf")
            text = text.replace("Define WAHOOK_VIA_PROXY_FCGI\n", "Define WAHOOK_VIA_%s\n"
                                % mode.upper())     # the one line an operator changes
            with open(os.path.join(d, "wahook.conf"), "w") as f:
                f.write(text)
            conf = os.path.join(d, "apache2.conf")
            with open(conf, "w") as f:
                f.write(servers.apache_main_conf(d, h.free_port(), mode))
            r = subprocess.run(["apache2", "-t", "-f", conf], capture_output=True, text=True,
                               env={"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"})
            self.assertEqual((r.returncode, r.stderr.strip()), (0, "Syntax OK"), mode)


if __name__ == "__main__":
    unittest.main()
