# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan for one queue (the ordered actions that bring it to what the task asks) and the
counts it predicts, computed from one observation."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.base import QueueError, _count_display, now_ms


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
