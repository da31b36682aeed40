# -*- coding: utf-8 -*-
"""Helpers for the incident runbook tests (database, host, AWS, Kafka): the play recap, the
report a runbook wrote, and real PostgreSQL sessions held open by the test."""

from __future__ import annotations

import json
import os


from helpers import recap  # noqa: F401  (the one recap, re-exported)


def ok_run(proc, host='lab'):
    """The recap of a run that must not have failed."""
    counts = recap(proc, host)
    assert counts['failed'] == 0 and counts['unreachable'] == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return counts


def report(report_dir, name):
    with open(os.path.join(report_dir, '%s-latest.json' % name)) as handle:
        return json.load(handle)


def verdicts(rep, when=None):
    """{object: verdict} of a report's findings (those of the diagnosis, or those tagged when)."""
    return dict((f['object'], f['verdict']) for f in rep['findings'] if f.get('when') == when)


def worst(rep, when=None):
    values = set(verdicts(rep, when).values())
    return 'critical' if 'critical' in values else 'warning' if 'warning' in values else 'ok'


class Sessions(object):
    """Real client sessions to a PostgreSQL server, opened and held by the test."""

    def __init__(self, port, user, db, count, password=None):
        import psycopg2
        self.conns = []
        for _index in range(count):
            conn = psycopg2.connect(host='127.0.0.1', port=port, user=user, dbname=db, password=password,
                                    application_name='festivals-api')
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute('SELECT 1')
            self.conns.append(conn)

    def alive(self):
        out = 0
        for conn in self.conns:
            try:
                with conn.cursor() as cur:
                    cur.execute('SELECT 1')
                out += 1
            except Exception:  # terminated by the server
                pass
        return out

    def close(self):
        for conn in self.conns:
            try:
                conn.close()
            except Exception:
                pass


class SmallFilesystem(object):
    """A real file system of a few megabytes: tmpfs with a size limit, mounted by the test
    (needs root, as the mount does)."""

    def __init__(self, megabytes):
        import subprocess
        import tempfile
        self.path = tempfile.mkdtemp(prefix='oncall-disk-')
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dm,mode=0755' % megabytes, 'oncall-disk', self.path],
                       check=True, capture_output=True)

    def used_ratio(self):
        st = os.statvfs(self.path)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        return float(used) / (used + st.f_bavail * st.f_frsize)

    def write(self, rel, size, days_old=0):
        import time
        path = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write(b'x' * size)
        if days_old:
            stamp = time.time() - days_old * 86400
            os.utime(path, (stamp, stamp))
        return path

    def fill(self, rel):
        """Append to rel until the file system is full (ENOSPC), as a runaway log does."""
        import errno
        path = os.path.join(self.path, rel)
        with open(path, 'ab', buffering=0) as handle:
            try:
                while True:
                    handle.write(b'INFO request served\n' * 3277)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        return path

    def state(self):
        """Every file with its size and mtime, and the used share (for before/after)."""
        out = {}
        for dirpath, _dirs, names in os.walk(self.path):
            for name in names:
                st = os.lstat(os.path.join(dirpath, name))
                out[os.path.relpath(os.path.join(dirpath, name), self.path)] = (st.st_size, int(st.st_mtime))
        return out

    def stop(self):
        import shutil
        import subprocess
        subprocess.run(['umount', self.path], check=False, capture_output=True)
        shutil.rmtree(self.path, ignore_errors=True)


def backup_files(fs, db, count, size):
    """count verified backups of db in <fs>/backups, shaped as pg_backup writes them (a dump
    named <db>-<UTC stamp>.dump, its .json manifest and .sha256), one day apart."""
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    names = []
    for i in range(count):
        stamp = (now - datetime.timedelta(days=i + 1)).strftime('%Y%m%dT%H%M%SZ')
        name = 'backups/%s-%s.dump' % (db, stamp)
        fs.write(name, size)
        with open(os.path.join(fs.path, name + '.json'), 'w') as handle:
            json.dump({'database': db, 'file': os.path.basename(name), 'size': size}, handle)
        with open(os.path.join(fs.path, name + '.sha256'), 'w') as handle:
            handle.write('0' * 64 + '  ' + os.path.basename(name) + '\n')
        names.append(os.path.basename(name))
    return names


HOG = r'''
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, b'oncall-hog', 0, 0, 0)  # PR_SET_NAME: the process is named oncall-hog
state = sys.argv[1]
leak = os.path.join(state, 'leak')
hold = b''
if os.path.exists(leak):  # a leaking process: grown to the size in the file; a restart starts small
    with open(leak) as handle:
        megabytes = int(handle.read())
    os.unlink(leak)
    hold = b'x' * (megabytes << 20)
with open(os.path.join(state, 'pid'), 'w') as handle:
    handle.write(str(os.getpid()))
time.sleep(3600)
'''

CTL = r'''#!/bin/sh
# restart the oncall-hog process, as "pm2 restart" or "systemctl restart" would
state="$1"
if [ -f "$state/pid" ]; then kill "$(cat "$state/pid")" 2>/dev/null; rm -f "$state/pid"; fi
setsid nohup "{python}" "$state/hog.py" "$state" oncall-hog >/dev/null 2>&1 &
for i in $(seq 100); do [ -f "$state/pid" ] && exit 0; sleep 0.05; done
exit 1
'''


class Hog(object):
    """A real process named oncall-hog (its comm, as ps shows it) holding `megabytes` of resident memory (a leak), and
    the restart command that the memory_pressure runbook is given for it."""

    def __init__(self, state_dir, megabytes):
        import subprocess
        import sys
        self.state = str(state_dir)
        with open(os.path.join(self.state, 'hog.py'), 'w') as handle:
            handle.write(HOG)
        self.ctl = os.path.join(self.state, 'ctl.sh')
        with open(self.ctl, 'w') as handle:
            handle.write(CTL.replace('{python}', sys.executable))
        os.chmod(self.ctl, 0o755)
        with open(os.path.join(self.state, 'leak'), 'w') as handle:
            handle.write(str(megabytes))
        subprocess.run([self.ctl, self.state], check=True)
        self.wait_resident(megabytes << 20)

    @property
    def restart_command(self):
        return [self.ctl, self.state]

    def pid(self):
        with open(os.path.join(self.state, 'pid')) as handle:
            return int(handle.read())

    def rss(self):
        with open('/proc/%d/status' % self.pid()) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        return 0

    def wait_resident(self, size, timeout=20):
        import time
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.rss() >= size:
                    return
            except (IOError, OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError('the hog process did not reach %d bytes' % size)

    def stop(self):
        import signal
        try:
            os.kill(self.pid(), signal.SIGTERM)
        except (IOError, OSError, ValueError):
            pass
