# -*- coding: utf-8 -*-
"""playbooks/game_day.yml (runbook 004 "Weekly: Chaos Engineering") and
playbooks/full_system_test.yml ("Monthly: Full System Test") against one lab: a real Redis
really shut down (SHUTDOWN SAVE, by lab/lab.sh redis-stop) and started again, the lab app under
pm2 answering (or not) while it is down."""

from __future__ import annotations

import pytest

from helpers import recap
from helpers.runbooks import report, verdicts

EXPECTATIONS = ['Redis down: continue operating', 'Redis down: display "cache unavailable" to users',
                'Redis down: performance degraded but functional', 'Redis restarted: reconnect automatically',
                'Redis restarted: rebuild cache on first request']


@pytest.fixture(scope='module')
def gd_lab(lab_session):
    seeded = lab_session.sh('seed')
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    return lab_session


def redis_pid(lab):
    return lab.redis().info('server')['process_id']


def results(rep):
    return dict((f['object'], f['result']) for f in rep['findings'] if 'result' in f)


def test_game_day_refused_without_the_mark_or_confirm(gd_lab):
    lab = gd_lab
    pid = redis_pid(lab)
    for extra in ({}, {'game_day_confirm': False},
                  # an inventory without the mark (the lab's marks itself: overridden here)
                  {'game_day_confirm': True, 'oncall_game_day_allowed': False}):
        run = lab.playbook('game_day.yml', extra_vars=extra)
        assert run.returncode != 0 and 'game day refused on lab' in run.stdout, run.stdout[-2000:]
        assert 'nothing was stopped' in run.stdout
        assert recap(run)['changed'] == 0
    assert redis_pid(lab) == pid and lab.redis().ping()
    # --check with both: says what it would do, stops nothing
    dry = lab.playbook('game_day.yml', check=True, extra_vars={'game_day_confirm': True})
    assert recap(dry)['failed'] == 0 and 'would stop Redis' in dry.stdout, dry.stdout[-2000:]
    assert redis_pid(lab) == pid


def test_game_day_drill_reports_each_expectation(gd_lab):
    lab = gd_lab
    pid = redis_pid(lab)
    run = lab.playbook('game_day.yml', extra_vars={'game_day_confirm': True})
    counts = recap(run)
    assert counts['failed'] == 0 and counts['changed'] == 2, run.stdout[-3000:]
    rep = report(lab.report_dir, 'game_day')
    assert list(results(rep)) == EXPECTATIONS
    # the lab app degrades gracefully: its search answers from the database without Redis
    assert set(results(rep).values()) == {'passed'}, rep['findings']
    assert rep['verdict'] == 'ok'
    assert redis_pid(lab) != pid and lab.redis().ping()  # really stopped, and running again

    # an endpoint that needs Redis (/api/stats reads the BullMQ queue): the drill says so
    stats = lab.playbook('game_day.yml', extra_vars={
        'game_day_confirm': True, 'oncall_fail_on': 'never',
        'oncall_game_day_url': 'http://127.0.0.1:%s/api/stats' % open(lab.env['LAB_DIR'] + '/app/port').read().strip()})
    assert recap(stats)['failed'] == 0, stats.stdout[-3000:]
    rep = report(lab.report_dir, 'game_day')
    got = results(rep)
    assert got['Redis down: continue operating'] == 'failed'
    assert got['Redis down: display "cache unavailable" to users'] == 'failed'
    assert got['Redis restarted: reconnect automatically'] == 'passed'
    assert verdicts(rep)['Redis down: continue operating'] == 'critical' and rep['verdict'] == 'critical'
    assert lab.redis().ping()


def test_full_system_test_is_the_daily_check_plus_smoke_tests(gd_lab):
    lab = gd_lab
    run = lab.playbook('full_system_test.yml', extra_vars={'oncall_fail_on': 'never'})
    assert recap(run)['failed'] == 0, run.stdout[-3000:]
    daily = report(lab.report_dir, 'daily_health_check')
    rep = report(lab.report_dir, 'full_system_test')
    v = verdicts(rep)
    assert v['daily health check'] == daily['verdict']
    assert v['http app health'] == v['http api stats'] == v['http search'] == 'ok'
