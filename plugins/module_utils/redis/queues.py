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
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import check_thresholds, verdict
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

# Job states as BullMQ names them; Bull v3 uses the same names for what it has.
BULLMQ_STATES = ('wait', 'paused', 'active', 'delayed', 'prioritized', 'waiting-children',
                 'completed', 'failed')
BULL_STATES = ('wait', 'paused', 'active', 'delayed', 'completed', 'failed')
LIST_KINDS = ('wait', 'paused', 'active')

CLEANABLE = ('completed', 'failed', 'delayed', 'wait')
RETRYABLE = ('failed', 'completed')


class QueueError(OncallError):
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
# ('list' or 'zset'), cut-off ms (0 = none), '1' to delete the job's debounce key, ids...
# Bull deletes a removed job's debounce key (<prefix>de:<deid>) when it removes a waiting,
# paused or delayed job (cleanJobsInSet, removeJob), never when it cleans completed or failed
# jobs: a finished job's key may still be in force (its ttl runs on) or may by now belong to
# another job with the same debounce id.
BULL_REMOVE_LUA = r"""
local stateKey, priorityKey, limiterIndex = KEYS[1], KEYS[2], KEYS[3]
local prefix, kind, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local dropDebounce = ARGV[4] == '1'
local removed = {}
for i = 5, #ARGV do
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
      if dropDebounce then
        local deid = redis.call('HGET', jobKey, 'deid')
        if deid then redis.call('DEL', prefix .. 'de:' .. deid) end
      end
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
# The PUBLISH comes first (Bull's own script sends it last): Redis does not roll a script back,
# so a user denied the channel must be refused before anything is written, not after the rename.
# Nobody can observe the order: subscribers act on the message after the script has ended.
BULL_PAUSE_LUA = r"""
redis.call('PUBLISH', KEYS[4], ARGV[1])
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

# Take up to ARGV[2] jobs off the oldest end of a Bull wait/paused list and delete them as
# Bull's clean of a waiting state does: priority entry, debounce key (else Bull drops every
# later job with that debounce id for ever: the key has no expiry and names a deleted job),
# rate-limiter index, job hash and logs. Waiting jobs hold no lock.
# KEYS: list, priority zset, limiter index hash. ARGV: job key prefix, count.
BULL_DRAIN_LUA = r"""
local removed = 0
for _ = 1, tonumber(ARGV[2]) do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  local jobKey = ARGV[1] .. id
  redis.call('ZREM', KEYS[2], id)
  local deid = redis.call('HGET', jobKey, 'deid')
  if deid then redis.call('DEL', ARGV[1] .. 'de:' .. deid) end
  local limited = redis.call('HGET', KEYS[3], id)
  if limited then
    redis.call('SREM', limited, id)
    redis.call('HDEL', KEYS[3], id)
  end
  redis.call('DEL', jobKey, jobKey .. ':logs')
  removed = removed + 1
end
return removed
"""

# One batch of a Bull obliterate, as Bull's obliterate script removes jobs: job hash, logs
# and the job's debounce key, then the ids from their state key. KEYS: state key.
# ARGV: job key prefix, 'list' or 'zset', count. Returns how many were removed.
BULL_OBLITERATE_LUA = r"""
local prefix, kind, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids
if kind == 'zset' then
  ids = redis.call('ZRANGE', KEYS[1], 0, count - 1)
else
  ids = redis.call('LRANGE', KEYS[1], -count, -1)
end
for _, id in ipairs(ids) do
  local jobKey = prefix .. id
  local deid = redis.call('HGET', jobKey, 'deid')
  if deid then redis.call('DEL', prefix .. 'de:' .. deid) end
  redis.call('DEL', jobKey, jobKey .. ':logs')
  if kind == 'zset' then redis.call('ZREM', KEYS[1], id) end
end
if kind ~= 'zset' and #ids > 0 then
  redis.call('LTRIM', KEYS[1], 0, -(#ids + 1))
end
return #ids
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
        # Jobs the action being applied has handled so far, batch by batch: when Redis fails
        # in the middle, the module reports this count, not zero.
        self.progress = 0

    # -- helpers -------------------------------------------------------------------
    def key(self, suffix):
        return '%s:%s:%s' % (self.prefix, self.name, suffix)

    @property
    def job_prefix(self):
        return '%s:%s:' % (self.prefix, self.name)

    def _check_types(self, expected, types):
        for key, want in expected.items():
            got = types.get(key)
            if isinstance(got, Exception):
                raise got  # TYPE itself failed (an ACL denial, say): that is the error to report
            if got not in (None, 'none', want):
                raise QueueError(
                    'key %s is a %s, not a %s: is flavor %s right for queue %s?'
                    % (key, got, want, self.flavor, self.name))

    def protected_jobs(self):
        """{job id: marker} of jobs the library's clean and drain never remove (none here)."""
        return {}

    def _ids_by_timestamp(self, state, kind, cutoff, limit, protected=None):
        """Ids in a list or delayed set whose newest timestamp is at or before cut-off.

        Lists are read from the oldest end. Reads are chunked, so no single call is large.
        Jobs in ``protected`` ({id: rjk}) whose ``rjk`` field matches are skipped: they are
        what the library will not remove, so they are not planned either.
        """
        protected = protected or {}
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
                pipe.hmget(self.job_prefix + job_id, 'finishedOn', 'processedOn', 'timestamp',
                           'rjk')
            for job_id, stamps in zip(chunk, pipe.execute()):
                if job_id in protected and stamps[3] == protected[job_id]:
                    continue
                stamp = next((s for s in stamps[:3] if s), None)
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
            states = ['delayed'] if status == 'delayed' else (['wait', 'paused'])
            ids, planned = [], {}
            protected = self.protected_jobs()
            for state in states:
                kind = 'zset' if state == 'delayed' else 'list'
                found = self._ids_by_timestamp(state, kind, cutoff, limit and limit - len(ids),
                                               protected)
                planned[state] = len(found)
                ids += found
            count = len(ids)
        if not count:
            return None
        reason = '%d %s job(s) finished or created more than %s ago' % (
            count, status, rule['older_than'])
        if limit:
            reason += ' (limit %d)' % limit
        params = {'status': status, 'cutoff': cutoff, 'limit': limit, 'expected': count}
        if status not in ('completed', 'failed'):
            params['planned'] = planned
        return Action('clean', '%s/%s' % (self.name, status), reason, count=count, ids=ids,
                      params=params, destructive=True)

    def _protected_in(self, states):
        """{state: how many protected jobs sit in it} (the few current scheduler jobs)."""
        protected = self.protected_jobs()
        if not protected:
            return {}
        pipe = self.client.pipeline(transaction=False)
        ids = sorted(protected)
        for job_id in ids:
            pipe.hget(self.job_prefix + job_id, 'rjk')
            for state in states:
                if state in ('delayed', 'prioritized'):
                    pipe.zscore(self.key(state), job_id)
                else:
                    pipe.lpos(self.key(state), job_id)
        res = pipe.execute()
        step = 1 + len(states)
        found = {}
        for i, job_id in enumerate(ids):
            row = res[i * step:(i + 1) * step]
            if row[0] != protected[job_id]:
                continue
            for state, where in zip(states, row[1:]):
                if where is not None:
                    found[state] = found.get(state, 0) + 1
        return found

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
        """Every waiting job (in a paused queue too, and prioritized ones), and delayed ones if
        asked, except those the library keeps (a job scheduler's current job)."""
        states = ('wait', 'paused', 'prioritized') + (('delayed',) if delayed else ())
        count = sum(obs.counts.get(state, 0) for state in states)
        kept = self._protected_in(states)
        count -= sum(kept.values())
        if not count:
            return None
        what = 'waiting and delayed' if delayed else 'waiting'
        return Action('drain', self.name, 'remove all %d %s job(s)' % (count, what),
                      count=count, destructive=True,
                      params={'delayed': delayed, 'kept': kept,
                              'kept_in_lists': bool(kept.get('wait') or kept.get('paused'))})


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

    def protected_jobs(self):
        """A job scheduler's current job: BullMQ's clean and drain skip it (isJobSchedulerJob:
        the job's ``rjk`` names a scheduler of the ``repeat`` set, and its id is
        ``repeat:<scheduler>:<the scheduler's score>``). {job id: scheduler id}."""
        out = {}
        for member, score in self.client.zrange(self.key('repeat'), 0, -1, withscores=True,
                                                score_cast_func=str):
            out['repeat:%s:%s' % (member, score)] = member
        return out

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
        self.progress = 0
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

    # Clean calls kept in flight at once on a finished set: while Redis runs one batch's script
    # the next one is already on its way, so the server never waits for a round trip. Each
    # script re-checks and removes its own jobs (the first ones at or before the cut-off), so
    # two calls never take the same job.
    CLEAN_IN_FLIGHT = 2

    async def _clean_finished(self, q, p):
        import asyncio
        state, limit = p['status'], p['limit']
        expected = p.get('expected') or 0
        shared = {'asked': 0, 'removed': 0, 'done': False, 'ids': [], 'flying': 0}
        errors = []  # the first failure of a call; raised once every lane stopped

        async def lane():
            while not shared['done'] and not errors:
                # a second call goes out only while the plan's jobs are not all asked for; past
                # them the calls go one at a time until a short batch (as the library's loop),
                # so a small clean makes exactly the calls (and events) the library makes
                if shared['asked'] >= expected and shared['flying']:
                    return
                batch = self.batch_size
                if limit:
                    batch = min(batch, limit - shared['asked'])
                    if batch <= 0:
                        return
                shared['asked'] += batch
                shared['flying'] += 1
                try:
                    # the library turns grace into a cut-off with its own clock: hand it the
                    # grace that gives the cut-off fixed at plan time
                    got = await q.clean(max(0, now_ms() - p['cutoff']), batch, state)
                except Exception as exc:  # re-raised once every lane stopped; pylint: disable=broad-except
                    errors.append(exc)
                    return
                finally:
                    shared['flying'] -= 1
                shared['removed'] += len(got)
                self.progress = shared['removed']
                shared['asked'] -= batch - len(got)
                if len(shared['ids']) < 100:
                    shared['ids'].extend(got[:100 - len(shared['ids'])])
                if len(got) < batch:
                    shared['done'] = True  # a short batch: nothing left up to the cut-off

        async def second():
            await asyncio.sleep(0)  # the first lane's call is on its way first
            await lane()

        await asyncio.gather(lane(), *[second() for _lane in range(self.CLEAN_IN_FLIGHT - 1)])
        if errors:
            raise errors[0]
        return shared['removed'], shared['ids']

    async def _clean(self, q, p):
        if p['status'] in ('completed', 'failed'):
            return await self._clean_finished(q, p)
        removed, ids = 0, []
        planned = p.get('planned') or {}
        states = [p['status']] if p['status'] != 'wait' else ['wait', 'paused']
        for state in states:
            here = 0
            while not p['limit'] or removed < p['limit']:
                batch = self.batch_size
                if p['limit']:
                    batch = min(batch, p['limit'] - removed)
                # The library turns grace into a cut-off with its own clock: hand it the
                # grace that gives the cut-off fixed at plan time.
                grace = max(0, now_ms() - p['cutoff'])
                got = await q.clean(grace, batch, state)
                removed += len(got)
                here += len(got)
                self.progress = removed
                ids.extend(got[:100 - len(ids)] if len(ids) < 100 else [])
                if len(got) == batch:
                    continue
                # A short batch ends a finished set (every job up to the cut-off qualifies).
                # In a list or the delayed set the library looks at the first `batch` jobs
                # only and skips a scheduler's job and those newer than the cut-off: go on
                # while it still removes some and the plan expects more.
                if not got or here >= planned.get(state, 0):
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
            self.progress = moved
            if step < batch:
                break
        return moved, []

    async def _drain(self, q, p):
        before = await self._waiting_async(q, p['delayed'])
        if p.get('kept_in_lists'):
            await self._drain_by_clean(q, p['delayed'], p.get('kept') or {})
        else:
            await q.drain(p['delayed'])
        after = await self._waiting_async(q, p['delayed'])
        return before - after, []

    async def _drain_by_clean(self, q, delayed, kept):
        """Drain with the library's clean when a job scheduler's current job waits in a list.

        BullMQ's drain skips that job but then trims the list by the number of jobs it
        removed, counted from the head: the scheduler's job leaves the list (the scheduler
        never fires again) and the id of a deleted job stays behind. Its clean removes the
        same jobs the same way (removeJob, deduplication keys included) and keeps the
        scheduler's job where it is.
        """
        for state in ('wait', 'paused', 'prioritized') + (('delayed',) if delayed else ()):
            while True:
                got = await q.clean(0, self.batch_size, state)
                self.progress += len(got)
                # a batch that was full but for the jobs kept may be followed by more
                if not got or len(got) + kept.get(state, 0) < self.batch_size:
                    break

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

    def _remove_ids(self, state, ids, cutoff, debounce=None):
        """Remove ids from one state. ``debounce``: delete their debounce keys; by default as
        Bull's clean does (waiting, paused and delayed jobs, never finished ones)."""
        kind = 'zset' if state in ('delayed', 'completed', 'failed') else 'list'
        if debounce is None:
            debounce = state not in ('completed', 'failed')
        keys = [self.key(state), self.key('priority'), self.key('limiter:index')]
        removed = []
        for i in range(0, len(ids), self.batch_size):
            chunk = ids[i:i + self.batch_size]
            removed += self.client.eval(BULL_REMOVE_LUA, len(keys),
                                        *(keys + [self.job_prefix, kind, cutoff,
                                                  '1' if debounce else '0'] + chunk))
        return removed

    def apply(self, action):
        p = action.params
        self.progress = 0
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
        states = [status] if status != 'wait' else ['wait', 'paused']
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
                self.progress = len(removed)
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
            self.progress = len(moved)
            if len(got) < want:
                break
        return len(moved), moved[:100]

    def _drain(self, p):
        removed = 0
        for state in ('paused', 'wait'):
            while True:
                got = self.client.eval(BULL_DRAIN_LUA, 3, self.key(state), self.key('priority'),
                                       self.key('limiter:index'), self.job_prefix,
                                       self.batch_size)
                removed += got
                self.progress = removed
                if got < self.batch_size:
                    break
        if p['delayed']:
            while True:
                ids = self.client.zrange(self.key('delayed'), 0, self.batch_size - 1)
                if not ids:
                    break
                removed += len(self._remove_ids('delayed', ids, 0))
                self.progress = removed
        return removed, []

    def _remove(self, p):
        removed = []
        # Bull's job.remove() (removeJob) deletes the job's debounce key whatever its state.
        for state in ('wait', 'paused', 'delayed', 'completed', 'failed'):
            removed += self._remove_ids(state, [i for i in p['ids'] if i not in removed], 0,
                                        debounce=True)
        return len(removed), removed

    def _obliterate(self):
        if self.client.llen(self.key('active')):
            raise QueueError('queue %s has active jobs: stop its workers before removing it'
                             % self.name)
        self.set_paused(True)
        for state in ('paused', 'wait', 'delayed', 'completed', 'failed'):
            kind = 'zset' if state in ('delayed', 'completed', 'failed') else 'list'
            while self.client.eval(BULL_OBLITERATE_LUA, 1, self.key(state), self.job_prefix,
                                   kind, self.batch_size):
                pass
        # Bull's obliterate deletes these too (metrics:* since Bull 4.x keeps metrics); the
        # rate limiter's keys are deleted as well, so that nothing of the queue is left.
        self.client.unlink(*[self.key(s) for s in (
            'wait', 'paused', 'active', 'delayed', 'completed', 'failed', 'priority',
            'meta-paused', 'meta', 'id', 'stalled', 'stalled-check', 'limiter',
            'limiter:index', 'repeat', 'metrics:completed', 'metrics:completed:data',
            'metrics:failed', 'metrics:failed:data')])
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
        self.progress = 0
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
                self.progress = removed
            return removed, []
        if action.kind == 'requeue':
            moved = 0
            while moved < p['limit']:
                step = min(self.batch_size, p['limit'] - moved)
                got = self.client.eval(LIST_REQUEUE_LUA, 2, p['source'], self.name, step)
                moved += got
                self.progress = moved
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


def detect_flavor(client, prefix, name):
    """'bullmq' or 'bull' as the queue's keys say (the test discovery makes), None without keys.

    BullMQ keeps an ``events`` stream and writes ``opts.maxLenEvents`` into its meta hash;
    Bull v3 has neither (its meta hash, when a pause made one, holds only ``paused``).
    """
    base = '%s:%s:' % (prefix, name)
    pipe = client.pipeline(transaction=False)
    pipe.type(base + 'events')
    pipe.hexists(base + 'meta', 'opts.maxLenEvents')
    pipe.exists(base + 'id', base + 'meta', base + 'wait', base + 'paused', base + 'active',
                base + 'delayed', base + 'completed', base + 'failed')
    pipe.exists(base + 'meta-paused', base + 'priority')
    events, max_len, common, bull_only = pipe.execute()
    if events == 'stream' or max_len:
        return 'bullmq'
    if bull_only or common:
        return 'bull'
    return None


def check_flavor(client, prefix, name, flavor):
    """Refuse, before anything changes, a flavor the queue's keys contradict."""
    if flavor not in ('bullmq', 'bull'):
        return
    found = detect_flavor(client, prefix, name)
    if found and found != flavor:
        raise QueueError('queue %s (prefix %s) has the keys of a %s queue, not %s: set flavor: %s '
                         '(a %s operation on it would strand its jobs where %s never looks)'
                         % (name, prefix, 'Bull' if found == 'bull' else 'BullMQ', flavor, found,
                            flavor, 'Bull' if found == 'bull' else 'BullMQ'))


def glob_escape(text):
    """text with Redis' glob characters escaped, to be matched literally by SCAN MATCH."""
    return ''.join('\\' + c if c in '\\*?[]^' else c for c in text)


def discover(client, prefix='bull', flavor='any', scan_count=1000):
    """Find queues under a prefix in one SCAN pass (never KEYS): [(name, flavor)], sorted.

    A queue is known by its job-id counter (``<prefix>:<name>:id``, a string, both libraries)
    or its BullMQ meta hash (``<prefix>:<name>:meta``). One MATCH pattern covers both suffixes
    (``:[im][de]*``), so the keyspace is read once; Redis filters it, and only the few keys
    that end in ``:id`` or ``:meta`` come back, whose types are then checked in one pipeline.
    BullMQ queues also have an ``events`` stream; Bull v3 queues do not.
    """
    base = glob_escape(prefix) + ':'
    candidates = {}
    for key in client.scan_iter(match=base + '*:[im][de]*', count=scan_count):
        rest = key[len(prefix) + 1:]
        for suffix, key_type in ((':id', 'string'), (':meta', 'hash')):
            if rest.endswith(suffix) and len(rest) > len(suffix):
                candidates[key] = (rest[:-len(suffix)], key_type)
    keys = sorted(candidates)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    names = sorted(set(candidates[key][0] for key, got in zip(keys, pipe.execute())
                       if got == candidates[key][1]))
    found = []
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

    Runbook 001 7.3: queue length warning 100, critical 500; 7.1: failed / total 5%. A figure at
    or past its threshold crosses it (the collection's one rule, common/findings.py).
    """
    check_thresholds('waiting', waiting_warning, waiting_critical)
    check_thresholds('failure_ratio', failure_ratio_warning, None, maximum=1.0)
    out = []
    for q in entries:
        if not q.get('exists', True) and q['flavor'] != 'list':
            out.append({'object': '%s missing' % q['name'], 'figure': 'no key',
                        'threshold': 'a configured queue exists',
                        'verdict': 'warning',
                        'reason': 'queue %s (%s) has no key in Redis: a misspelt name, or a queue '
                                  'the application never created' % (q['name'], q['flavor'])})
            continue
        counts = q['counts']
        waiting = counts.get('wait', 0) + counts.get('paused', 0) + counts.get('prioritized', 0)
        out.append({'object': '%s waiting' % q['name'], 'figure': waiting,
                    'threshold': '>= %d warning, >= %d critical' % (waiting_warning, waiting_critical),
                    'verdict': verdict(waiting, waiting_warning, waiting_critical)})
        finished = counts.get('completed', 0) + counts.get('failed', 0)
        if finished and q['flavor'] != 'list':
            ratio = float(counts.get('failed', 0)) / finished
            out.append({'object': '%s failure ratio' % q['name'], 'figure': round(ratio, 3),
                        'threshold': '>= %.2f warning' % failure_ratio_warning,
                        'verdict': verdict(ratio, failure_ratio_warning, None)})
        if q.get('paused'):
            out.append({'object': '%s paused' % q['name'], 'figure': True,
                        'threshold': 'running expected', 'verdict': 'warning'})
    return out
