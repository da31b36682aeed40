# -*- coding: utf-8 -*-
"""Shared fixtures on top of tests/helpers: real servers started by the test run, the lab, and a way
to run modules; and the run's own hooks (file order, the CPU each test costs).

Integration tests talk to real servers only (DESIGN.md): a redis-server started here on a
free loopback port, and real BullMQ / Bull workers run by Node from lab/node.
"""

from __future__ import annotations

import json
import os

import pytest

# tests/helpers is the tests' one helper package; the names below are re-exported for the
# fixtures here (and tests may import them from helpers directly).
# pylint: disable=unused-import
from helpers import (  # noqa: F401  pylint: disable=wrong-import-position
    NODE_DIR, PG_BIN, ROOT, Lab, ModuleRun, PostgresServer, RedisServer, VERDICT_TASK, Worker, _env, ansible_bin,
    dump_keys, free_port, node, recap, run_ansible, run_module, run_playbook, running)
from helpers.cli import _ansible_servers  # noqa: F401
# pylint: enable=unused-import


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


@pytest.fixture(scope='session')
def lab_session():
    yield from running(Lab())


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


@pytest.fixture()
def module():
    return run_module


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
