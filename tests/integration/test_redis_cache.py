# -*- coding: utf-8 -*-
"""redis_cache through the real `ansible` CLI, against a real redis-server and a real six-node
Redis Cluster (tests/helpers/redis_cluster.py)."""

from __future__ import annotations

from helpers import dump_keys, run_module
from helpers.redis_cluster import redis_cluster  # noqa: F401  pylint: disable=unused-import


def conn(r):
    return {'login_port': r.connection_pool.connection_kwargs['port'], 'login_host': '127.0.0.1'}


def fill(r, gemini=300, projects=120, lookalikes=40):
    pipe = r.pipeline(transaction=False)
    for i in range(gemini):
        pipe.set('gemini:analysis:scene:%d' % i, 'analysis %d' % i, ex=3600)
    for i in range(projects):
        pipe.set('project:%d' % i, '{"id": %d}' % i)  # no TTL
    for i in range(lookalikes):
        pipe.set('session:gemini:%d' % i, 's', ex=600)  # contains gemini, does not match gemini:*
    pipe.execute()


def by_object(findings):
    return dict((f['object'], f) for f in findings)


def test_health_hit_rate_memory_policy_and_ttls_against_runbook_thresholds(r):
    fill(r)
    r.config_set('maxmemory', '100mb')
    r.config_set('maxmemory-policy', 'allkeys-lru')
    r.config_resetstat()
    for i in range(40):          # 40 hits
        assert r.get('gemini:analysis:scene:%d' % i)
    for i in range(60):          # 60 misses
        assert r.get('gemini:analysis:scene:missing:%d' % i) is None
    res = run_module('redis_cache', dict(conn(r), patterns=['gemini:*', 'project:*']))
    assert res['changed'] is False and res['cluster'] is False
    health = res['health']
    assert health['keyspace_hits'] == 40 and health['keyspace_misses'] == 60
    assert health['hit_rate'] == 40.0
    assert health['maxmemory'] == 100 * 1024 * 1024 and health['maxmemory_policy'] == 'allkeys-lru'
    assert 0 < health['memory_percent'] < 10
    assert health['dbsize'] == 460
    pats = dict((p['pattern'], p) for p in res['patterns'])
    assert pats['gemini:*']['count'] == 300 and pats['gemini:*']['no_ttl'] == 0
    assert pats['gemini:*']['sampled'] == 100
    assert 3500 < pats['gemini:*']['ttl_seconds']['min'] <= pats['gemini:*']['ttl_seconds']['max'] <= 3600
    assert pats['project:*']['count'] == 120 and pats['project:*']['no_ttl_percent'] == 100.0
    f = by_object(res['findings'])
    assert f['cache hit rate (%)']['verdict'] == 'critical'       # 40% < 50%
    assert f['memory used of maxmemory (%)']['verdict'] == 'ok'
    assert f['eviction policy']['verdict'] == 'ok'
    assert f['keys project:* without TTL (% of 100 sampled)']['verdict'] == 'warning'
    assert f['keys gemini:* without TTL (% of 100 sampled)']['verdict'] == 'ok'

    r.config_resetstat()         # the TTL sample above counted as lookups
    for i in range(80):          # 80 hits / 100 lookups = 80%
        r.get('gemini:analysis:scene:%d' % i)
    for i in range(20):
        r.get('nothing:%d' % i)
    res = run_module('redis_cache', dict(conn(r)))
    assert res['health']['hit_rate'] == 80.0
    assert by_object(res['findings'])['cache hit rate (%)']['verdict'] == 'ok'
    r.config_set('maxmemory', '0')
    r.config_set('maxmemory-policy', 'noeviction')


def test_evictions_and_a_full_cache_are_reported(r):
    r.config_set('maxmemory-policy', 'allkeys-lru')
    used = int(r.info('memory')['used_memory'])
    r.config_set('maxmemory', used + 2 * 1024 * 1024)
    pipe = r.pipeline(transaction=False)
    for i in range(4000):        # ~4 MB of values into a 2 MB margin: Redis evicts for real
        pipe.set('gemini:big:%d' % i, 'x' * 1000)
    pipe.execute()
    res = run_module('redis_cache', dict(conn(r), thresholds={'memory_warning': 50}))
    f = by_object(res['findings'])
    assert res['health']['evicted_keys'] > 0
    assert f['evicted keys']['verdict'] == 'warning'
    assert f['memory used of maxmemory (%)']['verdict'] in ('warning', 'critical')
    r.config_set('maxmemory-policy', 'noeviction')
    res = run_module('redis_cache', dict(conn(r)))
    assert by_object(res['findings'])['eviction policy']['verdict'] == 'warning'
    r.config_set('maxmemory', '0')


def test_flush_by_pattern_check_mode_then_apply_then_nothing(r):
    fill(r, gemini=2500)
    keep = dump_keys(r, 'project:*')
    keep.update(dump_keys(r, 'session:*'))
    everything = dump_keys(r)
    args = dict(conn(r), state='flushed', patterns=['gemini:*'], batch_size=100, scan_count=200)

    check = run_module('redis_cache', args, check=True, diff=True)
    assert check['changed'] is True
    assert check['plan'][0]['count'] == 2500 and check['deleted'] == 2500
    assert check['diff']['before']['patterns'] == {'gemini:*': 2500}
    assert check['diff']['after']['patterns'] == {'gemini:*': 0}
    assert dump_keys(r) == everything, 'check mode changed Redis'

    r.config_resetstat()
    res = run_module('redis_cache', args, diff=True)
    assert res['changed'] is True and res['deleted'] == 2500
    assert res['actions'][0]['count'] == 2500
    # every UNLINK carries at most batch_size keys (inside the script too): at least 25 of them;
    # the SCAN steps run in the script, several per round trip
    assert r.info('commandstats')['cmdstat_unlink']['calls'] >= 25
    assert 1 <= res['actions'][0]['round_trips'] <= res['actions'][0]['scan_steps']
    assert res['patterns'][0]['count'] == 0
    assert r.dbsize() == 160
    assert dump_keys(r) == keep, 'a key that does not match gemini:* was touched'

    again = run_module('redis_cache', args)
    assert again['changed'] is False and again['plan'] == [] and again['deleted'] == 0


def test_flush_all_needs_confirm_and_star_is_refused(r):
    fill(r, gemini=10, projects=5, lookalikes=0)
    res = run_module('redis_cache', dict(conn(r), state='flushed', flush_all=True))
    assert res.failed and 'confirm: true' in res['msg']
    res = run_module('redis_cache', dict(conn(r), state='flushed', patterns=['*']))
    assert res.failed and 'matches every key' in res['msg']
    res = run_module('redis_cache', dict(conn(r), state='flushed'))
    assert res.failed and 'needs patterns' in res['msg']
    assert r.dbsize() == 15

    check = run_module('redis_cache', dict(conn(r), state='flushed', flush_all=True, confirm=True),
                       check=True)
    assert check['changed'] is True and check['deleted'] == 15 and r.dbsize() == 15
    res = run_module('redis_cache', dict(conn(r), state='flushed', flush_all=True, confirm=True))
    assert res['changed'] is True and res['deleted'] == 15
    assert r.dbsize() == 0
    again = run_module('redis_cache', dict(conn(r), state='flushed', flush_all=True, confirm=True))
    assert again['changed'] is False


def test_binary_keys_are_deleted_and_other_databases_untouched(redis_server):
    import redis
    raw = redis.Redis(port=redis_server.port, db=3)
    other = redis.Redis(port=redis_server.port, db=4)
    raw.flushdb()
    other.flushdb()
    raw.set(b'gemini:\xff\xfe', b'1')
    raw.set(b'gemini:ok', b'2')
    other.set(b'gemini:elsewhere', b'3')
    res = run_module('redis_cache', dict(login_port=redis_server.port, db=3, state='flushed',
                                         patterns=['gemini:*']))
    assert res['deleted'] == 2 and raw.dbsize() == 0
    assert other.get(b'gemini:elsewhere') == b'3'
    other.flushdb()


def test_wrong_password_is_one_sentence_and_no_secret_leaks(redis_auth_server):
    secret = redis_auth_server.password
    bad = run_module('redis_cache', dict(login_port=redis_auth_server.port, login_password='wrong-' + secret[::-1]),
                     verbosity=3)
    assert bad.failed and 'refused the credentials' in bad['msg']
    assert secret[::-1] not in bad.stdout + bad.stderr
    ok = run_module('redis_cache', dict(login_port=redis_auth_server.port, login_password=secret), verbosity=3)
    assert not ok.failed and secret not in ok.stdout + ok.stderr
    down = run_module('redis_cache', dict(login_port=1, login_host='127.0.0.1'))
    assert down.failed and down['msg'].startswith('cannot reach Redis at 127.0.0.1:1/0')


# --- Redis Cluster --------------------------------------------------------------------------

def test_cluster_health_and_flush_reach_every_primary(redis_cluster):  # noqa: F811
    rc = redis_cluster.client()
    for i in range(3000):
        rc.set('gemini:analysis:scene:%d' % i, 'a', ex=3600)
    for i in range(500):
        rc.set('project:%d' % i, 'p')
    for i in range(200):
        rc.get('project:%d' % i)
    primaries = redis_cluster.primaries()
    per_node = [redis_cluster.node(p).dbsize() for p in primaries]
    assert len(primaries) == 3 and all(n > 0 for n in per_node) and sum(per_node) == 3500
    replica = next(p for p, (role, _m) in redis_cluster.roles().items() if role == 'replica')

    # seeded through a replica: the module finds the primaries from CLUSTER NODES
    args = dict(login_host='127.0.0.1', login_port=replica, patterns=['gemini:*'])
    health = run_module('redis_cache', args)
    assert health['cluster'] is True
    assert sorted(int(n.rsplit(':', 1)[1]) for n in health['nodes']) == primaries
    assert health['health']['dbsize'] == 3500 and health['patterns'][0]['count'] == 3000
    assert health['health']['keyspace_hits'] >= 200

    flush = dict(args, state='flushed')
    check = run_module('redis_cache', flush, check=True)
    assert check['changed'] is True and check['deleted'] == 3000
    assert sum(redis_cluster.node(p).dbsize() for p in primaries) == 3500

    res = run_module('redis_cache', flush)
    assert res['changed'] is True and res['deleted'] == 3000, res.result
    assert sum(redis_cluster.node(p).dbsize() for p in primaries) == 500
    assert all(rc.get('project:%d' % i) == 'p' for i in range(500))
    assert not list(rc.scan_iter(match='gemini:*'))

    again = run_module('redis_cache', flush)
    assert again['changed'] is False and again['deleted'] == 0

    bad_db = run_module('redis_cache', dict(args, db=2))
    assert bad_db.failed and 'only has database 0: set db: 0' in bad_db['msg']
    rc.close()


def test_window_measures_the_hit_rate_of_now_not_since_start(r):
    import threading
    import time
    fill(r, gemini=50, projects=0, lookalikes=0)
    r.config_resetstat()
    pipe = r.pipeline(transaction=False)
    for i in range(50000):                # a bad past: 50,000 misses
        pipe.get('gone:%d' % i)
    pipe.execute()
    halt = threading.Event()

    def app():
        import redis
        c = redis.Redis(port=r.connection_pool.connection_kwargs['port'])
        while not halt.is_set():         # the present: hits only
            c.get('gemini:analysis:scene:%d' % (time.monotonic_ns() % 50))
            time.sleep(0.002)
    thread = threading.Thread(target=app, daemon=True)
    thread.start()
    try:
        since_start = run_module('redis_cache', dict(conn(r)))
        windowed = run_module('redis_cache', dict(conn(r), window='1s'))
    finally:
        halt.set()
        thread.join(5)
    assert since_start['health']['hit_rate'] < 70
    assert windowed['health']['window_seconds'] == 1.0
    assert windowed['health']['hit_rate'] == 100.0 and windowed['health']['keyspace_misses'] == 0
    assert windowed['health']['keyspace_hits'] > 0
    assert by_object(windowed['findings'])['cache hit rate (%)']['verdict'] == 'ok'
