# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Bull v3 flavor (npm ``bull``). There is no maintained Python port, so the few scripts it
needs are here, written against the key layout Bull uses."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.base import (
    BULL_STATES, LIST_KINDS, BaseQueue, Observation, QueueError, _raise_first_error)

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

    def run_action(self, action):
        return getattr(self, '_' + action.kind)(action.params)

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

    def _obliterate(self, _params):
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
