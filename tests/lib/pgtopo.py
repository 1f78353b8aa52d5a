"""pgtopo.py - PostgreSQL deployments past one server, for the scale tests:
a primary with a synchronous streaming standby (pg_basebackup, promotion),
a libpq multi-host conninfo over both, and Debian's pgbouncer in front of a
cluster in session or transaction pooling. Unix sockets only, every process
tracked by harness (stopped by pid, also when a test fails).

Each object has .dsn, so harness.Lighttpd(obj) and drainkit.env(obj, ...) take it.
"""
import atexit
import os
import pwd
import subprocess

import harness

STANDBY_NAME = "wahook_standby"    # its application_name = synchronous_standby_names


def _own(path):
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


class Dsn:
    """Just a conninfo, for the launchers that read .dsn."""

    def __init__(self, dsn):
        self.dsn = dsn


def make_primary():
    """A harness.Postgres that waits for STANDBY_NAME's flush on every commit
    (the settings doc/scaling.md's failover section gives): start the Standby before
    anything commits there."""
    pg = harness.Postgres()
    # wal_level = replica and max_wal_senders = 10 are PostgreSQL 15's defaults;
    # these two take a reload, not a restart
    pg.psql("ALTER SYSTEM SET synchronous_standby_names = '%s'" % STANDBY_NAME)
    pg.psql("ALTER SYSTEM SET synchronous_commit = on")
    pg.psql("SELECT pg_reload_conf()")
    return pg


class Standby(harness.Postgres):
    """A streaming standby of primary, cloned with pg_basebackup; promote() makes
    it the primary. Shares harness.Postgres's psql/pg_ctl/stop."""

    def __init__(self, primary):   # pylint: disable=super-init-not-called
        self.dir = harness.tmpdir("wahook-standby-")
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.user = primary.user
        _own(self.dir)
        self.dsn = "host=%s dbname=postgres user=%s" % (self.sock, self.user)
        self.log = os.path.join(self.dir, "postgres.log")
        subprocess.run(harness.run_as_pg_user() + [
            harness.PGBIN + "/pg_basebackup", "-D", self.data, "-h", primary.sock,
            "-U", primary.user, "-X", "stream", "-c", "fast", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # pg_basebackup copies the primary's ALTER SYSTEM settings: a promoted
        # standby that still named a synchronous standby of its own would wait
        # for it on every commit
        auto = os.path.join(self.data, "postgresql.auto.conf")
        with open(auto) as f:
            keep = [x for x in f if not x.startswith("synchronous_standby_names")]
        with open(auto, "w") as f:
            f.writelines(keep)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("unix_socket_directories = '%s'\nhot_standby = on\n"
                    "primary_conninfo = 'host=%s user=%s application_name=%s'\n"
                    "synchronous_standby_names = ''\n"
                    % (self.sock, primary.sock, primary.user, STANDBY_NAME))
        open(os.path.join(self.data, "standby.signal"), "w").close()
        _own(os.path.join(self.data, "standby.signal"))
        self.start()
        atexit.register(self.stop, "immediate")
        harness.wait_for(lambda: primary.scalar(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = '%s'"
            % STANDBY_NAME) == "sync", 30, "the standby to stream synchronously")

    def promote(self):
        self.pg_ctl("promote")
        harness.wait_for(lambda: self.scalar("SELECT pg_is_in_recovery()") == "f", 30,
                         "the promotion")


def multi_host(*clusters):
    """A libpq conninfo over every cluster's socket that connects to whichever
    accepts writes (doc/scaling.md: failover)."""
    return ("host=%s dbname=postgres user=%s target_session_attrs=read-write "
            "connect_timeout=2" % (",".join(c.sock for c in clusters), clusters[0].user))


class PgBouncer:
    """Debian's pgbouncer (1.18) on a unix socket in front of pg, in pool_mode
    mode ("transaction" or "session"), trusting local users like the cluster."""

    def __init__(self, pg, mode, pool_size=4, reset_always=False):
        """reset_always: DISCARD ALL after every transaction, in transaction mode
        too (server_reset_query_always): a session setting lasts one transaction."""
        self.dir = harness.tmpdir("wahook-pgbouncer-")
        _own(self.dir)
        self.port = harness.free_port()
        self.mode = mode
        self.errlog = os.path.join(self.dir, "pgbouncer.log")
        users = os.path.join(self.dir, "userlist.txt")
        with open(users, "w") as f:
            f.write('"%s" ""\n' % pg.user)
        ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write("[databases]\npostgres = host=%s dbname=postgres user=%s\n\n"
                    "[pgbouncer]\nlisten_addr =\nunix_socket_dir = %s\nlisten_port = %d\n"
                    "auth_type = trust\nauth_file = %s\npool_mode = %s\n"
                    "max_client_conn = 400\ndefault_pool_size = %d\n"
                    "server_reset_query = DISCARD ALL\nserver_reset_query_always = %d\n"
                    "logfile = %s\nadmin_users = %s\n"
                    % (pg.sock, pg.user, self.dir, self.port, users, mode, pool_size,
                       int(reset_always), self.errlog, pg.user))
        for p in (users, ini):
            _own(p)
        self.proc = harness.spawn(harness.run_as_pg_user() + ["/usr/sbin/pgbouncer", ini],
                                  stdout=subprocess.DEVNULL,
                                  stderr=open(self.errlog + ".stderr", "w"))
        self.dsn = "host=%s port=%d dbname=postgres user=%s" % (self.dir, self.port, pg.user)
        sock = os.path.join(self.dir, ".s.PGSQL.%d" % self.port)
        harness.wait_for(lambda: self._alive() and os.path.exists(sock), 10, "pgbouncer")

    def _alive(self):
        if self.proc.poll() is not None:
            with open(self.errlog + ".stderr", errors="replace") as f:
                raise AssertionError("pgbouncer exited: " + f.read()[-2000:])
        return True

    def show(self, what):
        """Rows of pgbouncer's SHOW <what> (admin console)."""
        adm = "host=%s port=%d dbname=pgbouncer user=%s" % (self.dir, self.port,
                                                           self.dsn.split("user=")[1])
        r = subprocess.run([harness.PSQL, "-X", "-At", "-F", "|", adm, "-c", "SHOW " + what],
                           capture_output=True, text=True, check=True)
        return [line.split("|") for line in r.stdout.splitlines()]

    def stop(self):
        harness.kill(self.proc)
