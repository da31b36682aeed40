#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: kafka_consumer_lag_info
short_description: Consumer group lag per topic and partition from the Kafka admin API, with verdicts
version_added: 0.1.0
description:
  - Read-only. Runbook 003 "Kafka Consumer Lag" diagnosis - for each consumer group, its state
    and members (C(DescribeGroups)), its committed offsets (C(OffsetFetch)) and the log end
    offset of every partition of the topics it consumes (C(ListOffsets)); the lag of a
    partition is the end offset minus the committed offset (the whole log when the group has
    committed nothing there).
  - A finding per group for the total lag against O(lag_warning) and O(lag_critical), and one
    for its membership (a group with no member consumes nothing).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes
options:
  bootstrap_servers:
    description: Brokers to bootstrap from (C(kafka-1:9092)).
    type: list
    elements: str
    required: true
  groups:
    description: Consumer groups to measure.
    type: list
    elements: str
    required: true
  security_protocol:
    description: C(PLAINTEXT), C(SSL), C(SASL_PLAINTEXT) or C(SASL_SSL).
    type: str
    default: PLAINTEXT
    choices: [PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]
  sasl_mechanism:
    description: SASL mechanism; not set - no SASL.
    type: str
    choices: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  sasl_username:
    description: SASL user.
    type: str
  sasl_password:
    description: SASL password. Never logged, never returned.
    type: str
  ca_cert:
    description: CA bundle to verify the brokers' certificates with.
    type: path
  timeout:
    description:
      - How long to wait for each request, a duration such as V(30s) or V(2m); a bare number is
        seconds (1s to 1h).
    type: str
    default: 30s
  lag_warning:
    description: Total lag of a group (messages) that is a warning; below O(lag_critical).
    type: int
    default: 1000
  lag_critical:
    description: Total lag of a group that is critical.
    type: int
    default: 10000
requirements:
  - kafka-python (Python library)
'''

EXAMPLES = r'''
- name: Lag of the event workers
  oncall.runbooks.kafka_consumer_lag_info:
    bootstrap_servers: [kafka-1:9092, kafka-2:9092]
    groups: [holdwall-worker]
    lag_warning: 1000
    lag_critical: 10000
  register: kafka_lag
'''

RETURN = r'''
groups:
  description:
    - One entry per group - C(group), C(state), C(members), C(total_lag), C(max_partition_lag),
      C(partitions_without_commit), C(topics) (lag per topic) and C(partitions) (C(topic),
      C(partition), C(committed), C(end_offset), C(lag)).
  returned: always
  type: list
  elements: dict
  sample:
    - group: holdwall-worker
      state: Stable
      members: 3
      total_lag: 1520
      max_partition_lag: 1210
      partitions_without_commit: 0
      topics: [{topic: events, lag: 1520, partitions: 3, max_partition_lag: 1210}]
findings:
  description: Each group's lag and membership against their thresholds, with verdicts.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import ansible_module
from ansible_collections.oncall.runbooks.plugins.module_utils.kafka import lag as kl


def main():
    module = ansible_module(
        AnsibleModule,
        argument_spec=dict(
            bootstrap_servers=dict(type='list', elements='str', required=True),
            groups=dict(type='list', elements='str', required=True),
            security_protocol=dict(type='str', default='PLAINTEXT',
                                   choices=['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL']),
            sasl_mechanism=dict(type='str', choices=list(kl.SASL_MECHANISMS)),
            sasl_username=dict(type='str'),
            sasl_password=dict(type='str', no_log=True),
            ca_cert=dict(type='path'),
            timeout=dict(type='str', default='30s'),
            lag_warning=dict(type='int', default=1000),
            lag_critical=dict(type='int', default=10000),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run, requires=['kafka'])


def run(module):
    p = module.params
    try:
        kl.validate(p)
    except kl.LagError as exc:
        module.fail_json(msg=str(exc))
    groups, findings = [], []
    try:
        admin, consumer = kl.clients(p)
        try:
            for group in p['groups']:
                try:
                    state, members, committed, ends = kl.collect(admin, consumer, group)
                except kl.KafkaError as exc:
                    raise kl.LagError('cannot read consumer group %s: %s' % (group, exc))
                result = kl.lag(group, committed, ends, state, members)
                groups.append(result)
                findings += kl.findings(result, p['lag_warning'], p['lag_critical'])
        finally:
            consumer.close()
            admin.close()
    except kl.LagError as exc:
        module.fail_json(msg=str(exc))
    return dict(changed=False, groups=groups, findings=findings)


if __name__ == '__main__':
    main()
