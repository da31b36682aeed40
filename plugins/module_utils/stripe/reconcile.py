# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""stripe_reconcile: orders in PostgreSQL against PaymentIntents in Stripe.

Stripe is read with list endpoints, 100 objects a page, filtered by ``created`` to the
window (plus a margin), so 10,000 orders cost about 100 requests, not 10,000 retrieves.
Individual retrieves happen only for what the window did not contain (an order whose
PaymentIntent was created outside it), and refund look-ups only for duplicates.

Refunds of duplicates are idempotent across runs and days: each carries metadata naming
the PaymentIntent it refunds and the one kept, and an idempotency key derived from the
PaymentIntent. Before refunding, the refunds of that PaymentIntent are listed; one tagged by
us (or any refund covering the amount) means it was done already, whatever happened in
between (a retry, a rerun, a crash right after the API call).
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os

from urllib.parse import urlsplit, urlunsplit

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import DurationError, parse_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

KINDS = ('missing_in_stripe', 'missing_order', 'amount_mismatch', 'currency_mismatch',
         'status_drift', 'duplicate_charge')
REFUND_TAG = 'oncall_runbooks_duplicate_of'
WINDOW_MARGIN_S = 3600


class ReconcileError(OncallError):
    pass


class Counter(object):
    """Counts the requests made to Stripe."""

    def __init__(self):
        self.requests = 0


def _obj(value):
    return value.to_dict() if hasattr(value, 'to_dict') else dict(value)


def charge_id(pi):
    latest = pi.get('latest_charge')
    if isinstance(latest, dict):
        return latest.get('id')
    return latest


def list_payment_intents(stripe, counter, since_ts, until_ts, opts):
    """Every PaymentIntent created in [since - margin, until + margin), page by page."""
    params = {'limit': 100}
    if since_ts is not None:
        params['created'] = {'gte': int(since_ts - WINDOW_MARGIN_S), 'lt': int(until_ts + WINDOW_MARGIN_S)}
    starting_after = None
    while True:
        if starting_after:
            params['starting_after'] = starting_after
        counter.requests += 1
        page = stripe.PaymentIntent.list(**dict(params, **opts))
        data = [_obj(pi) for pi in page.data]
        yield from data
        if not page.has_more or not data:
            return
        starting_after = data[-1]['id']


def expected_statuses(status_map, order_status):
    want = status_map.get(order_status)
    if want is None:
        return None
    return [want] if isinstance(want, str) else list(want)


def order_status_for(status_map, pi_status):
    for order_status, want in status_map.items():
        if pi_status in ([want] if isinstance(want, str) else want):
            return order_status
    return None


def compare(orders, pis, status_map, match_key):
    """All discrepancies between orders (dicts) and PaymentIntents (dicts), by kind."""
    out = []
    pi_by_id = dict((pi['id'], pi) for pi in pis)
    orders_by_pi = {}
    order_ids = set()
    for o in orders:
        order_ids.add(str(o['id']))
        if o['payment_intent']:
            orders_by_pi.setdefault(o['payment_intent'], []).append(o)

    # the runbook's query: one PaymentIntent id on more than one order
    for pi_id, rows in orders_by_pi.items():
        if len(rows) > 1:
            pi = pi_by_id.get(pi_id, {})
            out.append({'kind': 'duplicate_charge', 'order': ', '.join(str(r['id']) for r in rows),
                        'payment_intent': pi_id, 'amount': pi.get('amount', rows[0]['amount']),
                        'currency': (pi.get('currency') or rows[0]['currency'] or '').lower(),
                        'detail': '%d orders share PaymentIntent %s' % (len(rows), pi_id)})

    # more than one succeeded PaymentIntent for one order (by metadata, or by id)
    succeeded_by_order = {}
    for pi in pis:
        if pi.get('status') != 'succeeded':
            continue
        order_id = (pi.get('metadata') or {}).get(match_key)
        if order_id is None and pi['id'] in orders_by_pi:
            order_id = str(orders_by_pi[pi['id']][0]['id'])
        if order_id is not None:
            succeeded_by_order.setdefault(str(order_id), []).append(pi)
    for order_id, charged in succeeded_by_order.items():
        if len(charged) > 1:
            # keep the one the order points at, else the first charged
            referenced = set(r['payment_intent'] for r in orders if str(r['id']) == order_id)
            charged.sort(key=lambda p: (p['id'] not in referenced, p.get('created', 0), p['id']))
            for extra in charged[1:]:
                out.append({'kind': 'duplicate_charge', 'order': order_id, 'payment_intent': extra['id'],
                            'amount': extra.get('amount'), 'currency': (extra.get('currency') or '').lower(),
                            'keep': charged[0]['id'],
                            'detail': 'order %s charged %d times; %s is kept' % (order_id, len(charged), charged[0]['id'])})

    for o in orders:
        pi_id = o['payment_intent']
        if not pi_id:
            continue
        pi = pi_by_id.get(pi_id)
        if pi is None:
            out.append({'kind': 'missing_in_stripe', 'order': str(o['id']), 'payment_intent': pi_id,
                        'amount': o['amount'], 'currency': (o['currency'] or '').lower(),
                        'detail': 'PaymentIntent %s not found in Stripe' % pi_id})
            continue
        if o['amount'] is not None and pi.get('amount') != o['amount']:
            out.append({'kind': 'amount_mismatch', 'order': str(o['id']), 'payment_intent': pi_id,
                        'amount': o['amount'], 'currency': (o['currency'] or '').lower(),
                        'detail': 'order %s, Stripe %s' % (o['amount'], pi.get('amount'))})
        if o['currency'] and (pi.get('currency') or '').lower() != o['currency'].lower():
            out.append({'kind': 'currency_mismatch', 'order': str(o['id']), 'payment_intent': pi_id,
                        'amount': o['amount'], 'currency': o['currency'].lower(),
                        'detail': 'order %s, Stripe %s' % (o['currency'], pi.get('currency'))})
        want = expected_statuses(status_map, o['status'])
        if want is not None and pi.get('status') not in want:
            out.append({'kind': 'status_drift', 'order': str(o['id']), 'payment_intent': pi_id,
                        'amount': o['amount'], 'currency': (o['currency'] or '').lower(),
                        'order_status': o['status'], 'stripe_status': pi.get('status'),
                        'fix_status': order_status_for(status_map, pi.get('status')),
                        'detail': 'order %s, PaymentIntent %s (expected %s)'
                                  % (o['status'], pi.get('status'), ' or '.join(want))})

    known = set(orders_by_pi)
    for pi in pis:
        if pi.get('status') != 'succeeded' or pi['id'] in known:
            continue
        order_id = (pi.get('metadata') or {}).get(match_key)
        if order_id is not None and str(order_id) in order_ids:
            continue
        out.append({'kind': 'missing_order', 'order': order_id, 'payment_intent': pi['id'],
                    'amount': pi.get('amount'), 'currency': (pi.get('currency') or '').lower(),
                    'detail': 'succeeded PaymentIntent with no order'
                              + (' (metadata %s=%s)' % (match_key, order_id) if order_id else '')})
    return out


def summarize(discrepancies):
    summary = dict((k, {'count': 0, 'amounts': {}}) for k in KINDS)
    for d in discrepancies:
        entry = summary[d['kind']]
        entry['count'] += 1
        if d.get('amount') is not None and d.get('currency'):
            entry['amounts'][d['currency']] = entry['amounts'].get(d['currency'], 0) + int(d['amount'])
    return summary


def existing_refund(stripe, counter, pi, opts):
    """A refund of this PaymentIntent made by an earlier run (tagged), or covering it all."""
    counter.requests += 1
    refunds = [_obj(r) for r in stripe.Refund.list(payment_intent=pi['payment_intent'], limit=100, **opts).data]
    for r in refunds:
        if r.get('status') in ('failed', 'canceled'):
            continue
        if (r.get('metadata') or {}).get(REFUND_TAG):
            return r
    covered = sum(r.get('amount') or 0 for r in refunds if r.get('status') not in ('failed', 'canceled'))
    if pi.get('amount') and covered >= pi['amount']:
        return refunds[0]
    return None


def refund(stripe, counter, item, opts, attempts=3):
    """Refund one duplicate unless it was refunded already; returns (refund, created).

    The SDK's own retries are off for the refund call: a retry must look for the refund
    first, since a request that failed on the way back may have refunded all the same (real
    Stripe would also dedupe by the idempotency key; a server that ignores it would not).
    """
    last = None
    for _attempt in range(max(1, attempts)):
        found = existing_refund(stripe, counter, item, opts)
        if found:
            return found, False
        counter.requests += 1
        saved, stripe.max_network_retries = stripe.max_network_retries, 0
        try:
            created = stripe.Refund.create(
                payment_intent=item['payment_intent'],
                metadata={REFUND_TAG: item.get('keep') or '', 'oncall_runbooks_order': str(item.get('order') or '')},
                idempotency_key='oncall-runbooks-duplicate-refund-%s' % item['payment_intent'],
                **opts)
            return _obj(created), True
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
            last = exc
        finally:
            stripe.max_network_retries = saved
    raise last


def parse_window(since, until, full, now=None):
    """(since_ts, until_ts, label); since None means the whole history."""
    now = now or datetime.datetime.now(datetime.timezone.utc)

    def point(value, name):
        if value is None:
            return None
        text = str(value).strip()
        try:
            return now - datetime.timedelta(seconds=parse_duration(text, name))
        except DurationError:
            pass
        try:
            moment = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
        except ValueError:
            raise ReconcileError('%s must be a duration (1h, 7d) or an ISO 8601 time, not %r' % (name, value))
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)

    if full:
        if since or until:
            raise ReconcileError('full: true reconciles everything; do not combine it with since or until')
        return None, None, 'full history'
    start = point(since or '1d', 'since')
    end = point(until, 'until') if until else now
    if start >= end:
        raise ReconcileError('since (%s) must be before until (%s)' % (start.isoformat(), end.isoformat()))
    return start.timestamp(), end.timestamp(), '%s to %s' % (start.isoformat(), end.isoformat())


class ApplyFailed(OncallError):
    """A fix failed midway; carries what was already applied."""

    def __init__(self, actions, message):
        OncallError.__init__(self, message, actions=actions)
        self.actions = actions


def key_hint(key):
    """The last four characters of an API key, which is all a message may show of it."""
    return '...%s' % key[-4:] if key and len(key) >= 8 else '(too short to be a key)'


def safe_url(url):
    """The URL without credentials, query or fragment (it is shown in messages and findings)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return '(invalid URL)'
    host = parts.hostname or ''
    if parts.port:
        host = '%s:%d' % (host, parts.port)
    return urlunsplit((parts.scheme, host, parts.path, '', ''))


def validate(p):
    """Every option checked before anything is read or touched; raises ReconcileError."""
    if not p['api_key']:
        raise ReconcileError('no Stripe API key: set api_key or the STRIPE_API_KEY environment variable')
    for name in ('max_items', 'max_network_retries'):
        if p[name] < 0:
            raise ReconcileError('%s must not be negative, got %d' % (name, p[name]))
    if p['max_network_retries'] > 10:
        raise ReconcileError('max_network_retries must be at most 10, got %d' % p['max_network_retries'])
    for name in ('api_base', 'status_url'):
        if p[name] is None:
            continue
        parts = urlsplit(p[name]) if '\n' not in p[name] else None
        if parts is None or parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ReconcileError('%s must be an http or https URL, got %s' % (name, safe_url(p[name])))
    rate = p['failure_rate']
    if rate is not None:
        threshold = rate['threshold']
        if not math.isfinite(threshold) or threshold < 0 or threshold > 100:
            raise ReconcileError('failure_rate.threshold must be a percentage from 0 to 100, got %s' % threshold)
        if not rate['failed_statuses'] or not all(isinstance(s, str) and s for s in rate['failed_statuses']):
            raise ReconcileError('failure_rate.failed_statuses must list at least one order status')
        try:
            seconds = parse_duration(rate['window'], 'failure_rate.window')
        except DurationError as exc:
            raise ReconcileError(str(exc))
        if seconds <= 0:
            raise ReconcileError('failure_rate.window must be longer than 0s, got %s' % rate['window'])
    return parse_window(p['since'], p['until'], p['full'])


def write_report(path, discrepancies):
    """The discrepancies as JSON at `path` and as CSV beside it (same name, .csv)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, 'w') as handle:
        json.dump(discrepancies, handle, indent=1, default=str)
    fields = ['kind', 'order', 'payment_intent', 'amount', 'currency', 'detail']
    with open(os.path.splitext(path)[0] + '.csv', 'w', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(discrepancies)
