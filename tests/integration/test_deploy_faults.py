# -*- coding: utf-8 -*-
"""Faults in the middle of a deploy (issue 14), against the lab: real Redis, PostgreSQL, pm2
and the sample app. ansible-playbook is SIGKILLed (with its workers) in the middle of a deploy;
the lock is a lease renewed at every phase; the records have unique names and -latest moves
only when the live release changed; a dry run after `lab/lab.sh seed` is truthful."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from helpers.app import LOCK_KEY, QUEUES, app_lab, app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers import dump_keys, run_module

STATE_KEY = LOCK_KEY + ':state'
ALL = sorted(q[0] for q in QUEUES)


def out(proc):
    """The errors of a run, then its end."""
    text = (proc.stdout or '') + (proc.stderr or '')
    errors = [line for line in text.splitlines() if 'ERROR' in line or 'fatal:' in line]
    return '\n'.join(errors)[-4000:] + '\n...\n' + text[-3000:]


def flat(text):
    """Ansible folds long messages over lines: one line, single spaces."""
    return re.sub(r'\s+', ' ', text)


def full(proc):
    """The whole output of a run, on one line."""
    return flat((proc.stdout or '') + (proc.stderr or ''))


def wait_for(what, cond, proc, timeout=300, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            text = proc.communicate()[0]
            fatal = [line for line in text.splitlines() if 'fatal:' in line or 'msg:' in line or 'ERROR' in line]
            raise AssertionError('the deploy ended before %s: %s\n%s' % (what, '\n'.join(fatal), text[-2000:]))
        time.sleep(step)
    raise AssertionError('timed out waiting for %s' % what)


def paused_names(lab):
    return sorted(n for n, p in lab.paused().items() if p)


def latest(lab):
    path = os.path.join(lab.report_dir, 'deploy-lab-latest.json')
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


# ---- the lock module: lease, fence, adoption (real redis-server) -----------------------------

def test_lock_lease_fence_and_adoption_of_a_dead_runs_queues(redis_server, r):
    conn = {'login_port': redis_server.port}
    q = [{'name': 'emails', 'flavor': 'bullmq'}, {'name': 'cards', 'flavor': 'bull'}]
    a = run_module('deploy_lock', dict(conn, owner='A', holder='deploy A', ttl='30', phase='pre-checks',
                                       info={'version': '2.0.0'}))
    assert a['changed'] and not a['adopted']
    renewed = run_module('deploy_lock', dict(conn, owner='A', holder='deploy A', state='renewed', ttl='120',
                                             phase='pause', paused=q))
    assert not renewed.failed and not renewed['changed'], renewed['msg']
    assert 60000 < r.pttl(LOCK_KEY) <= 120000
    assert json.loads(r.get(STATE_KEY))['paused'] == q

    # the fence: another token cannot renew, and the lock stays A's
    fenced = run_module('deploy_lock', dict(conn, owner='B', state='renewed', ttl='60', phase='migrate'))
    assert fenced.failed and fenced['msg'].startswith('lock %s is no longer held by this run (owner B): ' % LOCK_KEY)
    assert json.loads(r.get(LOCK_KEY))['owner'] == 'A'

    # a live run's lock: refused, naming the queues it paused and the token to break it with
    refused = run_module('deploy_lock', dict(conn, owner='B'))
    assert refused.failed and 'queues it paused and that stay paused until it ends: emails, cards' in refused['msg']
    assert 'break_owner=A' in refused['msg'], refused['msg']

    # A dies: its last lease (1 s) runs out, the record stays; B adopts A's queues with the lock
    assert not run_module('deploy_lock', dict(conn, owner='A', holder='deploy A', state='renewed', ttl='1',
                                              phase='pause')).failed
    time.sleep(1.2)
    assert r.exists(LOCK_KEY) == 0 and json.loads(r.get(STATE_KEY))['owner'] == 'A'
    lost = run_module('deploy_lock', dict(conn, owner='A', state='renewed', ttl='60', phase='migrate'))
    assert lost.failed and 'it expired' in lost['msg'] and r.exists(LOCK_KEY) == 0
    planned = run_module('deploy_lock', dict(conn, owner='B', holder='deploy B'), check=True)
    assert planned['adopted']['owner'] == 'A' and r.exists(LOCK_KEY) == 0  # check mode writes nothing
    b = run_module('deploy_lock', dict(conn, owner='B', holder='deploy B'))
    assert b['adopted']['owner'] == 'A' and b['adopted']['paused'] == q and b['adopted']['phase'] == 'pause'
    state = json.loads(r.get(STATE_KEY))
    assert state['owner'] == 'B' and state['paused'] == q  # adopted in the same call as the lock
    # B releases with one queue still paused: the record stays for the next run
    run_module('deploy_lock', dict(conn, owner='B', state='absent', paused=q[:1]))
    assert r.exists(LOCK_KEY) == 0 and json.loads(r.get(STATE_KEY))['paused'] == q[:1]
    c = run_module('deploy_lock', dict(conn, owner='C', holder='deploy C'))
    assert c['adopted']['paused'] == q[:1]

    # break_owner: only the named token's lock is taken over
    wrong = run_module('deploy_lock', dict(conn, owner='D', break_owner='X'))
    assert wrong.failed and wrong['msg'].startswith('break_owner X does not hold the lock')
    broke = run_module('deploy_lock', dict(conn, owner='D', holder='recovery', break_owner='C'))
    assert broke['changed'] and broke['plan'][0]['kind'] == 'break' and json.loads(r.get(LOCK_KEY))['owner'] == 'D'
    assert broke['adopted']['owner'] == 'C' and broke['adopted']['paused'] == q[:1]
    run_module('deploy_lock', dict(conn, owner='D', state='absent', paused=[]))
    assert r.exists(LOCK_KEY) == 0 and r.exists(STATE_KEY) == 0


# ---- 1. a deploy killed right after the pause ------------------------------------------------

def test_a_deploy_killed_after_the_pause_is_refused_loudly_then_recovered_by_one_command(app_lab):
    app_lab.pause('email', 'bull')  # deliberately paused: stays paused through all of this
    proc = app_lab.playbook_async('deploy.yml', {'deploy_version': '2.0.0'}, session=True)
    wait_for('the migrations', lambda: (app_lab.lock_state()[1] or {}).get('phase') == 'migrate', proc)
    app_lab.kill(proc)
    lock, state = app_lab.lock_state()
    token = lock['owner']
    stranded = sorted(q['name'] for q in state['paused'])
    assert stranded == sorted(set(ALL) - {'email'})
    assert paused_names(app_lab) == ALL and app_lab.redis().pttl(LOCK_KEY) > 0

    rerun = app_lab.deploy('2.0.0')
    text = full(rerun)
    assert rerun.returncode != 0
    assert 'queues it paused and that stay paused until it ends: ' + ', '.join(q['name'] for q in state['paused']) in text, text
    command = 'ansible-playbook playbooks/deploy.yml -e deploy_recover=true -e deploy_break_lock=%s' % token
    assert command in text, text
    assert paused_names(app_lab) == ALL and app_lab.lock_state()[0]['owner'] == token  # the refusal changed nothing
    assert latest(app_lab) is None  # a refused deploy never writes the rollback target

    rollback = app_lab.deploy(None, playbook='rollback.yml')
    assert rollback.returncode != 0 and 'break_owner=%s' % token in full(rollback), out(rollback)
    assert paused_names(app_lab) == ALL

    recover = app_lab.deploy(None, deploy_recover=True, deploy_break_lock=token)
    text = full(recover)
    assert recover.returncode == 0, text
    assert 'resumed %s, paused by the dead run %s' % (', '.join(q['name'] for q in state['paused']), token) in text, text
    assert paused_names(app_lab) == ['email']  # the deliberate pause is kept, the stranded ones resumed
    assert app_lab.lock_state() == (None, None)
    record = app_lab.records()[-1]
    assert record['outcome'] == 'recovered' and record['recovered']['from_owner'] == token
    assert sorted(record['recovered']['queues']) == stranded and record['recovered']['from_phase'] == 'migrate'
    assert app_lab.version() == '1.0.0'


# ---- 2. killed between the switch and the restart -------------------------------------------

def kill_between_switch_and_restart(app_lab, ttl):
    proc = app_lab.playbook_async('deploy.yml', {'deploy_version': '2.0.0', 'deploy_lock_ttl': ttl}, session=True)
    wait_for('the switch', lambda: app_lab.live_release() == '2.0.0', proc)
    app_lab.kill(proc)
    assert app_lab.version() == '1.0.0', 'the kill came after the restart: the test did not reproduce the fault'
    lock, state = app_lab.lock_state()
    assert state['phase'] == 'switch' and lock is not None
    return lock['owner'], state


def test_killed_between_switch_and_restart_the_next_deploy_finishes_it_after_the_lease(app_lab):
    restarts = app_lab.restarts()
    token, state = kill_between_switch_and_restart(app_lab, '60s')
    assert app_lab.live_release() == '2.0.0' and paused_names(app_lab) == ALL
    deadline = time.time() + 100
    while app_lab.redis().exists(LOCK_KEY) and time.time() < deadline:
        time.sleep(0.5)
    assert app_lab.redis().exists(LOCK_KEY) == 0, 'the dead run\'s lease did not run out'

    rerun = app_lab.deploy('2.0.0')
    text = full(rerun)
    assert rerun.returncode == 0, text
    assert 'already live' not in text
    assert 'is linked but not running' in text and 'answers 1.0.0' in text, text
    assert 'paused by the dead run %s' % token in text
    assert app_lab.version() == '2.0.0' and app_lab.restarts() != restarts
    assert paused_names(app_lab) == []
    assert app_lab.lock_state() == (None, None)
    record = app_lab.records()[-1]
    assert record['outcome'] == 'deployed' and record['previous_version'] == '1.0.0'
    assert sorted(record['recovered']['queues']) == ALL
    assert latest(app_lab)['owner'] == record['owner']  # the rollback target: back to 1.0.0

    again = app_lab.deploy('2.0.0')
    assert again.returncode == 0 and 'already live and running' in again.stdout, out(again)


# ---- 3. the lock is renewed while the deploy runs -------------------------------------------

def test_a_deploy_longer_than_its_lock_ttl_keeps_the_lock_and_refuses_a_second(app_lab):
    ttl = 60  # longer than any phase but the watch takes on this loaded 2-core machine
    proc = app_lab.playbook_async('deploy.yml', {'deploy_version': '2.0.0', 'deploy_lock_ttl': '%ds' % ttl,
                                                 'deploy_watch_period': '90s'}, session=True)
    r = app_lab.redis()
    wait_for('the lock', lambda: r.exists(LOCK_KEY), proc)
    first = app_lab.lock_state()[0]
    wait_for('the lease to be outlived', lambda: time.time() > first['acquired_at'] + ttl + 5, proc, timeout=600,
             step=0.5)
    lock = app_lab.lock_state()[0]
    assert lock and lock['owner'] == first['owner'], 'the deploy lost its lock after its ttl'
    assert lock['renewed_at'] > first['acquired_at'] + 1
    second = app_lab.deploy('2.0.0')
    assert second.returncode != 0 and 'another deploy is running' in full(second), out(second)
    stdout = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, stdout[-3000:]
    assert app_lab.version() == '2.0.0' and app_lab.lock_state() == (None, None)
    record = [rec for rec in app_lab.records() if rec['owner'] == first['owner']][0]
    assert record['outcome'] == 'deployed' and record['total_seconds'] > ttl
    assert app_lab.records()[-1]['outcome'] == 'failed'  # the second deploy, refused


# ---- defect 6: a dry run after lab/lab.sh seed ----------------------------------------------

def test_check_after_seed_is_truthful_and_the_apps_queue_works(app_lab):
    seeded = app_lab.sh('seed')
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    r = app_lab.redis()
    assert r.exists('bull:app-events:meta')  # the app was restarted: its queue exists again
    req = subprocess.run(['curl', '-fsS', '-X', 'POST', 'http://127.0.0.1:%d/api/events' % app_lab.app_port],
                         capture_output=True, text=True, check=False)
    assert req.returncode == 0 and '"id"' in req.stdout, req.stderr
    assert r.llen('bull:app-events:wait') + r.zcard('bull:app-events:prioritized') >= 1

    run = app_lab.deploy('2.0.0', check=True)
    assert run.returncode == 0, out(run)
    assert 'CHECK MODE: this is the plan' in run.stdout and 'STILL PAUSED' not in run.stdout

    # the old seed's state: the app's queue flushed under it; a dry run says so and changes nothing
    for key in r.keys('bull:app-events:*'):
        r.delete(key)
    keys = dump_keys(r)
    run = app_lab.deploy('2.0.0', check=True)
    text = flat(run.stdout)
    assert run.returncode == 0, out(run)
    assert 'queue(s) app-events do not exist yet' in text and 'STILL PAUSED' not in text
    assert dump_keys(r) == keys
    assert app_lab.records()[-1]['outcome'] == 'planned' and app_lab.records()[-1]['queues']['still_paused'] == []
