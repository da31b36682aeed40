# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy lock: one Redis key taken with SET NX PX and an owner token, renewed by its owner
at every phase (a lease: a lock not renewed in time expires, which is how a dead run is told
from a live one), released only by its owner (compare-and-delete in one Lua script).

Beside the lock, <key>:state records what the owning run is doing: its phase and the queues it
paused. It has no expiry: when a run dies, the next run that takes the lock adopts that record
in the same Lua call, so the queues a dead run paused are never forgotten."""

from __future__ import annotations

import json
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

# The end both share: write the new state record (ARGV[3]) with the dead run's paused queues,
# and return the previous record ('' when there was none).
_ADOPT = """
local old = redis.call('GET', KEYS[2])
local doc = cjson.decode(ARGV[3])
if old then
  local ok, prev = pcall(cjson.decode, old)
  if ok and type(prev) == 'table' and type(prev['paused']) == 'table' and #prev['paused'] > 0 then
    doc['paused'] = prev['paused']
  end
end
redis.call('SET', KEYS[2], cjson.encode(doc))
return old or ''
"""

# Take the lock (KEYS[1]) when free and, in the same call, adopt the state record (KEYS[2]) of
# a run that died holding it: the new record (ARGV[3]) gets the dead run's paused queues.
# Returns false when the lock is taken, else the previous record ('' when there was none).
ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
""" + _ADOPT

# Take over a lock held by the token ARGV[4] (an operator says that run is dead), adopting its
# record as ACQUIRE does. Returns false when the lock is not held by that token.
BREAK = """
local v = redis.call('GET', KEYS[1])
if v then
  local ok, cur = pcall(cjson.decode, v)
  if not (ok and type(cur) == 'table' and cur['owner'] == ARGV[4]) then return false end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
""" + _ADOPT

# Renew (fence): only while the lock still holds this owner's token. Sets the lock's new value
# and lease, and the state record when one is given. 1 renewed, 0 expired, -1 another owner.
RENEW = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, cur = pcall(cjson.decode, v)
if not (ok and type(cur) == 'table' and cur['owner'] == ARGV[1]) then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4]) end
return 1
"""

# Release: delete the lock only when it still holds this owner's token; the state record is
# deleted with it, or kept (ARGV[2]) when queues are still paused, for the next run to adopt.
RELEASE = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, doc = pcall(cjson.decode, v)
if ok and type(doc) == 'table' and doc['owner'] == ARGV[1] then
  if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) else
    local s = redis.call('GET', KEYS[2])
    if s then
      local ok2, st = pcall(cjson.decode, s)
      if ok2 and type(st) == 'table' and st['owner'] == ARGV[1] then redis.call('DEL', KEYS[2]) end
    end
  end
  return redis.call('DEL', KEYS[1])
end
return -1
"""


class LockError(OncallError):
    """A refused or failed lock operation, already phrased for the operator."""


class LockLost(LockError):
    """The lock no longer holds this owner's token: the run must stop touching the system."""


def state_key(key):
    return key + ':state'


def _decode(raw):
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError
    except ValueError:
        return None
    return doc


def observe(client, key):
    """The lock as stored: None, or {'owner', 'holder', 'acquired_at', 'renewed_at', 'phase',
    'ttl_ms'}."""
    raw = client.get(key)
    if raw is None:
        return None
    doc = _decode(raw)
    if doc is None:
        doc = {'owner': None, 'holder': 'unknown (value %r)' % raw[:60]}
    doc['ttl_ms'] = client.pttl(key)
    return doc


def observe_state(client, key):
    """The state record beside the lock: None, or {'owner', 'phase', 'paused', 'info',
    'updated_at'} with paused a list of {name, flavor}."""
    raw = client.get(state_key(key))
    if raw is None:
        return None
    doc = _decode(raw) or {'owner': None, 'phase': 'unknown', 'paused': []}
    paused = doc.get('paused')
    doc['paused'] = [q for q in paused if isinstance(q, dict) and q.get('name')] if isinstance(paused, list) else []
    if not isinstance(doc.get('info'), dict):
        doc['info'] = {}
    return doc


def _when(ts):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(ts))


def describe(key, lock):
    since = ' since %s' % _when(lock['acquired_at']) if lock.get('acquired_at') else ''
    renewed = ''
    if lock.get('renewed_at'):
        renewed = ', renewed %s' % _when(lock['renewed_at'])
        if lock.get('phase'):
            renewed += ' in phase %s' % lock['phase']
    expires = ' (expires in %ds)' % (lock['ttl_ms'] // 1000) if lock.get('ttl_ms', -1) > 0 else ''
    return 'lock %s is held by %s%s%s%s' % (key, lock.get('holder') or 'an unnamed holder', since,
                                            renewed, expires)


def paused_names(state):
    return [q['name'] for q in (state or {}).get('paused', [])]


def refusal(key, lock, state):
    """The sentence a second deploy gets: who holds the lock, what it paused, how to recover."""
    queues = paused_names(state) if state and state.get('owner') == lock.get('owner') else []
    paused = ('; queues it paused and that stay paused until it ends: %s' % ', '.join(queues)) if queues \
        else '; it has paused no queue'
    return ('%s: another deploy is running%s. If that run is dead (no ansible-playbook runs it), '
            'its lock expires by itself and the next deploy resumes its queues; to recover now, '
            'take the lock over with break_owner=%s' % (describe(key, lock), paused, lock.get('owner')))


def plan(key, lock, params, state=None):
    owner = params['owner']
    if params['state'] == 'present':
        if lock is None:
            adopt = state if state and state.get('owner') != owner and state.get('paused') else None
            reason = 'free' if adopt is None else 'free; adopts the queues %s paused by the dead run %s' % (
                ', '.join(paused_names(adopt)), adopt.get('owner'))
            return [Action('acquire', key, reason, params={'ttl': params['ttl_ms']})]
        if lock.get('owner') == owner:
            return []
        if params.get('break_owner') and lock.get('owner') == params['break_owner']:
            return [Action('break', key, 'break_owner: %s' % describe(key, lock), destructive=True,
                           params={'ttl': params['ttl_ms']})]
        if params.get('break_owner'):
            raise LockError('break_owner %s does not hold the lock: %s' % (
                params['break_owner'], refusal(key, lock, state)))
        raise LockError(refusal(key, lock, state))
    if params['state'] == 'renewed':
        if lock is None:
            raise LockLost('lock %s is no longer held by this run (owner %s): it expired (not renewed '
                           'within its lease of %s); stopped before phase %s' % (
                               key, owner, params['ttl'], params.get('phase') or 'the next step'))
        if lock.get('owner') != owner:
            raise LockLost('lock %s is no longer held by this run (owner %s): %s; stopped before phase %s'
                           % (key, owner, describe(key, lock), params.get('phase') or 'the next step'))
        return [Action('renew', key, 'lease %s' % params['ttl'], params={'ttl': params['ttl_ms']})]
    if lock is None:
        return []
    if lock.get('owner') == owner or params['force']:
        reason = 'held by this owner' if lock.get('owner') == owner else 'force: %s' % describe(key, lock)
        return [Action('release', key, reason, destructive=lock.get('owner') != owner)]
    return []


def lock_value(params, lock=None, now=None):
    now = int(now or time.time())
    acquired = (lock or {}).get('acquired_at') if (lock or {}).get('owner') == params['owner'] else None
    return json.dumps({'owner': params['owner'], 'holder': params['holder'],
                       'acquired_at': acquired or now, 'renewed_at': now,
                       'phase': params.get('phase') or '', 'lease_ms': params['ttl_ms']})


def state_value(params, paused=None):
    return json.dumps({'owner': params['owner'], 'phase': params.get('phase') or '',
                       'paused': paused if paused is not None else (params.get('paused') or []),
                       'info': params.get('info') or {}, 'updated_at': int(time.time())})


def apply(client, key, action, params, lock=None):
    """Apply one action; returns the state record adopted from a dead run (acquire, break),
    or None."""
    skey = state_key(key)
    if action.kind in ('acquire', 'break'):
        value = lock_value(params)
        if action.kind == 'acquire':
            old = client.eval(ACQUIRE, 2, key, skey, value, params['ttl_ms'], state_value(params))
            if old is None:
                lock = observe(client, key) or {}
                raise LockError('%s: another deploy took it a moment ago; wait for it to finish'
                                % describe(key, lock))
        else:
            old = client.eval(BREAK, 2, key, skey, value, params['ttl_ms'], state_value(params),
                              params['break_owner'])
            if old is None:
                raise LockError('break_owner %s no longer holds lock %s: nothing broken'
                                % (params['break_owner'], key))
        if not old:
            return None
        prev = _decode(old) or {}
        if prev.get('owner') == params['owner']:
            return None
        paused = prev.get('paused') if isinstance(prev.get('paused'), list) else []
        return {'owner': prev.get('owner'), 'phase': prev.get('phase') or 'unknown',
                'paused': [q for q in paused if isinstance(q, dict) and q.get('name')],
                'info': prev.get('info') if isinstance(prev.get('info'), dict) else {},
                'updated_at': prev.get('updated_at')}
    if action.kind == 'renew':
        state = state_value(params) if params.get('paused') is not None else ''
        done = client.eval(RENEW, 2, key, skey, params['owner'], lock_value(params, lock),
                           params['ttl_ms'], state)
        if done != 1:
            now = observe(client, key)
            raise LockLost('lock %s is no longer held by this run (owner %s): %s; stopped before phase %s' % (
                key, params['owner'], describe(key, now) if now else 'it expired',
                params.get('phase') or 'the next step'))
        return None
    if params['force'] and lock is not None and lock.get('owner') != params['owner']:
        client.delete(key)  # the state record stays: the next run adopts the queues it names
        return None
    keep = state_value(params) if params.get('paused') else ''
    client.eval(RELEASE, 2, key, skey, params['owner'], keep)
    return None
