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
  - O(state=reconciled) applies the fixes switched on in O(fix) - order statuses in one
    transaction, refunds of duplicate charges - after planning them. Refunds are idempotent across
    runs and days - each is tagged in its metadata, carries an idempotency key, and is looked up
    before any new refund - so a duplicate is never refunded twice.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.postgres
attributes:
  check_mode:
    support: full
    description: Reads Stripe and the database and returns the plan; writes to neither.
  diff_mode:
    support: none
    description: The plan lists every change.
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
    description: Write every discrepancy to this path as JSON, and beside it as CSV (C(.csv)).
    type: path
requirements:
  - stripe (Python library)
  - psycopg2 (Python library)
'''

EXAMPLES = r'''
- name: Nightly reconciliation of the last day (report only)
  oncall.runbooks.stripe_reconcile:
    api_key: "{{ vault_stripe_secret_key }}"
    login_host: db.internal
    db: payment_sandbox
    orders:
      table: marketplace.Order
      payment_intent_column: stripePaymentIntentId
      created_column: createdAt
    since: 1d
    report_path: /var/lib/oncall/reports/reconcile-{{ ansible_date_time.date }}.json

- name: After a Stripe outage - fix statuses and refund duplicates of the window
  oncall.runbooks.stripe_reconcile:
    db: payment_sandbox
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
  description: PaymentIntents read.
  returned: always
  type: int
'''

import csv
import json
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.stripe import reconcile as rc

STRIPE_IMP_ERR = None
try:
    import stripe
    HAS_STRIPE = True
except ImportError:
    HAS_STRIPE = False
    STRIPE_IMP_ERR = traceback.format_exc()


def key_hint(key):
    return '...%s' % key[-4:] if key and len(key) >= 8 else '(too short to be a key)'


def read_orders(conn, o, since_ts, until_ts):
    from psycopg2 import sql
    table = sql.Identifier(*[p.strip('"') for p in o['table'].split('.')])
    cols = [o['id_column'], o['payment_intent_column'], o['amount_column'], o['currency_column'],
            o['status_column'], o['created_column']]
    names = ['id', 'payment_intent', 'amount', 'currency', 'status', 'created']
    select = sql.SQL('SELECT {} FROM {}').format(
        sql.SQL(', ').join(sql.SQL('{} AS {}').format(sql.Identifier(c), sql.Identifier(n))
                           for c, n in zip(cols, names)), table)
    where = sql.SQL('')
    args = []
    if since_ts is not None:
        where = sql.SQL(' WHERE {c} >= to_timestamp(%s) AND {c} < to_timestamp(%s)').format(
            c=sql.Identifier(o['created_column']))
        args = [since_ts, until_ts]
    with conn.cursor() as probe:  # a missing table or column is named before anything runs
        try:
            probe.execute(select + sql.SQL(' LIMIT 0'))
        except pgc.psycopg2.Error as exc:
            conn.rollback()
            raise rc.ReconcileError('the orders mapping does not match the database: %s'
                                    % pgc.describe_error(exc, {}))
    rows = []
    with conn.cursor(name='oncall_reconcile_orders') as cur:  # server-side: streamed
        cur.itersize = 2000
        cur.execute(select + where, args)
        for row in cur:
            rows.append(dict(zip(names, row)))
    conn.rollback()
    return rows


def write_report(path, discrepancies):
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


def run(module):
    p = module.params
    if not p['api_key']:
        raise rc.ReconcileError('no Stripe API key: set api_key or the STRIPE_API_KEY environment variable')
    if p['max_items'] < 0:
        raise rc.ReconcileError('max_items must not be negative, got %d' % p['max_items'])
    since_ts, until_ts, window = rc.parse_window(p['since'], p['until'], p['full'])
    stripe.api_base = p['api_base'].rstrip('/')
    stripe.max_network_retries = p['max_network_retries']
    opts = {'api_key': p['api_key']}
    if p['api_version']:
        opts['stripe_version'] = p['api_version']
    o = p['orders']
    counter = rc.Counter()

    conn = pgc.connect(p, autocommit=False)
    orders = read_orders(conn, o, since_ts, until_ts)
    pis = list(rc.list_payment_intents(stripe, counter, since_ts, until_ts, opts))
    listed = set(pi['id'] for pi in pis)
    # An order whose PaymentIntent was created outside the window: fetch just those.
    for order in orders:
        pi_id = order['payment_intent']
        if pi_id and pi_id not in listed:
            listed.add(pi_id)
            counter.requests += 1
            try:
                pis.append(rc._obj(stripe.PaymentIntent.retrieve(pi_id, **opts)))
            except stripe.InvalidRequestError as exc:
                if getattr(exc, 'http_status', None) != 404:
                    raise
    discrepancies = rc.compare(orders, pis, o['status_map'], p['match_metadata_key'])

    plan = []
    fix = p['fix'] or {}
    for d in discrepancies:
        if d['kind'] == 'status_drift' and fix.get('update_order_status') and d.get('fix_status'):
            plan.append({'kind': 'update_order_status', 'object': 'order %s' % d['order'], 'order': d['order'],
                         'from': d['order_status'], 'to': d['fix_status'],
                         'reason': 'PaymentIntent %s is %s' % (d['payment_intent'], d['stripe_status'])})
        if d['kind'] == 'duplicate_charge' and d.get('keep') and fix.get('refund_duplicates'):
            done = rc.existing_refund(stripe, counter, d, opts)
            if done:
                d['refunded'] = done['id']
                continue
            plan.append({'kind': 'refund', 'object': d['payment_intent'], 'item': d,
                         'reason': 'duplicate charge of order %s (%s %s); %s is kept'
                                   % (d['order'], d['amount'], d['currency'], d['keep'])})

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
                    actions.append({'kind': a['kind'], 'object': a['object'], 'rows': cur.rowcount,
                                    'from': a['from'], 'to': a['to']})
            conn.commit()
        for a in [a for a in plan if a['kind'] == 'refund']:
            try:
                refund, created = rc.refund(stripe, counter, a['item'], opts, p['max_network_retries'] + 1)
            except stripe.StripeError as exc:
                raise rc.ApplyFailed(actions, 'refund of %s failed after %d fix(es) were applied: %s'
                                     % (a['object'], len(actions), exc.user_message or exc))
            actions.append({'kind': 'refund', 'object': a['object'], 'refund': refund['id'],
                            'amount': refund.get('amount'), 'created': created})
    conn.close()

    if p['report_path']:
        write_report(p['report_path'], discrepancies)
    for a in plan:
        a.pop('item', None)
    return dict(
        changed=bool(plan) if (module.check_mode and p['state'] == 'reconciled') else bool(actions),
        summary=rc.summarize(discrepancies), discrepancies=discrepancies[:p['max_items']],
        plan=plan, actions=actions, api_requests=counter.requests, window=window,
        orders=len(orders), payment_intents=len(pis),
        msg='%d discrepancies in %d orders and %d PaymentIntents (%s); %d Stripe request(s)'
            % (len(discrepancies), len(orders), len(pis), window, counter.requests))


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
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_STRIPE:
        module.fail_json(msg=missing_required_lib('stripe'), exception=STRIPE_IMP_ERR)
    if not pgc.HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=pgc.PSYCOPG_IMP_ERR)
    try:
        result = run(module)
    except rc.ApplyFailed as exc:
        module.fail_json(msg=str(exc), actions=exc.actions)
    except (rc.ReconcileError, pgc.PgConnectionError) as exc:
        module.fail_json(msg=str(exc))
    except stripe.AuthenticationError:
        module.fail_json(msg='Stripe at %s rejected the API key ending in %s'
                             % (module.params['api_base'], key_hint(module.params['api_key'])))
    except stripe.StripeError as exc:
        status = getattr(exc, 'http_status', None)
        module.fail_json(msg='Stripe at %s failed%s after %d retries: %s'
                             % (module.params['api_base'], ' (HTTP %s)' % status if status else '',
                                module.params['max_network_retries'], exc.user_message or exc.__class__.__name__))
    except pgc.psycopg2.Error as exc:
        module.fail_json(msg=pgc.failure(exc, module.params))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
