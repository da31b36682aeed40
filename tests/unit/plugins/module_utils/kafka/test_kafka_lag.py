# -*- coding: utf-8 -*-
"""Kafka consumer lag (runbook 003) computed from RECORDED Kafka admin API answers
(fixtures/kafka_admin_answers.json beside this file): no Kafka broker is available on this machine,
so the admin calls themselves are not exercised here, only what is done with their answers."""

from __future__ import annotations

import json
import os

from ansible_collections.oncall.runbooks.plugins.module_utils.kafka import lag as kl

HERE = os.path.dirname(os.path.abspath(__file__))


def recorded():
    with open(os.path.join(HERE, 'fixtures', 'kafka_admin_answers.json')) as handle:
        data = json.load(handle)
    committed = dict(((c['topic'], c['partition']), c['offset']) for c in data['committed'])
    ends = dict(((e['topic'], e['partition']), e['offset']) for e in data['end_offsets'])
    return data, committed, ends


def test_lag_per_partition_topic_and_group():
    data, committed, ends = recorded()
    res = kl.lag(data['group'], committed, ends, **data['describe'])
    by_part = dict(((p['topic'], p['partition']), p['lag']) for p in res['partitions'])
    assert by_part == {('events', 0): 10, ('events', 1): 11210, ('events', 2): 0,
                       ('notifications', 0): 0, ('notifications', 1): 40}
    assert res['total_lag'] == 11260 and res['max_partition_lag'] == 11210
    assert res['partitions_without_commit'] == 1
    assert [(t['topic'], t['lag'], t['max_partition_lag']) for t in res['topics']] == [
        ('events', 11220, 11210), ('notifications', 40, 40)]


def test_verdicts_against_thresholds_and_membership():
    data, committed, ends = recorded()
    res = kl.lag(data['group'], committed, ends, **data['describe'])
    assert [f['verdict'] for f in kl.findings(res, 1000, 10000)] == ['critical', 'ok']
    assert [f['verdict'] for f in kl.findings(res, 10000, 20000)] == ['warning', 'ok']
    assert [f['verdict'] for f in kl.findings(res, 20000, 30000)] == ['ok', 'ok']
    empty = kl.lag(data['group'], committed, ends, state='Empty', members=0)
    assert kl.findings(empty, 20000, 30000)[1]['verdict'] == 'critical'


def test_a_partition_never_committed_counts_its_whole_log_and_a_consumer_ahead_counts_zero():
    res = kl.lag('g', {('t', 0): None, ('t', 1): 500}, {('t', 0): 70, ('t', 1): 400})
    assert [p['lag'] for p in res['partitions']] == [70, 0]
    assert res['state'] is None and len(kl.findings(res, 1, 2)) == 1
