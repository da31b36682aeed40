# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one parser of the ``queues`` option of redis_queue and redis_queue_info."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.base import QueueError


def _one_of(words):
    words = list(words)
    return words[0] if len(words) == 1 else '%s or %s' % (', '.join(words[:-1]), words[-1])


def queue_entries(items, default_flavor, flavors):
    """[{'name', 'flavor'}] from the option's items: a queue name, or a dict with ``name`` and an
    optional ``flavor`` (else `default_flavor`). A name is a non-empty string (a number is taken
    as its digits); the flavor one of `flavors`; no queue twice. Anything else is a QueueError
    naming the item, before any queue is touched."""
    entries, seen = [], set()
    for i, item in enumerate(items or []):
        if isinstance(item, dict):
            name, flavor = item.get('name'), item.get('flavor') or default_flavor
        else:
            name, flavor = item, default_flavor
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)
        if not isinstance(name, str) or not name:
            raise QueueError('queues[%d] needs a name: give a queue name or a dict with name and flavor' % i)
        if flavor not in flavors:
            raise QueueError('queues[%d].flavor must be %s, not %r' % (i, _one_of(flavors), flavor))
        if (flavor, name) in seen:
            raise QueueError('queue %s (%s) is listed twice in queues' % (name, flavor))
        seen.add((flavor, name))
        entries.append({'name': name, 'flavor': flavor})
    return entries
