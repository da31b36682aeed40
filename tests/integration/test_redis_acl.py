# -*- coding: utf-8 -*-
"""The least-privilege Redis ACL of each module (docs/redis.md), against a real redis-server.

Each ACL line below is the one docs/redis.md tells operators to paste. For each: the module run
as a user with exactly that ACL does what it does for the default user, and with one permission
taken away it fails with one sentence naming what to grant, leaving every key as it was. Queues
are made by the real BullMQ and Bull libraries (lab/node/qtool.js); modules run through the
real `ansible` CLI.
"""

from __future__ import annotations

import os

import pytest

from helpers import ROOT, RedisServer, dump_keys, node, run_module
from helpers.redis_cluster import redis_cluster  # noqa: F401  pylint: disable=unused-import

PASSWORD = 'acl-Test-pa55'

# The rules of docs/redis.md (without `ACL SETUSER <name> on >password`).
QUEUE_READ = '%R~bull:* +@read -@dangerous +ping'
QUEUE_WRITE = '~bull:* &bull:* +@read +@write +@scripting -@dangerous +publish +ping'
CACHE_HEALTH = '%R~cache:* +@read -@dangerous +info +ping'
CACHE_FLUSH = '~cache:* +@read +@write -@dangerous +info +ping'
CACHE_FLUSH_ALL = '+dbsize -@dangerous +info +flushdb +ping'
DEPLOY_LOCK = '~oncall:lock:* +@read +@write +@scripting -@dangerous +ping'
CLUSTER_READ = '+ping +info +cluster|info +cluster|nodes'
CLUSTER_FAILOVER = '+ping +info +cluster|info +cluster|nodes +cluster|failover'

DOCUMENTED = [QUEUE_READ, QUEUE_WRITE, CACHE_HEALTH, CACHE_FLUSH, CACHE_FLUSH_ALL, DEPLOY_LOCK,
              CLUSTER_READ, CLUSTER_FAILOVER]


def without(rule, *parts):
    """rule with some of its parts taken away."""
    left = [p for p in rule.split() if p not in parts]
    assert len(left) == len(rule.split()) - len(parts), (rule, parts)
    return ' '.join(left)


@pytest.fixture(scope='module')
def server():
    srv = RedisServer()
    yield srv
    srv.stop()


@pytest.fixture()
def r(server):
    client = server.client()
    client.flushall()
    yield client
    client.close()


def as_user(r, rule):
    """Connection options of a fresh ACL user that has exactly rule."""
    r.execute_command('ACL', 'SETUSER', 'oncall_acl', 'reset', 'on', '>' + PASSWORD, *rule.split())
    return dict(as_default(r), login_user='oncall_acl', login_password=PASSWORD)


def as_default(r):
    return dict(login_host='127.0.0.1', login_port=r.connection_pool.connection_kwargs['port'])


def seed_queue(r, flavor, queue):
    port = r.connection_pool.connection_kwargs['port']
    for cmd in ('make-failed', 'make-completed', 'add'):
        node('qtool.js', flavor, cmd, '--queue', queue, '--count', 2, port=port)


def counts(r, flavor, queue):
    """The queue's counts and paused flag, as the library reads them."""
    got = node('qtool.js', flavor, 'counts', '--queue', queue,
               port=r.connection_pool.connection_kwargs['port'])
    got.pop('elapsed_ms', None)
    return got


def one_sentence(msg):
    assert '\n' not in msg and 'Traceback' not in msg, msg
    assert msg.count('. ') == 0, msg


def test_every_rule_is_in_the_docs():
    with open(os.path.join(ROOT, 'docs', 'redis.md')) as f:
        doc = f.read().replace('\\|', '|')  # in a table cell | is escaped
    for rule in DOCUMENTED:
        assert rule in doc, rule


# --- queues --------------------------------------------------------------------------------

def test_queue_info_with_the_read_only_acl(r):
    seed_queue(r, 'bullmq', 'acl-info-mq')
    seed_queue(r, 'bull', 'acl-info-b')
    args = dict(stuck_after='1s', failed_sample=2)
    default = run_module('redis_queue_info', dict(as_default(r), **args))
    assert not default.failed, default.result
    res = run_module('redis_queue_info', dict(as_user(r, QUEUE_READ), **args))
    assert not res.failed, res.result
    assert res['queues'] == default['queues']
    assert {q['name'] for q in res['queues']} == {'acl-info-mq', 'acl-info-b'}

    before = dump_keys(r)
    res = run_module('redis_queue_info', dict(as_user(r, without(QUEUE_READ, '+@read')), **args))
    assert res.failed
    one_sentence(res['msg'])
    assert 'denied the SCAN command to this user: grant +@read' in res['msg'], res['msg']
    assert dump_keys(r) == before


# (operation, flavor, module arguments, what is taken from QUEUE_WRITE, the sentence)
SCRIPT_WRITE = 'denied this user a command inside a Lua script: the scripts change keys, so grant +@write'
QUEUE_CASES = [
    ('clean', 'bullmq', dict(clean=[{'status': 'completed'}]), ('+@scripting',),
     'denied the EVALSHA command to this user: grant +@scripting'),
    ('clean', 'bull', dict(clean=[{'status': 'completed'}]), ('+@write',), SCRIPT_WRITE),
    ('retry', 'bullmq', dict(retry={'status': 'failed'}), ('+@write',), SCRIPT_WRITE),
    ('retry', 'bull', dict(retry={'status': 'failed'}), ('+@scripting',),
     'denied the EVAL command to this user: grant +@scripting'),
    ('pause', 'bull', dict(state='paused'), ('+@write',), SCRIPT_WRITE),
    ('pause', 'bullmq', dict(state='paused'), ('+@write',), SCRIPT_WRITE),
    ('drain', 'bullmq', dict(drain=True, confirm=True), ('+@write',), SCRIPT_WRITE),
    ('absent', 'bull', dict(state='absent', confirm=True), ('+@write',), SCRIPT_WRITE),
]


@pytest.mark.parametrize('op,flavor,args,taken,sentence', QUEUE_CASES,
                         ids=['%s-%s' % (c[0], c[1]) for c in QUEUE_CASES])
def test_queue_change_with_the_queue_acl(r, op, flavor, args, taken, sentence):
    queue = 'acl-%s-%s' % (op, flavor)
    spec = dict(name=queue, flavor=flavor, **args)
    # what the default user gets
    seed_queue(r, flavor, queue)
    default = run_module('redis_queue', dict(as_default(r), **spec))
    assert not default.failed and default['changed'] is True, default.result
    expected = counts(r, flavor, queue)

    r.flushall()
    seed_queue(r, flavor, queue)
    before = dump_keys(r)
    denied = run_module('redis_queue', dict(as_user(r, without(QUEUE_WRITE, *taken)), **spec))
    assert denied.failed, denied.result
    assert sentence in denied['msg'], denied['msg']
    assert '\n' not in denied['msg']
    assert dump_keys(r) == before

    res = run_module('redis_queue', dict(as_user(r, QUEUE_WRITE), **spec))
    assert not res.failed, res.result
    assert res['changed'] is True
    assert [a['kind'] for a in res['actions']] == [a['kind'] for a in default['actions']]
    assert counts(r, flavor, queue) == expected


def test_bull_pause_without_the_channel_is_refused_before_anything_is_written(r):
    """Redis does not roll a script back: with Bull's order (rename, flag, then PUBLISH) a user
    denied the channel left the queue paused while the module failed. The PUBLISH now comes first,
    so the refusal leaves every key as it was."""
    seed_queue(r, 'bull', 'acl-chan')
    before = dump_keys(r)
    res = run_module('redis_queue', dict(as_user(r, without(QUEUE_WRITE, '&bull:*')),
                                         name='acl-chan', flavor='bull', state='paused'))
    assert res.failed
    assert ('denied this user publishing to a channel inside a Lua script: grant +publish and a '
            'channel pattern such as &bull:*') in res['msg'], res['msg']
    assert counts(r, 'bull', 'acl-chan')['isPaused'] is False
    assert dump_keys(r) == before
    # with the documented ACL it pauses, and the rerun has nothing more to do
    res = run_module('redis_queue', dict(as_user(r, QUEUE_WRITE), name='acl-chan', flavor='bull',
                                         state='paused'))
    assert not res.failed and res['changed'] is True, res.result
    assert counts(r, 'bull', 'acl-chan')['isPaused'] is True
    res = run_module('redis_queue', dict(as_user(r, QUEUE_WRITE), name='acl-chan', flavor='bull',
                                         state='paused'))
    assert not res.failed and res['changed'] is False, res.result


def test_queue_keys_outside_the_key_pattern_are_refused(r):
    seed_queue(r, 'bullmq', 'acl-keys')
    before = dump_keys(r)
    res = run_module('redis_queue', dict(as_user(r, QUEUE_WRITE.replace('~bull:*', '~jobs:*')),
                                         name='acl-keys', flavor='bullmq', state='paused'))
    assert res.failed
    assert 'denied this user a key outside its key patterns' in res['msg'], res['msg']
    assert 'add a key pattern such as ~bull:*' in res['msg']
    assert dump_keys(r) == before


# --- cache -----------------------------------------------------------------------------------

def seed_cache(r):
    for i in range(20):
        r.set('cache:item:%d' % i, 'v', ex=3600)
        r.get('cache:item:%d' % i)  # hits, so the hit rate is known before either run
    r.set('session:keep', 'v')


def test_cache_health_with_the_read_only_acl(r):
    seed_cache(r)
    args = dict(patterns=['cache:*'])
    default = run_module('redis_cache', as_default(r) | args)
    res = run_module('redis_cache', as_user(r, CACHE_HEALTH) | args)
    assert not res.failed, res.result
    assert [f['verdict'] for f in res['findings']] == [f['verdict'] for f in default['findings']]
    # the TTLs left differ by the seconds between the two runs
    assert ([dict(p, ttl_seconds=None) for p in res['patterns']]
            == [dict(p, ttl_seconds=None) for p in default['patterns']])
    assert res['patterns'][0]['count'] == 20 and res['patterns'][0]['ttl_seconds']['min'] > 3500

    before = dump_keys(r)
    res = run_module('redis_cache', as_user(r, without(CACHE_HEALTH, '+info')) | args)
    assert res.failed
    one_sentence(res['msg'])
    assert 'denied the INFO command to this user: grant +info' in res['msg'], res['msg']
    assert dump_keys(r) == before


def test_cache_flush_of_patterns_with_the_flush_acl(r):
    seed_cache(r)
    args = dict(state='flushed', patterns=['cache:*'], confirm=True)
    before = dump_keys(r)
    res = run_module('redis_cache', as_user(r, without(CACHE_FLUSH, '+@write')) | args)
    assert res.failed
    one_sentence(res['msg'])
    assert 'denied the UNLINK command to this user: grant +@write' in res['msg'], res['msg']
    assert dump_keys(r) == before

    res = run_module('redis_cache', as_user(r, CACHE_FLUSH) | args)
    assert not res.failed and res['changed'] is True, res.result
    assert sorted(r.keys('*')) == ['session:keep']


def test_cache_flush_all_with_the_flush_all_acl(r):
    seed_cache(r)
    args = dict(state='flushed', flush_all=True, confirm=True)
    before = dump_keys(r)
    res = run_module('redis_cache', as_user(r, without(CACHE_FLUSH_ALL, '+flushdb')) | args)
    assert res.failed
    one_sentence(res['msg'])
    assert 'denied the FLUSHDB command to this user: grant +flushdb' in res['msg'], res['msg']
    assert dump_keys(r) == before

    res = run_module('redis_cache', as_user(r, CACHE_FLUSH_ALL) | args)
    assert not res.failed and res['changed'] is True, res.result
    assert r.dbsize() == 0


# --- deploy lock and cluster ----------------------------------------------------------------

def test_deploy_lock_with_the_lock_acl(r):
    lock = dict(owner='deploy-42', ttl='10m')
    res = run_module('deploy_lock', as_user(r, without(DEPLOY_LOCK, '+@write')) | lock)
    assert res.failed
    one_sentence(res['msg'])
    assert SCRIPT_WRITE in res['msg'], res['msg']
    assert r.keys('*') == []
    res = run_module('deploy_lock', as_user(r, without(DEPLOY_LOCK, '+@scripting')) | lock)
    assert res.failed
    assert 'denied the EVAL command to this user: grant +@scripting' in res['msg'], res['msg']
    assert r.keys('*') == []

    res = run_module('deploy_lock', as_user(r, DEPLOY_LOCK) | lock)
    assert not res.failed and res['changed'] is True, res.result
    assert r.exists('oncall:lock:deploy')
    res = run_module('deploy_lock', as_user(r, DEPLOY_LOCK) | dict(lock, state='renewed'))
    assert not res.failed, res.result

    before = dump_keys(r)
    res = run_module('deploy_lock', as_user(r, without(DEPLOY_LOCK, '+@scripting'))
                     | dict(lock, state='absent'))
    assert res.failed
    assert 'denied the EVAL command to this user: grant +@scripting' in res['msg'], res['msg']
    assert dump_keys(r) == before

    res = run_module('deploy_lock', as_user(r, DEPLOY_LOCK) | dict(lock, state='absent'))
    assert not res.failed and res['changed'] is True, res.result
    assert not r.exists('oncall:lock:deploy')


def test_cluster_read_with_the_cluster_acl_on_a_standalone_server(r):
    default = run_module('redis_cluster', as_default(r))
    res = run_module('redis_cluster', as_user(r, CLUSTER_READ))
    assert not res.failed, res.result
    assert res['changed'] is False and res['plan'] == default['plan'] == []
    assert res['nodes'] == default['nodes'] and res['enabled'] is False
    res = run_module('redis_cluster', as_user(r, without(CLUSTER_READ, '+info')))
    assert res.failed
    assert 'denied the INFO command to this user: grant +info' in res['msg'], res['msg']


def test_cluster_read_and_failover_with_the_cluster_acl(redis_cluster):  # noqa: F811
    """ACLs are per node: the user is created on each of the six nodes."""
    def user(rule):
        for port in redis_cluster.ports:
            redis_cluster.node(port).execute_command(
                'ACL', 'SETUSER', 'oncall_acl', 'reset', 'on', '>' + PASSWORD, *rule.split())
        return dict(login_host='127.0.0.1', login_port=redis_cluster.ports[0], login_user='oncall_acl',
                    login_password=PASSWORD)

    def roles(res):
        return sorted((n['name'], n['role'], n.get('primary')) for n in res['nodes'])

    default = run_module('redis_cluster', dict(login_host='127.0.0.1', login_port=redis_cluster.ports[0]))
    res = run_module('redis_cluster', user(CLUSTER_READ))
    assert not res.failed and res['enabled'] is True, res.result
    assert roles(res) == roles(default)
    assert [f['verdict'] for f in res['findings']] == [f['verdict'] for f in default['findings']]

    old = redis_cluster.primaries()[0]
    before = redis_cluster.roles()
    res = run_module('redis_cluster', dict(user(CLUSTER_READ), failover_from='127.0.0.1:%d' % old))
    assert res.failed
    one_sentence(res['msg'])
    assert 'denied the CLUSTER|FAILOVER command to this user: grant +cluster|failover' in res['msg'], \
        res['msg']
    assert redis_cluster.roles() == before

    res = run_module('redis_cluster', dict(user(CLUSTER_FAILOVER),
                                           failover_from='127.0.0.1:%d' % old))
    assert not res.failed and res['changed'] is True, res.result
    assert redis_cluster.roles(old)[old][0] == 'replica'
