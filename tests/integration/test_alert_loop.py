# -*- coding: utf-8 -*-
"""The closed loop end to end in the lab (issue 18): the sample app stopped for real under pm2,
the lab's real Prometheus fires APIServiceDown, the real Alertmanager delivers it to the real
ansible-rulebook (extensions/eda/rulebooks/alerts.yml, on the port and with the token the lab's
Alertmanager uses), playbooks/alert_runbook.yml runs playbooks/runbooks/api_down.yml with
--tags remediate (the catalog marks the restart safe), pm2 restarts the app, and the alert
resolves in Prometheus and Alertmanager. Lab intervals: scrape and evaluation 5 s, group_wait
5 s, group_interval 10 s, and APIServiceDown's `for:` shortened to 10 s in the lab's copy of the
rules (tests/alert_loop_harness.py). The queue-backlog loop and the timings are in
bench/alert_loop.py (CI time)."""

from __future__ import annotations

import pytest

from alert_loop_harness import AlertLoop


@pytest.fixture(scope='module')
def loop(lab_session):
    seeded = lab_session.sh('seed')
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    running = AlertLoop(lab_session, for_seconds=10)
    yield running
    running.stop()


def test_app_stopped_fires_dispatches_restarts_and_resolves(loop):
    assert loop.app_status() == ['online'] and loop.prom_state('APIServiceDown') is None
    try:
        res = loop.run('APIServiceDown', lambda: loop.pm2('stop', 'app'), timeout=400)
    finally:
        if loop.app_status() != ['online']:
            loop.pm2('restart', 'app')
    row = res['dispatch_report']['tables'][0]['rows'][0]
    assert (row['playbook'], row['remediate'], row['status']) == ('playbooks/runbooks/api_down.yml', True, 'firing'), row
    # the runbook found the app down, restarted it and ended ok; the dispatch carries that verdict
    runbook = res['runbook_report']
    assert runbook['mode'] == 'apply' and runbook['verdict'] == 'ok', runbook['findings']
    assert row['runbook_verdict'] == 'ok'
    restart = [s for s in runbook['steps'] if s['name'].startswith('Restart')][0]
    assert restart['results'] and restart['results'][0]['changed'], restart
    assert runbook['incident']['impact'].startswith('API down: '), runbook['incident']
    assert loop.app_status() == ['online']
    assert 0 < res['firing'] <= res['dispatched'] + 1 <= res['remediation_done'] + 1 <= res['resolved'] + 1, res
