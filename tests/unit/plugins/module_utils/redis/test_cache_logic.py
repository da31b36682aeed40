# -*- coding: utf-8 -*-
"""Pure logic of redis_cache and redis_cluster on figures made up here (no Redis)."""
from __future__ import annotations

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import verdict_below
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import cache as rc
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import cluster as rcl
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn

NODES = """\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1700000000000 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1700000000000 2 connected 5461-10922
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [5461->-67ed]
9a11 127.0.0.1:30003@40003 master,fail - 1700000000000 1700000000000 3 disconnected
"""


@pytest.mark.parametrize('value,expected', [(None, 'unknown'), (70.0, 'ok'), (69.99, 'warning'),
                                            (50.0, 'warning'), (49.9, 'critical')])
def test_hit_rate_verdict_is_strictly_below_the_runbook_thresholds(value, expected):
    assert verdict_below(value, 70, 50) == expected


def test_cluster_nodes_parsed_with_roles_slots_and_flags():
    nodes = rconn.parse_cluster_nodes(NODES)
    by = dict((n.port, n) for n in nodes)
    assert by[30001].role == 'primary' and by[30001].slots == 5461 and by[30001].flags == []
    assert by[30004].role == 'replica' and by[30004].primary_id == 'e7d1'
    assert by[30003].flags == ['fail'] and by[30003].slots == 0
    assert rconn.parse_cluster_nodes(NODES.encode())[0].name == '127.0.0.1:30004'


def health(**kw):
    base = dict(hit_rate=90.0, memory_percent=None, used_memory=1000, maxmemory=0,
                maxmemory_policy='noeviction', evicted_keys=0)
    base.update(kw)
    return base


def test_findings_memory_policy_and_no_ttl():
    out = dict((f['object'], f) for f in rc.findings(
        health(memory_percent=91.0, maxmemory=100, maxmemory_policy='noeviction', evicted_keys=3),
        [dict(pattern='p:*', sampled=0, no_ttl_percent=0.0)], {}))
    assert out['memory used of maxmemory (%)']['verdict'] == 'critical'
    assert out['eviction policy']['verdict'] == 'warning'
    assert out['evicted keys']['verdict'] == 'warning'
    assert out['keys p:* without TTL (% of 0 sampled)']['verdict'] == 'ok'
    out = dict((f['object'], f) for f in rc.findings(health(hit_rate=None), [], {'hit_rate_warning': 95}))
    # no lookups: the hit rate is unknown, never ok
    assert out['cache hit rate (%)']['verdict'] == 'unknown' and 'no lookups' in out['cache hit rate (%)']['note']
    # noeviction without maxmemory never evicts either: the cache grows until memory runs out
    out = dict((f['object'], f) for f in rc.findings(health(maxmemory=0, maxmemory_policy='noeviction'), [], {}))
    assert out['eviction policy']['verdict'] == 'warning' and 'grows' in out['eviction policy']['note']
    out = dict((f['object'], f) for f in rc.findings(health(maxmemory=100, maxmemory_policy='allkeys-lru'), [], {}))
    assert out['eviction policy']['verdict'] == 'ok'


@pytest.mark.parametrize('params,msg', [
    (dict(state='flushed', patterns=[]), 'needs patterns'),
    (dict(state='flushed', patterns=['**']), 'matches every key'),
    (dict(state='flushed', flush_all=True), 'confirm: true'),
    (dict(state='flushed', flush_all=True, confirm=True, patterns=['a:*']), 'do not combine'),
    (dict(state='present', flush_all=True), 'only applies with state: flushed'),
    (dict(state='present', scan_count=0), 'scan_count must be a whole number from 1'),
    (dict(state='present', window=10 ** 20), 'window must be a duration from 0s to 3600s'),
    (dict(state='present', thresholds={'hit_rate_warning': 40}), 'hit_rate_warning .* below'),
    (dict(state='present', login_port=0), 'login_port must be'),
])
def test_validate_refuses(params, msg):
    full = dict(state='present', patterns=[], flush_all=False, confirm=False, scan_count=10,
                batch_size=10, ttl_sample=1, login_host='localhost', login_port=6379, db=0, window='0s', thresholds={})
    full.update(params)
    with pytest.raises(rc.CacheError, match=msg):
        rc.validate(full)


def cluster_state():
    def node(name, role, **kw):
        base = dict(name=name, id=name, host='127.0.0.1', port=int(name.split(':')[1]), role=role,
                    failed=False, suspected=False, reachable=True, flags=[], slots=0)
        base.update(kw)
        return base
    return dict(enabled=True, info={'cluster_state': 'ok', 'cluster_slots_ok': 16384}, nodes=[
        node('h:1', 'primary', slots=16384, replicas=['h:2', 'h:3']),
        node('h:2', 'replica', primary='h:1', in_sync=True, link_up=True, repl_offset=90, lag_bytes=10),
        node('h:3', 'replica', primary='h:1', in_sync=True, link_up=True, repl_offset=100, lag_bytes=0),
    ])


def test_failover_picks_the_in_sync_replica_with_most_data_and_is_idempotent():
    state = cluster_state()
    actions = rcl.plan(state, dict(failover_from='h:1'))
    assert [a.object for a in actions] == ['h:3'] and not actions[0].destructive
    assert rcl.plan(state, dict(failover_from='h:2')) == []      # already a replica
    assert rcl.plan(state, dict(promote='h:1')) == []            # already a primary
    state['nodes'][2]['in_sync'] = False
    state['nodes'][1]['in_sync'] = False
    with pytest.raises(rcl.ClusterError, match='no connected, in-sync replica'):
        rcl.plan(state, dict(failover_from='h:1'))
    with pytest.raises(rcl.ClusterError, match='not in sync'):
        rcl.plan(state, dict(promote='h:2'))
    with pytest.raises(rcl.ClusterError, match='set confirm: true'):
        rcl.plan(state, dict(promote='h:2', force=True))
    assert rcl.plan(state, dict(promote='h:2', force=True, confirm=True))[0].destructive
