#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: redis_queue
short_description: Pause, resume, clean, retry, drain or remove a BullMQ, Bull or list queue
version_added: 0.1.0
description:
  - Manages one job queue stored in Redis, the way the runbooks' "Queue Management" sections do by
    hand, but planned first and idempotent.
  - Works in two steps. It reads the queue (counts per state, paused flag) and computes a plan, a
    list of actions each naming its object, count and reason; then, unless in check mode, it
    applies the plan. C(changed) is true exactly when the plan was not empty, so a second
    identical run reports no change.
  - Every change is made in bounded batches (O(batch_size)), so no single Redis call stalls
    other clients for long, and every item is re-checked atomically in Redis before it is
    touched (still in the same state, still older than the cut-off, not locked by a worker).
  - Active jobs are never deleted. Destructive actions (O(state=absent), O(drain)) need
    O(confirm=true).
  - For O(flavor=bullmq) changes go through the BullMQ Python package (the same Lua scripts as
    the Node library). Bull v3 and plain lists are handled by this collection's own scripts.
  - With O(queues) instead of O(name) it pauses or resumes several queues in one call, over one
    connection, which keeps the window in which a deploy holds the queues paused short (a loop
    costs one module run per queue); or, with O(clean), it cleans them all in one call (the
    weekly window's one task per host).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.redis
  - oncall.runbooks.attributes.action_group_redis
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Returns the plan and the predicted counts; no key is written.
  diff_mode:
    support: full
    details: Shows the paused flag and the counts per state before and after.
  idempotent:
    support: full
    details: Plans from what the queue holds; paused stays paused, cleaned or drained jobs are gone.
options:
  name:
    description:
      - Queue name as the application names it (C(ai-analysis)), or for O(flavor=list) the key of
        the list (C(festivals:queue:critical)).
      - Exactly one of O(name) and O(queues) is required.
    type: str
  queues:
    description:
      - Several queues to pause, resume or clean in one call, instead of O(name). Each item is a
        name (flavor from O(flavor)) or a dict with C(name) and C(flavor) (V(bullmq) or V(bull), or
        V(list) when cleaning; other keys are ignored, so the entries of an inventory's queue list
        can be passed as they are).
      - With O(state=paused) or O(state=running) it pauses or resumes them. With O(clean) (and
        O(state=present)) it applies the same clean rules to every queue, each checked as for
        one queue. The retrying, draining and removing options are refused with it.
      - Every queue is tried even when one fails; the failure then names the queues that failed
        and the result's RV(queues) says where each one ended.
    type: list
    elements: raw
  flavor:
    description:
      - V(bullmq) for BullMQ (npm C(bullmq), Python C(bullmq)), V(bull) for Bull v3 (npm C(bull)),
        V(list) for a plain Redis list that producers LPUSH and consumers BRPOP.
      - A flavor that the queue's keys contradict (V(bullmq) on a Bull queue, or the reverse) is
        refused before anything changes.
    type: str
    choices: [bullmq, bull, list]
    default: bullmq
  prefix:
    description:
      - Key prefix the application configured for its queues. Not used for O(flavor=list).
    type: str
    default: bull
  state:
    description:
      - V(present) observes and applies only the other options.
      - V(paused) pauses the queue globally; workers finish their active jobs and take no new one.
      - V(running) resumes a paused queue.
      - V(absent) removes the queue and every job in it (obliterate); needs O(confirm=true) and
        fails while jobs are active.
      - A plain list cannot be paused.
    type: str
    choices: [present, paused, running, absent]
    default: present
  clean:
    description:
      - Removes old jobs, per rule. For BullMQ and Bull a job's age is its finish time for
        V(completed) and V(failed), and its last processing or creation time for V(delayed) and
        V(wait).
      - For O(flavor=list) only V(wait) with O(clean[].limit) applies; it trims that many of the
        oldest items (lists carry no timestamps, so O(clean[].older_than) is refused).
    type: list
    elements: dict
    suboptions:
      status:
        description: Which state to clean. V(wait) includes jobs waiting in a paused queue.
        type: str
        choices: [completed, failed, delayed, wait]
        required: true
      older_than:
        description:
          - Only jobs older than this are removed.
          - A duration such as C(30s), C(10m), C(24h) or C(7d); a bare number is seconds.
          - The cut-off is fixed when the plan is made.
        type: str
        default: '0s'
      limit:
        description: Remove at most this many jobs for this rule; V(0) means no limit.
        type: int
        default: 0
  retry:
    description:
      - Moves finished jobs back to be processed again (C(job.retry()) for each, in batches).
    type: dict
    suboptions:
      status:
        description: Which finished state to take jobs from.
        type: str
        choices: [failed, completed]
        default: failed
      limit:
        description: Retry at most this many (oldest first); V(0) means all.
        type: int
        default: 0
  drain:
    description:
      - Removes every waiting job (and delayed ones with O(drain_delayed)). Needs O(confirm=true).
      - Active, completed and failed jobs are kept. For a plain list, deletes the list.
    type: bool
    default: false
  drain_delayed:
    description: With O(drain), remove delayed jobs too.
    type: bool
    default: false
  remove_jobs:
    description:
      - Job ids to remove (the runbook's "Remove Stuck Jobs"). An id that does not exist is
        ignored; an id locked by a worker (active) makes the module fail before anything is done.
    type: list
    elements: str
  requeue_from:
    description:
      - For O(flavor=list), a list (for example C(festivals:queue:failed)) whose items are moved
        back onto the queue, oldest first, onto the producer end. It must not be O(name) itself.
    type: str
  requeue_limit:
    description: With O(requeue_from), move at most this many items; V(0) means all.
    type: int
    default: 0
  confirm:
    description: Must be V(true) for O(state=absent) and O(drain), which delete jobs that were never run.
    type: bool
    default: false
  allow_missing:
    description:
      - When the queue does not exist, do nothing instead of failing. By default asking for a
        change on an unknown queue fails, since that is usually a misspelt name.
    type: bool
    default: false
  batch_size:
    description:
      - Jobs handled per Redis call. 1000 keeps each call around 10 ms for BullMQ jobs.
      - Cleaning a BullMQ C(completed) or C(failed) set keeps two such calls in flight, so Redis
        never waits for a round trip between batches; if Redis fails midway, up to two batches
        may have been applied without their answer reaching the module (the count reported is
        that of the acknowledged ones).
    type: int
    default: 1000
requirements:
  - redis (Python library)
  - bullmq (Python library), for O(flavor=bullmq) changes
notes:
  - The Python package C(bullmq) 2.x runs the same scripts as the Node library 5.x.
    Use a matching major version.
seealso:
  - module: oncall.runbooks.redis_queue_info
'''

EXAMPLES = r'''
- name: Pause the ai-analysis queue before a deploy
  oncall.runbooks.redis_queue:
    login_host: redis.internal
    login_user: oncall
    login_password: "{{ vault_redis_password }}"
    name: ai-analysis
    state: paused

- name: Set the connection once for every Redis module of the collection
  module_defaults:
    group/oncall.runbooks.redis:
      login_host: redis.internal
      login_password: "{{ vault_redis_password }}"
  block:
    - name: Read the queues
      oncall.runbooks.redis_queue_info:
      register: queue_stats

    - name: Resume the ai-analysis queue
      oncall.runbooks.redis_queue:
        name: ai-analysis
        state: running

- name: Pause every queue of the application in one call
  oncall.runbooks.redis_queue:
    queues:
      - name: ai-analysis
      - name: notifications
      - name: card-generation
        flavor: bull
    state: paused

- name: Clean old finished jobs of every queue of a host in one call
  oncall.runbooks.redis_queue:
    queues:
      - {name: ai-analysis, flavor: bullmq}
      - {name: card-generation, flavor: bull}
    clean:
      - status: failed
        older_than: 24h
    allow_missing: true

- name: Clean failed jobs older than 24 hours and completed ones older than 7 days
  oncall.runbooks.redis_queue:
    name: ai-analysis
    clean:
      - status: failed
        older_than: 24h
      - status: completed
        older_than: 7d

- name: Retry at most 500 failed jobs of a Bull v3 queue
  oncall.runbooks.redis_queue:
    name: card-generation
    flavor: bull
    retry:
      status: failed
      limit: 500

- name: Put failed items of a plain list back on the critical queue
  oncall.runbooks.redis_queue:
    name: festivals:queue:critical
    flavor: list
    requeue_from: festivals:queue:failed

- name: Empty the low-priority list queue (destructive)
  oncall.runbooks.redis_queue:
    name: festivals:queue:low
    flavor: list
    drain: true
    confirm: true
'''

RETURN = r'''
queue:
  description: The queue as read after the changes (in check mode, as predicted).
  returned: when O(name) is given
  type: dict
  contains:
    name:
      description: Queue name.
      type: str
      sample: ai-analysis
    flavor:
      description: Queue flavor.
      type: str
      sample: bullmq
    exists:
      description: Whether any key of the queue exists.
      type: bool
      sample: true
    paused:
      description: Whether the queue is paused.
      type: bool
      sample: false
    counts:
      description: Jobs per state (C(wait), C(paused), C(active), C(delayed), C(prioritized),
        C(waiting_children), C(completed), C(failed) for BullMQ; fewer for Bull and lists).
      type: dict
      sample: {wait: 25, paused: 0, active: 0, delayed: 5, completed: 40, failed: 30}
before:
  description: Paused flag and counts as read before any change.
  returned: when O(name) is given
  type: dict
  sample: {paused: false, counts: {wait: 25, failed: 30}}
plan:
  description: What the module decided to do, in order, before doing it.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: C(pause), C(resume), C(clean), C(retry), C(requeue), C(drain), C(remove) or C(obliterate).
      type: str
    object:
      description: Queue, or queue and state, the action applies to.
      type: str
    reason:
      description: Why, with the measured figure.
      type: str
    count:
      description: How many jobs (or items) the action concerns.
      type: int
    ids:
      description: At most 100 of the job ids concerned, oldest first, where known in advance.
      type: list
      elements: str
    destructive:
      description: Whether the action deletes jobs.
      type: bool
  sample:
    - kind: clean
      object: ai-analysis/failed
      reason: 30 failed job(s) finished or created more than 24h ago
      count: 30
      ids: ['1', '2']
      destructive: true
actions:
  description:
    - What was done, with the counts actually handled; empty in check mode.
    - Also returned when an action fails part way (Redis died), its entry then holding the jobs
      it had handled before the failure and the C(error).
  returned: always
  type: list
  elements: dict
  sample:
    - kind: clean
      object: ai-analysis/failed
      count: 30
      planned: 30
      ids: ['1', '2']
      seconds: 0.012
queues:
  description:
    - With O(queues), each queue in the order given, as it ended (in check mode, as predicted).
      When cleaning, RV(plan) and RV(actions) hold every queue's actions, named by queue and state.
    - Also returned when the module fails, so that a caller knows which queues are still paused.
  returned: when O(queues) is given
  type: list
  elements: dict
  contains:
    name:
      description: Queue name.
      type: str
    flavor:
      description: Queue flavor.
      type: str
    paused_before:
      description: Whether the queue was paused before this call (null when it could not be read).
      type: bool
    paused:
      description: Whether the queue is paused now (null when it could not be read).
      type: bool
    changed:
      description: Whether this call paused, resumed or cleaned it.
      type: bool
    error:
      description: Why this queue could not be paused, resumed or cleaned; absent when it was.
      type: str
  sample:
    - {name: ai-analysis, flavor: bullmq, paused_before: false, paused: true, changed: true}
    - {name: card-generation, flavor: bull, paused_before: true, paused: true, changed: false}
msg:
  description: One-line summary of the plan.
  returned: always
  type: str
  sample: "clean ai-analysis/failed (30): 30 failed job(s) finished or created more than 24h ago"
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
findings:
  description: Findings (C(object), C(figure), C(threshold), C(verdict)); empty when there is nothing to rate.
  returned: always
  type: list
  elements: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import summarize
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import queues as rq


def validate(params):
    """Refuse bad or dangerous input before Redis is touched; returns normalised params."""
    flavor = params['flavor']
    name = params['name']
    if not name:
        raise rq.QueueError('name must not be empty')
    if params['batch_size'] < 1:
        raise rq.QueueError('batch_size must be at least 1, got %d' % params['batch_size'])
    for opt in ('requeue_limit',):
        if params[opt] < 0:
            raise rq.QueueError('%s must not be negative, got %d' % (opt, params[opt]))
    rules = []
    for i, rule in enumerate(params.get('clean') or []):
        if rule['limit'] < 0:
            raise rq.QueueError('clean[%d].limit must not be negative, got %d' % (i, rule['limit']))
        try:
            seconds = parse_duration(rule['older_than'], 'clean[%d].older_than' % i)
        except DurationError as exc:
            raise rq.QueueError(str(exc))
        if flavor == 'list':
            if rule['status'] != 'wait':
                raise rq.QueueError('a plain list only has waiting items: use clean status wait, not %s'
                                    % rule['status'])
            if seconds:
                raise rq.QueueError('list items carry no timestamps, so clean[%d].older_than cannot '
                                    'apply: use limit to trim the oldest items' % i)
            if not rule['limit']:
                raise rq.QueueError('clean[%d] on a plain list needs a limit (how many of the oldest '
                                    'items to trim)' % i)
        rules.append(dict(rule, older_than_s=seconds))
    retry = params.get('retry')
    if retry:
        if any(r['status'] == retry['status'] for r in rules):
            raise rq.QueueError('clean and retry of %s jobs in one task would compete for the same '
                                'jobs: use two tasks' % retry['status'])
        if retry['limit'] < 0:
            raise rq.QueueError('retry.limit must not be negative, got %d' % retry['limit'])
        if flavor == 'list':
            raise rq.QueueError('a plain list has no failed state to retry from: use requeue_from')
    if flavor == 'list' and params['state'] in ('paused', 'running'):
        raise rq.QueueError('a plain Redis list cannot be paused or resumed: queue %s has no pause '
                            'flag; scale its consumers down instead' % name)
    if flavor == 'list' and params.get('remove_jobs'):
        raise rq.QueueError('remove_jobs needs job ids, which a plain list does not have')
    if flavor != 'list' and params.get('requeue_from'):
        raise rq.QueueError('requeue_from applies to flavor list; for %s queues use retry' % flavor)
    if params.get('requeue_from') is not None and params['requeue_from'] == name:
        raise rq.QueueError('requeue_from must name another list than name (%s): moving a list onto '
                            'itself only rotates it, on every run' % name)
    if params['state'] == 'absent':
        others = [o for o in ('clean', 'retry', 'remove_jobs', 'requeue_from') if params.get(o)]
        if params['drain']:
            others.append('drain')
        if others:
            raise rq.QueueError('state absent removes the whole queue; do not combine it with %s'
                                % ', '.join(others))
        if not params['confirm']:
            raise rq.QueueError('state absent deletes queue %s and every job in it: set confirm: true '
                                'to do that' % name)
    if params['drain'] and not params['confirm']:
        raise rq.QueueError('drain deletes every waiting job of queue %s: set confirm: true to do '
                            'that' % name)
    if params['drain_delayed'] and not params['drain']:
        raise rq.QueueError('drain_delayed only applies together with drain: true')
    normalised = dict(params)
    normalised['clean'] = rules
    if retry:
        normalised['retry'] = dict(retry)
    return normalised


def asks_for_change(params):
    return (params['state'] != 'present' or bool(params['clean']) or bool(params.get('retry'))
            or params['drain'] or bool(params.get('remove_jobs')) or bool(params.get('requeue_from')))


# Options that act on jobs, refused with queues (which only pauses and resumes).
JOB_OPTIONS = ('clean', 'retry', 'drain', 'remove_jobs', 'requeue_from')


def validate_many(params):
    """The queues form: pause or resume, or clean (state present), every entry named."""
    cleaning = bool(params.get('clean'))
    if cleaning and params['state'] != 'present':
        raise rq.QueueError('queues with clean cleans several queues: leave state present (pause or '
                            'resume them in another task), not %s' % params['state'])
    if not cleaning and params['state'] not in ('paused', 'running'):
        raise rq.QueueError('queues pauses, resumes or cleans several queues: use state paused or '
                            'running, or clean, not %s (use name for one queue)' % params['state'])
    given = [opt for opt in JOB_OPTIONS if opt != 'clean' and params.get(opt)]
    if given:
        raise rq.QueueError('queues only pauses or resumes, or cleans: do %s with name, one queue per task'
                            % ', '.join(given))
    entries = rq.queue_entries(params['queues'], params['flavor'], ('bullmq', 'bull', 'list'))
    for i, entry in enumerate(entries):
        if entry['flavor'] == 'list' and not cleaning:
            raise rq.QueueError('a plain Redis list cannot be paused or resumed: queues[%d] (%s) has '
                                'no pause flag' % (i, entry['name']))
        if cleaning:
            # each queue's clean rules checked as for one queue (a plain list: limit, no age)
            entry['params'] = validate(dict(params, name=entry['name'], flavor=entry['flavor'], queues=None))
    return entries


def run_many(module):
    """Pause or resume every queue of O(queues) over one connection; every queue is tried."""
    params = module.params
    entries = validate_many(params)
    client = rconn.connect(params)
    result = dict(changed=False, plan=[], actions=[], queues=[])
    failed = []
    for entry in entries:
        one = entry.get('params') or dict(params, name=entry['name'], flavor=entry['flavor'], clean=[],
                                          retry=None)
        row = dict(name=entry['name'], flavor=entry['flavor'], paused_before=None, paused=None,
                   changed=False)
        result['queues'].append(row)
        try:
            queue = rq.make_queue(entry['flavor'], client, entry['name'], prefix=params['prefix'],
                                  batch_size=params['batch_size'], conn_params=params)
            obs = queue.observe()
            rq.check_flavor(client, params['prefix'], entry['name'], entry['flavor'])
            row['paused_before'] = row['paused'] = obs.paused
            if not obs.exists and not params['allow_missing']:
                raise rq.QueueError('queue %s (%s, prefix %s) does not exist at %s: check the name, or '
                                    'set allow_missing: true' % (entry['name'], entry['flavor'],
                                                                 params['prefix'], rconn.where(params)))
            actions = rq.plan(queue, obs, one) if obs.exists or params['state'] == 'paused' else []
            result['plan'].extend(a.to_dict() for a in actions)
            for action in actions:
                row['changed'] = True
                if module.check_mode:
                    continue
                started = time.monotonic()
                try:
                    count, _ids = queue.apply(action)
                except Exception:  # what this action had handled before it failed is done too
                    result['actions'].append(dict(action.to_dict(), count=queue.progress,
                                                  planned=action.count, error='failed part way',
                                                  seconds=round(time.monotonic() - started, 3)))
                    raise
                result['actions'].append(dict(action.to_dict(), count=count, planned=action.count,
                                              seconds=round(time.monotonic() - started, 3)))
            if params['state'] in ('paused', 'running'):
                row['paused'] = (params['state'] == 'paused') if actions else obs.paused
        except Exception as exc:  # a refusal, a Redis or library failure: record it, try the next
            row['error'] = str(exc) if isinstance(exc, rq.QueueError) else rconn.describe_error(exc, params)
            failed.append(row)
    result['changed'] = any(row['changed'] for row in result['queues'])
    done = [row['name'] for row in result['queues'] if row['changed'] and 'error' not in row]
    verb = {'paused': 'pause', 'running': 'resume'}.get(params['state'], 'clean')
    result['msg'] = ('%s %s' % (verb, ', '.join(done))) if done else 'nothing to do'
    if failed:
        result['msg'] = 'could not %s %d of %d queue(s): %s' % (
            verb, len(failed), len(result['queues']),
            '; '.join('%s (%s)' % (row['name'], row['error']) for row in failed))
        module.fail_json(**result)
    return result


def fail_partway(module, result, done, action, progress, started, total, cause, refusal=False):
    """Fail with what was really done: the actions completed and, for the one that failed,
    the jobs it had handled batch by batch before the failure (a batch in flight when Redis
    died may have been applied too; the next run's plan shows what is left)."""
    entry = dict(action.to_dict(), count=progress, planned=action.count, error=cause,
                 seconds=round(time.monotonic() - started, 3))
    result['actions'] = done + [entry]
    result['changed'] = bool(done) or progress > 0
    result['msg'] = ('%s on %s failed after %d of %d job(s) were handled (%d of %d action(s) '
                     'complete before it): %s'
                     % (action.kind, action.object, progress, action.count, len(done), total,
                        cause))
    if refusal and not result['changed']:
        result['msg'] = cause  # refused before anything was done: the refusal says it all
    module.fail_json(**result)


def run(module):
    if module.params['queues']:
        return run_many(module)
    params = validate(module.params)
    client = rconn.connect(module.params)
    queue = rq.make_queue(params['flavor'], client, params['name'], prefix=params['prefix'],
                          batch_size=params['batch_size'], conn_params=module.params)
    obs = queue.observe()
    # read-only so far: a flavor the keys contradict is refused before anything changes
    rq.check_flavor(client, params['prefix'], params['name'], params['flavor'])
    before = {'paused': obs.paused, 'counts': dict(obs.counts)}
    result = dict(changed=False, before=before, plan=[], actions=[])

    if not obs.exists and asks_for_change(params) and params['state'] != 'absent':
        if not params['allow_missing']:
            raise rq.QueueError('queue %s (%s, prefix %s) does not exist at %s: check the name, or '
                                'set allow_missing: true'
                                % (params['name'], params['flavor'], params['prefix'],
                                   rconn.where(module.params)))

    if not obs.exists and params['state'] != 'paused':
        actions = []
    else:
        actions = rq.plan(queue, obs, params)
    result['plan'] = [a.to_dict() for a in actions]
    result['msg'] = summarize(actions)
    result['changed'] = bool(actions)

    if module.check_mode or not actions:
        after = rq.predict(obs, actions, params['flavor'])
    else:
        done = []
        for action in actions:
            started = time.monotonic()
            try:
                count, ids = queue.apply(action)
            except Exception as exc:  # a refusal, a Redis or library failure mid-plan
                cause = str(exc) if isinstance(exc, rq.QueueError) else rconn.describe_error(
                    exc, module.params)
                fail_partway(module, result, done, action, queue.progress, started, len(actions),
                             cause, refusal=isinstance(exc, rq.QueueError))
            entry = dict(action.to_dict(), count=count, planned=action.count,
                         seconds=round(time.monotonic() - started, 3))
            if ids:
                entry['ids'] = list(ids)[:100]
            done.append(entry)
        result['actions'] = done
        now = queue.observe()
        after = {'paused': now.paused, 'counts': dict(now.counts)}
        obs = now

    result['queue'] = dict(name=params['name'], flavor=params['flavor'], prefix=params['prefix'],
                           exists=bool(obs.exists or after['paused']), paused=after['paused'],
                           counts=after['counts'])
    if params['state'] == 'absent' and actions and not module.check_mode:
        result['queue']['exists'] = False
    if module._diff:
        result['diff'] = dict(before=before, after=after)
    return result


def main():
    argument_spec = rconn.redis_argument_spec()
    argument_spec.update(
        name=dict(type='str'),
        queues=dict(type='list', elements='raw'),
        flavor=dict(type='str', default='bullmq', choices=['bullmq', 'bull', 'list']),
        prefix=dict(type='str', default='bull'),
        state=dict(type='str', default='present', choices=['present', 'paused', 'running', 'absent']),
        clean=dict(type='list', elements='dict', options=dict(
            status=dict(type='str', required=True, choices=list(rq.CLEANABLE)),
            older_than=dict(type='str', default='0s'),
            limit=dict(type='int', default=0),
        )),
        retry=dict(type='dict', options=dict(
            status=dict(type='str', default='failed', choices=list(rq.RETRYABLE)),
            limit=dict(type='int', default=0),
        )),
        drain=dict(type='bool', default=False),
        drain_delayed=dict(type='bool', default=False),
        remove_jobs=dict(type='list', elements='str'),
        requeue_from=dict(type='str'),
        requeue_limit=dict(type='int', default=0),
        confirm=dict(type='bool', default=False),
        allow_missing=dict(type='bool', default=False),
        batch_size=dict(type='int', default=1000),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('name', 'queues')], required_one_of=[('name', 'queues')])
    flavors = [q.get('flavor') if isinstance(q, dict) else None for q in module.params['queues'] or []]
    flavors = [f or module.params['flavor'] for f in flavors] or [module.params['flavor']]
    # the BullMQ library runs BullMQ's own scripts when something changes; reading needs only redis
    requires = ['redis', 'bullmq'] if 'bullmq' in flavors and not module.check_mode else ['redis']
    runner.run(module, run, describe=lambda exc: rconn.failure(exc, module.params), requires=requires)


if __name__ == '__main__':
    main()
