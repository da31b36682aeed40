# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every queue flavor provides (BaseQueue, an abstract class), what one read of a queue
found (Observation), the job states, and the error every refusal raises (QueueError)."""

from __future__ import annotations

import abc
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action

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


class BaseQueue(object, metaclass=abc.ABCMeta):
    """What a queue flavor provides. A flavor implements observe (one read-only look),
    set_paused and run_action (one planned Action, re-checked in Redis as it is applied; apply
    dispatches to it); the
    planning helpers here (plan_clean, plan_retry, plan_drain) serve the flavors whose jobs are
    hashes under ``<prefix>:<queue>:<id>`` (BullMQ and Bull), and a flavor overrides them where
    its layout differs (lists)."""

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

    @abc.abstractmethod
    def observe(self):
        """One read-only look at the queue: an Observation."""

    @abc.abstractmethod
    def set_paused(self, paused):
        """Pause (True) or resume (False) the queue."""

    # The actions a flavor carries out besides pause and resume (run_action's kinds).
    ACTIONS = ('clean', 'retry', 'drain', 'remove', 'obliterate')

    def apply(self, action):
        """Carry out one planned Action, re-checking each item in Redis: (how many jobs it
        changed, up to 100 of their ids). self.progress counts the jobs handled so far."""
        self.progress = 0
        if action.kind in ('pause', 'resume'):
            self.set_paused(action.kind == 'pause')
            return action.count, []
        if action.kind not in self.ACTIONS:
            raise QueueError('queue %s (%s) has no action %s' % (self.name, self.flavor, action.kind))
        return self.run_action(action)

    @abc.abstractmethod
    def run_action(self, action):
        """One Action of ACTIONS, as apply returns it."""

    def job_locations(self, ids):
        """For remove_jobs: which ids exist and whether a worker holds them."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self.job_prefix + job_id)
            pipe.exists(self.job_prefix + job_id + ':lock')
        res = pipe.execute()
        return [(job_id, bool(res[2 * i]), bool(res[2 * i + 1])) for i, job_id in enumerate(ids)]
