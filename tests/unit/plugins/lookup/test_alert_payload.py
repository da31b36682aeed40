# -*- coding: utf-8 -*-
"""The oncall.runbooks.alert_payload lookup's validation, and its !unsafe extra-vars document
loaded back by Ansible's own YAML loader (every string untrusted, every value exact)."""

from __future__ import annotations

import pytest

from ansible.parsing.utils.yaml import from_yaml
from ansible.template import is_trusted_as_template, trust_as_template

from ansible_collections.oncall.runbooks.plugins.lookup.alert_payload import alert_payload

GOOD = {'status': 'firing',
        'labels': {'alertname': 'QueueBacklog', 'queue': 'ai-analysis', 'instance': '10.0.0.5:9100',
                   'shard': '123', 'canary': 'true', 'at': '2026-11-25'},
        'annotations': {'summary': "{{ lookup('pipe', 'id') }}", 'description': "line\n\t'\"#: {% raw %} \u2028 \u00e9 \u2713"},
        'startsAt': '2026-11-25T00:00:00.123Z', 'endsAt': '0001-01-01T00:00:00Z', 'fingerprint': 'f0',
        'generatorURL': 'http://prometheus.invalid/graph?g0.expr=up', 'extra': {'dropped': True}}


def walk_strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)
    elif isinstance(value, str):
        yield value


def test_good_alert_is_returned_as_untrusted_data_and_round_trips_as_unsafe():
    # what ansible-playbook -e / -e @file gives: every string trusted as a template
    trusted = from_yaml(trust_as_template(__import__('json').dumps({'oncall_alert': GOOD})))
    assert all(is_trusted_as_template(s) for s in walk_strings(trusted))
    out = alert_payload(trusted, ['oncall_alert', 'ansible_eda.event.alert'])
    assert out['error'] == '' and out['source'] == 'oncall_alert' and out['alertname'] == 'QueueBacklog'
    expected = {k: v for k, v in GOOD.items() if k != 'extra'}
    assert out['alert'] == expected
    assert not any(is_trusted_as_template(s) for s in walk_strings(out))
    # the document the runbook loads with -e @file, through Ansible's loader as a trusted file
    loaded = from_yaml(trust_as_template(out['extra_vars']))
    assert loaded == {'oncall_alert': expected}
    strings = list(walk_strings(loaded))
    assert strings and not any(is_trusted_as_template(s) for s in strings)


def test_reads_the_rulebook_event_when_no_oncall_alert():
    out = alert_payload({'ansible_eda': {'event': {'alert': {'labels': {'alertname': 'X'}}}}},
                        ['oncall_alert', 'ansible_eda.event.alert'])
    assert (out['error'], out['source'], out['status']) == ('', 'ansible_eda.event.alert', 'firing')


@pytest.mark.parametrize('alert,why', [
    (None, 'no alert was given (oncall_alert or ansible_eda.event.alert)'),
    ('{{ 7*7 }}', 'the alert is not a mapping'),
    ({'labels': {}}, 'no alertname label'),
    ({'labels': ['a']}, 'labels is not a mapping'),
    ({'labels': {'alertname': '{{ 7*7 }}'}}, 'alertname "{{ 7*7 }}" is not an alert name'),
    ({'labels': {'alertname': 'A' * 129}}, 'is not an alert name'),
    ({'labels': {'alertname': 'A', 'queue': '-x'}}, 'label queue value "-x" is not a name or number'),
    ({'labels': {'alertname': 'A', 'queue': '../etc'}}, 'label queue value'),
    ({'labels': {'alertname': 'A', 'queue': 'a b'}}, 'label queue value'),
    ({'labels': {'alertname': 'A', 'queue': 'a/b'}}, 'label queue value'),
    ({'labels': {'alertname': 'A', 'queue': 'q' * 129}}, 'label queue value'),
    ({'labels': {'alertname': 'A', 'queue': 3}}, 'label queue is not a string'),
    ({'labels': {'alertname': 'A', 'bad-name': 'x'}}, 'label name "bad-name" is not a label name'),
    ({'labels': {'alertname': 'A', 'q': '\ud800'}}, 'label q is not UTF-8 text'),
    ({'labels': {'alertname': 'A'}, 'annotations': {'s': 1}}, 'annotation s is not a string'),
    ({'labels': {'alertname': 'A'}, 'annotations': {'s': '\ud800'}}, 'annotation s is not UTF-8 text'),
    ({'labels': {'alertname': 'A'}, 'annotations': {'s': 'x' * 65537}}, 'annotation s is 65537 characters long'),
    ({'labels': {'alertname': 'A'}, 'status': 'pending'}, 'status "pending" is neither firing nor resolved'),
    ({'labels': {'alertname': 'A'}, 'startsAt': 'yesterday'}, 'startsAt "yesterday" is not an RFC 3339 time'),
    ({'labels': {'alertname': 'A'}, 'fingerprint': '--x'}, 'fingerprint "--x" is not letters and digits'),
    ({'labels': dict({'alertname': 'A'}, **{'l%d' % i: 'v' for i in range(64)})}, 'labels has 65 entries'),
])
def test_refuses_with_one_sentence(alert, why):
    variables = {} if alert is None else {'oncall_alert': alert}
    out = alert_payload(variables, ['oncall_alert', 'ansible_eda.event.alert'])
    assert out['error'].startswith('alert refused: ') and out['error'].endswith('; nothing was run'), out['error']
    assert why in out['error'], out['error']
    assert '\n' not in out['error'] and out['alert'] == {} and out['extra_vars'] == ''
