# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy lock: one Redis key taken with SET NX PX and an owner token, released only by
its owner (compare-and-delete in one Lua script), expiring by itself if its owner dies."""

from __future__ import annotations

import json
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action

# Delete the key only when it still holds this owner's token.
RELEASE = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, doc = pcall(cjson.decode, v)
if ok and type(doc) == 'table' and doc['owner'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return -1
"""


class LockError(Exception):
    """A refused or failed lock operation, already phrased for the operator."""


def observe(client, key):
    """The lock as stored: None, or {'owner', 'holder', 'acquired_at', 'ttl_ms'}."""
    raw = client.get(key)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError
    except ValueError:
        doc = {'owner': None, 'holder': 'unknown (value %r)' % raw[:60]}
    doc['ttl_ms'] = client.pttl(key)
    return doc


def describe(key, lock):
    since = ''
    if lock.get('acquired_at'):
        since = ' since %s' % time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(lock['acquired_at']))
    expires = ' (expires in %ds)' % (lock['ttl_ms'] // 1000) if lock.get('ttl_ms', -1) > 0 else ''
    return 'lock %s is held by %s%s%s' % (key, lock.get('holder') or 'an unnamed holder', since, expires)


def plan(key, lock, params):
    owner = params['owner']
    if params['state'] == 'present':
        if lock is None:
            return [Action('acquire', key, 'free', params={'ttl': params['ttl_ms']})]
        if lock.get('owner') == owner:
            return []
        raise LockError('%s: another deploy is running; wait for it to finish, or if it died, remove '
                        'the lock with state=absent force=true' % describe(key, lock))
    if lock is None:
        return []
    if lock.get('owner') == owner or params['force']:
        reason = 'held by this owner' if lock.get('owner') == owner else 'force: %s' % describe(key, lock)
        return [Action('release', key, reason, destructive=lock.get('owner') != owner)]
    return []


def apply(client, key, action, params):
    if action.kind == 'acquire':
        value = json.dumps({'owner': params['owner'], 'holder': params['holder'],
                            'acquired_at': int(time.time())})
        if not client.set(key, value, nx=True, px=params['ttl_ms']):
            lock = observe(client, key) or {}
            raise LockError('%s: another deploy took it a moment ago; wait for it to finish'
                            % describe(key, lock))
    elif params['force']:
        client.delete(key)
    else:
        client.eval(RELEASE, 1, key, params['owner'])
