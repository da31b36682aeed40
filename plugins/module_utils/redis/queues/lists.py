# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The list flavor: a plain Redis list used as a queue (LPUSH by producers, BRPOP by consumers)."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.base import BaseQueue, Observation, QueueError

# Move up to ARGV[1] items from the oldest end of one list to the producer end of another.
LIST_REQUEUE_LUA = r"""
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  if not redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') then break end
  moved = moved + 1
end
return moved
"""


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

    def set_paused(self, paused):
        raise QueueError('a plain Redis list cannot be paused or resumed: %s has no pause flag' % self.name)

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

    ACTIONS = ('clean', 'requeue', 'drain', 'obliterate')

    def run_action(self, action):
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
        # drain, obliterate: UNLINK frees the memory in a background thread, no stall for a long list
        self.client.unlink(self.name)
        return action.count, []
