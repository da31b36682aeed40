# -*- coding: utf-8 -*-
"""Shared fixtures: real servers started by the test run, and a way to run modules.

Integration tests talk to real servers only (DESIGN.md): a redis-server started here on a
free loopback port, and real BullMQ / Bull workers run by Node from lab/node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every process the tests start inherits these: tests/site/sitecustomize.py keeps the code that
# Python compiles when a module run imports module_utils from its AnsiballZ zip, keyed by the
# source, so the next module run skips compiling it (about a quarter of a module task's CPU here).
# ONCALL_ZIPIMPORT_CACHE= (empty) turns it off.
os.environ.setdefault('ONCALL_ZIPIMPORT_CACHE', os.path.join(ROOT, 'tests', 'output', 'zipimport-cache'))
os.environ['PYTHONPATH'] = os.pathsep.join(
    [os.path.join(ROOT, 'tests', 'site')] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
NODE_DIR = os.path.join(ROOT, 'lab', 'node')
sys.path.insert(0, os.path.join(ROOT, '.collections'))


# A loopback port for a server the test starts: free now, outside the kernel's ephemeral range
# (where a client's connection could take it first) and this xdist worker's own
# (lab/free_port.py); and whether a redis-server answers its own port. Both live in the cluster
# harness, which the benches import without pytest.
from redis_cluster_harness import answered_by, free_port  # noqa: E402  pylint: disable=wrong-import-position


class RedisServer(object):
    """A throw-away redis-server on a free loopback port. A port found free can be taken by
    another pytest worker's server before this one binds it: the server is started again on
    another port until the process answering the port is the one started here."""

    def __init__(self, password=None):
        self.password = password
        self.dir = tempfile.mkdtemp(prefix='oncall-redis-')
        for _attempt in range(5):
            self.port = free_port()
            args = ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                    '--appendonly', 'no', '--dir', self.dir, '--daemonize', 'no']
            if password:
                args += ['--requirepass', password]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if answered_by(self.proc, self.port, password):
                return
            self.proc.terminate()
            self.proc.wait(10)
        raise RuntimeError('redis-server did not start on a port of its own (5 tries)')

    def client(self):
        return redis.Redis(port=self.port, password=self.password, decode_responses=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


PG_BIN = '/usr/lib/postgresql/15/bin'


class PostgresServer(object):
    """A throw-away PostgreSQL 15 cluster on a free loopback port.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
    system user (created by Debian's package). Role ``postgres`` is a trusted superuser;
    every other role must give its password.
    """

    def __init__(self):
        import pwd
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix='oncall-pg-')
        self.data = os.path.join(self.dir, 'data')
        self.as_user = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam('postgres')
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ['runuser', '-u', 'postgres', '--']
        self._run([PG_BIN + '/initdb', '-D', self.data, '-U', 'postgres', '--auth-local=trust',
                   '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync'])
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as hba:
            hba.write('local all all trust\n'
                      'host all postgres 127.0.0.1/32 trust\n'
                      'host all all 127.0.0.1/32 scram-sha-256\n')
        self._run([PG_BIN + '/pg_ctl', '-D', self.data, '-w', '-l', os.path.join(self.dir, 'log'),
                   '-o', '-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off '
                   '-c shared_preload_libraries=pg_stat_statements -c autovacuum_naptime=1h'
                   % (self.port, self.dir), 'start'])

    def _run(self, cmd):
        subprocess.run(self.as_user + cmd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def connect(self, db='postgres', user='postgres', password=None, **kw):
        import psycopg2
        conn = psycopg2.connect(host='127.0.0.1', port=self.port, dbname=db, user=user,
                                password=password, **kw)
        conn.autocommit = True
        return conn

    def stop(self):
        subprocess.run(self.as_user + [PG_BIN + '/pg_ctl', '-D', self.data, '-m', 'immediate',
                                       'stop'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope='session')
def pg_server():
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture()
def pgdb(pg_server, request):
    """A fresh database for one test; yields (server, dbname, superuser connection)."""
    name = 't_' + ''.join(c if c.isalnum() else '_' for c in request.node.name.lower())[:50]
    admin = pg_server.connect()
    with admin.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)
        cur.execute('CREATE DATABASE %s' % name)
    conn = pg_server.connect(db=name)
    yield pg_server, name, conn
    conn.close()
    with admin.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)
    admin.close()


class Lab(object):
    """The lab (lab/lab.sh) on free ports in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='oncall-lab-')
        self.env = dict(os.environ, LAB_DIR=os.path.join(self.dir, 'lab'),
                        LAB_REDIS_PORT=str(free_port()), LAB_PG_PORT=str(free_port()),
                        LAB_PROM_PORT=str(free_port()), LAB_AM_PORT=str(free_port()),
                        ONCALL_REPORT_DIR=os.path.join(self.dir, 'reports'))
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o755)

    @property
    def redis_port(self):
        return int(self.env['LAB_REDIS_PORT'])

    @property
    def pg_port(self):
        return int(self.env['LAB_PG_PORT'])

    @property
    def prom_url(self):
        return 'http://127.0.0.1:%s' % self.env['LAB_PROM_PORT']

    @property
    def am_url(self):
        return 'http://127.0.0.1:%s' % self.env['LAB_AM_PORT']

    @property
    def report_dir(self):
        return self.env['ONCALL_REPORT_DIR']

    def sh(self, *args):
        return subprocess.run([os.path.join(ROOT, 'lab', 'lab.sh')] + list(args), env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)

    def redis(self):
        return redis.Redis(port=self.redis_port, decode_responses=True)

    def pg(self, db='payment_sandbox'):
        import psycopg2
        conn = psycopg2.connect(host='127.0.0.1', port=self.pg_port, user='postgres', dbname=db)
        conn.autocommit = True
        return conn

    def playbook(self, name, **kw):
        return run_playbook(os.path.join('playbooks', name), env=self.env, **kw)


@pytest.fixture(scope='session')
def lab_session():
    lab = Lab()
    up = lab.sh('up')
    assert up.returncode == 0, up.stdout + up.stderr
    yield lab
    lab.sh('down', '--purge')
    shutil.rmtree(lab.dir, ignore_errors=True)


@pytest.fixture()
def lab(lab_session):
    """The session's lab, put back in its seeded state for this test."""
    seeded = lab_session.sh('seed')
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    return lab_session


@pytest.fixture(scope='session')
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def redis_auth_server():
    server = RedisServer(password='Sup3r-s3cret-Pa55word')
    yield server
    server.stop()


@pytest.fixture()
def r(redis_server):
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


def _env():
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
        ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
        ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCALHOST_WARNING='0',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
    )
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    return env


def ansible_bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


class AnsibleServers(object):
    """This process's tests/ansible_server.py servers, one per ansible configuration: the
    working directory and the ANSIBLE_* variables, which ansible-core reads when it is imported.
    Started on first use; each exits when this process does (its standard input closes)."""

    def __init__(self):
        self.servers = {}
        self.dir = None
        self.started = 0
        self.lock = threading.Lock()
        self.cpu_seconds = 0.0  # what the runs cost: each child's and its children's CPU

    def server(self, cwd, env):
        with self.lock:
            return self._server(cwd, env)

    def _server(self, cwd, env):
        key = (cwd, tuple(sorted((k, v) for k, v in env.items() if k.startswith('ANSIBLE_'))),
               env.get('PYTHONPATH', ''))
        if key not in self.servers:
            if len(self.servers) >= 8:  # a ninth configuration: the oldest server goes
                oldest = next(iter(self.servers))
                self.servers.pop(oldest)[0].stdin.close()
            if self.dir is None:
                import atexit
                self.dir = tempfile.mkdtemp(prefix='oncall-ansible-server-')
                atexit.register(shutil.rmtree, self.dir, True)
            self.started += 1
            path = os.path.join(self.dir, '%d.sock' % self.started)
            proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'ansible_server.py'), path],
                                    cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
            ready = proc.stdout.readline()
            if ready != 'ready\n':
                raise RuntimeError('tests/ansible_server.py did not start (%r)' % ready)
            self.servers[key] = (proc, path)
        return self.servers[key][1]


_ansible_servers = AnsibleServers()


def run_ansible(cmd, env, cwd=ROOT, timeout=300):
    """Run `ansible` or `ansible-playbook` (cmd[0], as ansible_bin gives it) like
    subprocess.run(cmd, capture_output=True, text=True, timeout=...): the same argv, environment
    and directory, through a forking server that has ansible-core imported already
    (tests/ansible_server.py). ONCALL_TEST_ANSIBLE_SERVER=0 runs the command itself instead."""
    if os.environ.get('ONCALL_TEST_ANSIBLE_SERVER', '1') == '0':
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    import socket
    path = _ansible_servers.server(cwd, env)
    with tempfile.TemporaryDirectory(prefix='oncall-ansible-run-') as tmp:
        out, err = os.path.join(tmp, 'stdout'), os.path.join(tmp, 'stderr')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.settimeout(timeout)
        pid, rc = None, None
        try:
            sock.sendall(json.dumps({'argv': [os.path.basename(cmd[0])] + list(cmd[1:]), 'env': env,
                                     'cwd': cwd, 'stdout': out, 'stderr': err}).encode() + b'\n')
            reader = sock.makefile('r')
            for line in reader:
                msg = json.loads(line)
                pid = msg.get('pid', pid)
                if 'rc' in msg:
                    rc = msg['rc']
                    _ansible_servers.cpu_seconds += msg.get('cpu_seconds', 0.0)
                    break
        except socket.timeout:
            if pid:
                try:
                    os.killpg(pid, 9)
                except OSError:
                    pass
            raise subprocess.TimeoutExpired(cmd, timeout)
        finally:
            sock.close()
        if rc is None:
            raise RuntimeError('the ansible server ended the run without its exit code: %s' % cmd)
        with open(out, encoding='utf-8', errors='replace') as f_out, \
                open(err, encoding='utf-8', errors='replace') as f_err:
            return subprocess.CompletedProcess(cmd, rc, f_out.read(), f_err.read())


class ModuleRun(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        # the json callback prints one document last; -vvv output may come before it
        start = 0 if proc.stdout.startswith('{') else proc.stdout.rfind('\n{\n') + 1
        try:
            data = json.loads(proc.stdout[start:])
        except ValueError:
            raise AssertionError('no JSON result from ansible (rc %s): %s %s'
                                 % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        self.result = data['plays'][0]['tasks'][0]['hosts']['localhost']

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    @property
    def failed(self):
        return bool(self.result.get('failed'))


def run_module(module, args, check=False, diff=False, verbosity=0):
    """Run oncall.runbooks.<module> through the real `ansible` CLI; returns its result."""
    cmd = [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-m', 'oncall.runbooks.' + module, '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if verbosity:
        cmd.append('-' + 'v' * verbosity)
    return ModuleRun(run_ansible(cmd, env=_env(), timeout=300))


VERDICT_TASK = 'Fail the job on its verdict'


def recap(proc, host='lab'):
    """The play recap of a run for one host: ok, changed, unreachable, failed, rescued, and
    verdict_failed - the job was failed by its verdict (oncall_fail_on) after the report was
    written. That deliberate failure is not counted in failed, so failed counts broken tasks."""
    m = re.search(r'%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)'
                  r'(?:\s+skipped=\d+\s+rescued=(\d+))?' % re.escape(host), proc.stdout)
    assert m, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, m.groups()[:4])))
    out['rescued'] = int(m.group(5) or 0)
    last_task = proc.stdout.rfind('\nTASK [')
    header = proc.stdout[last_task + 1:proc.stdout.find('\n', last_task + 1)]
    out['verdict_failed'] = (VERDICT_TASK in header
                             and 'fatal: [' in proc.stdout[last_task:] and out['failed'] >= 1)
    if out['verdict_failed']:
        out['failed'] -= 1
    return out


def run_playbook(playbook, extra_vars=None, check=False, diff=False, inventory=None, tags=None,
                 env=None):
    cmd = [ansible_bin('ansible-playbook'), playbook]
    if inventory:
        cmd += ['-i', inventory]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if tags:
        cmd += ['--tags', tags]
    env = dict(_env(), **(env or {}))
    env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.default'
    env['ANSIBLE_CALLBACK_RESULT_FORMAT'] = 'yaml'
    return run_ansible(cmd, env=env, timeout=900)


@pytest.fixture()
def module():
    return run_module


# ---- Node: real BullMQ and Bull ------------------------------------------------------------

def node(script, *args, port, timeout=300):
    """Run lab/node/<script> and return its JSON output (last JSON line)."""
    proc = subprocess.run(['node', os.path.join(NODE_DIR, script)] + [str(a) for a in args]
                          + ['--port', str(port)], capture_output=True, text=True, timeout=timeout,
                          cwd=NODE_DIR, check=False)
    if proc.returncode:
        raise RuntimeError('node %s %s failed: %s' % (script, ' '.join(map(str, args)), proc.stderr))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith(('{', '['))]
    return json.loads(lines[-1])


class Worker(object):
    """A real worker process (lab/node/worker.js) and the events it printed."""

    def __init__(self, flavor, queue, port, *extra):
        self.proc = subprocess.Popen(
            ['node', os.path.join(NODE_DIR, 'worker.js'), '--flavor', flavor, '--queue', queue,
             '--port', str(port)] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=NODE_DIR, bufsize=1)
        self.events = []
        import threading
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.wait_for(lambda evs: any(e.get('event') == 'ready' for e in evs), 30)

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith('{'):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass

    def done_ids(self, kind=None):
        kinds = (kind,) if kind else ('processed', 'failed')
        return [str(e['id']) for e in list(self.events) if e.get('event') in kinds]

    def wait_for(self, predicate, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate(list(self.events)):
                return True
            if self.proc.poll() is not None:
                raise RuntimeError('worker exited: %s' % self.proc.stderr.read())
            time.sleep(0.05)
        return False

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture()
def workers():
    started = []

    def start(flavor, queue, port, *extra):
        w = Worker(flavor, queue, port, *extra)
        started.append(w)
        return w
    yield start
    for w in started:
        w.stop()


# BullMQ's <queue>:stalled-check is written by running workers' own periodic check with a 30 s
# expiry: it comes and goes by itself during a run, so it is not part of a before/after state.
HOUSEKEEPING_SUFFIXES = (':stalled-check',)


def dump_keys(client, pattern='*'):
    """Every key matching pattern with its type, TTL and value (for before/after), except the
    workers' own housekeeping keys (HOUSEKEEPING_SUFFIXES).

    Values are read as data, not as DUMP payloads: a hash or a set in hashtable encoding dumps
    its entries in the dict's iteration order, which Redis may change by rehashing on its own
    (seen here: a check-mode run "changed" failed Bull jobs whose fields were only reordered)."""
    kwargs = dict(client.connection_pool.connection_kwargs, decode_responses=False)
    raw = redis.Redis(**kwargs)
    out = {}
    try:
        for key in sorted(client.scan_iter(match=pattern, count=1000)):
            if key.endswith(HOUSEKEEPING_SUFFIXES if isinstance(key, str) else
                            tuple(s.encode() for s in HOUSEKEEPING_SUFFIXES)):
                continue
            kind = client.type(key)
            if kind == 'hash' or kind == b'hash':
                value = sorted(raw.hgetall(key).items())
            elif kind in ('set', b'set'):
                value = sorted(raw.smembers(key))
            elif kind in ('list', b'list'):
                value = raw.lrange(key, 0, -1)
            elif kind in ('zset', b'zset'):
                value = raw.zrange(key, 0, -1, withscores=True)
            elif kind in ('string', b'string'):
                value = raw.get(key)
            elif kind in ('stream', b'stream'):
                value = raw.xrange(key)
            else:
                value = raw.dump(key)
            out[key] = (kind, client.pttl(key) > 0, value)
    finally:
        raw.close()
    return out


# ---- the order files run in (pytest-xdist) ---------------------------------------------------
# scripts/test runs the files on several workers (--dist loadfile), each file whole on one worker.
# A worker takes the next file when it is free, so the run ends when the last long file ends: the
# longest files go first (longest-processing-time first), the short ones fill the end. Each file's
# seconds come from tests/durations.json (setup + call + teardown of all its tests, written by a
# run with ONCALL_RECORD_DURATIONS=<path>); a file not in it yet counts as the longest, so a new
# file never lands at the end. Without the JSON file the order is pytest's own.

DURATIONS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'durations.json')


def _file_seconds():
    try:
        with open(DURATIONS_FILE) as handle:
            return dict((str(k), float(v)) for k, v in json.load(handle).items())
    except (OSError, ValueError, AttributeError):
        return {}


def pytest_collection_modifyitems(session, config, items):
    seconds = _file_seconds()
    if not seconds:
        return
    longest = max(seconds.values()) + 1
    rank = {}
    for item in items:
        path = item.nodeid.split('::', 1)[0]
        rank.setdefault(path, seconds.get(path, longest))
    # sorted() is stable: a file's tests keep their order
    items[:] = sorted(items, key=lambda item: -rank[item.nodeid.split('::', 1)[0]])


# ---- the CPU each test costs ------------------------------------------------------------------
# CI runs on two cores and is CPU-bound from pytest's start to its end, so the tests that cost the
# most CPU, not the longest ones, are where a shorter CI comes from. Each test's CPU is what its
# worker process and the children it reaped (servers it stopped) used, with the ansible and
# ansible-playbook runs it asked tests/ansible_server.py for, from its setup to its teardown; a daemon that outlives its test is not counted. The worker puts
# it in the teardown report; the summary lists the 25 costliest tests beside --durations.

def _cpu_seconds():
    import resource
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
            + _ansible_servers.cpu_seconds)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.oncall_cpu_start = _cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    start = getattr(item, 'oncall_cpu_start', None)
    if report.when == 'teardown' and start is not None:
        report.user_properties.append(('cpu_seconds', round(_cpu_seconds() - start, 2)))


_CPU = {}


def pytest_terminal_summary(terminalreporter):
    if not _CPU:
        return
    costliest = sorted(_CPU.items(), key=lambda kv: -kv[1])[:25]
    terminalreporter.write_sep('=', 'the 25 tests that cost the most CPU (%.0f CPU-s in all %d tests)'
                               % (sum(_CPU.values()), len(_CPU)))
    for nodeid, seconds in costliest:
        terminalreporter.write_line('%7.1f CPU-s  %s' % (seconds, nodeid))


_RECORDED = {}


def pytest_runtest_logreport(report):
    if report.when == 'teardown':
        for name, value in report.user_properties:
            if name == 'cpu_seconds':
                _CPU[report.nodeid] = value
    if os.environ.get('ONCALL_RECORD_DURATIONS'):
        path = report.nodeid.split('::', 1)[0]
        _RECORDED[path] = _RECORDED.get(path, 0.0) + (report.duration or 0.0)


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get('ONCALL_RECORD_DURATIONS')
    # on the xdist controller (or a run without workers), not on each worker
    if not target or not _RECORDED or hasattr(session.config, 'workerinput'):
        return
    with open(target, 'w') as handle:
        json.dump(dict((k, round(v, 1)) for k, v in sorted(_RECORDED.items())), handle, indent=1, sort_keys=True)
        handle.write('\n')
