# -*- coding: utf-8 -*-
"""The kill switch decision (module_utils/stripe/health.py) over every combination of the three
observers, and Stripe's errors as one sentence. The real servers run the same rows in
tests/integration/test_payment_failure_runbook.py."""

from __future__ import annotations

import itertools

import pytest

# helpers.paths puts the checkout's .collections on sys.path
import helpers.paths  # noqa: F401  pylint: disable=unused-import

from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import verdict  # noqa: E402
from ansible_collections.oncall.runbooks.plugins.module_utils.stripe import health  # noqa: E402

RATES = {'critical': (10, 5), 'ok': (10, 0), 'no orders': (0, 0), 'unread': None}
STATUSES = {'incident': {'indicator': 'major', 'description': 'x'}, 'none': {'indicator': 'none', 'description': ''},
            'unknown': None}
APIS = {'ok': (None, ''), 'unreachable': ('unreachable', 's'), '5xx': ('5xx', 's'), 'rate_limited': ('rate_limited', 's'),
        'auth': ('auth', 's'), 'error': ('error', 's')}


def observe(rate, status, api):
    r = (health.rate_observation('1h', None, None, 5, error='down') if RATES[rate] is None
         else health.rate_observation('1h', RATES[rate][0], RATES[rate][1], 5))
    s = health.status_observation('u', STATUSES[status], 'status page unreachable: connection refused')
    return r, s, health.api_observation(*APIS[api])


@pytest.mark.parametrize('rate,status,api', list(itertools.product(RATES, STATUSES, APIS)))
def test_off_only_on_impact_corroborated_by_stripe_trouble(rate, status, api):
    r, s, a = observe(rate, status, api)
    d = health.decide(r, s, a)
    trouble = status == 'incident' or api in ('unreachable', '5xx', 'rate_limited')
    healthy = status == 'none' and api == 'ok'
    assert d['switch_off'] is (rate == 'critical' and trouble)
    assert (d['action'] == 'off') is d['switch_off']
    assert (d['action'] == 'on') is healthy  # back on only when both Stripe observers are healthy
    assert d['verdict'] in ('ok', 'warning', 'critical', 'unknown')
    assert (d['verdict'] == 'critical') is d['switch_off']
    if rate in ('no orders', 'unread') or (not trouble and not healthy):
        assert d['verdict'] == 'unknown'  # an observer could not look: never more than unknown
    assert d['action'] != 'on' or health.decide(r, s, a, database_ok=False)['action'] == 'none'


def test_the_failure_rate_follows_the_collections_one_threshold_rule():
    for failed in range(0, 11):
        r = health.rate_observation('1h', 20, failed, 25)
        assert r['state'] == verdict(100.0 * failed / 20, None, 25)
    assert health.rate_observation('1h', 3, 1, 5)['finding']['figure'] == '33.33% (1 of 3 orders failed)'


@pytest.mark.parametrize('status,body,state', [
    (200, '{"status":{"indicator":"none","description":"All Systems Operational"}}', 'none'),
    (200, '{"status":{"indicator":"minor"}}', 'incident'),
    (200, '{"status":{"indicator":"major"}}', 'incident'),
    (200, '<html>', 'unknown'),
    (200, '{"status":{"indicator":"purple"}}', 'unknown'),
    (200, '[]', 'unknown'),
    (503, '{"status":{"indicator":"none"}}', 'unknown'),
])
def test_status_page_answers(status, body, state):
    seen, error = health.parse_status_page(status, body)
    obs = health.status_observation('u', seen, error)
    assert obs['state'] == state and '\n' not in obs['finding']['figure']


def test_stripe_errors_are_one_sentence_without_support_text_or_key():
    import stripe
    base = 'https://api.stripe.com'
    conn = stripe.APIConnectionError('Unexpected error communicating with Stripe.  If this problem persists,\n'
                                     'let us know at support@stripe.com.\n\n(Network error: ConnectionError: '
                                     '[Errno 111] Connection refused)')
    assert health.stripe_failure(stripe, conn, base, 3, '...abcd') == (
        'unreachable', 'Stripe API unreachable: no answer from https://api.stripe.com after 3 retries (connection refused)')
    err = stripe.APIError('x', http_body=None, http_status=502, json_body={'error': {
        'message': 'An unknown error occurred.\nRequest req_1 - contact support@stripe.com.'}})
    assert health.stripe_failure(stripe, err, base, 1, '...abcd') == (
        '5xx', 'Stripe API 5xx: https://api.stripe.com answered HTTP 502 after 1 retry (An unknown error occurred)')
    auth = stripe.AuthenticationError('Invalid API Key provided: sk_test_****abcd', http_status=401)
    kind, sentence = health.stripe_failure(stripe, auth, base, 3, '...abcd')
    assert kind == 'auth' and sentence == 'Stripe API key refused: https://api.stripe.com rejected the API key ending in ...abcd'
