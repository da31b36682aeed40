# -*- coding: utf-8 -*-
"""oncall.runbooks.pm2_process against real pm2 from npm (a daemon with its own temporary
PM2_HOME per test) running the sample app, and oncall.runbooks.deploy_lock against a real
redis-server."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from helpers.app import PM2, RELEASES, Pm2Home
from helpers import free_port, run_module


@pytest.fixture()
def pm2_app(tmp_path):
    """Release 1.0.0 of the sample app copied into tmp_path, a pm2 daemon of its own."""
    home = Pm2Home()
    release = tmp_path / 'release'
    shutil.copytree(os.path.join(RELEASES, '1.0.0'), str(release))
    port = free_port()
    base = {'name': 'app', 'pm2_bin': PM2, 'pm2_home': home.home,
            'health_url': 'http://127.0.0.1:%d/version' % port, 'wait_timeout': '30s', 'min_uptime': '500ms'}
    env = {'APP_PORT': str(port), 'REDIS_PORT': str(free_port()), 'PG_PORT': str(free_port()),
           'NODE_PATH': os.path.join(os.path.dirname(PM2), '..')}
    yield home, base, str(release), env
    home.stop()


def jlist(home):
    out = home.pm2('jlist').stdout
    return json.loads(out[out.find('['):])


def test_start_scale_restart_stop_with_pm2_jlist_as_truth(pm2_app):
    home, base, release, env = pm2_app
    started = run_module('pm2_process', dict(base, script=os.path.join(release, 'server.js'), env=env,
                                             secret_env={'PG_PASSWORD': 'n0t-in-results'}), verbosity=3)
    assert not started.failed, started.result
    assert started['changed'] and [a['kind'] for a in started['plan']] == ['start']
    assert started['process']['online'] == 1 and started['health']['status'] == 200
    assert 'n0t-in-results' not in started.stdout + started.stderr  # secret_env is no_log
    assert 'n0t-in-results' in home.pm2('env', '0').stdout  # but the application has it
    assert [p['pm2_env']['status'] for p in jlist(home)] == ['online']

    again = run_module('pm2_process', dict(base, script=os.path.join(release, 'server.js')))
    assert not again.failed and not again['changed']

    check = run_module('pm2_process', dict(base, instances=3), check=True)
    assert check['changed'] and check['plan'][0]['kind'] == 'scale' and len(jlist(home)) == 1

    scaled = run_module('pm2_process', dict(base, instances=3), diff=True)
    assert not scaled.failed, scaled.result
    assert scaled['process']['online'] == 3 and len(jlist(home)) == 3
    assert scaled['diff']['before']['instances'] == 1 and scaled['diff']['after']['instances'] == 3

    pids = sorted(p['pid'] for p in jlist(home))
    restarted = run_module('pm2_process', dict(base, state='restarted'))
    assert restarted['changed'] and restarted['process']['online'] == 3
    assert not set(pids) & set(p['pid'] for p in jlist(home))  # every instance is a new process

    down = run_module('pm2_process', dict(base, instances=1))
    assert down['process']['instances'] == 1

    stopped = run_module('pm2_process', dict(base, state='stopped'))
    assert stopped['changed'] and [p['pm2_env']['status'] for p in jlist(home)] == ['stopped']
    # started brings a stopped instance back
    back = run_module('pm2_process', base)
    assert back['changed'] and back['process']['online'] == 1


def test_a_crashing_release_fails_clearly_within_the_timeout(pm2_app, tmp_path):
    home, base, release, env = pm2_app
    with open(os.path.join(release, 'release.json'), 'w') as f:
        json.dump({'version': '9.9.9', 'fault': 'crash'}, f)
    res = run_module('pm2_process', dict(base, script=os.path.join(release, 'server.js'), env=env,
                                         wait_timeout='4s'))
    assert res.failed
    assert res['msg'].startswith('pm2 application app did not become healthy within 4s:'), res['msg']
    assert 'pm2 logs app' in res['msg']


def test_an_unknown_process_without_script_is_one_clear_sentence(pm2_app):
    home, base, _release, _env = pm2_app
    res = run_module('pm2_process', dict(base, name='nope'))
    assert res.failed and res['msg'] == ('pm2 has no process named nope: set script to start it, '
                                         'or check name and pm2_home')


def test_min_uptime_is_a_duration(pm2_app):
    home, base, release, env = pm2_app
    res = run_module('pm2_process', dict(base, script=os.path.join(release, 'server.js'), env=env, min_uptime='soon'))
    # refused before pm2 is called: no daemon was started for this PM2_HOME
    assert res.failed and res['msg'] == "min_uptime must be a duration such as 30s, 10m, 24h or 7d, not 'soon'"
    assert not os.path.exists(os.path.join(home.home, 'pm2.pid'))


def test_deploy_lock_refuses_a_second_owner_and_only_the_owner_releases(redis_server, r):
    conn = {'login_port': redis_server.port}
    check = run_module('deploy_lock', dict(conn, owner='A', holder='deploy A'), check=True)
    assert check['changed'] and r.exists('oncall:lock:deploy') == 0

    first = run_module('deploy_lock', dict(conn, owner='A', holder='deploy A', ttl='10m'), diff=True)
    assert first['changed'] and first['diff']['after']['holder'] == 'deploy A'
    assert 0 < r.pttl('oncall:lock:deploy') <= 600000
    assert not run_module('deploy_lock', dict(conn, owner='A', holder='deploy A'))['changed']

    second = run_module('deploy_lock', dict(conn, owner='B', holder='deploy B'))
    assert second.failed
    assert second['msg'].startswith('lock oncall:lock:deploy is held by deploy A since ')
    assert 'another deploy is running' in second['msg']
    second_check = run_module('deploy_lock', dict(conn, owner='B'), check=True)
    assert second_check.failed  # the pre-check of a dry run refuses too

    not_mine = run_module('deploy_lock', dict(conn, owner='B', state='absent'))
    assert not not_mine.failed and not not_mine['changed'] and r.exists('oncall:lock:deploy') == 1
    assert 'held by deploy A' in ' '.join(not_mine.get('warnings', []))

    released = run_module('deploy_lock', dict(conn, owner='A', state='absent'))
    assert released['changed'] and r.exists('oncall:lock:deploy') == 0
    assert not run_module('deploy_lock', dict(conn, owner='A', state='absent'))['changed']

    assert run_module('deploy_lock', dict(conn, owner='C', holder='crashed deploy'))['changed']
    forced = run_module('deploy_lock', dict(conn, owner='ops', state='absent', force=True))
    assert forced['changed'] and forced['plan'][0]['destructive'] and r.exists('oncall:lock:deploy') == 0


def test_deploy_lock_names_an_unreachable_redis():
    port = free_port()
    res = run_module('deploy_lock', {'login_port': port, 'owner': 'A'})
    assert res.failed and res['msg'].startswith('cannot reach Redis at localhost:%d/0' % port)
