# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which queues a Redis holds, and which flavor a named queue is."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.base import QueueError


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
