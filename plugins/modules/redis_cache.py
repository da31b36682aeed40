#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: redis_cache
short_description: Cache health of a Redis server or Cluster, and flush of keys by pattern
version_added: 0.1.0
description:
  - The runbooks' "Cache Management" (001 section 3, 5.2) and the caching step of "High
    Latency" (002) as data and as a safe action.
  - Health, always returned and read-only, from every primary (a standalone server, or every
    primary of a Redis Cluster) - the hit rate from C(INFO stats), used memory against
    C(maxmemory), the eviction policy, evicted and expired keys, and for each of O(patterns)
    the number of matching keys (estimated from a bounded sample unless O(count_method=exact),
    so that a diagnosis takes the same time at any keyspace size) with the TTLs of a sample of
    them and how many have no TTL.
    RV(findings) compares them with runbook 001's thresholds (hit rate below 70% warning,
    below 50% critical).
  - O(state=flushed) deletes the keys that match O(patterns) - SCAN with MATCH on every primary,
    never C(KEYS), and C(UNLINK). On a standalone server one Lua script call runs SCAN steps of
    O(scan_count) and UNLINKs what each returns (at most O(batch_size) keys per UNLINK) inside
    Redis, up to about 2000 keys examined (about 4 ms; no further step starts once 4 ms of the
    server's own clock have passed), then hands the server back to other clients - one round
    trip per few milliseconds of work, no key name over the network.
  - On a Redis Cluster (a script may only touch keys of one hash slot there), or when the user
    may not run scripts (no C(+@scripting) in its ACL), the keys SCAN returns are UNLINKed in
    batches of O(batch_size), split by hash slot, on a second connection while the next SCAN
    step runs; each command holds the server for about a millisecond.
  - C(FLUSHDB) is only ever sent with O(flush_all=true) and O(confirm=true).
  - Works in two steps, plan then apply. C(changed) is true when at least one key matched. In
    check mode every matching key is counted and nothing is deleted; in apply mode keys are
    counted while they are deleted, in one pass.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.redis
  - oncall.runbooks.attributes.action_group_redis
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Returns the plan with the exact number of keys each pattern would delete.
  diff_mode:
    support: full
    details: Shows the keys per pattern (and the database size) before and after.
  idempotent:
    support: full
    details: The keys a pattern matched are gone; a second run plans nothing for it.
options:
  state:
    description:
      - V(present) only reads the cache health.
      - V(flushed) also deletes the keys that match O(patterns), or every key with O(flush_all).
    type: str
    choices: [present, flushed]
    default: present
  patterns:
    description:
      - Glob-style key patterns as SCAN MATCH takes them (C(gemini:*), C(project:*)).
      - Counted (with a TTL sample) in the health; deleted with O(state=flushed).
      - A pattern that matches every key (C(*)) is refused for deletion; use O(flush_all).
    type: list
    elements: str
    default: []
  flush_all:
    description:
      - With O(state=flushed), delete every key of the database with C(FLUSHDB ASYNC) (on a
        Redis Cluster, on every primary). Needs O(confirm=true).
    type: bool
    default: false
  confirm:
    description: Must be V(true) together with O(flush_all).
    type: bool
    default: false
  cluster_mode:
    description:
      - V(auto) asks the server (C(INFO cluster)) and, on a Redis Cluster, works on every
        primary listed by C(CLUSTER NODES), reached at the address the cluster announces.
      - V(cluster) requires a cluster; V(standalone) only talks to the server given.
    type: str
    choices: [auto, cluster, standalone]
    default: auto
  scan_count:
    description: COUNT hint of each SCAN step (keys examined per step, per primary), 1 to 100000.
    type: int
    default: 1000
  batch_size:
    description: Most keys in one UNLINK command.
    type: int
    default: 1000
  ttl_sample:
    description:
      - How many keys per pattern have their TTL read (PTTL) for the health.
      - Redis counts each PTTL as a keyspace hit, so the sample slightly raises the hit rate
        that later runs see; the hit rate this run returns is read before the sample.
    type: int
    default: 100
  ttl_coverage_sample:
    description:
      - How many keys of the whole database have their TTL read for the TTL coverage (runbook 004
        "Increasing Cache Performance"); V(0) leaves it out.
      - The sample is the first keys a SCAN returns on each primary (hash table order), skipping
        O(ttl_coverage_exclude); SCAN stops after examining ten times this many keys, so the result
        RV(ttl_coverage) says how many were sampled, examined and excluded.
      - With a coverage, a C(volatile-*) eviction policy is a warning when the share of sampled keys
        without a TTL reaches O(thresholds.no_ttl_warning), since such a policy never evicts them.
    type: int
    default: 0
  ttl_coverage_exclude:
    description:
      - Glob patterns of keys left out of the TTL coverage, such as queues and locks that must not
        expire (C(bull:*)).
    type: list
    elements: str
    default: []
  window:
    description:
      - Measure the hit rate and the evictions over this window instead of since the server
        started - INFO stats is read at its start and at its end.
      - The cumulative counters include the whole history of the server; a window shows the
        cache as it serves now, for example after a flush and a warm-up. At most C(1h).
      - A duration such as C(10s) or C(1m); a bare number is seconds.
    type: str
    default: '0s'
  count_method:
    description:
      - How the health counts the keys of each of O(patterns).
      - V(estimated) reads a bounded sample, the first O(count_sample) keys SCAN returns on each
        primary (SCAN visits the hash table in an order spread over all of it, so they are a
        random sample), and scales each pattern's share of the sample by C(DBSIZE). It costs the
        same at any keyspace size and is reported with a 95% margin (C(count_margin) in RV(patterns)).
        When the sample is the whole keyspace, the count is exact (C(count_method) in RV(patterns)
        says which).
      - V(exact) reads the whole keyspace with SCAN MATCH, one pass per pattern, within
        O(count_timeout); if that runs out the count is the keys found so far (a lower bound),
        C(count_method) in RV(patterns) is C(partial) and a finding with verdict V(unknown) says so.
      - Check mode's plan and the diff always count exactly.
    type: str
    choices: [estimated, exact]
    default: estimated
  count_sample:
    description:
      - Keys read per primary for O(count_method=estimated), 1 to 1000000. The sample is shared
        by every pattern; its size bounds the time the health takes.
    type: int
    default: 10000
  count_timeout:
    description:
      - Time budget of O(count_method=exact), for all patterns together. A duration such as
        C(30s) or C(2m); a bare number is seconds. At most C(1h).
    type: str
    default: '30s'
  thresholds:
    description:
      - Thresholds of RV(findings); the defaults are runbook 001's (7.3, 5.2).
      - Percentages from 0 to 100; a hit-rate warning above its critical, a memory warning below
        its critical (a threshold that could never be seen is refused).
    type: dict
    default: {}
    suboptions:
      hit_rate_warning:
        description: Hit rate (percent) below which the cache is a warning.
        type: float
        default: 70
      hit_rate_critical:
        description: Hit rate (percent) below which the cache is critical.
        type: float
        default: 50
      memory_warning:
        description: Used memory as a percentage of C(maxmemory) at which it is a warning.
        type: float
        default: 80
      memory_critical:
        description: Used memory as a percentage of C(maxmemory) at which it is critical.
        type: float
        default: 90
      evictions_warning:
        description: Evicted keys (since the server started) at which it is a warning.
        type: int
        default: 1
      no_ttl_warning:
        description: Percentage of a pattern's sampled keys without a TTL at which it is a warning.
        type: float
        default: 10
requirements:
  - redis (Python library)
notes:
  - On a Redis Cluster O(db) must be 0, and the cluster's announced node addresses must be
    reachable from the host that runs the module.
  - A key created while the pass runs may or may not be deleted (SCAN's guarantee is about keys
    present for the whole pass); a second run deletes what is left.
seealso:
  - module: oncall.runbooks.redis_queue_info
'''

EXAMPLES = r'''
- name: Cache health, with the Gemini analysis keys counted
  oncall.runbooks.redis_cache:
    login_host: 127.0.0.1
    patterns: ["gemini:*"]
  register: cache

- name: Show the verdicts
  ansible.builtin.debug:
    msg: "{{ cache.findings | rejectattr('verdict', 'eq', 'ok') }}"

- name: Delete the stale Gemini analyses (SCAN + UNLINK, every primary of the cluster)
  oncall.runbooks.redis_cache:
    login_host: redis-0.internal
    login_password: "{{ vault_redis_password }}"
    state: flushed
    patterns: ["gemini:analysis:*"]

- name: Empty the whole cache database (destructive)
  oncall.runbooks.redis_cache:
    state: flushed
    flush_all: true
    confirm: true
'''

RETURN = r'''
cluster:
  description: Whether the server is a Redis Cluster (every primary was read).
  returned: always
  type: bool
  sample: false
nodes:
  description: The primaries read (C(host:port)).
  returned: always
  type: list
  elements: str
  sample: ["127.0.0.1:6379"]
health:
  description: Cache figures summed over the primaries, and per node under C(nodes).
  returned: always
  type: dict
  sample:
    hit_rate: 82.5
    keyspace_hits: 825
    keyspace_misses: 175
    evicted_keys: 0
    expired_keys: 12
    used_memory: 1048576
    maxmemory: 104857600
    memory_percent: 1.0
    maxmemory_policy: allkeys-lru
    dbsize: 1200
    window_seconds: null
ttl_coverage:
  description:
    - Keys without a TTL in a bounded sample of the whole database (O(ttl_coverage_sample)); null when not asked for.
  returned: always
  type: dict
  sample: {sampled: 500, scanned: 1480, excluded: 980, no_ttl: 20, no_ttl_percent: 4.0, dbsize: 1500, exclude: ["bull:*"]}
patterns:
  description:
    - Keys per pattern after any deletion, with a TTL sample.
    - C(count) is the number of matching keys; C(count_method) says how it was obtained
      (C(exact), C(estimated) from a sample, or C(partial) when O(count_timeout) ran out and it
      is a lower bound); C(count_margin) is the half-width of the 95% interval of an estimate
      (0 when exact, null when partial); C(sampled_keys) is how many keys the estimate read.
    - C(sampled) is how many matching keys had their TTL read (at most O(ttl_sample)).
  returned: always
  type: list
  elements: dict
  sample:
    - pattern: "gemini:*"
      count: 1000
      count_method: estimated
      count_margin: 28
      sampled_keys: 10000
      sampled: 100
      no_ttl: 0
      no_ttl_percent: 0.0
      ttl_seconds: {min: 12.0, median: 1800.0, max: 3599.0}
findings:
  description:
    - Each figure against its threshold, with a verdict (V(ok), V(warning), V(critical)).
    - The eviction policy and the TTL coverage carry a C(recommendation) when they are not ok, and
      the eviction policy also when no C(maxmemory) is set.
  returned: always
  type: list
  elements: dict
  sample:
    - {object: cache hit rate (%), figure: 45.0, threshold: "< 70 warning, < 50 critical", verdict: critical}
plan:
  description:
    - What the module decided to delete, before doing it. C(count) is exact in check mode;
      in apply mode it is null and RV(actions) has the number removed.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: unlink, object: "gemini:*", reason: "1000 key(s) match gemini:*", count: 1000, ids: [], destructive: true}
actions:
  description: What was done, with the keys removed; empty in check mode.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: unlink, object: "gemini:*", count: 1000, seconds: 0.021, round_trips: 1, commands: 1,
       scan_steps: 2}
deleted:
  description: Keys removed (in check mode, keys that would be removed).
  returned: always
  type: int
  sample: 1000
msg:
  description: One-line summary.
  returned: always
  type: str
  sample: "unlink gemini:* (1000): 1000 key(s) match gemini:*"
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import ansible_module
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import cache as rc
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn


def _plan_dicts(actions):
    out = []
    for action in actions:
        entry = action.to_dict()
        if entry['count'] < 0:
            entry['count'] = None
        out.append(entry)
    return out


def observe(nodes, params):
    # health first: reading the TTL sample counts as keyspace lookups in INFO stats
    health = rc.health(nodes, window=params['window_s'])
    patterns = rc.pattern_counts(nodes, params['patterns'], params['scan_count'], params['ttl_sample'],
                                 params['count_method'], params['count_sample'],
                                 params['count_timeout_s'])
    coverage = None
    if params.get('ttl_coverage_sample'):
        coverage = rc.ttl_coverage(nodes, params['ttl_coverage_sample'], params.get('ttl_coverage_exclude') or [],
                                   params['scan_count'])
    return health, patterns, coverage


def run(module):
    params = module.params
    params['window_s'] = rc.validate(params)
    clustered, nodes = rconn.primaries(params, decode_responses=False)
    if clustered and params['db']:
        raise rc.CacheError('a Redis Cluster only has database 0, not %d: set db: 0' % params['db'])
    result = dict(changed=False, cluster=clustered, nodes=[n.name for n in nodes], plan=[],
                  actions=[], deleted=0)
    try:
        actions = []
        if params['state'] == 'flushed':
            actions = rc.plan(nodes, params, exact_counts=module.check_mode)
        before_patterns = None
        if module._diff:
            before_patterns = {p: rc.count_matching(nodes, p, params['scan_count'])
                               for p in params['patterns']}
            before_db = sum(n.client.dbsize() for n in nodes)
        result['plan'] = _plan_dicts(actions)
        result['changed'] = bool(actions)
        if module.check_mode:
            result['deleted'] = sum(a.count for a in actions)
            result['msg'] = '; '.join('%s %s (%d): %s' % (a.kind, a.object, a.count, a.reason)
                                      for a in actions) or 'nothing to do'
        else:
            done = []
            for action in actions:
                started, stats = time.monotonic(), {}
                try:
                    count = rc.apply(nodes, action, params, clustered, stats)
                except rconn.redis_exc.RedisError as exc:
                    raise rc.CacheError('%s %s failed after %d of %d action(s): %s'
                                        % (action.kind, action.object, len(done), len(actions),
                                           rconn.describe_error(exc, params)))
                entry = dict(action=action.kind, kind=action.kind, object=action.object, count=count, reason=action.reason,
                             seconds=round(time.monotonic() - started, 3))
                entry.update(stats)
                done.append(entry)
            result['actions'] = done
            result['deleted'] = sum(d['count'] for d in done)
            result['msg'] = '; '.join('%s %s: %d key(s) removed' % (d['kind'], d['object'], d['count'])
                                      for d in done) or 'nothing to do'
        result['health'], result['patterns'], result['ttl_coverage'] = observe(nodes, params)
        if module.check_mode and actions:
            # the health read above is the live one; predict the patterns after the flush
            planned = dict((a.object, a.count) for a in actions if a.kind == 'unlink')
            for entry in result['patterns']:
                if entry['pattern'] in planned or any(a.kind == 'flush' for a in actions):
                    entry['count'] = 0
        result['findings'] = rc.findings(result['health'], result['patterns'], params['thresholds'],
                                         result['ttl_coverage'])
        if module._diff:
            after_db = result['health']['dbsize'] - (result['deleted'] if module.check_mode else 0)
            result['diff'] = dict(
                before=dict(dbsize=before_db, patterns=before_patterns),
                after=dict(dbsize=after_db,
                           patterns=dict((e['pattern'], e['count']) for e in result['patterns'])))
    finally:
        for node in nodes:
            node.client.close()
    return result


def main():
    argument_spec = rconn.redis_argument_spec()
    argument_spec.update(rconn.cluster_argument_spec())
    argument_spec.update(
        state=dict(type='str', default='present', choices=['present', 'flushed']),
        patterns=dict(type='list', elements='str', default=[]),
        flush_all=dict(type='bool', default=False),
        confirm=dict(type='bool', default=False),
        scan_count=dict(type='int', default=1000),
        batch_size=dict(type='int', default=1000),
        ttl_sample=dict(type='int', default=100),
        ttl_coverage_sample=dict(type='int', default=0),
        ttl_coverage_exclude=dict(type='list', elements='str', default=[]),
        window=dict(type='str', default='0s'),
        count_method=dict(type='str', default='estimated', choices=list(rc.COUNT_METHODS)),
        count_sample=dict(type='int', default=10000),
        count_timeout=dict(type='str', default='30s'),
        thresholds=dict(type='dict', default={}, options=dict(
            hit_rate_warning=dict(type='float', default=70),
            hit_rate_critical=dict(type='float', default=50),
            memory_warning=dict(type='float', default=80),
            memory_critical=dict(type='float', default=90),
            evictions_warning=dict(type='int', default=1),
            no_ttl_warning=dict(type='float', default=10),
        )),
    )
    module = ansible_module(AnsibleModule, argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, describe=lambda exc: rconn.failure(exc, module.params), requires=['redis'])


if __name__ == '__main__':
    main()
