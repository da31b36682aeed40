# -*- coding: utf-8 -*-
"""The closed loop end to end in the lab (issue 18), two faults at once in one lab, one wait:

- APIServiceDown: the sample app stopped for real under pm2. The lab's real Prometheus fires,
  the real Alertmanager delivers to the real ansible-rulebook (extensions/eda/rulebooks/alerts.yml,
  on the port and with the token the lab's Alertmanager uses), playbooks/alert_runbook.yml runs
  playbooks/runbooks/api_down.yml with --tags remediate (the catalog marks the restart safe),
  pm2 restarts the app, and the alert resolves in Prometheus and Alertmanager.
- QueueBacklog: 100 jobs pushed onto the Bull queue `email` (25 seeded -> 125 waiting: at or past
  100 and under 500, so the warning rule). The catalog does not mark its remediation safe, so
  alert_runbook.yml runs queue_backlog.yml without --tags remediate: a diagnosis that names the
  backlog and applies nothing. Once that report is written the test removes the 100 jobs the way
  bench/alert_loop.py does: that stands in for the worker scaling a person would do after reading
  the report (the runbook's next command), and the alert resolves.

Both faults are injected together and AlertLoop.run_together() follows both loops in the same
polling rounds, so CI waits for the slower loop only. The queue metrics come from the app's own
/metrics, so QueueBacklog can only fire once the APIServiceDown loop has restarted the app (a
cascade as in production); the rulebook runs its actions one at a time (execution_strategy
sequential). Each dispatch and each runbook run writes its own report file (runbook_report never
writes over an existing file; the two runbooks' reports carry their own names).
Lab intervals: scrape and evaluation 5 s, group_wait 5 s, group_interval 10 s, and the two
alerts' `for:` shortened to 10 s in the lab's copy of the rules (tests/helpers/alert_loop.py).
The timings per alert are measured by bench/alert_loop.py (never asserted here)."""

from __future__ import annotations

import json
import os

import pytest

from helpers.alert_loop import AlertLoop, wait_quiet

BACKLOG = 100


@pytest.fixture(scope='module')
def loop(lab_session):
    seeded = lab_session.sh('seed')
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    wait_quiet(lab_session)   # the seed restarted the app: no leftover pending APIServiceDown
    running = AlertLoop(lab_session, for_seconds=10)
    yield running
    running.stop()


@pytest.fixture(scope='module')
def outcome(loop, lab_session):
    """One run of both loops; the tests below read its results."""
    client = lab_session.redis()
    try:
        waiting_before = client.llen('bull:email:wait')
    finally:
        client.close()
    states = loop.prom_states()
    assert loop.app_status() == ['online'] and 'APIServiceDown' not in states and 'QueueBacklog' not in states, states
    assert waiting_before + BACKLOG < 500, waiting_before   # the warning rule, not the critical one

    name, push, drain = loop.queue_backlog('email', BACKLOG)
    seen = {}

    def heal():
        # what the runbook left behind (it only diagnoses), then the workers' drain
        client = lab_session.redis()
        try:
            seen['waiting_at_report'] = client.llen('bull:email:wait')
        finally:
            client.close()
        drain()

    try:
        results = loop.run_together([loop.app_stopped(), (name, push, heal)], timeout=500)
    finally:
        loop.restart_app()
        drain()
    return dict(results, waiting_before=waiting_before, **seen)


def dispatched(res):
    return res['dispatch_report']['tables'][0]['rows'][0]


def test_app_stopped_fires_dispatches_restarts_and_resolves(loop, outcome):
    res = outcome['APIServiceDown']
    row = dispatched(res)
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


def test_queue_backlog_fires_diagnoses_only_and_resolves_once_drained(loop, outcome):
    res = outcome['QueueBacklog']
    row = dispatched(res)
    assert (row['playbook'], row['remediate'], row['status']) == ('playbooks/runbooks/queue_backlog.yml', False, 'firing'), row
    labels = json.loads(row['labels']) if isinstance(row['labels'], str) else row['labels']
    assert (labels['queue'], labels['severity']) == ('email', 'warning'), labels
    # the diagnosis names the backlog of email with the warning of runbook 001 7.3 (> 100)
    runbook = res['runbook_report']
    waiting = outcome['waiting_before'] + BACKLOG
    email = [f for f in runbook['findings'] if f['object'] == 'email waiting']
    assert len(email) == 1 and (email[0]['figure'], email[0]['verdict']) == (waiting, 'warning'), email
    # the other queues Prometheus watches (the app's /metrics) are within the thresholds; the
    # seeded lab's list queue festivals:queue:default (150) and failure ratios are findings too
    others = {f['object']: f['verdict'] for f in runbook['findings']
              if f['object'] in ('ai-analysis waiting', 'notifications waiting', 'card-generation waiting')}
    assert others == dict.fromkeys(('ai-analysis waiting', 'notifications waiting', 'card-generation waiting'), 'ok'), others
    assert 'email' in runbook['incident']['impact'].split(': ', 1)[1].split(', '), runbook['incident']
    # the report's verdict is its worst finding, and the dispatch report carries it
    rank = ['ok', 'unknown', 'warning', 'critical']
    worst = max((f['verdict'] for f in runbook['findings']), key=rank.index)
    assert runbook['verdict'] == worst and row['runbook_verdict'] == worst, runbook['findings']
    # diagnosis only: no remediation step ran, nothing applied, the backlog still there
    assert runbook['mode'] == 'apply' and runbook['summary']['applied'] == 0, runbook['summary']
    assert runbook['steps'] and all(s.get('not_run') == 'diagnosis only' and not s['results'] for s in runbook['steps']), runbook['steps']
    assert outcome['waiting_at_report'] == waiting
    assert 0 < res['firing'] <= res['dispatched'] + 1 <= res['remediation_done'] + 1 <= res['resolved'] + 1, res


def test_the_two_runs_wrote_their_own_reports(outcome):
    api, queue = outcome['APIServiceDown'], outcome['QueueBacklog']
    assert api['dispatch_report']['path'] != queue['dispatch_report']['path']
    paths = [dispatched(api)['runbook_report'], dispatched(queue)['runbook_report']]
    assert [os.path.basename(p).split('-2')[0] for p in paths] == ['api_down', 'queue_backlog'], paths
    assert (api['runbook_report']['name'], queue['runbook_report']['name']) == ('api_down', 'queue_backlog')
