"""machine.py - helpers of the tests that act on the machine itself, as root
(test_readme_production, test_upgrade): the processes named by a pid file,
stopped by pid, and the state of Debian's PostgreSQL cluster.
Standard library only.
"""
import os
import signal
import subprocess
import time

CLUSTER = ("15", "main")    # Debian 12's cluster, on port 5432


def cluster_online(cluster=CLUSTER):
    """True when pg_lsclusters says the cluster runs; raises when there is none."""
    r = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        f = line.split()
        if f[:2] == list(cluster):
            return f[3] == "online"
    raise AssertionError("no PostgreSQL cluster %s/%s: pg_lsclusters says\n%s"
                         % (tuple(cluster) + (r.stdout,)))


def pids_in(path):
    """The pids a pid file lists ([] when there is none)."""
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except (FileNotFoundError, ValueError):
        return []


def alive(pid):
    """True while pid runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pids(pids, timeout=10):
    """SIGTERM to each pid, SIGKILL to those still there after timeout seconds."""
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + timeout
    while time.monotonic() < end and [p for p in pids if alive(p)]:
        time.sleep(0.05)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


# the machine's package, users, /run/wahook and cluster: one such test at a time
LOCK = "/run/lock/wahook-readme-production.lock"


def take_lock(wait=900, path=LOCK):
    """Waits up to wait seconds for the exclusive lock of the tests that act on
    the machine; returns the open file that holds it (closing it releases)."""
    import fcntl
    f = open(path, "w")
    end = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() > end:
                f.close()
                raise AssertionError("another test acting on the machine holds " + path)
            time.sleep(1)
