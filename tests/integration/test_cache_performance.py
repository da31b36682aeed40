# -*- coding: utf-8 -*-
"""Runbook 004 "Increasing Cache Performance" in oncall.runbooks.redis_cache (and so in
playbooks/runbooks/cache_health.yml, whose role passes the same options): the TTL coverage of a
bounded sample of the whole database and the eviction policy against the key mix, on a real
redis-server filled with known key mixes."""

from __future__ import annotations


def _find(res, prefix):
    return [f for f in res['findings'] if f['object'].startswith(prefix)][0]


def _fill(r, with_ttl, without_ttl, queue_keys):
    pipe = r.pipeline(transaction=False)
    for i in range(with_ttl):
        pipe.set('cache:ttl:%d' % i, 'v', ex=3600)
    for i in range(without_ttl):
        pipe.set('cache:forever:%d' % i, 'v')
    for i in range(queue_keys):
        pipe.rpush('bull:jobs:%d' % i, 'job')
    pipe.execute()


def test_ttl_coverage_and_eviction_policy_on_known_key_mixes(r, redis_server, module):
    args = {'login_port': redis_server.port, 'ttl_sample': 0, 'ttl_coverage_sample': 1000,
            'ttl_coverage_exclude': ['bull:*']}
    try:
        # 300 keys with a TTL, 100 without, 500 queue keys left out; volatile-lru never evicts
        # the 100: a warning on both, each with its recommendation
        _fill(r, 300, 100, 500)
        r.config_set('maxmemory', '100mb')
        r.config_set('maxmemory-policy', 'volatile-lru')
        res = module('redis_cache', args)
        assert not res.failed, res.result
        cov = res['ttl_coverage']
        assert (cov['sampled'], cov['no_ttl'], cov['excluded'], cov['dbsize']) == (400, 100, 500, 900)
        assert cov['no_ttl_percent'] == 25.0
        ttl = _find(res, 'keys without TTL (% of 400 sampled of 900)')
        assert ttl['verdict'] == 'warning' and 'TTL' in ttl['recommendation']
        policy = _find(res, 'eviction policy')
        assert (policy['figure'], policy['verdict']) == ('volatile-lru', 'warning')
        assert 'evicts only keys with a TTL; 25% of the sampled keys have none' in policy['note']
        assert 'allkeys-lru' in policy['recommendation']

        # every cache key with a TTL and allkeys-lru with a maxmemory: nothing to recommend
        r.flushdb()
        _fill(r, 400, 0, 50)
        r.config_set('maxmemory-policy', 'allkeys-lru')
        res = module('redis_cache', args)
        assert _find(res, 'keys without TTL')['verdict'] == 'ok'
        policy = _find(res, 'eviction policy')
        assert policy['verdict'] == 'ok' and 'recommendation' not in policy

        # bounded: 5000 keys, a sample of 100 reads 100 TTLs and examines at most 1000 keys
        r.flushdb()
        _fill(r, 2500, 2500, 0)
        res = module('redis_cache', dict(args, ttl_coverage_sample=100, scan_count=50))
        cov = res['ttl_coverage']
        assert cov['sampled'] == 100 and cov['scanned'] <= 1000 and cov['dbsize'] == 5000
        assert 0 < cov['no_ttl'] < 100  # a mix, as the database is

        # noeviction and no maxmemory: the runbook's maxmemory advice comes with it
        r.config_set('maxmemory', '0')
        r.config_set('maxmemory-policy', 'noeviction')
        res = module('redis_cache', args)
        policy = _find(res, 'eviction policy')
        assert policy['verdict'] == 'warning' and 'set maxmemory' in policy['recommendation']
        bad = module('redis_cache', dict(args, ttl_coverage_sample=-1))
        assert bad.failed and 'ttl_coverage_sample' in bad['msg']
    finally:
        r.config_set('maxmemory', '0')
        r.config_set('maxmemory-policy', 'noeviction')
