# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Queue backends for redis_queue and redis_queue_info.

Three flavors share one interface (``observe``, ``plan_*``, ``apply``):

* ``bullmq``: the BullMQ (v2+) layout. Observation is our own read-only pipeline (the
  library's ``getCounts`` script may rewrite a legacy marker, so it is not read-only);
  every change goes through the BullMQ Python package, whose Lua scripts are the ones the
  Node library runs.
* ``bull``: the Bull v3 layout (npm ``bull``). There is no maintained Python port, so the
  few scripts needed are here, written against the key layout Bull uses.
* ``list``: a plain Redis list used as a queue (LPUSH by producers, BRPOP by consumers).

A plan is computed from one observation; apply re-checks every item atomically in Redis
(still in the same state, still older than the cut-off, not locked by a worker), so a job
that moved between plan and apply is left alone.
"""

from __future__ import annotations

import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action

# Job states as BullMQ names them; Bull v3 uses the same names for what it has.
BULLMQ_STATES = ('wait', 'paused', 'active', 'delayed', 'prioritized', 'waiting-children',
                 'completed', 'failed')
BULL_STATES = ('wait', 'paused', 'active', 'delayed', 'completed', 'failed')
LIST_KINDS = ('wait', 'paused', 'active')

CLEANABLE = ('completed', 'failed', 'delayed', 'wait')
RETRYABLE = ('failed', 'completed')


class QueueError(Exception):
    """A refusal or failure phrased for the operator (one sentence)."""


def now_ms():
    return int(time.time() * 1000)


def _count_display(counts):
    return ', '.join('%s=%d' % (k, v) for k, v in sorted(counts.items()) if v)


# --------------------------------------------------------------------------------------
# Lua written for this collection. Bull v3 scripts follow the layout of npm bull 4.x:
# job hash at <prefix>:<queue>:<id>, its lock at ...:<id>:lock, logs at ...:<id>:logs.
# --------------------------------------------------------------------------------------

# Remove the listed jobs from one state, each only if it is still there, is not locked by
# a worker, and (cut-off > 0) its newest timestamp is not after the cut-off.
# KEYS: state key, priority zset, limiter index hash. ARGV: job key prefix, state kind
# ('list' or 'zset'), cut-off ms (0 = none), ids...
BULL_REMOVE_LUA = r"""
local stateKey, priorityKey, limiterIndex = KEYS[1], KEYS[2], KEYS[3]
local prefix, kind, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local removed = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local jobKey = prefix .. id
  local present
  if kind == 'zset' then
    present = redis.call('ZSCORE', stateKey, id) ~= false
  else
    present = redis.call('LPOS', stateKey, id) ~= false
  end
  if present and redis.call('EXISTS', jobKey .. ':lock') == 0 then
    local old = true
    if cutoff > 0 then
      local ts = redis.call('HMGET', jobKey, 'finishedOn', 'processedOn', 'timestamp')
      local t = ts[1] or ts[2] or ts[3]
      old = (not t) or tonumber(t) <= cutoff
    end
    if old then
      if kind == 'zset' then
        redis.call('ZREM', stateKey, id)
      else
        redis.call('LREM', stateKey, -1, id)
      end
      redis.call('ZREM', priorityKey, id)
      local deid = redis.call('HGET', jobKey, 'deid')
      if deid then redis.call('DEL', prefix .. 'de:' .. deid) end
      local limited = redis.call('HGET', limiterIndex, id)
      if limited then
        redis.call('SREM', limited, id)
        redis.call('HDEL', limiterIndex, id)
      end
      redis.call('DEL', jobKey, jobKey .. ':logs')
      removed[#removed + 1] = id
    end
  end
end
return removed
"""

# Pause or resume a Bull v3 queue the way Bull does: the wait list is renamed so that
# workers blocked on it see nothing, and the meta-paused flag tells producers where to
# push. KEYS: src list, dst list, meta-paused, event channel, meta hash. ARGV: paused|resumed
BULL_PAUSE_LUA = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
end
if ARGV[1] == 'paused' then
  redis.call('SET', KEYS[3], 1)
  redis.call('HSET', KEYS[5], 'paused', 1)
else
  redis.call('DEL', KEYS[3])
  redis.call('HDEL', KEYS[5], 'paused')
end
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 1
"""

# Move up to ARGV[2] jobs from a finished set back to be processed, oldest first, only
# those finished at or before the cut-off. KEYS: finished set, wait, paused, meta-paused.
# ARGV: job key prefix, count, cut-off ms, state name.
BULL_RETRY_LUA = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[3], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return ids end
local target = KEYS[2]
if redis.call('EXISTS', KEYS[4]) == 1 then target = KEYS[3] end
local extra = 'failedReason'
if ARGV[4] == 'completed' then extra = 'returnvalue' end
for _, id in ipairs(ids) do
  redis.call('HDEL', ARGV[1] .. id, 'finishedOn', 'processedOn', extra)
  redis.call('ZREM', KEYS[1], id)
  redis.call('LPUSH', target, id)
end
return ids
"""

# Take up to ARGV[2] jobs off the oldest end of a Bull wait/paused list and delete them.
# Waiting jobs hold no lock. KEYS: list, priority zset. ARGV: job key prefix, count.
BULL_DRAIN_LUA = r"""
local removed = 0
for _ = 1, tonumber(ARGV[2]) do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  redis.call('ZREM', KEYS[2], id)
  redis.call('DEL', ARGV[1] .. id, ARGV[1] .. id .. ':logs')
  removed = removed + 1
end
return removed
"""

# Move up to ARGV[1] items from the oldest end of one list to the producer end of another.
LIST_REQUEUE_LUA = r"""
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  if not redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') then break end
  moved = moved + 1
end
return moved
"""


def _raise_first_error(results):
    for item in results:
        if isinstance(item, Exception):
            raise item


class Observation(object):
    """What one read of a queue found."""

    def __init__(self, exists, paused, counts, key_types=None):
        self.exists = exists
        self.paused = paused
        self.counts = counts
        self.key_types = key_types or {}

    def to_dict(self):
        return {'exists': self.exists, 'paused': self.paused, 'counts': dict(self.counts)}


class BaseQueue(object):
    flavor = None
    supports_pause = True

    def __init__(self, client, name, prefix='bull', batch_size=1000, conn_params=None):
        self.client = client
        self.name = name
        self.prefix = prefix
        self.batch_size = batch_size
        self.conn_params = conn_params or {}

    # -- helpers -------------------------------------------------------------------
    def key(self, suffix):
        return '%s:%s:%s' % (self.prefix, self.name, suffix)

    @property
    def job_prefix(self):
        return '%s:%s:' % (self.prefix, self.name)

    def _check_types(self, expected, types):
        for key, want in expected.items():
            got = types.get(key)
            if got not in (None, 'none', want):
                raise QueueError(
                    'key %s is a %s, not a %s: is flavor %s right for queue %s?'
                    % (key, got, want, self.flavor, self.name))

    def _ids_by_timestamp(self, state, kind, cutoff, limit):
        """Ids in a list or delayed set whose newest timestamp is at or before cut-off.

        Lists are read from the oldest end. Reads are chunked, so no single call is large.
        """
        key = self.key(state)
        found = []
        step = self.batch_size
        total = self.client.llen(key) if kind == 'list' else self.client.zcard(key)
        start = 0
        while start < total and (not limit or len(found) < limit):
            if kind == 'list':
                # index -1 is the oldest job (producers LPUSH).
                chunk = self.client.lrange(key, -(start + step), -(start + 1))
                chunk.reverse()
            else:
                chunk = self.client.zrange(key, start, start + step - 1)
            pipe = self.client.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hmget(self.job_prefix + job_id, 'finishedOn', 'processedOn', 'timestamp')
            for job_id, stamps in zip(chunk, pipe.execute()):
                stamp = next((s for s in stamps if s), None)
                if stamp is None or int(float(stamp)) <= cutoff:
                    found.append(job_id)
                    if limit and len(found) >= limit:
                        break
            start += step
        return found

    # -- planning, shared ----------------------------------------------------------
    def plan_clean(self, obs, rule, now):
        status = rule['status']
        grace_s = rule['older_than_s']
        cutoff = now - int(grace_s * 1000)
        limit = rule.get('limit') or 0
        if status in ('completed', 'failed'):
            if limit:
                ids = self.client.zrangebyscore(self.key(status), 0, cutoff, start=0, num=limit)
                count = len(ids)
            else:
                count = self.client.zcount(self.key(status), 0, cutoff)
                ids = self.client.zrangebyscore(self.key(status), 0, cutoff, start=0, num=100)
        else:
            states = ['delayed'] if status == 'delayed' else (['paused', 'wait'])
            ids = []
            for state in states:
                kind = 'zset' if state == 'delayed' else 'list'
                ids += self._ids_by_timestamp(state, kind, cutoff, limit and limit - len(ids))
            count = len(ids)
        if not count:
            return None
        reason = '%d %s job(s) finished or created more than %s ago' % (
            count, status, rule['older_than'])
        if limit:
            reason += ' (limit %d)' % limit
        return Action('clean', '%s/%s' % (self.name, status), reason, count=count, ids=ids,
                      params={'status': status, 'cutoff': cutoff, 'limit': limit},
                      destructive=True)

    def plan_retry(self, obs, rule, now):
        status = rule['status']
        limit = rule.get('limit') or 0
        total = self.client.zcount(self.key(status), 0, now)
        count = min(total, limit) if limit else total
        if not count:
            return None
        ids = self.client.zrangebyscore(self.key(status), 0, now, start=0, num=min(count, 100))
        reason = '%d %s job(s) to be processed again' % (count, status)
        return Action('retry', '%s/%s' % (self.name, status), reason, count=count, ids=ids,
                      params={'status': status, 'cutoff': now, 'limit': count})

    def plan_drain(self, obs, delayed):
        """Every waiting job (in a paused queue too, and prioritized ones), and delayed ones if asked."""
        count = sum(obs.counts.get(state, 0) for state in ('wait', 'paused', 'prioritized'))
        if delayed:
            count += obs.counts.get('delayed', 0)
        if not count:
            return None
        what = 'waiting and delayed' if delayed else 'waiting'
        return Action('drain', self.name, 'remove all %d %s job(s)' % (count, what),
                      count=count, params={'delayed': delayed}, destructive=True)


class BullMQQueue(BaseQueue):
    flavor = 'bullmq'
    LIST_STATES = ('wait', 'paused', 'active')

    def observe(self):
        pipe = self.client.pipeline(transaction=False)
        for state in BULLMQ_STATES:
            if state in self.LIST_STATES:
                pipe.llen(self.key(state))
            else:
                pipe.zcard(self.key(state))
        pipe.hget(self.key('meta'), 'paused')
        pipe.exists(self.key('meta'), self.key('id'), self.key('events'))
        type_keys = [self.key(s) for s in BULLMQ_STATES] + [self.key('meta'), self.key('events')]
        for k in type_keys:
            pipe.type(k)
        # Types are checked before any count is used: a key of the wrong type makes its
        # LLEN/ZCARD fail, and the operator should hear which key, not WRONGTYPE.
        res = pipe.execute(raise_on_error=False)
        n = len(BULLMQ_STATES)
        types = dict(zip(type_keys, res[n + 2:]))
        expected = dict((self.key(s), 'list' if s in self.LIST_STATES else 'zset')
                        for s in BULLMQ_STATES)
        expected[self.key('meta')] = 'hash'
        expected[self.key('events')] = 'stream'
        self._check_types(expected, types)
        _raise_first_error(res)
        counts = dict(zip([s.replace('-', '_') for s in BULLMQ_STATES], res[:n]))
        exists = bool(res[n + 1]) or any(counts.values())
        return Observation(exists, bool(res[n]), counts, types)

    # The BullMQ package is asyncio-only; each apply opens one client and closes it.
    def _run(self, coro_factory):
        import asyncio
        from bullmq import Queue
        from ansible_collections.oncall.runbooks.plugins.module_utils.redis.connection import (
            async_client)

        async def runner():
            client = async_client(self.conn_params)
            queue = Queue(self.name, {'connection': client, 'prefix': self.prefix,
                                      'skipVersionCheck': True})
            try:
                return await coro_factory(queue)
            finally:
                await client.aclose()
        return asyncio.run(runner())

    def set_paused(self, paused):
        self._run(lambda q: q.pause() if paused else q.resume())

    def apply(self, action):
        p = action.params
        if action.kind in ('pause', 'resume'):
            self.set_paused(action.kind == 'pause')
            return action.count, []
        if action.kind == 'clean':
            return self._run(lambda q: self._clean(q, p))
        if action.kind == 'retry':
            return self._run(lambda q: self._retry(q, p))
        if action.kind == 'drain':
            return self._run(lambda q: self._drain(q, p))
        if action.kind == 'remove':
            return self._run(lambda q: self._remove(q, p))
        if action.kind == 'obliterate':
            return self._run(self._obliterate)
        raise QueueError('unknown action %s' % action.kind)

    async def _clean(self, q, p):
        removed, ids = 0, []
        states = [p['status']] if p['status'] != 'wait' else ['paused', 'wait']
        for state in states:
            while not p['limit'] or removed < p['limit']:
                batch = self.batch_size
                if p['limit']:
                    batch = min(batch, p['limit'] - removed)
                # The library turns grace into a cut-off with its own clock: hand it the
                # grace that gives the cut-off fixed at plan time.
                grace = max(0, now_ms() - p['cutoff'])
                got = await q.clean(grace, batch, state)
                removed += len(got)
                ids.extend(got[:100 - len(ids)] if len(ids) < 100 else [])
                if len(got) < batch:
                    break
        return removed, ids

    async def _retry(self, q, p):
        moved = 0
        while moved < p['limit']:
            batch = min(self.batch_size, p['limit'] - moved)
            # Jobs that fail meanwhile score after the cut-off, so this count is exact.
            before = await q.client.zcount(self.key(p['status']), 0, p['cutoff'])
            await q.scripts.retryJobs(p['status'], batch, p['cutoff'])
            after = await q.client.zcount(self.key(p['status']), 0, p['cutoff'])
            step = before - after
            moved += step
            if step < batch:
                break
        return moved, []

    async def _drain(self, q, p):
        before = await self._waiting_async(q, p['delayed'])
        await q.drain(p['delayed'])
        after = await self._waiting_async(q, p['delayed'])
        return before - after, []

    async def _waiting_async(self, q, delayed):
        total = await q.client.llen(self.key('wait')) + await q.client.llen(self.key('paused'))
        total += await q.client.zcard(self.key('prioritized'))
        if delayed:
            total += await q.client.zcard(self.key('delayed'))
        return total

    async def _remove(self, q, p):
        removed = []
        for job_id in p['ids']:
            if await q.remove(job_id):
                removed.append(job_id)
        return len(removed), removed

    async def _obliterate(self, q):
        try:
            await q.obliterate(force=False)
        except Exception as exc:  # the library raises a bare Exception with a code
            text = str(exc)
            if 'active' in text.lower() or '-2' in text:
                raise QueueError('queue %s has active jobs: stop its workers before removing it'
                                 % self.name)
            raise
        return 1, []

    def job_locations(self, ids):
        """For remove_jobs: which ids exist and whether a worker holds them."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self.job_prefix + job_id)
            pipe.exists(self.job_prefix + job_id + ':lock')
        res = pipe.execute()
        return [(job_id, bool(res[2 * i]), bool(res[2 * i + 1])) for i, job_id in enumerate(ids)]


class BullQueue(BaseQueue):
    flavor = 'bull'

    def observe(self):
        pipe = self.client.pipeline(transaction=False)
        for state in BULL_STATES:
            if state in LIST_KINDS:
                pipe.llen(self.key(state))
            else:
                pipe.zcard(self.key(state))
        pipe.exists(self.key('meta-paused'))
        pipe.exists(self.key('id'))
        type_keys = [self.key(s) for s in BULL_STATES] + [self.key('meta-paused'),
                                                          self.key('priority')]
        for k in type_keys:
            pipe.type(k)
        res = pipe.execute(raise_on_error=False)
        n = len(BULL_STATES)
        types = dict(zip(type_keys, res[n + 2:]))
        expected = dict((self.key(s), 'list' if s in LIST_KINDS else 'zset') for s in BULL_STATES)
        expected[self.key('meta-paused')] = 'string'
        expected[self.key('priority')] = 'zset'
        self._check_types(expected, types)
        _raise_first_error(res)
        counts = dict(zip(BULL_STATES, res[:n]))
        exists = bool(res[n + 1]) or any(counts.values())
        return Observation(exists, bool(res[n]), counts, types)

    def set_paused(self, paused):
        if paused:
            keys = [self.key('wait'), self.key('paused'), self.key('meta-paused'),
                    self.key('paused'), self.key('meta')]
        else:
            keys = [self.key('paused'), self.key('wait'), self.key('meta-paused'),
                    self.key('resumed'), self.key('meta')]
        self.client.eval(BULL_PAUSE_LUA, len(keys), *(keys + ['paused' if paused else 'resumed']))

    def _remove_ids(self, state, ids, cutoff):
        kind = 'zset' if state in ('delayed', 'completed', 'failed') else 'list'
        keys = [self.key(state), self.key('priority'), self.key('limiter:index')]
        removed = []
        for i in range(0, len(ids), self.batch_size):
            chunk = ids[i:i + self.batch_size]
            removed += self.client.eval(BULL_REMOVE_LUA, len(keys),
                                        *(keys + [self.job_prefix, kind, cutoff] + chunk))
        return removed

    def apply(self, action):
        p = action.params
        if action.kind in ('pause', 'resume'):
            self.set_paused(action.kind == 'pause')
            return action.count, []
        if action.kind == 'clean':
            return self._clean(p)
        if action.kind == 'retry':
            return self._retry(p)
        if action.kind == 'drain':
            return self._drain(p)
        if action.kind == 'remove':
            return self._remove(p)
        if action.kind == 'obliterate':
            return self._obliterate()
        raise QueueError('unknown action %s' % action.kind)

    def _clean(self, p):
        status, cutoff, limit = p['status'], p['cutoff'], p['limit']
        removed = []
        states = [status] if status != 'wait' else ['paused', 'wait']
        for state in states:
            while not limit or len(removed) < limit:
                want = self.batch_size if not limit else min(self.batch_size, limit - len(removed))
                if state in ('completed', 'failed'):
                    ids = self.client.zrangebyscore(self.key(state), 0, cutoff, start=0, num=want)
                else:
                    kind = 'zset' if state == 'delayed' else 'list'
                    ids = self._ids_by_timestamp(state, kind, cutoff, want)
                if not ids:
                    break
                got = self._remove_ids(state, ids, cutoff)
                removed += got
                if not got:
                    break
        return len(removed), removed[:100]

    def _retry(self, p):
        keys = [self.key(p['status']), self.key('wait'), self.key('paused'), self.key('meta-paused')]
        moved = []
        while len(moved) < p['limit']:
            want = min(self.batch_size, p['limit'] - len(moved))
            got = self.client.eval(BULL_RETRY_LUA, len(keys),
                                   *(keys + [self.job_prefix, want, p['cutoff'], p['status']]))
            moved += got
            if len(got) < want:
                break
        return len(moved), moved[:100]

    def _drain(self, p):
        removed = 0
        for state in ('paused', 'wait'):
            while True:
                got = self.client.eval(BULL_DRAIN_LUA, 2, self.key(state), self.key('priority'),
                                       self.job_prefix, self.batch_size)
                removed += got
                if got < self.batch_size:
                    break
        if p['delayed']:
            while True:
                ids = self.client.zrange(self.key('delayed'), 0, self.batch_size - 1)
                if not ids:
                    break
                removed += len(self._remove_ids('delayed', ids, 0))
        return removed, []

    def _remove(self, p):
        removed = []
        for state in ('wait', 'paused', 'delayed', 'completed', 'failed'):
            removed += self._remove_ids(state, [i for i in p['ids'] if i not in removed], 0)
        return len(removed), removed

    def _obliterate(self):
        if self.client.llen(self.key('active')):
            raise QueueError('queue %s has active jobs: stop its workers before removing it'
                             % self.name)
        self.set_paused(True)
        for state in ('paused', 'wait', 'delayed', 'completed', 'failed'):
            kind = 'zset' if state in ('delayed', 'completed', 'failed') else 'list'
            while True:
                if kind == 'zset':
                    ids = self.client.zrange(self.key(state), 0, self.batch_size - 1)
                else:
                    ids = self.client.lrange(self.key(state), -self.batch_size, -1)
                if not ids:
                    break
                pipe = self.client.pipeline(transaction=False)
                for job_id in ids:
                    pipe.unlink(self.job_prefix + job_id, self.job_prefix + job_id + ':logs')
                if kind == 'zset':
                    pipe.zrem(self.key(state), *ids)
                else:
                    pipe.ltrim(self.key(state), 0, -(len(ids) + 1))
                pipe.execute()
        self.client.unlink(*[self.key(s) for s in (
            'wait', 'paused', 'active', 'delayed', 'completed', 'failed', 'priority',
            'meta-paused', 'meta', 'id', 'stalled', 'stalled-check', 'limiter',
            'limiter:index', 'repeat')])
        return 1, []

    def job_locations(self, ids):
        return BullMQQueue.job_locations(self, ids)


class ListQueue(BaseQueue):
    """A plain list: the queue *is* the key ``name``; ``prefix`` does not apply."""

    flavor = 'list'
    supports_pause = False

    def key(self, suffix=None):
        return self.name

    def observe(self):
        key_type = self.client.type(self.name)
        if key_type not in ('none', 'list'):
            raise QueueError('key %s is a %s, not a list: is flavor list right for queue %s?'
                             % (self.name, key_type, self.name))
        length = self.client.llen(self.name) if key_type == 'list' else 0
        return Observation(key_type == 'list', False, {'wait': length}, {self.name: key_type})

    def check_source(self, source):
        key_type = self.client.type(source)
        if key_type not in ('none', 'list'):
            raise QueueError('requeue_from key %s is a %s, not a list' % (source, key_type))
        return self.client.llen(source) if key_type == 'list' else 0

    def plan_clean(self, obs, rule, now):
        limit = rule.get('limit') or 0
        count = min(limit, obs.counts['wait'])
        if not count:
            return None
        return Action('clean', self.name, 'trim the %d oldest item(s) of %d' % (count, obs.counts['wait']),
                      count=count, params={'limit': count}, destructive=True)

    def plan_drain(self, obs, delayed):
        if not obs.counts['wait']:
            return None
        return Action('drain', self.name, 'remove all %d item(s)' % obs.counts['wait'],
                      count=obs.counts['wait'], params={}, destructive=True)

    def apply(self, action):
        p = action.params
        if action.kind == 'clean':
            removed = 0
            while removed < p['limit']:
                step = min(self.batch_size, p['limit'] - removed)
                length = self.client.llen(self.name)
                if not length:
                    break
                step = min(step, length)
                self.client.ltrim(self.name, 0, -(step + 1))
                removed += step
            return removed, []
        if action.kind == 'requeue':
            moved = 0
            while moved < p['limit']:
                step = min(self.batch_size, p['limit'] - moved)
                got = self.client.eval(LIST_REQUEUE_LUA, 2, p['source'], self.name, step)
                moved += got
                if got < step:
                    break
            return moved, []
        if action.kind in ('drain', 'obliterate'):
            # UNLINK frees the memory in a background thread: no stall for a long list.
            self.client.unlink(self.name)
            return action.count, []
        raise QueueError('unknown action %s' % action.kind)


FLAVORS = {'bullmq': BullMQQueue, 'bull': BullQueue, 'list': ListQueue}


def make_queue(flavor, client, name, prefix='bull', batch_size=1000, conn_params=None):
    return FLAVORS[flavor](client, name, prefix=prefix, batch_size=batch_size,
                           conn_params=conn_params)


def plan(queue, obs, params, now=None):
    """Compute the ordered list of actions that brings the queue to what params ask.

    ``params`` holds the module options with durations already parsed
    (``clean[i]['older_than_s']``). Order: pause first (so workers stop taking jobs while
    we work), then removals, cleans, retries, requeues and drains, and resume last.
    """
    now = now_ms() if now is None else now
    actions = []
    state = params.get('state') or 'present'
    name = queue.name

    if state == 'absent':
        if obs.exists:
            total = sum(obs.counts.values())
            actions.append(Action('obliterate', name,
                                  'remove the queue and all %d job(s) it holds (%s)'
                                  % (total, _count_display(obs.counts) or 'empty'),
                                  count=total, destructive=True))
        return actions

    if state == 'paused' and not obs.paused:
        actions.append(Action('pause', name, 'queue is running; paused was asked', count=1))

    if params.get('remove_jobs'):
        ids = [str(i) for i in params['remove_jobs']]
        present = []
        for job_id, exists, locked in queue.job_locations(ids):
            if locked:
                raise QueueError('job %s of queue %s is being processed by a worker (locked): '
                                 'active jobs are never removed' % (job_id, name))
            if exists:
                present.append(job_id)
        if present:
            actions.append(Action('remove', name, 'remove %d listed job(s)' % len(present),
                                  count=len(present), ids=present, params={'ids': present},
                                  destructive=True))

    for rule in params.get('clean') or []:
        action = queue.plan_clean(obs, rule, now)
        if action:
            actions.append(action)

    if params.get('retry'):
        action = queue.plan_retry(obs, params['retry'], now)
        if action:
            actions.append(action)

    if params.get('requeue_from'):
        available = queue.check_source(params['requeue_from'])
        limit = params.get('requeue_limit') or available
        count = min(available, limit)
        if count:
            actions.append(Action('requeue', name, 'move %d item(s) back from %s'
                                  % (count, params['requeue_from']), count=count,
                                  params={'source': params['requeue_from'], 'limit': count}))

    if params.get('drain'):
        action = queue.plan_drain(obs, bool(params.get('drain_delayed')))
        if action:
            actions.append(action)

    if state == 'running' and obs.paused:
        actions.append(Action('resume', name, 'queue is paused; running was asked', count=1))
    return actions


def predict(obs, actions, flavor):
    """Counts and paused flag after the plan, for check mode's diff."""
    counts = dict(obs.counts)
    paused = obs.paused
    for a in actions:
        if a.kind == 'obliterate':
            return {'paused': False, 'counts': dict((k, 0) for k in counts)}
        if a.kind == 'pause':
            paused = True
            if flavor in ('bullmq', 'bull'):
                counts['paused'] = counts.get('paused', 0) + counts.get('wait', 0)
                counts['wait'] = 0
        elif a.kind == 'resume':
            paused = False
            if flavor in ('bullmq', 'bull'):
                counts['wait'] = counts.get('wait', 0) + counts.get('paused', 0)
                counts['paused'] = 0
        elif a.kind == 'clean':
            status = a.params.get('status', 'wait')
            left = a.count
            for state in (['paused', 'wait'] if status == 'wait' else [status]):
                take = min(left, counts.get(state, 0))
                counts[state] = counts.get(state, 0) - take
                left -= take
        elif a.kind == 'retry':
            counts[a.params['status']] -= a.count
            target = 'paused' if paused else 'wait'
            counts[target] = counts.get(target, 0) + a.count
        elif a.kind == 'requeue':
            counts['wait'] = counts.get('wait', 0) + a.count
        elif a.kind == 'drain':
            for state in ('wait', 'paused', 'prioritized'):
                if state in counts:
                    counts[state] = 0
            if a.params.get('delayed'):
                counts['delayed'] = 0
        elif a.kind == 'remove':
            pass  # which state each listed job is in is not tracked; the after-read tells
    return {'paused': paused, 'counts': counts}


def discover(client, prefix='bull', flavor='any', scan_count=1000):
    """Find queues under a prefix with SCAN (never KEYS): [(name, flavor)], sorted.

    A queue is known by its job-id counter (``<prefix>:<name>:id``, both libraries) or its
    BullMQ meta hash. BullMQ queues also have an ``events`` stream; Bull v3 queues do not.
    """
    names = set()
    for suffix, key_type in (('id', 'string'), ('meta', 'hash')):
        pattern = '%s:*:%s' % (prefix.replace('[', '\\['), suffix)
        for key in client.scan_iter(match=pattern, count=scan_count, _type=key_type):
            names.add(key[len(prefix) + 1:-(len(suffix) + 1)])
    found = []
    names = sorted(names)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.type('%s:%s:events' % (prefix, name))
        pipe.hexists('%s:%s:meta' % (prefix, name), 'opts.maxLenEvents')
    res = pipe.execute()
    for i, name in enumerate(names):
        is_bullmq = res[2 * i] == 'stream' or bool(res[2 * i + 1])
        kind = 'bullmq' if is_bullmq else 'bull'
        if flavor in ('any', kind):
            found.append((name, kind))
    return found


def findings(entries, waiting_warning=100, waiting_critical=500, failure_ratio_warning=0.05):
    """Each queue's backlog and failure share against the runbooks' thresholds.

    Runbook 001 7.3: queue length warning > 100, critical > 500; 7.1: failed / total > 5%.
    """
    out = []
    for q in entries:
        counts = q['counts']
        waiting = counts.get('wait', 0) + counts.get('paused', 0) + counts.get('prioritized', 0)
        verdict = 'ok'
        if waiting > waiting_critical:
            verdict = 'critical'
        elif waiting > waiting_warning:
            verdict = 'warning'
        out.append({'object': '%s waiting' % q['name'], 'figure': waiting,
                    'threshold': '> %d warning, > %d critical' % (waiting_warning, waiting_critical),
                    'verdict': verdict})
        finished = counts.get('completed', 0) + counts.get('failed', 0)
        if finished and q['flavor'] != 'list':
            ratio = float(counts.get('failed', 0)) / finished
            out.append({'object': '%s failure ratio' % q['name'], 'figure': round(ratio, 3),
                        'threshold': '> %.2f warning' % failure_ratio_warning,
                        'verdict': 'warning' if ratio > failure_ratio_warning else 'ok'})
        if q.get('paused'):
            out.append({'object': '%s paused' % q['name'], 'figure': True,
                        'threshold': 'running expected', 'verdict': 'warning'})
    return out
