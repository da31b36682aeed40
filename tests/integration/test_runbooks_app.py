# -*- coding: utf-8 -*-
"""The application runbooks (api_down, high_error_rate, high_latency) against the lab: the
sample app (lab/app) under real pm2 from npm with its own PM2_HOME, real Redis and PostgreSQL
15, broken for real (app stopped with pm2, a release answering 5xx deployed with deploy.yml,
a release with the "slow" fault). Each runbook: diagnosis healthy and broken, --check changes
nothing (pm2 restart counts and pids, live release), remediation heals, a second remediation
changes nothing."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

from helpers.app import app_lab, app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers import recap, NODE_DIR


def out(proc):
    return proc.stdout[-4000:] + proc.stderr[-2000:]


def verdict(proc, what):
    found = re.findall(r'%s verdict (ok|warning|critical)' % what, proc.stdout)
    assert found, out(proc)
    return found[0]


def findings(lab, name):
    """{object: finding} of the runbook's latest JSON report."""
    with open(os.path.join(lab.report_dir, '%s-latest.json' % name)) as fh:
        report = json.load(fh)
    return dict((f['object'], f) for f in report['findings'])


def state(lab):
    """What a remediation may change: pm2 processes (id, restarts, status, pid) and the live release."""
    procs = sorted((p['pm_id'], p['pm2_env']['restart_time'], p['pm2_env']['status'], p['pid']) for p in lab.jlist())
    return procs, lab.live_release()


def run(lab, name, check=False, remediate=False, **extra):
    proc = lab.playbook('runbooks/%s.yml' % name, extra_vars=extra or None, check=check,
                        tags='remediate' if remediate else None)
    # a critical verdict fails the job on purpose (oncall_fail_on), after the report; no other failure
    counts = recap(proc)
    assert counts['failed'] == 0 and (proc.returncode == 0) != counts['verdict_failed'], out(proc)
    return proc


def test_api_down_healthy_then_stopped_for_real_restart_heals(app_lab):
    healthy = run(app_lab, 'api_down')
    assert verdict(healthy, 'API') == 'ok', out(healthy)
    before = state(app_lab)
    nothing = run(app_lab, 'api_down', remediate=True)
    assert recap(nothing)['changed'] == 0, out(nothing)
    assert state(app_lab) == before

    app_lab.pm2('stop', 'app')
    down = run(app_lab, 'api_down')
    assert recap(down)['changed'] == 0, out(down)  # the diagnosis is read-only
    assert verdict(down, 'API') == 'critical', out(down)
    found = findings(app_lab, 'api_down')
    assert found['app processes (pm2)']['figure'] == '0 of 1 online'
    assert found['app processes (pm2)']['verdict'] == 'critical'
    assert found['Redis PING']['verdict'] == 'ok' and found['PostgreSQL SELECT 1']['verdict'] == 'ok'

    stopped = state(app_lab)
    assert [p[2] for p in stopped[0]] == ['stopped']
    check = run(app_lab, 'api_down', check=True, remediate=True)
    assert state(app_lab) == stopped, out(check)

    fixed = run(app_lab, 'api_down', remediate=True)
    assert recap(fixed)['changed'] > 0, out(fixed)
    assert re.search(r'API verdict after remediation ok \(before: critical\)', fixed.stdout), out(fixed)
    assert app_lab.get('/health')[0] == 200 and app_lab.version() == '1.0.0'
    after = state(app_lab)
    assert [p[2] for p in after[0]] == ['online']

    again = run(app_lab, 'api_down', remediate=True)
    assert recap(again)['changed'] == 0, out(again)
    assert verdict(again, 'API') == 'ok'
    assert state(app_lab) == after


def test_high_error_rate_broken_release_deployed_for_real_rollback_heals(app_lab):
    healthy = run(app_lab, 'high_error_rate')
    assert verdict(healthy, 'error rate') == 'ok', out(healthy)
    found = findings(app_lab, 'high_error_rate')
    rate = [f for o, f in found.items() if o.startswith('error rate')][0]
    assert rate['figure'] == '0.0%' and rate['verdict'] == 'ok'

    # release 2.1.0 ("smoke" fault: /api/stats answers 500) deployed for real, its smoke tests off
    deployed = app_lab.deploy('2.1.0', deploy_smoke_tests=[])
    assert deployed.returncode == 0, out(deployed)
    assert app_lab.version() == '2.1.0' and app_lab.get('/api/stats')[0] == 500
    broken = run(app_lab, 'high_error_rate')
    assert verdict(broken, 'error rate') == 'critical', out(broken)
    found = findings(app_lab, 'high_error_rate')
    rate = [f for o, f in found.items() if o.startswith('error rate')][0]
    assert rate['verdict'] == 'critical' and '(stats answering 5xx)' in rate['figure']
    assert 'release 2.1.0' in found['last deploy']['figure'] and 'previous 1.0.0' in found['last deploy']['figure']
    with open(os.path.join(app_lab.report_dir, 'high_error_rate-latest.json')) as fh:
        groups = [t for t in json.load(fh)['tables'] if t['title'] == 'App log errors by message'][0]['rows']
    assert any('/api/stats is broken (fault: smoke)' in g['message'] and g['count'] >= 1 for g in groups), groups

    before = state(app_lab)
    no_switch = run(app_lab, 'high_error_rate', remediate=True)
    assert recap(no_switch)['changed'] == 0, out(no_switch)
    assert 'roll back with -e high_error_rate_rollback=true' in no_switch.stdout
    check = run(app_lab, 'high_error_rate', check=True, remediate=True, high_error_rate_rollback=True)
    assert state(app_lab) == before, out(check)
    assert app_lab.version() == '2.1.0'

    fixed = run(app_lab, 'high_error_rate', remediate=True, high_error_rate_rollback=True)
    assert re.search(r'error rate after remediation ok: 0.0% \(before: critical', fixed.stdout), out(fixed)
    assert app_lab.live_release() == '1.0.0' and app_lab.version() == '1.0.0'
    assert app_lab.get('/api/stats')[0] == 200
    after = state(app_lab)

    again = run(app_lab, 'high_error_rate', remediate=True, high_error_rate_rollback=True)
    assert recap(again)['changed'] == 0, out(again)
    assert verdict(again, 'error rate') == 'ok'
    assert state(app_lab) == after


def latency_findings(lab):
    return dict((o, f) for o, f in findings(lab, 'high_latency').items() if o.startswith('latency '))


def test_high_latency_slow_release_deployed_for_real_rollback_heals(app_lab):
    fast = run(app_lab, 'high_latency', app_health_samples=10)
    assert 'latency verdict' in fast.stdout, out(fast)
    found = latency_findings(app_lab)
    assert sorted(found) == ['latency stats (10 requests)', 'latency version (10 requests)']
    assert all(f['verdict'] == 'ok' for f in found.values()), found

    # a release with the "slow" fault: /api/* answer after 900 ms, for real
    app_lab.artifact('2.2.0', fault='slow', slow_ms=900)
    deployed = app_lab.deploy('2.2.0', artifacts=True)
    assert deployed.returncode == 0, out(deployed)
    assert app_lab.version() == '2.2.0'
    slow = run(app_lab, 'high_latency', app_health_samples=10)
    assert verdict(slow, 'latency') == 'critical', out(slow)
    found = latency_findings(app_lab)
    assert found['latency stats (10 requests)']['verdict'] == 'critical', found
    assert found['latency version (10 requests)']['verdict'] == 'ok', found
    p95 = float(re.search(r'p95 ([0-9.]+) ms', found['latency stats (10 requests)']['figure']).group(1))
    assert p95 >= 900  # the fault's delay is a floor, not a timing assertion

    before = state(app_lab)
    check = run(app_lab, 'high_latency', check=True, remediate=True, app_health_samples=10,
                high_latency_rollback=True)
    assert state(app_lab) == before and app_lab.version() == '2.2.0', out(check)

    fixed = run(app_lab, 'high_latency', remediate=True, app_health_samples=10, high_latency_rollback=True)
    assert 'latency after remediation ok' in fixed.stdout, out(fixed)
    assert app_lab.live_release() == '1.0.0' and app_lab.version() == '1.0.0'
    after = state(app_lab)

    again = run(app_lab, 'high_latency', remediate=True, app_health_samples=10, high_latency_rollback=True)
    assert recap(again)['changed'] == 0, out(again)
    # The slow release is gone: no endpoint shows its 900 ms floor (every request of the slow
    # release takes that long, so its p95 does). Not "every verdict ok": with 10 samples p95 and
    # p99 are the slowest request, and on a loaded CI machine one request of the healthy release
    # can pass 500 ms (a fresh-clone run saw it).
    found = latency_findings(app_lab)
    assert all(float(re.search(r'p95 ([0-9.]+) ms', f['figure']).group(1)) < 900 for f in found.values()), found
    assert state(app_lab) == after


def test_queue_backlog_scale_hook_scales_a_real_pm2_worker(app_lab):
    """queue_backlog.yml's queue_backlog_workers, scaled through the services role's
    scale_workers entry point: a real BullMQ worker (lab/node/worker.js) under the lab's pm2,
    stopped while 150 jobs pile up in app-events for real, scaled to 2 instances."""
    app_lab.pm2('start', os.path.join(NODE_DIR, 'worker.js'), '--name', 'events-worker', '-i', '1', '--',
                '--flavor', 'bullmq', '--queue', 'app-events', '--port', str(app_lab.redis_port))
    try:
        app_lab.pm2('stop', 'events-worker')
        for count in range(150):
            req = urllib.request.Request('http://127.0.0.1:%d/api/events' % app_lab.app_port, data=b'', method='POST')
            with urllib.request.urlopen(req, timeout=5) as r:
                assert r.status == 201, count
        hook = {'queue_backlog_workers': {'app-events': {'name': 'events-worker', 'instances': 2}},
                'queue_backlog_retry_failed': False, 'oncall_queues': [{'name': 'app-events', 'flavor': 'bullmq'}]}

        def workers():
            return sorted((p['pm_id'], p['pm2_env']['status'], p['pid']) for p in app_lab.jlist()
                          if p['name'] == 'events-worker')

        before = workers()
        assert [w[1] for w in before] == ['stopped']
        check = run(app_lab, 'queue_backlog', check=True, remediate=True, **hook)
        assert workers() == before, out(check)

        scaled = run(app_lab, 'queue_backlog', remediate=True, **hook)
        assert 'Scale the workers of the queues over threshold' in scaled.stdout, out(scaled)
        assert [w[1] for w in workers()] == ['online', 'online'], out(scaled)
        deadline = time.time() + 60
        while time.time() < deadline and app_lab.redis().llen('bull:app-events:wait') > 0:
            time.sleep(0.5)
        assert app_lab.redis().llen('bull:app-events:wait') == 0
        after = workers()

        again = run(app_lab, 'queue_backlog', remediate=True, **hook)
        assert recap(again)['changed'] == 0, out(again)
        assert workers() == after
    finally:
        app_lab.pm2('delete', 'events-worker')
