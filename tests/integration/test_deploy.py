# -*- coding: utf-8 -*-
"""playbooks/deploy.yml and rollback.yml against the lab: real Redis and PostgreSQL 15, real
BullMQ and Bull queues, and the sample app (lab/app) under real pm2 from npm, with its own
PM2_HOME inside the test lab's temporary directory."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import threading
import time

import pytest

from helpers.app import LOCK_KEY, app_lab, app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers import recap, dump_keys, free_port


def out(proc):
    return proc.stdout[-4000:] + proc.stderr[-2000:]


NEW_MIGRATION = '20261124000000'


def test_good_deploy_new_version_answers_and_queues_end_as_they_were(app_lab):
    app_lab.pause('email', 'bull')  # paused before the deploy: must stay paused
    before = app_lab.paused()
    assert before['email'] and not before['ai-analysis']
    restarts = app_lab.restarts()

    run = app_lab.deploy('2.0.0')
    assert run.returncode == 0, out(run)
    assert app_lab.version() == '2.0.0' and app_lab.live_release() == '2.0.0'
    assert app_lab.restarts() != restarts  # pm2 jlist: the process was really restarted
    assert app_lab.paused() == before
    migrations, notes = app_lab.db_state()
    assert NEW_MIGRATION in migrations and notes

    record = app_lab.records()[-1]
    assert record['outcome'] == 'deployed' and record['previous_version'] == '1.0.0'
    assert record['queues']['already_paused'] == ['email']
    assert sorted(record['queues']['paused_by_run']) == sorted(record['queues']['resumed'])
    assert 'email' not in record['queues']['paused_by_run'] and record['queues']['still_paused'] == []
    assert [p['phase'] for p in record['phases']][:9] == [
        'pre-checks', 'backup', 'pause', 'migrate', 'switch', 'restart', 'smoke', 'resume', 'watch']
    assert os.path.isfile(record['backup'])
    assert app_lab.redis().exists(LOCK_KEY) == 0  # the lock was released

    again = app_lab.deploy('2.0.0')
    assert recap(again)['changed'] == 0 and recap(again)['failed'] == 0, out(again)
    assert 'already live' in again.stdout


def test_check_mode_prints_the_plan_and_changes_nothing(app_lab):
    app_lab.pause('email', 'bull')
    r = app_lab.redis()
    keys, db, restarts = dump_keys(r), app_lab.db_state(), app_lab.restarts()
    backups = sorted(os.listdir(os.path.join(app_lab.env['LAB_DIR'], 'backups'))) \
        if os.path.isdir(os.path.join(app_lab.env['LAB_DIR'], 'backups')) else []

    run = app_lab.deploy('2.0.0', check=True)
    assert run.returncode == 0, out(run)
    assert 'CHECK MODE: this is the plan' in run.stdout
    for step in ('pause queues', 'migrations: env', 'switch', 'smoke tests', 'watch'):
        assert step in run.stdout, step
    assert dump_keys(r) == keys, 'check mode changed Redis (queue states, lock)'
    assert app_lab.db_state() == db, 'check mode changed the database'
    assert app_lab.version() == '1.0.0' and app_lab.live_release() == '1.0.0'
    assert app_lab.restarts() == restarts, 'check mode restarted the app'
    assert not os.path.isdir(os.path.join(app_lab.app_dir, 'releases', '2.0.0'))
    now = os.path.join(app_lab.env['LAB_DIR'], 'backups')
    assert (sorted(os.listdir(now)) if os.path.isdir(now) else []) == backups
    assert app_lab.records()[-1]['outcome'] == 'planned'


def test_broken_release_is_rolled_back_automatically(app_lab):
    before = app_lab.paused()
    run = app_lab.deploy('2.1.0')  # lab/app/releases/2.1.0: /api/stats answers 500
    assert run.returncode != 0
    assert 'failed at smoke' in run.stdout and 'rolled back to 1.0.0' in run.stdout, out(run)
    assert app_lab.version() == '1.0.0' and app_lab.live_release() == '1.0.0'
    assert app_lab.get('/health')[0] == 200
    migrations, notes = app_lab.db_state()
    assert NEW_MIGRATION not in migrations and not notes  # the migration was rolled back
    assert app_lab.paused() == before
    record = app_lab.records()[-1]
    assert record['outcome'] == 'rolled back' and record['failed_phase'] == 'smoke'
    assert record['queues']['still_paused'] == []
    assert app_lab.redis().exists(LOCK_KEY) == 0


@pytest.mark.parametrize('fault,phase,extra', [
    ('bad_migration', 'migrate', {}),
    ('crash', 'restart', {'deploy_restart_timeout': '6s'}),
    ('health', 'restart', {'deploy_restart_timeout': '4s'}),
    ('smoke', 'smoke', {}),
    ('degrade', 'watch', {}),
])
def test_a_failure_at_any_step_leaves_no_queue_paused_by_the_deploy(app_lab, fault, phase, extra):
    app_lab.pause('notifications', 'bullmq')
    before, db = app_lab.paused(), app_lab.db_state()
    if fault == 'bad_migration':
        app_lab.artifact('3.0.0', bad_migration=True)
    else:
        app_lab.artifact('3.0.0', fault=fault, degrade_after=2)
    run = app_lab.deploy('3.0.0', artifacts=True, **extra)
    assert run.returncode != 0
    assert 'failed at %s:' % phase in run.stdout, out(run)
    assert app_lab.paused() == before
    assert app_lab.db_state() == db  # migrations rolled back (or never applied)
    app_lab.wait_version('1.0.0')
    assert app_lab.live_release() == '1.0.0'
    record = app_lab.records()[-1]
    assert record['failed_phase'] == phase and record['rolled_back'] is True, record
    assert 'notifications' in record['queues']['already_paused']
    assert sorted(record['queues']['resumed']) == sorted(record['queues']['paused_by_run'])
    assert app_lab.redis().exists(LOCK_KEY) == 0


class RedisStopper(object):
    """A smoke-test URL served by the test: answering it shuts the lab's Redis down (SHUTDOWN
    SAVE), so that Redis is down when the deploy resumes the queues."""

    def __init__(self, lab):
        self.port = free_port()
        redis_port = lab.redis_port

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                subprocess.run(['redis-cli', '-p', str(redis_port), 'shutdown', 'save'],
                               capture_output=True, check=False)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'redis stopped')

            def log_message(self, *args):
                pass
        self.server = http.server.HTTPServer(('127.0.0.1', self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def test_redis_down_at_resume_retries_then_fails_loudly_naming_the_queues(app_lab):
    app_lab.pause('email', 'bull')
    stopper = RedisStopper(app_lab)
    try:
        smoke = [{'name': 'version', 'url': 'http://127.0.0.1:%d/version' % app_lab.app_port},
                 {'name': 'stop redis', 'url': 'http://127.0.0.1:%d/' % stopper.port}]
        run = app_lab.deploy('2.0.0', deploy_smoke_tests=smoke, deploy_resume_retries=2,
                             deploy_resume_delay=1, deploy_restart_timeout='5s')
    finally:
        stopper.stop()
    assert run.returncode != 0
    m = re.search(r'could not resume (\d+) queue\(s\) it paused, STILL PAUSED: ([^(]+) \(', run.stdout)
    assert m, out(run)
    named = sorted(n.strip() for n in m.group(2).replace('\n', ' ').split(','))
    assert named == ['ai-analysis', 'app-events', 'card-generation', 'notifications']
    assert 'cannot reach Redis' in run.stdout
    assert run.stdout.count('FAILED - RETRYING: [lab]: Resume the queues') >= 2  # retried
    record = app_lab.records()[-1]
    assert sorted(record['queues']['still_paused']) == named

    up = app_lab.sh('up')  # Redis back with what it saved at shutdown
    assert up.returncode == 0, up.stdout + up.stderr
    paused = app_lab.paused()
    assert sorted(n for n, p in paused.items() if p) == sorted(named + ['email'])


def test_a_second_deploy_during_the_first_is_refused(app_lab):
    proc = app_lab.playbook_async('deploy.yml', {'deploy_version': '2.0.0', 'deploy_watch_period': '20s'})
    r = app_lab.redis()
    deadline = time.time() + 120
    while time.time() < deadline and not r.exists(LOCK_KEY):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.2)
    assert r.exists(LOCK_KEY), 'the first deploy never took the lock'
    second = app_lab.deploy('2.0.0')
    assert second.returncode != 0
    assert 'is held by deploy of 2.0.0' in second.stdout and 'another deploy is running' in second.stdout, out(second)
    stdout = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, stdout[-3000:]
    assert app_lab.version() == '2.0.0'
    assert r.exists(LOCK_KEY) == 0


def test_rollback_playbook_goes_back_to_the_recorded_release_once(app_lab):
    assert app_lab.deploy('2.0.0').returncode == 0
    r = app_lab.redis()
    keys, db, restarts = dump_keys(r), app_lab.db_state(), app_lab.restarts()
    check = app_lab.deploy(None, check=True, playbook='rollback.yml')
    assert check.returncode == 0, out(check)
    assert 'roll back 2.0.0 -> 1.0.0' in check.stdout
    assert dump_keys(r) == keys and app_lab.db_state() == db and app_lab.restarts() == restarts
    assert app_lab.version() == '2.0.0'

    run = app_lab.deploy(None, playbook='rollback.yml')
    assert run.returncode == 0, out(run)
    assert app_lab.version() == '1.0.0' and app_lab.live_release() == '1.0.0'
    migrations, notes = app_lab.db_state()
    assert NEW_MIGRATION not in migrations and not notes
    assert app_lab.records('rollback')[-1]['to'] == '1.0.0'

    again = app_lab.deploy(None, playbook='rollback.yml')
    assert recap(again)['changed'] == 0 and recap(again)['failed'] == 0, out(again)
    assert 'nothing to roll back' in again.stdout
