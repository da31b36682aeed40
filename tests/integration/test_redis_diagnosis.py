# -*- coding: utf-8 -*-
"""Diagnosis that does not grow with the keyspace (issue 17): redis_cache's per-pattern counts
estimated from a bounded sample (exact on request, within a time budget) and redis_queue_info's
discovery in one SCAN pass, against a real redis-server holding 50,000 keys and real BullMQ and
Bull queues (lab/node)."""

from __future__ import annotations

import subprocess

import pytest

from helpers import RedisServer, node, run_module
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import cache as rc

MIX = (('cache:user:', 30000, 3600), ('cache:page:', 15000, None), ('sess:', 5000, 600))
KEYS = sum(n for _p, n, _t in MIX)
PATTERNS = ['cache:*', 'cache:page:*', 'sess:*', 'nothing:*']
# A 10,000-key sample of 50,000 keys: the 95% margin of a share p is at most
# 1.96 * sqrt(p(1-p)/10000) * sqrt(40000/50000) ~ 0.9% of the keyspace. The stated tolerance
# is 2% of the keyspace (1,000 keys), more than four standard errors.
TOLERANCE = KEYS // 50


@pytest.fixture(scope='module')
def big():
    server = RedisServer()
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for prefix, count, ttl in MIX:
        for i in range(count):
            pipe.set('%s%d' % (prefix, i), 'v', ex=ttl)
            if i % 5000 == 4999:
                pipe.execute()
    pipe.execute()
    node('qtool.js', 'bullmq', 'add', '--queue', 'mq-one', '--count', 2, port=server.port)
    node('qtool.js', 'bull', 'add', '--queue', 'b-one', '--count', 2, port=server.port)
    yield server
    server.stop()


def conn(server):
    return {'login_host': '127.0.0.1', 'login_port': server.port}


def cli_count(server, pattern):
    """The anchor: redis-cli --scan --pattern P | wc -l."""
    out = subprocess.run('redis-cli -h 127.0.0.1 -p %d --scan --pattern %s | wc -l'
                         % (server.port, pattern.replace('*', '\\*')),
                         shell=True, capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def test_sample_matching_is_redis_scan_match_and_options_are_checked(big):
    """The estimate matches sampled keys with its own copy of Redis' glob: on tricky keys it
    selects exactly what SCAN MATCH selects on the real server."""
    client = big.client()
    client.select(3)
    names = ['a*b', 'a?b', 'axb', 'a[b', 'a]b', 'a\\b', 'ab', 'a-b', 'aZb', 'é:1', 'x:y:z',
             'cache:1', 'Cache:1', '[x', '^x', 'a^b']
    for name in names:
        client.set(name, 1)
    patterns = ['a*b', 'a\\*b', 'a?b', 'a[xZ]b', 'a[^x]b', 'a[a-z]b', 'a[z-a]b', 'a[\\]]b', 'a\\\\b',
                '[', '[x', 'a[b', '\\[x', '\\^x', 'a[-]b', 'é*', '?:1', 'x:*:z', '[Cc]ache:*', '*',
                'a[]b', 'a[^]b', 'a**b', 'a\\']
    for pattern in patterns:
        want = set(client.scan_iter(match=pattern, count=1000))
        rx = rc.glob_regex(pattern)
        got = set(n for n in names if rx.fullmatch(n.encode('utf-8')))
        assert got == want, pattern
    client.flushdb()
    base = dict(scan_count=1000, batch_size=1000, ttl_sample=100, window='0s', state='present',
                patterns=[], login_host='127.0.0.1', login_port=1, db=0, cluster_mode='auto')
    for option, value in (('count_timeout', 'soon'), ('count_timeout', '0s'), ('count_sample', 0)):
        with pytest.raises(rc.CacheError) as err:
            rc.validate(dict(base, **{option: value}))
        assert option in str(err.value) and '\n' not in str(err.value)


def test_estimated_and_exact_counts_and_a_budget_that_runs_out(big):
    exact = dict((p, cli_count(big, p)) for p in PATTERNS)
    assert exact == {'cache:*': 45000, 'cache:page:*': 15000, 'sess:*': 5000, 'nothing:*': 0}

    est = run_module('redis_cache', dict(conn(big), patterns=PATTERNS))
    assert not est.failed, est.result
    pats = dict((p['pattern'], p) for p in est['patterns'])
    for pattern in PATTERNS:
        entry = pats[pattern]
        assert entry['count_method'] == 'estimated' and entry['sampled_keys'] >= 10000
        assert abs(entry['count'] - exact[pattern]) <= TOLERANCE, (pattern, entry, exact[pattern])
        assert 0 < entry['count_margin'] <= TOLERANCE
    # TTLs are read from the sampled keys of each pattern
    assert pats['cache:page:*']['no_ttl_percent'] == 100.0 and pats['sess:*']['no_ttl'] == 0
    found = dict((f['object'], f) for f in est['findings'])
    # no key of nothing:* in the sample: whether such keys lack a TTL is not known, never 'ok'
    assert found['keys nothing:* without TTL (% of 0 sampled)']['verdict'] == 'unknown'

    full = run_module('redis_cache', dict(conn(big), patterns=PATTERNS, count_method='exact'))
    assert not full.failed, full.result
    for entry in full['patterns']:
        assert entry['count_method'] == 'exact' and entry['count_margin'] == 0
        assert entry['count'] == exact[entry['pattern']]

    # 50,000 keys in SCAN steps of 10 keys cannot be read in 1 ms: the count is partial
    part = run_module('redis_cache', dict(conn(big), patterns=['cache:*'], count_method='exact',
                                          count_timeout='1ms', scan_count=10))
    assert not part.failed, part.result
    entry = part['patterns'][0]
    assert entry['count_method'] == 'partial' and entry['count'] < exact['cache:*']
    verdicts = dict((f['object'], f) for f in part['findings'])
    assert verdicts['keys cache:*']['verdict'] == 'unknown'
    assert 'partial' in verdicts['keys cache:*']['note']


def test_queue_discovery_reads_the_keyspace_once(big):
    client = big.client()
    # what one full SCAN pass over this keyspace costs, in SCAN calls
    client.config_resetstat()
    assert sum(1 for _k in client.scan_iter(count=1000)) >= KEYS
    one_pass = client.info('commandstats')['cmdstat_scan']['calls']
    client.config_resetstat()
    res = run_module('redis_queue_info', dict(conn(big)))
    assert not res.failed, res.result
    assert sorted((q['name'], q['flavor']) for q in res['queues']) == [
        ('b-one', 'bull'), ('mq-one', 'bullmq')]
    assert dict((q['name'], q['counts']['wait']) for q in res['queues']) == {'b-one': 2, 'mq-one': 2}
    calls = client.info('commandstats')['cmdstat_scan']['calls']
    assert calls <= one_pass + 1, (calls, one_pass)
    # named queues with flavor any are told apart by their own keys, without any SCAN
    client.config_resetstat()
    res = run_module('redis_queue_info', dict(conn(big), queues=['b-one', 'mq-one']))
    assert sorted((q['name'], q['flavor']) for q in res['queues']) == [
        ('b-one', 'bull'), ('mq-one', 'bullmq')]
    assert 'cmdstat_scan' not in client.info('commandstats')
