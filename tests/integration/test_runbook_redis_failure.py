# -*- coding: utf-8 -*-
"""playbooks/runbooks/redis_failure.yml against a real six-node Redis Cluster
(tests/helpers/redis_cluster.py): a planned failover, then a primary killed for real and
restarted by the runbook's restart command."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

import pytest

from helpers import recap, run_playbook
from helpers.redis_cluster import redis_cluster  # noqa: F401  pylint: disable=unused-import


def verdicts(proc):
    return re.findall(r'redis verdict (?:after remediation )?(ok|warning|critical)', proc.stdout)


@pytest.fixture()
def runbook(redis_cluster):  # noqa: F811
    reports = tempfile.mkdtemp(prefix='oncall-reports-')

    def run(extra=None, **kw):
        extra_vars = dict({'oncall_redis_port': redis_cluster.ports[0]}, **(extra or {}))
        return run_playbook('playbooks/runbooks/redis_failure.yml', extra_vars=extra_vars,
                            env={'ONCALL_REPORT_DIR': reports}, **kw)
    run.reports = reports
    yield run
    shutil.rmtree(reports, ignore_errors=True)


def state(cluster):
    """Roles as every running node sees them, and which nodes run."""
    return sorted(cluster.roles(p).items() for p in cluster.procs), sorted(cluster.procs)


def test_healthy_cluster_and_a_planned_failover(redis_cluster, runbook):  # noqa: F811
    ok = runbook()
    assert recap(ok)['failed'] == 0 and recap(ok)['changed'] == 0
    assert verdicts(ok) == ['ok'], ok.stdout[-3000:]
    assert os.path.exists(os.path.join(runbook.reports, 'redis_failure-latest.md'))

    old = redis_cluster.primaries()[1]
    replica = next(p for p, (role, m) in redis_cluster.roles().items() if m == old)
    fix = {'redis_failure_failover_from': '127.0.0.1:%d' % old}
    before = state(redis_cluster)
    check = runbook(fix, tags='remediate', check=True)
    assert recap(check)['failed'] == 0 and state(redis_cluster) == before

    first = runbook(fix, tags='remediate')
    assert recap(first)['failed'] == 0 and recap(first)['changed'] == 1, first.stdout[-3000:]
    assert redis_cluster.roles(replica)[replica][0] == 'primary'
    assert redis_cluster.node(old).info('replication')['role'] == 'slave'
    assert verdicts(first) == ['ok', 'ok']
    second = runbook(fix, tags='remediate')
    assert recap(second)['changed'] == 0, second.stdout[-3000:]


def test_killed_primary_is_restarted_only_when_confirmed(redis_cluster, runbook):  # noqa: F811
    victim = redis_cluster.primaries()[0]
    replica = next(p for p, (role, m) in redis_cluster.roles().items() if m == victim)
    redis_cluster.stop_node(victim)
    deadline = time.time() + 30
    while time.time() < deadline and redis_cluster.roles(replica)[replica][0] != 'primary':
        time.sleep(0.2)
    redis_cluster.wait_ok()
    seed = {'oncall_redis_port': replica}

    diag = runbook(seed)
    assert recap(diag)['failed'] == 0
    assert verdicts(diag) == ['warning'], diag.stdout[-3000:]
    assert '127.0.0.1:%d (primary)' % victim in diag.stdout

    fix = dict(seed, redis_failure_restart_command=redis_cluster.restart_command())
    refused = runbook(fix, tags='remediate')
    assert recap(refused)['changed'] == 0 and 'redis_failure_restart_confirm=true' in refused.stdout

    fix['redis_failure_restart_confirm'] = True
    before = state(redis_cluster)
    check = runbook(fix, tags='remediate', check=True)
    assert recap(check)['failed'] == 0 and state(redis_cluster) == before

    first = runbook(fix, tags='remediate')
    assert recap(first)['failed'] == 0 and recap(first)['changed'] == 1, first.stdout[-3000:]
    assert verdicts(first) == ['warning', 'ok'], first.stdout[-3000:]
    assert redis_cluster.node(victim).info('replication')['role'] == 'slave'
    second = runbook(fix, tags='remediate')
    assert recap(second)['changed'] == 0 and verdicts(second)[0] == 'ok', second.stdout[-3000:]
