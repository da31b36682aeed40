# -*- coding: utf-8 -*-
"""Rollbacks and deploy records, against the lab (real Redis, PostgreSQL, pm2 and the sample app):
a rollback after a deploy killed half-way, records treated as data (a record in Redis never
supplies a command, a record or version naming a path is refused), unique record names and a
-latest that moves only when the live release changed. Split from test_deploy_faults.py so that
the two long files run on different pytest workers."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from helpers.app import LOCK_KEY, app_lab, app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers import run_module
from test_deploy_faults import flat, full, kill_between_switch_and_restart, latest, out, paused_names


def test_rollback_after_a_deploy_killed_between_switch_and_restart(app_lab):
    token = kill_between_switch_and_restart(app_lab, '60s')[0]
    deadline = time.time() + 100
    while app_lab.redis().exists(LOCK_KEY) and time.time() < deadline:
        time.sleep(0.5)
    run = app_lab.deploy(None, playbook='rollback.yml')
    text = full(run)
    assert run.returncode == 0, out(run)
    assert 'paused by the dead run %s' % token in text and 'which died in phase switch' in text, text
    assert app_lab.live_release() == '1.0.0' and app_lab.version() == '1.0.0'
    migrations, notes = app_lab.db_state()
    assert '20261124000000' not in migrations and not notes  # the dead deploy's migration undone
    assert paused_names(app_lab) == [] and app_lab.lock_state() == (None, None)
    assert app_lab.records('rollback')[-1]['dead_deploy']['owner'] == token


def test_a_record_in_redis_never_supplies_the_migration_rollback_command(app_lab, tmp_path):
    """The record beside the lock lives in Redis, which the application (or whoever holds its
    password) may write: a command written there never runs; the inventory's command does, for the
    recorded releases."""
    token = kill_between_switch_and_restart(app_lab, '60s')[0]
    deadline = time.time() + 100
    while app_lab.redis().exists(LOCK_KEY) and time.time() < deadline:
        time.sleep(0.5)
    marker = tmp_path / 'pwned'
    r = app_lab.redis()
    state = json.loads(r.get(LOCK_KEY + ':state'))
    assert state['info']['migrate_rollback_command'], state  # the dead deploy had run its migrations
    state['info']['migrate_rollback_command'] = 'touch %s' % marker
    r.set(LOCK_KEY + ':state', json.dumps(state), keepttl=True)

    run = app_lab.deploy(None, playbook='rollback.yml')
    text = full(run)
    assert run.returncode == 0, out(run)
    assert not marker.exists() and 'touch %s' % marker not in text
    assert app_lab.live_release() == '1.0.0' and app_lab.version() == '1.0.0'
    migrations, notes = app_lab.db_state()
    assert '20261124000000' not in migrations and not notes  # undone by the inventory's command
    assert app_lab.records('rollback')[-1]['dead_deploy']['owner'] == token


@pytest.mark.parametrize('field, value', [('previous_version', '../../../../tmp/evil'),
                                          ('app_dir', '/tmp/elsewhere')])
def test_a_record_naming_a_path_is_refused_before_anything_changes(app_lab, field, value):
    first = app_lab.deploy('2.0.0')
    assert first.returncode == 0, out(first)
    path = os.path.join(app_lab.report_dir, 'deploy-lab-latest.json')
    with open(path) as f:
        record = json.load(f)
    record[field] = value
    with open(path, 'w') as f:
        json.dump(record, f)
    before = os.readlink(os.path.join(app_lab.app_dir, 'current'))
    run = app_lab.deploy(None, playbook='rollback.yml')
    assert run.returncode != 0
    assert 'the deploy record to roll back names release' in full(run) and 'nothing was changed' in full(run)
    assert os.readlink(os.path.join(app_lab.app_dir, 'current')) == before and app_lab.version() == '2.0.0'
    assert app_lab.lock_state() == (None, None)


def test_a_version_that_is_a_path_is_refused(app_lab):
    run = app_lab.deploy('../../../tmp/evil')
    assert run.returncode != 0 and 'letters, digits and . _ + -' in full(run), out(run)
    assert app_lab.live_release() == '1.0.0' and app_lab.lock_state() == (None, None)
    assert not os.path.exists('/tmp/evil')


# ---- 4. records: unique names, -latest only when the live release changed --------------------

def test_two_dry_runs_in_the_same_second_write_two_records(app_lab):
    runs = []

    def go():
        runs.append(app_lab.deploy('2.0.0', check=True))
    threads = [threading.Thread(target=go), threading.Thread(target=go)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.returncode == 0 for p in runs), [out(p) for p in runs]
    names = sorted(n for n in os.listdir(app_lab.report_dir) if n.startswith('deploy-'))
    assert len(names) == 2 and all(re.match(r'deploy-lab-\d{8}T\d{6}\.\d{6}Z-\w{6}-check\.json$', n) for n in names), names
    assert len({app_lab.records()[i]['owner'] for i in (0, 1)}) == 2


def test_latest_moves_only_when_the_live_release_changed(app_lab):
    assert app_lab.deploy('2.0.0').returncode == 0
    target = latest(app_lab)
    assert target['version'] == '2.0.0' and target['previous_version'] == '1.0.0'

    held = run_module('deploy_lock', {'login_port': app_lab.redis_port, 'owner': 'other', 'holder': 'someone else', 'ttl': '5m'})
    assert held['changed']
    refused = app_lab.deploy('2.0.0')
    assert refused.returncode != 0 and 'another deploy is running' in full(refused)
    assert app_lab.records()[-1]['outcome'] == 'failed' and latest(app_lab) == target
    run_module('deploy_lock', {'login_port': app_lab.redis_port, 'owner': 'other', 'state': 'absent'})

    app_lab.artifact('3.0.0', fault='smoke')
    failed = app_lab.deploy('3.0.0', artifacts=True)
    assert failed.returncode != 0 and 'rolled back to 2.0.0' in flat(failed.stdout), out(failed)
    assert app_lab.records()[-1]['outcome'] == 'rolled back' and latest(app_lab) == target

    back = app_lab.deploy(None, playbook='rollback.yml')
    assert back.returncode == 0 and 'roll back 2.0.0 -> 1.0.0' in flat(back.stdout), out(back)
    assert app_lab.version() == '1.0.0'
