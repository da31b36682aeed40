# -*- coding: utf-8 -*-
"""A Redis keyspace as data, to compare before and after a run."""

from __future__ import annotations

import redis


# BullMQ's <queue>:stalled-check is written by running workers' own periodic check with a 30 s
# expiry: it comes and goes by itself during a run, so it is not part of a before/after state.
HOUSEKEEPING_SUFFIXES = (':stalled-check',)


def dump_keys(client, pattern='*'):
    """Every key matching pattern with its type, TTL and value (for before/after), except the
    workers' own housekeeping keys (HOUSEKEEPING_SUFFIXES).

    Values are read as data, not as DUMP payloads: a hash or a set in hashtable encoding dumps
    its entries in the dict's iteration order, which Redis may change by rehashing on its own
    (seen here: a check-mode run "changed" failed Bull jobs whose fields were only reordered)."""
    kwargs = dict(client.connection_pool.connection_kwargs, decode_responses=False)
    raw = redis.Redis(**kwargs)
    out = {}
    try:
        for key in sorted(client.scan_iter(match=pattern, count=1000)):
            if key.endswith(HOUSEKEEPING_SUFFIXES if isinstance(key, str) else
                            tuple(s.encode() for s in HOUSEKEEPING_SUFFIXES)):
                continue
            kind = client.type(key)
            if kind == 'hash' or kind == b'hash':
                value = sorted(raw.hgetall(key).items())
            elif kind in ('set', b'set'):
                value = sorted(raw.smembers(key))
            elif kind in ('list', b'list'):
                value = raw.lrange(key, 0, -1)
            elif kind in ('zset', b'zset'):
                value = raw.zrange(key, 0, -1, withscores=True)
            elif kind in ('string', b'string'):
                value = raw.get(key)
            elif kind in ('stream', b'stream'):
                value = raw.xrange(key)
            else:
                value = raw.dump(key)
            out[key] = (kind, client.pttl(key) > 0, value)
    finally:
        raw.close()
    return out
