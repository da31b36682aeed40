#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: stripe_reconcile
short_description: Reconcile orders in PostgreSQL with Stripe PaymentIntents, and fix what is switched on
version_added: 0.1.0
description:
  - Compares the orders of a window with Stripe's PaymentIntents and reports
    C(missing_in_stripe), C(missing_order), C(amount_mismatch), C(currency_mismatch),
    C(status_drift) and C(duplicate_charge) discrepancies, with counts and amounts per currency.
  - Stripe is read with list endpoints (100 per page, filtered by C(created)), never one call per
    order; RV(api_requests) says how many calls were made.
  - A Stripe API that fails (unreachable, HTTP 5xx or 429 after the retries, a refused key) or a
    PostgreSQL that does not answer is a finding, not a failure - RV(reconciliation) is then
    V(unknown), nothing is fixed, and RV(findings) says why in one sentence. Bad option values
    and an O(orders) mapping that does not match the database fail the task.
  - With O(failure_rate) (and O(status_url)), it also observes customer impact and Stripe's status
    page, and returns the payments kill switch decision (RV(decision)) - off only on customer
    impact corroborated by Stripe trouble (the decision table of the C(oncall.runbooks.payments)
    role's README).
  - O(state=reconciled) applies the fixes switched on in O(fix) - order statuses in one
    transaction, refunds of duplicate charges - after planning them. Refunds are idempotent across
    runs and days - each is tagged in its metadata, carries an idempotency key, and is looked up
    before any new refund - so a duplicate is never refunded twice.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.postgres
  - oncall.runbooks.attributes.action_group_postgres
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Reads Stripe and the database and returns the plan; writes to neither.
  diff_mode:
    support: N/A
    details: The plan lists every change.
  idempotent:
    support: full
    details: A fix is applied once; refunds carry an idempotency key and a tag, an order status is only written when it differs.
options:
  api_key:
    description:
      - Stripe secret key. Falls back to the E(STRIPE_API_KEY) environment variable. Never logged;
        errors name only its last four characters.
    type: str
  api_base:
    description: Stripe API base URL (tests, proxies).
    type: str
    default: https://api.stripe.com
  api_version:
    description: Stripe API version to request; the account's default when unset.
    type: str
  max_network_retries:
    description: Retries, with backoff, of a Stripe call that failed on the network, a 429 or a 5xx.
    type: int
    default: 3
  orders:
    description: Where the orders are and what their columns are called.
    type: dict
    default: {}
    suboptions:
      table:
        description: Orders table, optionally schema-qualified (C(marketplace.Order)).
        type: str
        default: orders
      id_column:
        description: Order id column.
        type: str
        default: id
      payment_intent_column:
        description: Column holding the Stripe PaymentIntent id.
        type: str
        default: stripe_payment_intent_id
      amount_column:
        description: Amount column, in minor units (cents).
        type: str
        default: amount
      currency_column:
        description: Currency column (ISO code).
        type: str
        default: currency
      status_column:
        description: Order status column.
        type: str
        default: status
      created_column:
        description: Creation time column, used for the window.
        type: str
        default: created_at
      status_map:
        description:
          - Order status to the PaymentIntent status (or list of them) it should go with.
        type: dict
        default: {paid: succeeded, pending: [requires_payment_method, requires_confirmation, requires_action, processing], canceled: canceled}
  since:
    description: Start of the window, a duration back from now (C(1h), C(7d)) or an ISO 8601 time.
    type: str
  until:
    description: End of the window (same forms); now when unset.
    type: str
  full:
    description: Reconcile the whole history instead of a window.
    type: bool
    default: false
  match_metadata_key:
    description: PaymentIntent metadata key holding the order id.
    type: str
    default: order_id
  state:
    description: V(reported) changes nothing; V(reconciled) applies the fixes switched on in O(fix).
    type: str
    choices: [reported, reconciled]
    default: reported
  fix:
    description: Which fixes V(reconciled) applies.
    type: dict
    default: {}
    suboptions:
      update_order_status:
        description: Set the status of drifted orders to the one their PaymentIntent implies.
        type: bool
        default: false
      refund_duplicates:
        description: Refund every duplicate succeeded PaymentIntent of an order but the first.
        type: bool
        default: false
  max_items:
    description: Discrepancies returned in RV(discrepancies); the full list goes to O(report_path).
    type: int
    default: 100
  report_path:
    description:
      - Write every discrepancy to this path as JSON, and beside it as CSV (C(.csv)). Not written
        when the reconciliation could not compare (RV(reconciliation=unknown)).
    type: path
  failure_rate:
    description:
      - Read the application's own payment failure rate from the O(orders) table - the share of
        orders created in the last O(failure_rate.window) whose status is one of
        O(failure_rate.failed_statuses) - and rate it against O(failure_rate.threshold) (customer
        impact, RV(failure_rate)). Not read when unset.
    type: dict
    suboptions:
      window:
        description: How far back, as a duration (C(30m), C(1h)).
        type: str
        default: 1h
      failed_statuses:
        description: Order statuses that count as a failed payment.
        type: list
        elements: str
        default: [failed]
      threshold:
        description:
          - Failure rate, in percent, from which customer impact is V(critical) (the collection's
            one threshold rule, C(module_utils/common/findings.py)).
        type: float
        default: 5.0
  status_url:
    description:
      - Stripe's status page (statuspage.io JSON, C(https://status.stripe.com/api/v2/status.json)),
        read as a second observer of Stripe (RV(status_page)). Not read when unset.
      - With O(failure_rate), the module returns the kill switch decision (RV(decision)); without
        O(status_url) the status page counts as not observed.
    type: str
  validate_certs:
    description: Verify the status page's TLS certificate.
    type: bool
    default: true
requirements:
  - stripe (Python library)
  - psycopg2 (Python library)
'''

EXAMPLES = r'''
- name: Nightly reconciliation of the last day (report only)
  oncall.runbooks.stripe_reconcile:
    api_key: "{{ vault_stripe_secret_key }}"
    login_host: db.internal
    login_db: payment_sandbox
    orders:
      table: marketplace.Order
      payment_intent_column: stripePaymentIntentId
      created_column: createdAt
    since: 1d
    report_path: /var/lib/oncall/reports/reconcile-{{ ansible_date_time.date }}.json

- name: After a Stripe outage - fix statuses and refund duplicates of the window
  oncall.runbooks.stripe_reconcile:
    login_db: payment_sandbox
    since: "2026-11-21T14:00:00Z"
    until: "2026-11-21T16:30:00Z"
    state: reconciled
    fix:
      update_order_status: true
      refund_duplicates: true
'''

RETURN = r'''
summary:
  description: For each kind, the count and the amounts per currency.
  returned: always
  type: dict
  sample: {duplicate_charge: {count: 2, amounts: {eur: 4500}}, missing_order: {count: 0, amounts: {}}}
discrepancies:
  description: At most O(max_items) discrepancies, each with C(kind), C(order), C(payment_intent), C(amount), C(currency), C(detail).
  returned: always
  type: list
  elements: dict
plan:
  description: Fixes decided (C(update_order_status) or C(refund)), each with C(object) and C(reason).
  returned: always
  type: list
  elements: dict
actions:
  description: Fixes applied, with the refund id or rows updated; empty in check mode.
  returned: always
  type: list
  elements: dict
api_requests:
  description: Requests made to Stripe.
  returned: always
  type: int
  sample: 101
window:
  description: The window reconciled.
  returned: always
  type: str
orders:
  description: Orders read.
  returned: always
  type: int
payment_intents:
  description: PaymentIntents read; null when Stripe failed.
  returned: always
  type: int
reconciliation:
  description: V(compared), or V(unknown) when Stripe or PostgreSQL could not be read (the summary counts are then null).
  returned: always
  type: str
stripe_api:
  description:
    - The Stripe API as an observer - C(state) (V(ok), V(failing) when unreachable or 5xx/429
      after retries, V(unknown) when the key was refused or another answer came), C(kind) and
      C(error), one sentence.
  returned: always
  type: dict
  sample: {state: failing, kind: unreachable, error: "Stripe API unreachable at http://127.0.0.1:9 after 3 retries: connection refused"}
database:
  description: Whether PostgreSQL answered (C(ok)) and its C(error) sentence.
  returned: always
  type: dict
failure_rate:
  description:
    - With O(failure_rate) - C(state) (V(critical), V(ok), or V(unknown) when unread or no order),
      C(orders), C(failed), C(percent), C(error).
  returned: always
  type: dict
  sample: {state: critical, orders: 40, failed: 12, percent: 30.0, error: ""}
status_page:
  description: With O(status_url) or O(failure_rate) - C(state) (V(none), V(incident), V(unknown)), C(indicator), C(description), C(error).
  returned: always
  type: dict
decision:
  description:
    - With O(failure_rate) - the kill switch decision - C(action) (V(off), V(on)
      meaning payments may be on, V(none)), C(verdict), C(impact), C(stripe), C(switch_off),
      C(stripe_healthy), C(reason).
  returned: always
  type: dict
  sample: {action: none, verdict: unknown, impact: ok, stripe: unknown, switch_off: false, stripe_healthy: false,
           reason: "payments go through; Stripe could not be fully observed: nothing switched"}
findings:
  description: Each observation as a finding (C(object), C(figure), C(threshold), C(verdict)).
  returned: always
  type: list
  elements: dict
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
msg:
  description: One line saying what was planned and done.
  returned: always
  type: str
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import parse_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import finding
from ansible_collections.oncall.runbooks.plugins.module_utils.common.imports import import_without

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.stripe import health
from ansible_collections.oncall.runbooks.plugins.module_utils.stripe import orders as order_table
from ansible_collections.oncall.runbooks.plugins.module_utils.stripe import reconcile as rc

STRIPE_IMP_ERR = None
try:
    # stripe loads aiohttp (or httpx) for its async client at import time; this module is synchronous
    stripe = import_without('stripe', ('aiohttp', 'httpx', 'anyio'))
    HAS_STRIPE = True
except ImportError:
    HAS_STRIPE = False
    STRIPE_IMP_ERR = traceback.format_exc()


def run(module):
    p = module.params
    since_ts, until_ts, window = rc.validate(p)
    api_base = p['api_base'].rstrip('/')
    stripe.api_base = api_base
    stripe.max_network_retries = p['max_network_retries']
    opts = {'api_key': p['api_key']}
    if p['api_version']:
        opts['stripe_version'] = p['api_version']
    o = p['orders']
    counter = rc.Counter()
    shown_base = rc.safe_url(api_base)

    def stripe_error(exc):
        return health.stripe_failure(stripe, exc, shown_base, p['max_network_retries'], rc.key_hint(p['api_key']))

    # PostgreSQL: the orders of the window and the application's failure rate. A database
    # that does not answer is a finding; a mapping that does not match it is bad input.
    conn, pg_error, orders, rate_counts = None, '', None, None
    try:
        conn = pgc.connect(p, autocommit=False)
        orders = order_table.read_orders(conn, o, since_ts, until_ts)
        if p['failure_rate'] is not None:
            rate_counts = order_table.read_failure_rate(conn, o, parse_duration(p['failure_rate']['window'], 'window'),
                                                        p['failure_rate']['failed_statuses'])
    except pgc.PgConnectionError as exc:
        pg_error = str(exc)
    except pgc.psycopg2.OperationalError as exc:
        pg_error = pgc.failure(exc, p)
    if pg_error and conn is not None:
        conn.close()
        conn = None

    # Stripe: the PaymentIntents of the window. A failing API is a finding, never a crash.
    pis, failure = None, None
    try:
        pis = list(rc.list_payment_intents(stripe, counter, since_ts, until_ts, opts))
        listed = set(pi['id'] for pi in pis)
        # An order whose PaymentIntent was created outside the window: fetch just those.
        for order in orders or []:
            pi_id = order['payment_intent']
            if pi_id and pi_id not in listed:
                listed.add(pi_id)
                counter.requests += 1
                try:
                    pis.append(rc._obj(stripe.PaymentIntent.retrieve(pi_id, **opts)))
                except stripe.InvalidRequestError as exc:
                    if getattr(exc, 'http_status', None) != 404:
                        raise
    except stripe.StripeError as exc:
        pis, failure = None, stripe_error(exc)

    compared = orders is not None and pis is not None
    discrepancies = rc.compare(orders, pis, o['status_map'], p['match_metadata_key']) if compared else []

    plan = []
    fix = p['fix'] or {}
    try:
        for d in discrepancies:
            if d['kind'] == 'status_drift' and fix.get('update_order_status') and d.get('fix_status'):
                plan.append({'action': 'update_order_status', 'kind': 'update_order_status', 'count': 1,
                             'object': 'order %s' % d['order'], 'order': d['order'],
                             'from': d['order_status'], 'to': d['fix_status'],
                             'reason': 'PaymentIntent %s is %s' % (d['payment_intent'], d['stripe_status'])})
            if d['kind'] == 'duplicate_charge' and d.get('keep') and fix.get('refund_duplicates'):
                done = rc.existing_refund(stripe, counter, d, opts)
                if done:
                    d['refunded'] = done['id']
                    continue
                plan.append({'action': 'refund', 'kind': 'refund', 'count': 1, 'object': d['payment_intent'], 'item': d,
                             'reason': 'duplicate charge of order %s (%s %s); %s is kept'
                                       % (d['order'], d['amount'], d['currency'], d['keep'])})
    except stripe.StripeError as exc:  # a refund look-up failed: nothing is applied
        plan, failure = [], stripe_error(exc)

    actions = []
    if p['state'] == 'reconciled' and plan and not module.check_mode:
        updates = [a for a in plan if a['kind'] == 'update_order_status']
        if updates:
            from psycopg2 import sql
            table = sql.Identifier(*[x.strip('"') for x in o['table'].split('.')])
            stmt = sql.SQL('UPDATE {} SET {s} = %s WHERE {i} = %s AND {s} = %s').format(
                table, s=sql.Identifier(o['status_column']), i=sql.Identifier(o['id_column']))
            with conn.cursor() as cur:  # one transaction for every status fix
                for a in updates:
                    cur.execute(stmt, (a['to'], a['order'], a['from']))
                    actions.append({'action': a['action'], 'kind': a['kind'], 'object': a['object'], 'count': cur.rowcount,
                                    'reason': a['reason'], 'rows': cur.rowcount,
                                    'from': a['from'], 'to': a['to']})
            conn.commit()
        for a in [a for a in plan if a['kind'] == 'refund']:
            try:
                refund, created = rc.refund(stripe, counter, a['item'], opts, p['max_network_retries'] + 1)
            except stripe.StripeError as exc:
                raise rc.ApplyFailed(actions, 'refund of %s failed after %d fix(es) were applied: %s'
                                     % (a['object'], len(actions), stripe_error(exc)[1]))
            actions.append({'action': 'refund', 'kind': 'refund', 'object': a['object'], 'count': 1,
                            'reason': a['reason'], 'refund': refund['id'],
                            'amount': refund.get('amount'), 'created': created})
    if conn is not None:
        conn.close()

    if p['report_path'] and compared:
        rc.write_report(p['report_path'], discrepancies)
    for a in plan:
        a.pop('item', None)

    api = health.api_observation(*(failure or (None, '')))
    findings = []
    if pg_error:
        findings.append(finding('orders database', pg_error, 'answers', 'critical'))
    findings.append(api['finding'])
    rate = status = decision = None
    if p['failure_rate'] is not None:
        fr = p['failure_rate']
        if rate_counts is None:
            rate = health.rate_observation(fr['window'], None, None, fr['threshold'],
                                           error=pg_error or 'not read')
        else:
            rate = health.rate_observation(fr['window'], rate_counts[0], rate_counts[1], fr['threshold'])
        findings.append(rate['finding'])
    if p['status_url']:
        status = health.read_status_page(p['status_url'], validate_certs=p['validate_certs'])
        status['url'] = rc.safe_url(p['status_url'])
        findings.append(status['finding'])
    elif p['failure_rate'] is not None:  # a decision without the status page: that observer is unknown
        status = health.status_observation('', None, 'no status page configured (status_url)')
        findings.append(status['finding'])
    label = 'duplicate charges (%s)' % ('full history' if p['full'] else (p['since'] or '1d'))
    summary = rc.summarize(discrepancies) if compared else dict(
        (k, {'count': None, 'amounts': {}}) for k in rc.KINDS)
    if compared:
        dup = summary['duplicate_charge']['count']
        findings.append(finding(label, dup, '0', 'critical' if dup else 'ok'))
    else:
        why = (failure[1] if failure else pg_error) or 'not compared'
        findings.append(finding(label, 'unknown (not compared: %s)' % why, '0', 'unknown'))
    if rate is not None and status is not None:
        decision = health.decide(rate, status, api, database_ok=not pg_error)
        findings.append(decision['finding'])
    for obs in (rate, status, api, decision):
        if obs is not None:
            obs.pop('finding', None)

    if compared:
        msg = '%d discrepancies in %d orders and %d PaymentIntents (%s); %d Stripe request(s)' % (
            len(discrepancies), len(orders), len(pis), window, counter.requests)
    else:
        msg = 'reconciliation unknown (%s): %s' % (window, (failure[1] if failure else pg_error))
    return dict(
        changed=bool(plan) if (module.check_mode and p['state'] == 'reconciled') else bool(actions),
        summary=summary, discrepancies=discrepancies[:p['max_items']],
        plan=plan, actions=actions, api_requests=counter.requests, window=window,
        orders=len(orders) if orders is not None else None,
        payment_intents=len(pis) if pis is not None else None,
        reconciliation='compared' if compared else 'unknown',
        stripe_api=api, database={'ok': not pg_error, 'error': pg_error},
        failure_rate=rate or {}, status_page=status or {}, decision=decision or {},
        findings=findings, msg=msg)


def main():
    argument_spec = pgc.postgres_argument_spec()
    argument_spec.update(
        api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['STRIPE_API_KEY'])),
        api_base=dict(type='str', default='https://api.stripe.com'),
        api_version=dict(type='str'),
        max_network_retries=dict(type='int', default=3),
        orders=dict(type='dict', default={}, options=dict(
            table=dict(type='str', default='orders'),
            id_column=dict(type='str', default='id'),
            payment_intent_column=dict(type='str', default='stripe_payment_intent_id'),
            amount_column=dict(type='str', default='amount'),
            currency_column=dict(type='str', default='currency'),
            status_column=dict(type='str', default='status'),
            created_column=dict(type='str', default='created_at'),
            status_map=dict(type='dict', default={
                'paid': 'succeeded',
                'pending': ['requires_payment_method', 'requires_confirmation', 'requires_action', 'processing'],
                'canceled': 'canceled'}),
        )),
        since=dict(type='str'),
        until=dict(type='str'),
        full=dict(type='bool', default=False),
        match_metadata_key=dict(type='str', default='order_id', no_log=False),
        state=dict(type='str', default='reported', choices=['reported', 'reconciled']),
        fix=dict(type='dict', default={}, options=dict(
            update_order_status=dict(type='bool', default=False),
            refund_duplicates=dict(type='bool', default=False),
        )),
        max_items=dict(type='int', default=100),
        report_path=dict(type='path'),
        failure_rate=dict(type='dict', options=dict(
            window=dict(type='str', default='1h'),
            failed_statuses=dict(type='list', elements='str', default=['failed']),
            threshold=dict(type='float', default=5.0),
        )),
        status_url=dict(type='str'),
        validate_certs=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, describe=lambda exc: failure_of(exc, module.params), requires=['stripe', 'psycopg2'])


def failure_of(exc, params):
    """The sentence for a Stripe or database error outside the observation (none known); None
    for anything else, which is a bug the runner reports as one."""
    if HAS_STRIPE and isinstance(exc, stripe.StripeError):
        return health.stripe_failure(stripe, exc, rc.safe_url(params['api_base']), params['max_network_retries'],
                                     rc.key_hint(params['api_key']))[1]
    return pgc.failure_of(exc, params)


if __name__ == '__main__':
    main()
