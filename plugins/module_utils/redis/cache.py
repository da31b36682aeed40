# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cache health and flush-by-pattern on a standalone Redis or every primary of a Redis Cluster.

Deletion never uses KEYS: each primary is walked with SCAN MATCH and the keys found are removed
with UNLINK in bounded batches, on a second connection, while the next SCAN step runs; no single
command holds the server for more than about a millisecond (other clients are served between).
On a Redis Cluster a multi-key UNLINK must stay in one hash slot, so a batch is split by slot.
"""

from __future__ import annotations

import math
import threading
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

try:
    import queue
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    import Queue as queue  # type: ignore

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import (
    finding, verdict, verdict_below)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action

try:
    from redis.crc import key_slot
except ImportError:  # pragma: no cover - reported by the module through HAS_REDIS
    key_slot = None

DEFAULT_THRESHOLDS = dict(
    hit_rate_warning=70.0,       # runbook 001, 7.3 and 5.2: hit rate < 70% warning
    hit_rate_critical=50.0,      # < 50% critical
    memory_warning=80.0,         # used_memory / maxmemory, percent
    memory_critical=90.0,
    evictions_warning=1,         # evicted keys since the server started
    no_ttl_warning=10.0,         # percent of sampled keys of a pattern without a TTL
)


class CacheError(OncallError):
    """A refusal or failure, already phrased for the operator."""


def _int(info, key):
    try:
        return int(info.get(key, 0) or 0)
    except (TypeError, ValueError):
        return 0


def _s(value):
    return value.decode('utf-8', 'backslashreplace') if isinstance(value, bytes) else value


WINDOWED = ('keyspace_hits', 'keyspace_misses', 'evicted_keys', 'expired_keys')


def health(nodes, window=0, sleep=None):
    """INFO stats and memory of every primary, summed (memory: the fullest node decides).

    With a window (seconds) the counters of WINDOWED are the increase over that window: the hit
    rate and the evictions of now, rather than since the server started."""
    first = {}
    if window:
        for node in nodes:
            first[node.name] = node.client.info('stats')
        (sleep or time.sleep)(window)
    per_node = []
    for node in nodes:
        stats = node.client.info('stats')
        if window:
            stats = dict(stats)
            for key in WINDOWED:
                stats[key] = _int(stats, key) - _int(first[node.name], key)
        mem = node.client.info('memory')
        keyspace = node.client.info('keyspace')
        per_node.append(dict(
            node=node.name,
            keyspace_hits=_int(stats, 'keyspace_hits'),
            keyspace_misses=_int(stats, 'keyspace_misses'),
            evicted_keys=_int(stats, 'evicted_keys'),
            expired_keys=_int(stats, 'expired_keys'),
            used_memory=_int(mem, 'used_memory'),
            used_memory_peak=_int(mem, 'used_memory_peak'),
            maxmemory=_int(mem, 'maxmemory'),
            maxmemory_policy=_s(mem.get('maxmemory_policy', '')),
            keys=sum(_int(v, 'keys') for v in keyspace.values() if isinstance(v, dict)),
            dbsize=node.client.dbsize(),
        ))
    out = dict(nodes=per_node, window_seconds=window or None)
    for key in ('keyspace_hits', 'keyspace_misses', 'evicted_keys', 'expired_keys', 'used_memory',
                'maxmemory', 'dbsize'):
        out[key] = sum(n[key] for n in per_node)
    lookups = out['keyspace_hits'] + out['keyspace_misses']
    out['hit_rate'] = round(100.0 * out['keyspace_hits'] / lookups, 2) if lookups else None
    percents = [100.0 * n['used_memory'] / n['maxmemory'] for n in per_node if n['maxmemory']]
    out['memory_percent'] = round(max(percents), 2) if percents else None
    policies = sorted(set(n['maxmemory_policy'] for n in per_node))
    out['maxmemory_policy'] = policies[0] if len(policies) == 1 else ','.join(policies)
    return out


def _sample_ttls(client, keys):
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
    return pipe.execute()


def _b(value):
    return value if isinstance(value, bytes) else value.encode('utf-8', 'surrogateescape')


def _byte_class(items, negate):
    if not items:
        return b'[\\x00-\\xff]' if negate else b'(?!)'
    body = b''.join(b'\\x%02x' % lo if lo == hi else b'\\x%02x-\\x%02x' % (lo, hi)
                    for lo, hi in items)
    return b'[' + (b'^' if negate else b'') + body + b']'


def glob_regex(pattern):
    """A compiled bytes regex that matches exactly the keys Redis' SCAN MATCH matches.

    Redis' glob (util.c stringmatchlen): ``*`` any run, ``?`` one byte, ``[...]`` a class
    (``^`` negates, ``a-z`` a range in either order, ``\\`` escapes), ``\\`` escapes outside
    a class; bytes, case-sensitive. A class left open runs to the end of the pattern.
    """
    import re
    p = _b(pattern)
    out, i, n = [], 0, len(p)
    while i < n:
        c = p[i]
        if c == 0x2a:  # *
            while i + 1 < n and p[i + 1] == 0x2a:
                i += 1
            out.append(b'.*')
        elif c == 0x3f:  # ?
            out.append(b'.')
        elif c == 0x5b:  # [
            i += 1
            negate = i < n and p[i] == 0x5e
            if negate:
                i += 1
            items = []
            while i < n and p[i] != 0x5d:
                if p[i] == 0x5c and n - i >= 2:
                    i += 1
                    items.append((p[i], p[i]))
                elif n - i >= 3 and p[i + 1] == 0x2d:
                    lo, hi = p[i], p[i + 2]
                    items.append((min(lo, hi), max(lo, hi)))
                    i += 2
                else:
                    items.append((p[i], p[i]))
                i += 1
            out.append(_byte_class(items, negate))
        else:
            if c == 0x5c and n - i >= 2:
                i += 1
            out.append(b'\\x%02x' % p[i])
        i += 1
    return re.compile(b''.join(out), re.DOTALL)


COUNT_METHODS = ('estimated', 'exact')
Z95 = 1.96


def _margin(matched, sampled, population):
    """Half-width of a 95% interval of an estimated count (normal approximation with the
    finite-population correction; the rule of three when nothing matched)."""
    if not sampled or sampled >= population:
        return 0
    fpc = ((population - sampled) / float(max(population - 1, 1))) ** 0.5
    if matched in (0, sampled):
        share = 3.0 / sampled  # one side is certain; the other within 3/n at 95%
        return int(math.ceil(share * population * fpc))
    p = float(matched) / sampled
    return int(math.ceil(Z95 * (p * (1 - p) / sampled) ** 0.5 * population * fpc))


def sample_keyspace(nodes, sample_size, scan_count):
    """[(node, keys read, dbsize, whole keyspace read?)]: the first keys SCAN returns, per node.

    SCAN walks the hash table in an order that spreads over all of it, and keys sit in buckets
    by a seeded hash of their name, so the first keys it returns are a random sample of the
    keyspace. The read stops after sample_size keys (or the whole keyspace, if smaller)."""
    out = []
    for node in nodes:
        dbsize = node.client.dbsize()
        keys, cursor = [], 0
        while True:
            cursor, got = node.client.scan(cursor, count=min(scan_count, max(sample_size, 1)))
            keys.extend(got)
            cursor = int(cursor)
            if not cursor or len(keys) >= sample_size:
                break
        out.append((node, keys, dbsize, not cursor))
    return out


def count_exact(nodes, pattern, scan_count, deadline=None):
    """(keys matching pattern, first keys found per node, finished?) by a full SCAN MATCH;
    with a deadline (time.monotonic()) it stops there and says it did not finish."""
    count, first = 0, []
    for node in nodes:
        cursor = 0
        while True:
            cursor, keys = node.client.scan(cursor, match=pattern, count=scan_count)
            count += len(keys)
            first.extend((node, k) for k in keys[:max(0, 1000 - len(first))])
            cursor = int(cursor)
            if not cursor:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return count, first, False
    return count, first, True


def _ttl_stats(pattern, keys_by_node, ttl_sample):
    ttls = []
    by_node = {}
    for node, key in keys_by_node[:ttl_sample]:
        by_node.setdefault(id(node), (node, []))[1].append(key)
    for node, keys in by_node.values():
        ttls += [t for t in _sample_ttls(node.client, keys) if t != -2]  # -2: gone meanwhile
    with_ttl = sorted(t / 1000.0 for t in ttls if t >= 0)
    no_ttl = sum(1 for t in ttls if t == -1)
    entry = dict(pattern=pattern, sampled=len(ttls), no_ttl=no_ttl,
                 no_ttl_percent=round(100.0 * no_ttl / len(ttls), 2) if ttls else 0.0,
                 ttl_seconds=dict(min=None, median=None, max=None))
    if with_ttl:
        entry['ttl_seconds'] = dict(min=round(with_ttl[0], 3),
                                    median=round(with_ttl[len(with_ttl) // 2], 3),
                                    max=round(with_ttl[-1], 3))
    return entry


def ttl_coverage(nodes, sample, exclude=(), scan_count=1000):
    """Share of keys without a TTL among a bounded sample of the whole keyspace (runbook 004
    "Increasing Cache Performance": adjust TTLs). The sample is the first *sample* keys of a SCAN
    of every primary (the hash table's order, unrelated to the names), skipping keys that match a
    glob of *exclude* (queues, locks: keys that must not expire); SCAN stops after examining ten
    times *sample* keys, so the cost is bounded whatever the size of the database."""
    excluders = [glob_regex(p) for p in exclude]
    keys, scanned, excluded = [], 0, 0
    budget = sample * 10
    for node in nodes:
        cursor = 0
        while scanned < budget and sum(len(k) for _n, k in keys) < sample:
            cursor, batch = node.client.scan(cursor=cursor, count=min(scan_count, budget))
            mine = []
            for key in batch:
                scanned += 1
                if any(rx.fullmatch(_b(key)) for rx in excluders):
                    excluded += 1
                elif sum(len(k) for _n, k in keys) + len(mine) < sample:
                    mine.append(key)
            if mine:
                keys.append((node, mine))
            if cursor == 0:
                break
    ttls = []
    for node, batch in keys:
        ttls += [t for t in _sample_ttls(node.client, batch) if t != -2]
    no_ttl = sum(1 for t in ttls if t == -1)
    return dict(sampled=len(ttls), scanned=scanned, excluded=excluded, no_ttl=no_ttl,
                no_ttl_percent=round(100.0 * no_ttl / len(ttls), 2) if ttls else 0.0,
                dbsize=sum(n.client.dbsize() for n in nodes), exclude=list(exclude))


def pattern_counts(nodes, patterns, scan_count=1000, ttl_sample=100, method='estimated',
                   sample_size=10000, timeout=30.0):
    """Keys per pattern on every primary, with the TTLs of a sample of them.

    estimated: one bounded SCAN per primary (sample_size keys, shared by every pattern); each
    pattern's share of the sample times the primary's DBSIZE, with a 95% margin. When the
    sample is the whole keyspace the count is exact. exact: a full SCAN MATCH per pattern
    within timeout seconds (for all patterns together); if it runs out, the count is the
    keys found so far, a lower bound, and count_method says partial.
    """
    out = []
    if not patterns:
        return out
    if method == 'exact':
        deadline = time.monotonic() + timeout
        for pattern in patterns:
            count, first, done = count_exact(nodes, pattern, scan_count, deadline)
            entry = _ttl_stats(pattern, first, ttl_sample)
            entry.update(count=count, count_method='exact' if done else 'partial',
                         count_margin=0 if done else None,
                         sampled_keys=None, count_seconds_budget=timeout)
            out.append(entry)
        return out
    samples = sample_keyspace(nodes, sample_size, scan_count)
    whole = all(s[3] for s in samples)
    for pattern in patterns:
        rx = glob_regex(pattern)
        count, margin2, read, found = 0, 0, 0, []
        for node, keys, dbsize, complete in samples:
            matched = [k for k in keys if rx.fullmatch(_b(k))]
            found.extend((node, k) for k in matched)
            read += len(keys)
            if complete or not keys:
                count += len(matched)
            else:
                population = max(dbsize, len(keys))
                count += int(round(float(len(matched)) / len(keys) * population))
                margin2 += _margin(len(matched), len(keys), population) ** 2
        entry = _ttl_stats(pattern, found, ttl_sample)
        entry.update(count=count, count_method='exact' if whole else 'estimated',
                     count_margin=int(math.ceil(margin2 ** 0.5)), sampled_keys=read)
        out.append(entry)
    return out


def findings(health_, patterns, thresholds, coverage=None):
    """The runbook's cache thresholds (001 7.3 and 5.2) applied to the observed figures."""
    t = dict(DEFAULT_THRESHOLDS, **{k: v for k, v in (thresholds or {}).items() if v is not None})
    out = []
    hit = health_['hit_rate']
    out.append(finding('cache hit rate (%)', hit,
                       '< %g warning, < %g critical' % (t['hit_rate_warning'], t['hit_rate_critical']),
                       verdict_below(hit, t['hit_rate_warning'], t['hit_rate_critical']),
                       note=('no lookups in the window' if health_.get('window_seconds')
                             else 'no lookups since the statistics were reset') if hit is None else None))
    mem = health_['memory_percent']
    if mem is None:
        out.append(finding('memory used of maxmemory (%)', None, 'maxmemory not set', 'ok',
                           note='used_memory %d bytes, no limit' % health_['used_memory']))
    else:
        out.append(finding('memory used of maxmemory (%)', mem,
                           '>= %g warning, >= %g critical' % (t['memory_warning'], t['memory_critical']),
                           verdict(mem, t['memory_warning'], t['memory_critical'])))
    policy = health_['maxmemory_policy']
    # Runbook 001 5.2: a cache evicts. noeviction never does: with a maxmemory writes fail once
    # it is reached, without one the cache grows until the host runs out of memory.
    bad_policy = 'noeviction' in policy
    # A volatile-* policy evicts only keys that have a TTL: keys without one stay until deleted,
    # and once they fill maxmemory the writes fail as with noeviction.
    volatile_gap = (not bad_policy and policy.startswith('volatile-') and coverage is not None
                    and coverage['sampled'] and coverage['no_ttl_percent'] >= t['no_ttl_warning'])
    item = finding('eviction policy', policy, 'a cache evicts (allkeys-lru, volatile-lru, ...)',
                   'warning' if bad_policy or volatile_gap else 'ok',
                   note=('writes fail once maxmemory is reached' if health_['maxmemory']
                         else 'no maxmemory either: the cache grows until memory runs out')
                   if bad_policy else (('%s evicts only keys with a TTL; %g%% of the sampled keys have none'
                                        % (policy, coverage['no_ttl_percent'])) if volatile_gap else None))
    if bad_policy or volatile_gap:
        item['recommendation'] = (
            'allkeys-lru for a Redis that only caches; volatile-lru with a TTL on every cache key when it also '
            'holds queues or locks (they must not be evicted)' if bad_policy else
            'set a TTL on every cache key, or use allkeys-lru if nothing else lives in this Redis')
    if not health_['maxmemory']:
        item['recommendation'] = (item.get('recommendation', '') + '; ' if item.get('recommendation') else '') + (
            'set maxmemory (runbook 004: redis.conf maxmemory 512mb, raised to 1gb for large result sets)')
    out.append(item)
    out.append(finding('evicted keys', health_['evicted_keys'], '>= %d warning' % t['evictions_warning'],
                       verdict(health_['evicted_keys'], t['evictions_warning'], None)))
    if coverage is not None:
        cov = finding('keys without TTL (%% of %d sampled of %d)' % (coverage['sampled'], coverage['dbsize']),
                      coverage['no_ttl_percent'], '>= %g warning' % t['no_ttl_warning'],
                      verdict(coverage['no_ttl_percent'], t['no_ttl_warning'], None) if coverage['sampled'] else 'ok',
                      note='sampled by SCAN: %d examined, %d excluded (%s)' % (
                          coverage['scanned'], coverage['excluded'], ', '.join(coverage['exclude']) or 'none'))
        if cov['verdict'] != 'ok':
            cov['recommendation'] = ('give every cache key a TTL (runbook 004: shorter for volatile data, longer '
                                     'for stable data); keys without one are never expired')
        out.append(cov)
    for entry in patterns:
        method = entry.get('count_method', 'exact')
        if method == 'partial':
            out.append(finding('keys %s' % entry['pattern'], entry['count'], 'an exact count',
                               'unknown', note='the count is partial: count_timeout (%gs) ran out '
                               'after %d key(s) were found; the true count is higher'
                               % (entry.get('count_seconds_budget') or 0, entry['count'])))
        if not entry['sampled'] and entry.get('count') == 0 and method != 'exact':
            # nothing matched in a sample of part of the keyspace: rare keys may still lack a TTL
            out.append(finding('keys %s without TTL (%% of 0 sampled)' % entry['pattern'], None,
                               '>= %g warning' % t['no_ttl_warning'], 'unknown',
                               note='no key of the pattern in %s: count_method exact reads them all'
                               % ('a sample of %d key(s)' % entry['sampled_keys']
                                  if method == 'estimated' else 'the part read in time')))
            continue
        out.append(finding('keys %s without TTL (%% of %d sampled)' % (entry['pattern'], entry['sampled']),
                           entry['no_ttl_percent'], '>= %g warning' % t['no_ttl_warning'],
                           verdict(entry['no_ttl_percent'], t['no_ttl_warning'], None)
                           if entry['sampled'] else 'ok'))
    for item in out:
        if item.get('note') is None:
            item.pop('note', None)
    return out


def _first_match(client, pattern, scan_count):
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, match=pattern, count=scan_count)
        if keys:
            return True
        if not int(cursor):
            return False


def count_matching(nodes, pattern, scan_count):
    return sum(sum(1 for _k in n.client.scan_iter(match=pattern, count=scan_count)) for n in nodes)


def plan(nodes, params, exact_counts):
    """One action per pattern that matches at least one key (or one flush of every key).

    With exact_counts (check mode) every key is counted; otherwise a pattern is planned as soon
    as one key matches, and the count is what the single deleting pass removes.
    """
    actions = []
    if params.get('flush_all'):
        total = sum(n.client.dbsize() for n in nodes)
        if total:
            actions.append(Action('flush', 'db %d on %d node(s)' % (params.get('db') or 0, len(nodes)),
                                  '%d key(s), flush_all requested and confirmed' % total,
                                  count=total, destructive=True))
        return actions
    for pattern in params.get('patterns') or []:
        if exact_counts:
            n = count_matching(nodes, pattern, params['scan_count'])
            if n:
                actions.append(Action('unlink', pattern, '%d key(s) match %s' % (n, pattern),
                                      count=n, destructive=True, params={'pattern': pattern}))
        elif any(_first_match(node.client, pattern, params['scan_count']) for node in nodes):
            actions.append(Action('unlink', pattern, 'keys match %s' % pattern, count=-1,
                                  destructive=True, params={'pattern': pattern}))
    return actions


def _unlink_commands(pipe, keys, batch_size, clustered):
    """Queue UNLINK commands for keys on pipe; returns how many commands were queued."""
    if not keys:
        return 0
    if not clustered:
        n = 0
        for i in range(0, len(keys), batch_size):
            pipe.execute_command('UNLINK', *keys[i:i + batch_size])
            n += 1
        return n
    by_slot = {}
    for key in keys:
        by_slot.setdefault(key_slot(key if isinstance(key, bytes) else key.encode()), []).append(key)
    n = 0
    for group in by_slot.values():
        for i in range(0, len(group), batch_size):
            pipe.execute_command('UNLINK', *group[i:i + batch_size])
            n += 1
    return n


class _Deleter(threading.Thread):
    """UNLINKs the batches handed to it on a connection of its own, while SCAN goes on."""

    def __init__(self, client, batch_size, clustered, stats):
        super(_Deleter, self).__init__(name='redis-cache-unlink')
        self.daemon = True
        self.client, self.batch_size, self.clustered, self.stats = client, batch_size, clustered, stats
        self.batches = queue.Queue(maxsize=4)
        self.deleted = 0
        self.error = None

    def run(self):
        while True:
            keys = self.batches.get()
            if keys is None:
                return
            if self.error is not None:
                continue  # drain the queue so the scanning side never blocks
            try:
                pipe = self.client.pipeline(transaction=False)
                queued = _unlink_commands(pipe, keys, self.batch_size, self.clustered)
                self.deleted += sum(int(r) for r in pipe.execute())
                self.stats['round_trips'] = self.stats.get('round_trips', 0) + 1
                self.stats['commands'] = self.stats.get('commands', 0) + queued
            except Exception as exc:  # re-raised by the caller; pylint: disable=broad-except
                self.error = exc


# SCAN steps and the UNLINK of what each returns, inside Redis, until the cursor is back at 0,
# ARGV[6] steps are done, or ARGV[4] microseconds (the server's own clock) have passed: one
# round trip per few milliseconds of work, and no key name crosses the network. The work bound
# (steps) decides on a quiet server; the clock only caps a call when the server is starved of
# CPU. TIME is read before anything is written, so a user denied a command of the script is
# refused before any key is removed.
# ARGV: cursor, pattern, COUNT per step, budget in microseconds, most keys per UNLINK, steps.
SCAN_UNLINK_LUA = r"""
local t0 = redis.call('TIME')
local start = tonumber(t0[1]) * 1000000 + tonumber(t0[2])
local budget, per = tonumber(ARGV[4]), tonumber(ARGV[5])
local cursor, removed, steps = ARGV[1], 0, 0
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[2], 'COUNT', ARGV[3])
  cursor = r[1]
  steps = steps + 1
  local keys = r[2]
  for i = 1, #keys, per do
    removed = removed + redis.call('UNLINK', unpack(keys, i, math.min(i + per - 1, #keys)))
  end
  local t = redis.call('TIME')
until cursor == '0' or steps >= tonumber(ARGV[6])
  or (tonumber(t[1]) * 1000000 + tonumber(t[2])) - start >= budget
return {cursor, removed, steps}
"""
# Keys one script call examines (SCAN steps of scan_count) before it hands the server back to
# other clients, and the server time after which it starts no further step however few keys it
# got through (a server short of CPU). A step of 1,000 small keys, each UNLINKed, takes about 2 ms
# (bench/cache_flush.py: 5,000 keys made calls of 9 to 13 ms in SLOWLOG); with 2,000 the slowest
# call was 7 to 9 ms, and the flush of a million keys took no longer (the round trips are cheap).
SCRIPT_KEYS = 2000
SCRIPT_BUDGET_US = 4000


def _script_denied(exc):
    """The user may not run the script, or a command inside it (SCAN, UNLINK, TIME): an ACL
    refusal. On the first call nothing was removed (the refused command is the first of its
    kind), so the caller falls back to SCAN + UNLINK outside a script, where a command the user
    really lacks is refused with its own sentence."""
    from ansible_collections.oncall.runbooks.plugins.module_utils.redis.connection import _is_noperm
    return _is_noperm(str(exc))


def unlink_by_script(client, pattern, scan_count=1000, batch_size=1000, stats=None):
    """Delete every key matching pattern on a standalone server with SCAN_UNLINK_LUA; returns
    the number removed, or None when the user may not run scripts (nothing was removed)."""
    stats = stats if stats is not None else {}
    script = client.register_script(SCAN_UNLINK_LUA)
    cursor, removed = '0', 0
    per = max(1, min(batch_size, 7000))  # Lua's unpack takes at most about 8000 values
    while True:
        try:
            cursor, got, steps = script(args=[cursor, pattern, scan_count, SCRIPT_BUDGET_US, per,
                                              max(1, SCRIPT_KEYS // scan_count)])
        except Exception as exc:  # pylint: disable=broad-except
            if removed == 0 and stats.get('round_trips', 0) == 0 and _script_denied(exc):
                return None
            raise
        removed += int(got)
        stats['round_trips'] = stats.get('round_trips', 0) + 1
        stats['commands'] = stats.get('commands', 0) + 1
        stats['scan_steps'] = stats.get('scan_steps', 0) + int(steps)
        cursor = _s(cursor)
        if cursor == '0':
            return removed


def unlink_matching(client, pattern, scan_count=1000, batch_size=1000, clustered=False, stats=None):
    """Delete every key matching pattern on one server; returns the number of keys removed.

    SCAN runs on one connection and each batch it returns is UNLINKed on a second connection by
    a helper thread, so Redis works on the next SCAN step while the previous keys are deleted.
    Every command is bounded (scan_count keys examined, batch_size keys unlinked).
    """
    stats = stats if stats is not None else {}
    deleter = _Deleter(client, batch_size, clustered, {})  # its own counters: no shared updates
    deleter.start()
    cursor = 0
    try:
        while deleter.error is None:
            cursor, keys = client.scan(cursor, match=pattern, count=scan_count)
            stats['round_trips'] = stats.get('round_trips', 0) + 1
            stats['commands'] = stats.get('commands', 0) + 1
            if keys:
                deleter.batches.put(keys)
            cursor = int(cursor)
            if not cursor:
                break
    finally:
        deleter.batches.put(None)
        deleter.join()
    for key, value in deleter.stats.items():
        stats[key] = stats.get(key, 0) + value
    if deleter.error is not None:
        raise deleter.error
    return deleter.deleted


def apply(nodes, action, params, clustered, stats=None):
    """Carry out one planned action on every primary; returns the keys removed."""
    if action.kind == 'flush':
        removed = 0
        for node in nodes:
            removed += node.client.dbsize()
            node.client.execute_command('FLUSHDB', 'ASYNC')
        return removed
    removed = 0
    for node in nodes:
        got = None
        if not clustered:
            # a cluster script may only touch keys of one slot: there, SCAN and UNLINK by slot
            got = unlink_by_script(node.client, action.params['pattern'], params['scan_count'],
                                   params['batch_size'], stats)
        if got is None:
            got = unlink_matching(node.client, action.params['pattern'], params['scan_count'],
                                  params['batch_size'], clustered, stats)
        removed += got
    return removed


MAX_COUNT = 100000
MAX_PATTERN = 1024
MAX_WINDOW = 3600
MAX_SAMPLE = 1000000


def validate(params):
    """Every option, before anything is read or deleted (one sentence naming the option).
    Returns the window in seconds."""
    from ansible_collections.oncall.runbooks.plugins.module_utils.redis.cluster import check_server_options
    check_server_options(params, CacheError)
    try:
        opt.number('scan_count', params['scan_count'], low=1, high=MAX_COUNT, integer=True)
        opt.number('batch_size', params['batch_size'], low=1, high=MAX_COUNT, integer=True)
        opt.number('ttl_sample', params['ttl_sample'], low=0, high=MAX_COUNT, integer=True)
        opt.number('ttl_coverage_sample', params.get('ttl_coverage_sample') or 0, low=0, high=MAX_COUNT, integer=True)
        for i, pattern in enumerate(params.get('ttl_coverage_exclude') or []):
            opt.text('ttl_coverage_exclude[%d]' % i, pattern, max_length=MAX_PATTERN, what='a key pattern')
        window = opt.duration('window', params['window'], high=MAX_WINDOW)
        opt.number('count_sample', params.get('count_sample', 10000), low=1, high=MAX_SAMPLE,
                   integer=True)
        params['count_timeout_s'] = opt.duration('count_timeout', params.get('count_timeout', '30s'),
                                                 low=0.001, high=MAX_WINDOW)
        t = dict(DEFAULT_THRESHOLDS, **{k: v for k, v in (params.get('thresholds') or {}).items()
                                        if v is not None})
        for name in ('hit_rate_warning', 'hit_rate_critical'):
            opt.number('thresholds.' + name, t[name], low=0, high=100)
        for name in ('memory_warning', 'memory_critical', 'no_ttl_warning'):
            opt.number('thresholds.' + name, t[name], low=0, high=100, low_open=True)
        opt.number('thresholds.evictions_warning', t['evictions_warning'], low=1, high=2 ** 62, integer=True)
        opt.ordered('thresholds.hit_rate_warning', t['hit_rate_warning'], 'thresholds.hit_rate_critical',
                    t['hit_rate_critical'], higher_is_worse=False)
        opt.ordered('thresholds.memory_warning', t['memory_warning'], 'thresholds.memory_critical',
                    t['memory_critical'])
        for i, pattern in enumerate(params.get('patterns') or []):
            opt.text('patterns[%d]' % i, pattern, max_length=MAX_PATTERN, what='a key pattern')
    except opt.OptionError as exc:
        raise CacheError(str(exc))
    patterns = params.get('patterns') or []
    if params['state'] == 'flushed':
        if params.get('flush_all'):
            if patterns:
                raise CacheError('flush_all removes every key; do not combine it with patterns')
            if not params.get('confirm'):
                raise CacheError('flush_all deletes every key of the database (FLUSHDB): set '
                                 'confirm: true to do it, or flush by patterns instead')
        elif not patterns:
            raise CacheError('state flushed needs patterns (keys to delete), or flush_all with '
                             'confirm: true')
        for pattern in patterns:
            if pattern.strip('*') == '':
                raise CacheError('patterns: %r matches every key: use flush_all: true with '
                                 'confirm: true if that is really meant' % pattern)
    elif params.get('flush_all'):
        raise CacheError('flush_all only applies with state: flushed')
    return window
