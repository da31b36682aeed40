# -*- coding: utf-8 -*-
"""Decision logic of the services and deploy modules, on observed states written out by hand:
pm2's plan from a `pm2 jlist` document, the lock's plan, Prometheus counters."""

from __future__ import annotations

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.deploy import lock as dl
from ansible_collections.oncall.runbooks.plugins.module_utils.services import health as hc
from ansible_collections.oncall.runbooks.plugins.module_utils.services import pm2 as p2


def jlist(*statuses, name='api'):
    return [{'name': name, 'pm_id': i, 'pid': 100 + i,
             'pm2_env': {'status': s, 'restart_time': 0, 'pm_uptime': 0, 'pm_exec_path': '/srv/api/current/server.js'}}
            for i, s in enumerate(statuses)] + [{'name': 'other', 'pm_id': 9, 'pm2_env': {'status': 'errored'}}]


def params(**kw):
    return dict({'name': 'api', 'state': 'started', 'instances': None, 'script': None}, **kw)


def kinds(actions):
    return [(a.kind, a.count) for a in actions]


def test_observe_counts_only_the_named_application():
    obs = p2.observe(jlist('online', 'errored'), 'api')
    assert obs['instances'] == 2 and obs['online'] == 1 and obs['statuses'] == ['errored', 'online']


def test_started_is_idempotent_and_restarts_what_is_not_online():
    assert kinds(p2.plan(p2.observe(jlist('online', 'online'), 'api'), params())) == []
    assert kinds(p2.plan(p2.observe(jlist('online', 'stopped'), 'api'), params())) == [('restart', 2)]


def test_restarted_always_restarts_and_scale_follows():
    obs = p2.observe(jlist('online'), 'api')
    assert kinds(p2.plan(obs, params(state='restarted', instances=3))) == [('restart', 1), ('scale', 3)]


def test_a_missing_application_starts_with_a_script_or_is_one_sentence():
    obs = p2.observe(jlist(name='x'), 'api')
    assert kinds(p2.plan(obs, params(script='/srv/api/server.js', instances=2))) == [('start', 2)]
    with pytest.raises(p2.Pm2Error, match='^pm2 has no process named api: set script'):
        p2.plan(obs, params())


def test_stopped_stops_only_online_instances():
    assert kinds(p2.plan(p2.observe(jlist('online', 'stopped'), 'api'), params(state='stopped'))) == [('stop', 1)]
    assert p2.plan(p2.observe(jlist('stopped'), 'api'), params(state='stopped')) == []


def lock_params(**kw):
    return dict({'owner': 'A', 'state': 'present', 'force': False, 'ttl_ms': 1000}, **kw)


def test_lock_plan():
    held = {'owner': 'B', 'holder': 'deploy of 2.0.0', 'acquired_at': 86400, 'ttl_ms': 5000}
    assert kinds(dl.plan('k', None, lock_params())) == [('acquire', 1)]
    assert dl.plan('k', dict(held, owner='A'), lock_params()) == []
    with pytest.raises(dl.LockError, match=r'^lock k is held by deploy of 2.0.0 since 1970-01-02T00:00:00Z \(expires in 5s\)'):
        dl.plan('k', held, lock_params())
    assert dl.plan('k', held, lock_params(state='absent')) == []
    forced = dl.plan('k', held, lock_params(state='absent', force=True))
    assert kinds(forced) == [('release', 1)] and forced[0].destructive


def test_prometheus_counters_sum_labels_and_ignore_comments():
    text = ('# TYPE app_requests_total counter\napp_requests_total{code="200"} 10\n'
            'app_requests_total{code="500"} 2\napp_errors_total 2\napp_requests_total_bucket 99\n')
    assert hc.counters(text, ['app_requests_total', 'app_errors_total']) == {
        'app_requests_total': 12.0, 'app_errors_total': 2.0}
