#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: rds_recovery
short_description: RDS status, cluster failover to an available reader, start and reboot, planned first
version_added: 0.1.0
description:
  - Runbook 002 "Database Issues" steps 3 and 4 (C(aws rds describe-db-instances),
    C(aws rds reboot-db-instance), C(aws rds failover-db-cluster)) as observe, plan, apply.
  - Reads the cluster (its members and which is the writer) and the instances, gives each a
    finding (V(ok) when C(available)), and plans only what the state calls for - a failover when
    the writer is not available and O(failover=true) (to O(target_db_instance_identifier) or
    the first available reader), a start of each stopped instance with O(start_stopped=true).
  - A reboot cannot be inferred from the API (an instance whose database does not answer still
    reads C(available)), so it is planned only with O(reboot=true), for O(reboot_instances).
  - Check mode returns the plan and calls nothing but C(Describe*).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.aws
  - oncall.runbooks.attributes.action_group_aws
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Only describes; returns the plan.
  diff_mode:
    support: full
    details: Shows the writer and each instance's status before and after.
  idempotent:
    support: partial
    details: Failover and start are only planned for a cluster or instance that needs them; O(reboot) reboots on every run.
options:
  db_cluster_identifier:
    description: The Aurora/RDS cluster (C(festivals-cluster)).
    type: str
  db_instance_identifier:
    description: A DB instance outside (or inside) the cluster (C(festivals-production)).
    type: str
  failover:
    description: Fail the cluster over when its writer is not available.
    type: bool
    default: false
  target_db_instance_identifier:
    description: The reader to promote; the first available reader (by name) when unset.
    type: str
  start_stopped:
    description: Start instances in scope that are C(stopped).
    type: bool
    default: false
  reboot:
    description:
      - Reboot O(reboot_instances) (those that are available). Not inferred from the state, so
        not idempotent - a playbook sets it only when its own check (the database does not
        answer) calls for it.
    type: bool
    default: false
  reboot_instances:
    description: Instances to reboot with O(reboot); O(db_instance_identifier) when empty.
    type: list
    elements: str
    default: []
  reboot_force_failover:
    description: Reboot a Multi-AZ instance with C(ForceFailover) (to its standby).
    type: bool
    default: false
  wait:
    description: Wait until the instances acted on are available again.
    type: bool
    default: true
  wait_timeout:
    description:
      - Longest wait, a duration such as V(15m) or V(1h); a bare number is seconds (1s to 6h).
    type: str
    default: 15m
requirements:
  - boto3 (Python library)
seealso:
  - name: amazon.aws.rds_instance_info
    description: Read RDS instances (the amazon.aws collection's module).
    link: https://docs.ansible.com/ansible/latest/collections/amazon/aws/rds_instance_info_module.html
  - name: amazon.aws.rds_cluster_info
    description: Read RDS clusters (the amazon.aws collection's module).
    link: https://docs.ansible.com/ansible/latest/collections/amazon/aws/rds_cluster_info_module.html
'''

EXAMPLES = r'''
- name: The cluster's writer is down - fail over to a reader, start what was stopped
  oncall.runbooks.rds_recovery:
    region: eu-west-1
    db_cluster_identifier: festivals-cluster
    failover: true
    start_stopped: true

- name: Diagnosis only
  oncall.runbooks.rds_recovery:
    region: eu-west-1
    db_instance_identifier: festivals-production
  check_mode: true
  register: rds
'''

RETURN = r'''
cluster:
  description: The cluster (C(id), C(status), C(writer), C(members)) after the run; empty without O(db_cluster_identifier).
  returned: always
  type: dict
  sample: {id: festivals-cluster, status: available, writer: festivals-2, members: [festivals-1, festivals-2]}
instances:
  description: Each instance in scope after the run, with C(id), C(status), C(role) (writer, reader, instance), C(endpoint).
  returned: always
  type: list
  elements: dict
findings:
  description: The state as diagnosed (before any action), each with a verdict.
  returned: always
  type: list
  elements: dict
  sample: [{object: cluster festivals-cluster writer, figure: festivals-1 stopped, threshold: available, verdict: critical}]
plan:
  description: Actions decided (C(operation) failover, start or reboot, C(object), C(reason)).
  returned: always
  type: list
  elements: dict
done:
  description: Actions carried out (empty in check mode).
  returned: always
  type: list
  elements: dict
skipped_items:
  description: Actions that the state called for but could not be planned, with C(why).
  returned: always
  type: list
  elements: dict
msg:
  description: One-line summary.
  returned: always
  type: str
actions:
  description:
    - What was done, in order, as plan items whose C(count) is what was really handled (docs/plan.md);
      empty in check mode.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.aws import common as aws
from ansible_collections.oncall.runbooks.plugins.module_utils.aws import rds as rdsr
from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import format_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import (
    OptionError, ansible_module, duration)

MAX_WAIT = 6 * 3600


def _view(obs):
    return {'cluster': obs['cluster'] or {},
            'instances': sorted(obs['instances'].values(), key=lambda i: i['id'])}


def main():
    argument_spec = aws.aws_argument_spec()
    argument_spec.update(
        db_cluster_identifier=dict(type='str'),
        db_instance_identifier=dict(type='str'),
        failover=dict(type='bool', default=False),
        target_db_instance_identifier=dict(type='str'),
        start_stopped=dict(type='bool', default=False),
        reboot=dict(type='bool', default=False),
        reboot_instances=dict(type='list', elements='str', default=[]),
        reboot_force_failover=dict(type='bool', default=False),
        wait=dict(type='bool', default=True),
        wait_timeout=dict(type='str', default='15m'),
    )
    module = ansible_module(AnsibleModule, argument_spec=argument_spec, supports_check_mode=True,
                            required_one_of=[('db_cluster_identifier', 'db_instance_identifier')])
    runner.run(module, run, requires=['boto3'])


def run(module):
    p = dict(module.params)
    try:
        aws.validate(p)
        for option in ('db_cluster_identifier', 'db_instance_identifier', 'target_db_instance_identifier'):
            if p[option] is not None:
                aws.identifier(option, p[option])
        for i, ident in enumerate(p['reboot_instances']):
            aws.identifier('reboot_instances[%d]' % i, ident)
        wait_seconds = duration('wait_timeout', p['wait_timeout'], low=1, high=MAX_WAIT)
    except aws.AwsError as exc:
        module.fail_json(msg=str(exc))
    except OptionError as exc:
        module.fail_json(msg=str(exc))
    p['reboot_instances'] = p['reboot_instances'] or ([p['db_instance_identifier']] if p['db_instance_identifier'] else [])
    if p['reboot'] and not p['reboot_instances']:
        module.fail_json(msg='reboot needs reboot_instances or db_instance_identifier: name the instance to reboot')
    try:
        rds = aws.client(p, 'rds')
        obs = rdsr.observe(rds, p['db_instance_identifier'], p['db_cluster_identifier'])
        items, not_planned = rdsr.plan(obs, p)
        result = dict(changed=bool(items), plan=items, done=[], skipped_items=not_planned,
                      findings=rdsr.findings(obs), **_view(obs))
        before = _view(obs)
        if items and not module.check_mode:
            result['done'] = rdsr.apply(rds, items)
            acted = [i['target'] if i['operation'] == 'failover' else i['object'] for i in items]
            if p['wait']:
                obs, ok = rdsr.wait_available(rds, p['db_instance_identifier'], p['db_cluster_identifier'],
                                              acted, wait_seconds)
                if not ok:
                    result.update(_view(obs), actions=result['done'])
                    module.fail_json(msg='%s not available within %s after %s'
                                     % (', '.join(acted), format_duration(wait_seconds),
                                        ', '.join('%s %s' % (i['operation'], i['object']) for i in items)), **result)
            else:
                obs = rdsr.observe(rds, p['db_instance_identifier'], p['db_cluster_identifier'])
            result.update(_view(obs))
    except aws.AwsError as exc:
        module.fail_json(msg=str(exc))
    if module._diff:
        result['diff'] = dict(before=before, after=_view(obs))
    result['actions'] = result['done']  # done: the 0.0 name of actions, kept while playbooks read it
    result['msg'] = '%d planned, %d done, %d not possible' % (len(items), len(result['done']), len(not_planned))
    return result


if __name__ == '__main__':
    main()
