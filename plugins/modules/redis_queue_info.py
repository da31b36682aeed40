#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: redis_queue_info
short_description: Find BullMQ, Bull and list queues in Redis and report their counts
version_added: 0.1.0
description:
  - The runbooks' "queue stats" as data. Finds every BullMQ and Bull queue under a prefix, or
    reads the listed ones, and returns for each its paused flag and its jobs per state.
  - Discovery uses SCAN with a pattern, never C(KEYS), so it does not block the server on a
    large keyspace; it reads the keyspace once, in steps of O(scan_count), and Redis returns only
    the keys that name a queue (its C(id) counter or its BullMQ C(meta) hash). Queues named in
    O(queues) are read directly, without a SCAN.
  - Read-only; it never changes anything.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.redis
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes.action_group_redis
  - oncall.runbooks.attributes
options:
  prefix:
    description: Key prefix of the BullMQ and Bull queues.
    type: str
    default: bull
  flavor:
    description:
      - Which queues to discover. V(any) finds BullMQ and Bull queues and tells them apart.
      - Plain lists cannot be discovered; name them in O(queues).
    type: str
    choices: [any, bullmq, bull]
    default: any
  queues:
    description:
      - Queues to read instead of discovering them. Each item is a name (flavor from O(flavor),
        or detected when V(any)) or a dict with C(name) and C(flavor) (V(bullmq), V(bull) or
        V(list)).
    type: list
    elements: raw
  scan_count:
    description:
      - COUNT hint per SCAN call during discovery (keys the server examines per call).
      - A SCAN call over 10000 keys with a pattern takes the server a few milliseconds; a
        smaller hint costs a round trip per step, which on a keyspace of millions dominates.
    type: int
    default: 10000
  stuck_after:
    description:
      - Active jobs of BullMQ and Bull queues are checked for a worker's lock (the first 1000 of
        each queue). One without a lock is stuck (its worker died). One locked but processing for
        longer than this is reported as running long; V(0s) turns that off.
      - A duration such as C(10m) or C(1h); a bare number is seconds.
    type: str
    default: '0s'
  failed_sample:
    description:
      - For BullMQ and Bull queues, return this many of the most recent failed jobs with their
        C(failedReason) (runbook 001 5.5 - identify the error pattern).
    type: int
    default: 0
  thresholds:
    description:
      - Alert thresholds for RV(findings); defaults are runbook 001's (7.3 and 7.1).
    type: dict
    default: {}
    suboptions:
      waiting_warning:
        description: Waiting jobs above which a queue is a warning.
        type: int
        default: 100
      waiting_critical:
        description: Waiting jobs above which a queue is critical.
        type: int
        default: 500
      failure_ratio_warning:
        description: Failed share of finished jobs above which a queue is a warning.
        type: float
        default: 0.05
requirements:
  - redis (Python library)
seealso:
  - module: oncall.runbooks.redis_queue
'''

EXAMPLES = r'''
- name: Every queue under the bull prefix
  oncall.runbooks.redis_queue_info:
    login_host: 127.0.0.1
  register: queue_stats

- name: Queues above the runbook's backlog threshold
  ansible.builtin.debug:
    msg: "{{ queue_stats.queues | selectattr('counts.wait', 'gt', 100) | map(attribute='name') }}"

- name: Plain list queues, read by name
  oncall.runbooks.redis_queue_info:
    queues:
      - {name: "festivals:queue:critical", flavor: list}
      - {name: "festivals:queue:default", flavor: list}
'''

RETURN = r'''
queues:
  description: One entry per queue, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Queue name (or list key).
      type: str
    flavor:
      description: V(bullmq), V(bull) or V(list).
      type: str
    exists:
      description: Whether any key of the queue exists.
      type: bool
    paused:
      description: Whether the queue is paused.
      type: bool
    counts:
      description: Jobs per state.
      type: dict
    total:
      description: Sum of the counts.
      type: int
    stuck:
      description: Ids of active jobs that no worker holds (no lock), at most 100.
      type: list
      elements: str
    stuck_count:
      description: How many active jobs no worker holds.
      type: int
    running_long:
      description: Ids of locked active jobs processing for longer than O(stuck_after), at most 100.
      type: list
      elements: str
    failed_sample:
      description: With O(failed_sample), the most recent failed jobs (C(id), C(reason), C(finished_on), C(attempts)).
      type: list
      elements: dict
  sample:
    - name: ai-analysis
      flavor: bullmq
      exists: true
      paused: false
      counts: {wait: 25, paused: 0, active: 0, delayed: 5, prioritized: 0, waiting_children: 0,
               completed: 40, failed: 30}
      total: 100
      stuck: []
      stuck_count: 0
      running_long: []
findings:
  description:
    - Each queue's waiting jobs and failure ratio against O(thresholds), and paused queues, with
      a verdict (V(ok), V(warning), V(critical)).
    - A BullMQ or Bull queue named in O(queues) that has no key in Redis (a misspelt name) is one
      V(warning) finding C(<name> missing) with a C(reason), instead of figures that read V(ok).
      An empty plain list has no key either, so lists are never reported missing.
  returned: always
  type: list
  elements: dict
  sample:
    - {object: ai-analysis waiting, figure: 25, threshold: "> 100 warning, > 500 critical", verdict: ok}
totals:
  description: Jobs per state summed over every queue returned.
  returned: always
  type: dict
  sample: {wait: 180, failed: 60}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import check_thresholds

from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import queues as rq
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import stuck as rs


def targets(client, params):
    if not params['queues']:
        return rq.discover(client, params['prefix'], params['flavor'], params['scan_count'])
    out = []
    for entry in rq.queue_entries(params['queues'], params['flavor'], ('any', 'bullmq', 'bull', 'list')):
        name, flavor = entry['name'], entry['flavor']
        if flavor == 'any':
            # the queue's own keys tell (a few EXISTS), not a SCAN of the keyspace per name
            flavor = rq.detect_flavor(client, params['prefix'], name) or 'bullmq'
        out.append((name, flavor))
    return out


def main():
    argument_spec = rconn.redis_argument_spec()
    argument_spec.update(
        prefix=dict(type='str', default='bull'),
        flavor=dict(type='str', default='any', choices=['any', 'bullmq', 'bull']),
        queues=dict(type='list', elements='raw'),
        scan_count=dict(type='int', default=10000),
        stuck_after=dict(type='str', default='0s'),
        failed_sample=dict(type='int', default=0),
        thresholds=dict(type='dict', default={}, options=dict(
            waiting_warning=dict(type='int', default=100),
            waiting_critical=dict(type='int', default=500),
            failure_ratio_warning=dict(type='float', default=0.05),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, describe=lambda exc: rconn.failure(exc, module.params), requires=['redis'])


def run(module):
    try:
        long_ms = int(parse_duration(module.params['stuck_after'], 'stuck_after') * 1000)
        t = module.params['thresholds'] or {}
        # thresholds that could never fire are refused before Redis is asked anything
        check_thresholds('thresholds.waiting', t.get('waiting_warning'), t.get('waiting_critical'))
        check_thresholds('thresholds.failure_ratio', t.get('failure_ratio_warning'), None, maximum=1.0)
    except (DurationError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    try:
        client = rconn.connect(module.params)
        queues, totals = [], {}
        now = rq.now_ms()
        for name, flavor in targets(client, module.params):
            obs = rq.make_queue(flavor, client, name, prefix=module.params['prefix']).observe()
            entry = dict(name=name, flavor=flavor, exists=obs.exists, paused=obs.paused,
                         counts=obs.counts, total=sum(obs.counts.values()))
            if flavor != 'list' and obs.counts.get('active'):
                stuck, slow = rs.active_jobs(client, module.params['prefix'], name, now, long_ms)
                entry.update(stuck=stuck[:100], stuck_count=len(stuck), running_long=slow[:100])
            elif flavor != 'list':
                entry.update(stuck=[], stuck_count=0, running_long=[])
            if flavor != 'list' and module.params['failed_sample'] and obs.counts.get('failed'):
                entry['failed_sample'] = rs.failed_sample(client, module.params['prefix'], name,
                                                          module.params['failed_sample'])
            queues.append(entry)
            for state, n in obs.counts.items():
                totals[state] = totals.get(state, 0) + n
    except (rq.QueueError, rconn.RedisConnectionError) as exc:
        module.fail_json(msg=str(exc))
    except rconn.redis_exc.RedisError as exc:
        module.fail_json(msg=rconn.describe_error(exc, module.params))
    found = rq.findings(queues, **(module.params['thresholds'] or {}))
    for entry in queues:
        if entry.get('stuck_count') or entry.get('running_long'):
            found.append({'object': '%s stuck active jobs' % entry['name'], 'figure': entry['stuck_count'],
                          'threshold': 'an active job must be locked by a live worker',
                          'verdict': 'warning' if entry['stuck_count'] or entry['running_long'] else 'ok',
                          'running_long': len(entry['running_long'])})
    return dict(changed=False, queues=queues, totals=totals, findings=found)


if __name__ == '__main__':
    main()
