#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: redis_cluster
short_description: Redis Cluster state as data, and a failover to an in-sync replica
version_added: 0.1.0
description:
  - The runbook's "Redis Cluster Failures" (000) steps 1 and 2. Always returns C(CLUSTER INFO)
    and every node of C(CLUSTER NODES) with its role, flags, slots and, for a replica, whether it
    is connected to its primary and how many bytes it is behind, plus findings with verdicts.
  - With O(promote) (a replica) or O(failover_from) (a primary, whose in-sync replica with the
    most data is chosen), sends C(CLUSTER FAILOVER) to the replica and waits until it is primary
    and the cluster is C(ok) again. The replica must be connected and in sync; the failover
    itself lets it catch up with its primary before it takes over, so no write is lost.
  - Idempotent - a node that is already primary (O(promote)) or already a replica
    (O(failover_from)) means there is nothing to do.
  - On a standalone server it reports the replication role and never fails over.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.redis
  - oncall.runbooks.attributes.action_group_redis
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Returns the failover it would make (and refuses what it would refuse); sends nothing.
  diff_mode:
    support: full
    details: Shows the role of the replica and of its primary before and after.
  idempotent:
    support: full
    details: A replica already promoted is a primary; a second run plans no failover.
options:
  promote:
    description: The replica to make primary, as C(host:port) (as C(CLUSTER NODES) lists it) or node id.
    type: str
  failover_from:
    description:
      - A primary (C(host:port) or node id) to hand over to its in-sync replica with the highest
        replication offset.
      - Mutually exclusive with O(promote).
    type: str
  force:
    description:
      - Send C(CLUSTER FAILOVER FORCE), for a primary that cannot be reached. The replica may not
        have every write. Needs O(confirm=true).
    type: bool
    default: false
  confirm:
    description: Must be V(true) with O(force).
    type: bool
    default: false
  timeout:
    description:
      - How long to wait for the replica to become primary and the cluster to be C(ok), from
        C(1s) to C(1h).
      - A duration such as C(30s) or C(15m); a bare number is seconds.
    type: str
    default: 30s
requirements:
  - redis (Python library)
notes:
  - The node addresses the cluster announces must be reachable from the host that runs the module.
seealso:
  - module: oncall.runbooks.redis_cache
'''

EXAMPLES = r'''
- name: Cluster state
  oncall.runbooks.redis_cluster:
    login_host: redis-0.internal
  register: cluster

- name: Hand a degraded primary over to its replica
  oncall.runbooks.redis_cluster:
    login_host: redis-0.internal
    failover_from: 10.0.0.12:6379

- name: Promote one replica (its primary is unreachable; may lose writes)
  oncall.runbooks.redis_cluster:
    login_host: redis-0.internal
    promote: 10.0.0.15:6379
    force: true
    confirm: true
'''

RETURN = r'''
enabled:
  description: Whether the server runs in cluster mode.
  returned: always
  type: bool
  sample: true
info:
  description: C(CLUSTER INFO) as a dict (after any failover).
  returned: always
  type: dict
  sample: {cluster_state: ok, cluster_slots_ok: 16384, cluster_known_nodes: 6, cluster_size: 3}
nodes:
  description:
    - Every node with C(name), C(id), C(role), C(flags), C(slots), C(failed), C(reachable).
    - Replicas also have C(primary), C(link_up), C(in_sync) and C(lag_bytes).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: "127.0.0.1:7000", role: primary, slots: 5461, replicas: ["127.0.0.1:7004"], failed: false}
    - {name: "127.0.0.1:7004", role: replica, primary: "127.0.0.1:7000", in_sync: true, lag_bytes: 0}
findings:
  description: Cluster state, slots, failed nodes and replicas in sync, with verdicts.
  returned: always
  type: list
  elements: dict
  sample:
    - {object: cluster_state, figure: ok, threshold: ok, verdict: ok}
plan:
  description: The failover decided on, if any.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: failover, object: "127.0.0.1:7004", reason: "127.0.0.1:7004 becomes primary in place of 127.0.0.1:7000", count: 1}
actions:
  description: The failover made, with the seconds it took; empty in check mode.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: failover, object: "127.0.0.1:7004", seconds: 1.2}
msg:
  description: One-line summary.
  returned: always
  type: str
  sample: nothing to do
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import ansible_module
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import summarize
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import cluster as rcl
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn


def roles(state, names):
    by_name = dict((n['name'], n['role']) for n in state['nodes'])
    return dict((name, by_name.get(name)) for name in names if name)


def run(module):
    params = module.params
    rcl.validate(params)
    state = rcl.observe(params)
    actions = rcl.plan(state, params)
    result = dict(changed=bool(actions), plan=[a.to_dict() for a in actions], actions=[],
                  msg=summarize(actions))
    touched = [x for a in actions for x in (a.params['replica'], a.params['primary'])]
    before = roles(state, touched)
    if actions and not module.check_mode:
        for action in actions:
            seconds = rcl.apply(params, action, params['timeout_s'])
            result['actions'].append(dict(action=action.kind, kind=action.kind, object=action.object, count=1,
                                          reason=action.reason,
                                          primary=action.params['primary'], seconds=seconds))
        state = rcl.observe(params)
    result.update(enabled=state['enabled'], info=state['info'], nodes=state['nodes'],
                  findings=rcl.findings(state))
    if module._diff:
        after = roles(state, touched)
        if module.check_mode:
            after = dict((k, 'replica' if v == 'primary' else 'primary') for k, v in before.items())
        result['diff'] = dict(before=before, after=after)
    return result


def main():
    argument_spec = rconn.redis_argument_spec()
    argument_spec.update(
        promote=dict(type='str'),
        failover_from=dict(type='str'),
        force=dict(type='bool', default=False),
        confirm=dict(type='bool', default=False),
        timeout=dict(type='str', default='30s'),
    )
    module = ansible_module(AnsibleModule, argument_spec=argument_spec, supports_check_mode=True,
                            mutually_exclusive=[('promote', 'failover_from')])
    runner.run(module, run, describe=lambda exc: rconn.failure(exc, module.params), requires=['redis'])


if __name__ == '__main__':
    main()
