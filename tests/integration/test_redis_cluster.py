# -*- coding: utf-8 -*-
"""redis_cluster through the real `ansible` CLI against a real six-node Redis Cluster
(tests/helpers/redis_cluster.py): state as data, a real CLUSTER FAILOVER, a real node failure."""

from __future__ import annotations

import time

from helpers import run_module
from helpers.redis_cluster import redis_cluster  # noqa: F401  pylint: disable=unused-import


def name(port):
    return '127.0.0.1:%d' % port


def by_object(findings):
    return dict((f['object'], f) for f in findings)


def test_cluster_state_failover_to_an_in_sync_replica_and_back(redis_cluster):  # noqa: F811
    rc = redis_cluster.client()
    for i in range(500):
        rc.set('k:%d' % i, i)
    seed = redis_cluster.ports[0]
    res = run_module('redis_cluster', dict(login_port=seed))
    assert res['changed'] is False and res['enabled'] is True
    assert res['info']['cluster_state'] == 'ok' and res['info']['cluster_slots_ok'] == 16384
    primaries = sorted(n['port'] for n in res['nodes'] if n['role'] == 'primary')
    assert primaries == redis_cluster.primaries()
    replicas = [n for n in res['nodes'] if n['role'] == 'replica']
    assert len(replicas) == 3 and all(r['in_sync'] for r in replicas)
    assert all(f['verdict'] == 'ok' for f in res['findings'])

    old = primaries[0]
    replica = next(r for r in replicas if r['primary'] == name(old))
    args = dict(login_port=seed, failover_from=name(old))
    check = run_module('redis_cluster', args, check=True, diff=True)
    assert check['changed'] is True and check['plan'][0]['object'] == replica['name']
    assert check['diff']['before'] == {replica['name']: 'replica', name(old): 'primary'}
    assert redis_cluster.roles()[old][0] == 'primary', 'check mode failed over'

    done = run_module('redis_cluster', args)
    assert done['changed'] is True, done.result
    assert done['actions'][0]['object'] == replica['name']
    roles = redis_cluster.roles(replica['port'])      # as the new primary sees the cluster (waited for)
    assert roles[replica['port']][0] == 'primary'
    assert roles[old] == ('replica', replica['port'])
    assert redis_cluster.node(old).info('replication')['role'] == 'slave'
    assert all(rc.get('k:%d' % i) == str(i) for i in range(500))   # nothing lost

    again = run_module('redis_cluster', args)
    assert again['changed'] is False and again['plan'] == []

    back = run_module('redis_cluster', dict(login_port=seed, promote=name(old)))
    assert back['changed'] is True
    assert redis_cluster.roles(old)[old][0] == 'primary'
    assert run_module('redis_cluster', dict(login_port=seed, promote=name(old)))['changed'] is False
    rc.close()


def test_refusals_are_one_sentence(redis_cluster, redis_server):  # noqa: F811
    seed = redis_cluster.ports[0]
    res = run_module('redis_cluster', dict(login_port=seed, promote='127.0.0.1:1'))
    assert res.failed and 'is not in the cluster' in res['msg']
    replica = next(p for p, (role, _m) in redis_cluster.roles().items() if role == 'replica')
    res = run_module('redis_cluster', dict(login_port=seed, promote=name(replica), force=True))
    assert res.failed and 'set confirm: true' in res['msg']
    res = run_module('redis_cluster', dict(login_port=redis_server.port))
    assert res['enabled'] is False and res['findings'][0]['verdict'] == 'ok'
    res = run_module('redis_cluster', dict(login_port=redis_server.port, promote='127.0.0.1:1'))
    assert res.failed and 'not a Redis Cluster node' in res['msg']


def test_a_killed_primary_is_reported_and_its_replica_took_over(redis_cluster):  # noqa: F811
    roles = redis_cluster.roles()
    victim = redis_cluster.primaries()[-1]
    replica = next(p for p, (role, m) in roles.items() if m == victim)
    redis_cluster.stop_node(victim)
    deadline = time.time() + 30
    while time.time() < deadline:
        if redis_cluster.roles(replica).get(replica, ('',))[0] == 'primary':
            break
        time.sleep(0.2)
    redis_cluster.wait_ok(ports=list(redis_cluster.procs))
    res = run_module('redis_cluster', dict(login_port=replica))
    f = by_object(res['findings'])
    assert f['cluster_state']['verdict'] == 'ok'
    assert f['node %s (primary)' % name(victim)]['verdict'] == 'warning'   # failed, no slots left
    assert f['replicas in sync of %s' % name(replica)]['verdict'] == 'warning'
    dead = next(n for n in res['nodes'] if n['port'] == victim)
    assert dead['failed'] is True and dead['reachable'] is False

    redis_cluster.start_node(victim)          # restarted: it rejoins as a replica of the new primary
    deadline = time.time() + 30
    while time.time() < deadline:
        res = run_module('redis_cluster', dict(login_port=replica))
        if all(f['verdict'] == 'ok' for f in res['findings']):
            break
        time.sleep(1)
    assert all(f['verdict'] == 'ok' for f in res['findings']), res['findings']
    assert redis_cluster.roles()[victim] == ('replica', replica)
