# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kafka_consumer_lag_info: runbook 003 "Kafka Consumer Lag" - a consumer group's lag per
partition from the Kafka admin API (committed offsets) and the log end offsets.

The computation (``lag``) works on plain data - {(topic, partition): offset} - so that it is the
same for the live admin API (``collect``) and for recorded answers of it (the unit tests).
"""

from __future__ import annotations

import os
import re
import traceback

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import parse_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import verdict
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError
from ansible_collections.oncall.runbooks.plugins.module_utils.common.imports import import_without

KAFKA_IMP_ERR = None
try:
    # kafka-python loads botocore for AWS MSK IAM, which this module does not offer (SASL_MECHANISMS)
    import_without('kafka', ('botocore', 'boto3'))
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.errors import KafkaError
    HAS_KAFKA = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_KAFKA = False
    KAFKA_IMP_ERR = traceback.format_exc()


class LagError(OncallError):
    pass


SASL_MECHANISMS = ('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512')
SERVER = re.compile(r'(?P<host>[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>[0-9]{1,5})', re.ASCII)
GROUP = re.compile(r'[^\x00-\x1f\x7f]{1,255}')
MAX_LAG = 2 ** 63 - 1


def validate(params):
    """Every option, before any connection (one sentence naming the option)."""
    try:
        if not params['bootstrap_servers']:
            raise opt.OptionError('bootstrap_servers must list at least one broker as host:port')
        for i, server in enumerate(params['bootstrap_servers']):
            option = 'bootstrap_servers[%d]' % i
            opt.text(option, server, max_length=300, pattern=SERVER, what='a broker as host:port')
            opt.number(option + ' port', int(server.rsplit(':', 1)[1]), low=1, high=65535, integer=True)
        if not params['groups']:
            raise opt.OptionError('groups must list at least one consumer group')
        for i, group in enumerate(params['groups']):
            opt.text('groups[%d]' % i, group, max_length=255, pattern=GROUP, what='a consumer group id')
        for option in ('sasl_username', 'sasl_password'):
            if params.get(option) is not None:
                opt.text(option, params[option], max_length=1024)
        if params.get('ca_cert') is not None and not os.path.isfile(params['ca_cert']):
            raise opt.OptionError('ca_cert: no file at %s' % opt.shown(params['ca_cert'], 200))
        opt.duration('timeout', params['timeout'], low=1, high=3600)
        warning = opt.number('lag_warning', params['lag_warning'], low=1, high=MAX_LAG, integer=True)
        critical = opt.number('lag_critical', params['lag_critical'], low=1, high=MAX_LAG, integer=True)
        opt.ordered('lag_warning', warning, 'lag_critical', critical)
    except opt.OptionError as exc:
        raise LagError(str(exc))


def lag(group, committed, end_offsets, state=None, members=None):
    """Lag of one group. committed: {(topic, partition): offset, or None/-1 when the group has
    no committed offset there}; end_offsets: {(topic, partition): log end offset}."""
    partitions, topics = [], {}
    for (topic, part), end in sorted(end_offsets.items()):
        offset = committed.get((topic, part))
        no_commit = offset is None or offset < 0
        # without a commit the group would start from its reset policy; the whole log counts
        value = int(end) if no_commit else max(int(end) - int(offset), 0)
        partitions.append({'topic': topic, 'partition': part, 'committed': None if no_commit else int(offset),
                           'end_offset': int(end), 'lag': value})
        t = topics.setdefault(topic, {'topic': topic, 'lag': 0, 'partitions': 0, 'max_partition_lag': 0})
        t['lag'] += value
        t['partitions'] += 1
        t['max_partition_lag'] = max(t['max_partition_lag'], value)
    return {'group': group, 'state': state, 'members': members,
            'total_lag': sum(p['lag'] for p in partitions),
            'max_partition_lag': max([p['lag'] for p in partitions] or [0]),
            'partitions_without_commit': sum(1 for p in partitions if p['committed'] is None),
            'topics': sorted(topics.values(), key=lambda t: t['topic']), 'partitions': partitions}


def findings(result, warning, critical):
    out = [{'object': 'consumer group %s lag' % result['group'], 'figure': result['total_lag'],
            'threshold': '>= %s warning, >= %s critical' % (warning, critical),
            'verdict': verdict(result['total_lag'], warning, critical)}]
    if result['state'] is not None:
        stable = result['state'] == 'Stable' and (result['members'] or 0) > 0
        out.append({'object': 'consumer group %s members' % result['group'],
                    'figure': '%s member(s), %s' % (result['members'], result['state']),
                    'threshold': 'Stable with >= 1 member', 'verdict': 'ok' if stable else 'critical'})
    return out


def collect(admin, consumer, group):
    """The admin API's answers for one group, as plain data for lag()."""
    desc = admin.describe_consumer_groups([group])[0]
    state = getattr(desc, 'state', None)
    members = len(getattr(desc, 'members', []) or [])
    offsets = admin.list_consumer_group_offsets(group)
    committed = dict(((tp.topic, tp.partition), om.offset) for tp, om in offsets.items())
    if not offsets:
        return state, members, {}, {}
    # every partition of the topics the group consumes, committed or not
    tps = []
    for topic in sorted(set(tp.topic for tp in offsets)):
        for part in sorted(consumer.partitions_for_topic(topic) or []):
            tps.append(_tp(topic, part))
    ends = consumer.end_offsets(tps)
    return state, members, committed, dict(((tp.topic, tp.partition), off) for tp, off in ends.items())


def _tp(topic, part):
    from kafka.structs import TopicPartition
    return TopicPartition(topic, part)


def clients(params):
    timeout_ms = int(parse_duration(params['timeout'], 'timeout') * 1000)
    common = dict(bootstrap_servers=params['bootstrap_servers'], client_id='oncall.runbooks',
                  security_protocol=params['security_protocol'], request_timeout_ms=timeout_ms)
    if params.get('sasl_mechanism'):
        common.update(sasl_mechanism=params['sasl_mechanism'], sasl_plain_username=params.get('sasl_username'),
                      sasl_plain_password=params.get('sasl_password'))
    if params.get('ca_cert'):
        common['ssl_cafile'] = params['ca_cert']
    try:
        admin = KafkaAdminClient(**common)
        consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, **common)
    except KafkaError as exc:
        raise LagError('cannot reach Kafka at %s: %s' % (', '.join(params['bootstrap_servers']), exc))
    return admin, consumer
