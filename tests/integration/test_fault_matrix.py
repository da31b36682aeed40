# -*- coding: utf-8 -*-
"""The fault matrix (issue 14): every playbook against the lab with each dependency it reads
broken in turn. For every cell: the run ends with the exit status oncall_fail_on gives its
verdict, a fresh report exists whose verdict is critical or unknown and whose findings name the
broken dependency, the diagnosis applied nothing, and no secret of the fault reaches the output
or the report.

Faults are made for real but per run, so the cells can share one lab: a dependency that is
"down" is pointed at a loopback port nobody listens on, a "wrong password" is a password the
server refuses. docs/fault_matrix.md is rendered from these results; the last test fails when
the committed page differs (ONCALL_UPDATE_FAULT_MATRIX=1 rewrites it).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import time

import pytest

from helpers import ROOT, run_playbook

SECRET = 'fault-matrix-secret-3a9c'


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


CLOSED = closed_port()

# fault -> (extra vars, words of which a finding not ok must name one)
FAULTS = {
    'Redis down': ({'oncall_redis_port': CLOSED}, ('redis', 'queue')),
    'Redis wrong password': ({'oncall_redis_password': SECRET}, ('redis', 'queue')),
    'PostgreSQL down': ({'oncall_pg_port': CLOSED}, ('database', 'postgres', 'connection')),
    'PostgreSQL wrong password': ({'oncall_pg_user': 'oncall_fault', 'oncall_pg_password': SECRET},
                                  ('database', 'postgres', 'connection')),
    'app down': ({'oncall_app_port': CLOSED}, ('health', 'app', 'http', 'process')),
    'certificate endpoint down': ({'oncall_certificates': [{
        'name': 'lab-endpoint', 'source': {'type': 'endpoint', 'host': '127.0.0.1', 'port': CLOSED, 'timeout': 2},
        'provider': 'selfsigned', 'subject_alt_names': ['localhost'], 'verify_chain': False, 'notify': 'none'}]},
        ('certificate', 'lab-endpoint')),
}

# playbook (under playbooks/) -> the faults of the dependencies it reads
MATRIX = {
    'daily_health_check.yml': ['Redis down', 'Redis wrong password', 'PostgreSQL down', 'PostgreSQL wrong password',
                               'certificate endpoint down'],
    'weekly_maintenance.yml': ['Redis down', 'Redis wrong password', 'PostgreSQL down', 'PostgreSQL wrong password'],
    'monthly_maintenance.yml': ['PostgreSQL down', 'PostgreSQL wrong password'],
    'runbooks/queue_backlog.yml': ['Redis down', 'Redis wrong password'],
    'runbooks/job_queue_issues.yml': ['Redis down', 'Redis wrong password'],
    'runbooks/cache_health.yml': ['Redis down', 'Redis wrong password'],
    'runbooks/redis_failure.yml': ['Redis down', 'Redis wrong password'],
    'runbooks/database_connections.yml': ['PostgreSQL down', 'PostgreSQL wrong password'],
    'runbooks/slow_queries.yml': ['PostgreSQL down', 'PostgreSQL wrong password'],
    'runbooks/uniqueness_check_failures.yml': ['PostgreSQL down', 'PostgreSQL wrong password'],
    'runbooks/database_migration_issues.yml': ['PostgreSQL down', 'PostgreSQL wrong password'],
    'runbooks/api_down.yml': ['app down', 'Redis down', 'PostgreSQL down'],
    'runbooks/high_error_rate.yml': ['app down'],
    'runbooks/high_latency.yml': ['app down'],
    'runbooks/ssl_certificate_expiry.yml': ['certificate endpoint down'],
}

CELLS = [(pb, fault) for pb, faults in MATRIX.items() for fault in faults]


def _run_cell(lab, playbook, fault):
    extra, _words = FAULTS[fault]
    report_dir = os.path.join(lab.dir, 'fault-reports', '%s--%s' % (playbook.replace('/', '_'), fault.replace(' ', '_')))
    os.makedirs(report_dir, exist_ok=True)
    env = dict(lab.env, ONCALL_REPORT_DIR=report_dir)
    started = time.time()
    proc = run_playbook(os.path.join('playbooks', playbook), extra_vars=dict(extra, oncall_report_dir=report_dir), env=env)
    name = os.path.basename(playbook)[:-4]
    path = os.path.join(report_dir, name + '-latest.json')
    report = None
    if os.path.exists(path) and os.path.getmtime(path) >= started - 1:
        with open(path) as handle:
            report = json.load(handle)
    return {'proc': proc, 'report': report, 'report_text': json.dumps(report) if report else ''}


@pytest.fixture(scope='module')
def matrix(lab_session):
    seeded = lab_session.sh('seed')
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    results = {}
    # the cells are separate ansible-playbook runs against one lab: three at a time
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = dict((pool.submit(_run_cell, lab_session, pb, fault), (pb, fault)) for pb, fault in CELLS)
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
    return results


@pytest.mark.parametrize('playbook,fault', CELLS, ids=['%s | %s' % c for c in CELLS])
def test_cell(matrix, playbook, fault):
    cell = matrix[(playbook, fault)]
    proc, report = cell['proc'], cell['report']
    tail = proc.stdout[-2500:] + proc.stderr[-1500:]
    assert report is not None, 'no fresh report: ' + tail
    assert report['verdict'] in ('critical', 'unknown'), (report['verdict'], report['findings'])
    # the exit status follows the verdict (oncall_fail_on: critical, the default)
    assert (proc.returncode != 0) == (report['verdict'] == 'critical'), (proc.returncode, tail)
    words = FAULTS[fault][1]
    named = [f for f in report['findings'] if f.get('verdict') != 'ok'
             and any(w in ('%s %s' % (f.get('object', ''), f.get('figure', ''))).lower() for w in words)]
    assert named, 'no finding names the fault (%s): %s' % (fault, report['findings'])
    # a runbook's diagnosis applies nothing; a maintenance window goes on with the parts the
    # fault does not touch (checked in test_playbooks.py), so only runbooks are held to zero here
    if playbook.startswith('runbooks/'):
        assert report['summary']['applied'] == 0, report['steps']
    # the last line: verdict, report, next step
    assert 'VERDICT %s' % report['verdict'].upper() in proc.stdout and report['started']
    # the fault's password never shows
    assert SECRET not in proc.stdout and SECRET not in proc.stderr and SECRET not in cell['report_text']


def render(matrix):
    faults = list(FAULTS)
    lines = ['# Fault matrix', '',
             'Each playbook run against the lab with one dependency broken (rendered by',
             '`tests/integration/test_fault_matrix.py` from its own results; a dash: the playbook does',
             'not read that dependency). Every cell ends with its report written and a verdict that names',
             'the fault; the job fails on `critical` (`oncall_fail_on`, default `critical`). The Stripe',
             'faults (API 5xx, API unreachable, status page unreachable) are the rows of the payments',
             "decision table, each run for real by `tests/integration/test_payment_failure_runbook.py`.", '',
             '| playbook | ' + ' | '.join(faults) + ' |', '|---|' + '---|' * len(faults)]
    for pb, cell_faults in MATRIX.items():
        row = []
        for fault in faults:
            cell = matrix.get((pb, fault))
            if fault not in cell_faults or cell is None:
                row.append('-')
            else:
                rep = cell['report']
                row.append('%s (exit %d)' % (rep['verdict'] if rep else 'NO REPORT', cell['proc'].returncode))
        lines.append('| `%s` | %s |' % (pb, ' | '.join(row)))
    return '\n'.join(lines) + '\n'


def test_the_docs_show_this_matrix(matrix):
    page = os.path.join(ROOT, 'docs', 'fault_matrix.md')
    text = render(matrix)
    if os.environ.get('ONCALL_UPDATE_FAULT_MATRIX') == '1':
        with open(page, 'w') as handle:
            handle.write(text)
    with open(page) as handle:
        assert handle.read() == text, 'docs/fault_matrix.md is stale: run with ONCALL_UPDATE_FAULT_MATRIX=1'
