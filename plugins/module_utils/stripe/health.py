# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Payments health: the three observers of runbooks 002/004 and the kill-switch decision.

Observers, each of which may fail on its own:

* the application's own payment failure rate over a window, read from the orders table
  (customer impact): ``critical`` at or past its threshold (common/findings.py's one rule),
  ``ok`` below it, ``unknown`` when PostgreSQL could not be read or the window holds no order;
* Stripe's status page (statuspage.io JSON): ``incident`` when its indicator is anything but
  ``none``, ``none``, or ``unknown`` when it did not answer JSON with an indicator;
* Stripe's API, as the reconciliation used it: ``failing`` (unreachable, 5xx or 429 after the
  retries), ``ok``, or ``unknown`` (the key was refused, or no call was made).

The decision (roles/payments/README.md, "Decision table"): switch payments off only on
customer impact corroborated by Stripe trouble. One observer alone never switches anything.
"""

from __future__ import annotations

import json
import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import finding, verdict

STATUS_INDICATORS = ('none', 'minor', 'major', 'critical', 'maintenance')


def _one_line(text, limit=200):
    text = re.sub(r'\s+', ' ', str(text or '')).strip()
    return text if len(text) <= limit else text[:limit - 3].rstrip() + '...'


def _network_cause(message):
    """The useful part of a network error: 'connection refused', 'timed out', a DNS failure."""
    low = message.lower()
    for needle, cause in (('connection refused', 'connection refused'),
                          ('timed out', 'timed out'), ('timeout', 'timed out'),
                          ('name or service not known', 'host name not found'),
                          ('nodename nor servname', 'host name not found'),
                          ('temporary failure in name resolution', 'host name not found'),
                          ('certificate verify failed', 'TLS certificate not trusted'),
                          ('connection reset', 'connection reset'),
                          ('remote end closed', 'connection closed without an answer'),
                          ('remotedisconnected', 'connection closed without an answer'),
                          ('network is unreachable', 'network unreachable'),
                          ('no route to host', 'no route to host')):
        if needle in low:
            return cause
    return 'network error'


def _first_sentence(text, limit=120):
    line = str(text or '').strip().splitlines()[0] if str(text or '').strip() else ''
    sentence = re.split(r'(?<=[.!?])\s', line, maxsplit=1)[0].rstrip('.')
    return _one_line(sentence, limit)


LABELS = {'unreachable': 'Stripe API unreachable', '5xx': 'Stripe API 5xx', 'rate_limited': 'Stripe API rate limited',
          'auth': 'Stripe API key refused', 'error': 'Stripe API error'}


def stripe_failure(stripe, exc, api_base, retries, key_hint):
    """(kind, sentence) for a Stripe SDK error: one line, without the SDK's support text, request
    ids or the key (only its last four characters, key_hint).

    kind: 'unreachable', '5xx' or 'rate_limited' (Stripe trouble), 'auth' (our key was refused),
    'error' (any other answer, such as a 4xx to a request it did not like)."""
    status = getattr(exc, 'http_status', None)
    tries = '%d %s' % (retries, 'retry' if retries == 1 else 'retries')
    if isinstance(exc, stripe.AuthenticationError) or status in (401, 403):
        kind, detail = 'auth', '%s rejected the API key ending in %s' % (api_base, key_hint)
    elif isinstance(exc, stripe.APIConnectionError):
        kind, detail = 'unreachable', 'no answer from %s after %s (%s)' % (api_base, tries, _network_cause(str(exc)))
    else:
        # Stripe's own message of an API error, first sentence only; the SDK's generic text is not used.
        body = getattr(exc, 'json_body', None)
        message = ''
        if isinstance(body, dict) and isinstance(body.get('error'), dict):
            message = _first_sentence(body['error'].get('message'))
        said = (' (%s)' % message) if message else ''
        if status == 429:
            kind, detail = 'rate_limited', '%s answered HTTP 429 after %s%s' % (api_base, tries, said)
        elif status is not None and status >= 500:
            kind, detail = '5xx', '%s answered HTTP %s after %s%s' % (api_base, status, tries, said)
        elif status is None:
            kind, detail = 'error', '%s failed (%s)' % (api_base, message or exc.__class__.__name__)
        else:
            kind, detail = 'error', '%s answered HTTP %s%s' % (api_base, status, said)
    return kind, '%s: %s' % (LABELS[kind], detail)


def api_observation(kind, sentence):
    """The Stripe API as an observer: state (ok, failing, unknown) and its finding."""
    if kind is None:
        return {'state': 'ok', 'kind': 'ok', 'error': '',
                'finding': finding('Stripe API', 'answered', 'answers', 'ok')}
    state = 'failing' if kind in ('unreachable', '5xx', 'rate_limited') else 'unknown'
    return {'state': state, 'kind': kind, 'error': sentence,
            'finding': finding('Stripe API', sentence, 'answers', 'critical')}


def parse_status_page(status, body):
    """The status page's answer (HTTP status, body text) as an observation."""
    if status != 200:
        return None, 'status page answered HTTP %s' % status
    try:
        data = json.loads(body)
    except ValueError:
        return None, 'status page did not answer JSON'
    indicator = data.get('status', {}).get('indicator') if isinstance(data, dict) and isinstance(
        data.get('status'), dict) else None
    if not isinstance(indicator, str) or indicator not in STATUS_INDICATORS:
        return None, 'status page has no known status.indicator (%s)' % _one_line(repr(indicator), 40)
    return {'indicator': indicator, 'description': _one_line(data['status'].get('description'), 120)}, ''


def read_status_page(url, timeout=10, validate_certs=True):
    """Fetch and read the status page; never raises for what the page or the network does."""
    from urllib.error import HTTPError, URLError
    from ansible.module_utils.urls import open_url
    from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import UrlError, check_http_url
    status, body = None, ''
    try:
        check_http_url(url, 'status_url')  # http(s) only, never a password in it
    except UrlError as exc:
        return status_observation(url, None, str(exc))
    try:
        resp = open_url(url, method='GET', timeout=timeout, validate_certs=validate_certs,
                        follow_redirects='safe', headers={'Accept': 'application/json'})
        status = resp.getcode()
        body = resp.read(1024 * 1024).decode('utf-8', 'replace')
    except HTTPError as exc:
        status = exc.code
    except (URLError, OSError, ValueError) as exc:
        return status_observation(url, None, 'status page unreachable: %s'
                                  % _network_cause(str(getattr(exc, 'reason', exc))))
    seen, error = parse_status_page(status, body)
    return status_observation(url, seen, error)


def status_observation(url, seen, error):
    if seen is None:
        return {'state': 'unknown', 'indicator': None, 'description': '', 'error': error, 'url': url,
                'finding': finding('Stripe status page', error, 'indicator none', 'unknown')}
    indicator = seen['indicator']
    rating = {'none': 'ok', 'minor': 'warning', 'maintenance': 'warning'}.get(indicator, 'critical')
    figure = 'indicator %s%s' % (indicator, (' (%s)' % seen['description']) if seen['description'] else '')
    return {'state': 'none' if indicator == 'none' else 'incident', 'indicator': indicator,
            'description': seen['description'], 'error': '', 'url': url,
            'finding': finding('Stripe status page', figure, 'indicator none', rating)}


def rate_observation(window, orders, failed, threshold, error=''):
    """The application's payment failure rate over the window (percent), rated by the one rule."""
    obj = 'payment failure rate (last %s)' % window
    limit = '%s%%' % _num(threshold)
    if error:
        return {'state': 'unknown', 'orders': None, 'failed': None, 'percent': None, 'error': error,
                'finding': finding(obj, error, limit, 'unknown')}
    if not orders:
        return {'state': 'unknown', 'orders': 0, 'failed': 0, 'percent': None,
                'error': 'no order in the last %s' % window,
                'finding': finding(obj, 'no order in the last %s' % window, limit, 'unknown')}
    percent = round(100.0 * failed / orders, 2)
    rating = verdict(percent, None, threshold)
    return {'state': rating, 'orders': orders, 'failed': failed, 'percent': percent, 'error': '',
            'finding': finding(obj, '%s%% (%d of %d orders failed)' % (_num(percent), failed, orders), limit, rating)}


def _num(value):
    return ('%d' % value) if float(value).is_integer() else ('%s' % value)


# Each row: (impact, stripe) -> (verdict, action, reason). impact: critical | ok | unknown;
# stripe: trouble (status page incident or API failing) | healthy (status none and API ok) |
# unknown (no trouble seen, but an observer could not look). Action 'off' switches payments off;
# 'on' lets a switched-off payments come back on (after the reconciliation).
DECISIONS = {
    ('critical', 'trouble'): ('critical', 'off',
                              'customers fail to pay and Stripe is in trouble: switch payments off'),
    ('critical', 'healthy'): ('warning', 'on',
                              'customers fail to pay but Stripe is healthy: the cause is not Stripe, '
                              'switching payments off would not help'),
    ('critical', 'unknown'): ('unknown', 'none',
                              'customers fail to pay but Stripe could not be observed: not corroborated, '
                              'nothing switched'),
    ('ok', 'trouble'): ('warning', 'none',
                        'Stripe reports trouble but payments go through: nothing switched'),
    ('ok', 'healthy'): ('ok', 'on', 'payments go through and Stripe is healthy'),
    ('ok', 'unknown'): ('unknown', 'none',
                        'payments go through; Stripe could not be fully observed: nothing switched'),
    ('unknown', 'trouble'): ('unknown', 'none',
                             'Stripe is in trouble but the failure rate could not be read: '
                             'not corroborated, nothing switched'),
    ('unknown', 'healthy'): ('unknown', 'on',
                             'Stripe is healthy; the failure rate could not be read'),
    ('unknown', 'unknown'): ('unknown', 'none', 'neither the failure rate nor Stripe could be fully observed'),
}


def decide(rate, status, api, database_ok=True):
    """The kill switch decision from the three observations (rate_observation, status_observation,
    api_observation). 'on' means: Stripe is healthy by both observers, payments may be on (never
    when the database, which holds the switch, did not answer)."""
    impact = rate['state'] if rate['state'] in ('critical', 'ok') else ('ok' if rate['state'] == 'warning' else 'unknown')
    if status['state'] == 'incident' or api['state'] == 'failing':
        stripe_state = 'trouble'
    elif status['state'] == 'none' and api['state'] == 'ok':
        stripe_state = 'healthy'
    else:
        stripe_state = 'unknown'
    rating, action, reason = DECISIONS[(impact, stripe_state)]
    if action == 'on' and not database_ok:
        action, reason = 'none', reason + '; the database holding the switch did not answer'
    seen = 'failure rate %s, status page %s, API %s' % (rate['state'], status['state'], api['state'])
    return {'verdict': rating, 'action': action, 'impact': impact, 'stripe': stripe_state,
            'switch_off': action == 'off', 'stripe_healthy': stripe_state == 'healthy', 'reason': reason,
            'finding': finding('payments kill switch', seen, 'off only on failure rate critical and Stripe trouble',
                               rating, action=action, reason=reason)}
