# -*- coding: utf-8 -*-
"""stripe_reconcile against localstripe (tests/helpers/stripe_api.py) and a real PostgreSQL.

localstripe ignores idempotency keys, so the no-double-refund tests prove the module's own
look-up, not Stripe's deduplication.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import ROOT, _env, ansible_bin, free_port, run_module

KEY = 'sk_test_oncall_7Hq2ZtXw9pLm4R'


@pytest.fixture(scope='module')
def stripe_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'helpers', 'stripe_api.py'), '--port', str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()  # {"ready": port}
    url = 'http://127.0.0.1:%d' % port
    yield url
    proc.kill()  # a 'hang' request may still be pending: no graceful shutdown to wait for
    proc.wait(10)


def harness(url, path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body or {}).encode() if body is not None else None,
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


@pytest.fixture()
def shop(stripe_server, pgdb):
    """Orders in PostgreSQL and PaymentIntents in localstripe, one of each discrepancy kind."""
    import stripe
    stripe.api_base = stripe_server
    harness(stripe_server, '/_harness/reset', {})
    urllib.request.urlopen(urllib.request.Request(stripe_server + '/_config/data', method='DELETE'), timeout=10)
    server, db, conn = pgdb

    def pi(amount, currency, order, confirm=True):
        obj = stripe.PaymentIntent.create(api_key=KEY, amount=amount, currency=currency,
                                          payment_method='pm_card_visa' if confirm else None,
                                          confirm=confirm, metadata={'order_id': order} if order else {})
        return obj.to_dict()['id']

    tag = db[-12:]
    ok = pi(1000, 'eur', 'ok-' + tag)
    amount = pi(2500, 'eur', 'amount-' + tag)
    currency = pi(700, 'eur', 'currency-' + tag)
    drift = pi(900, 'eur', 'drift-' + tag)
    dup_a = pi(4500, 'eur', 'dup-' + tag)
    dup_b = pi(4500, 'eur', 'dup-' + tag)
    shared = pi(300, 'eur', None)
    ghost = pi(1200, 'eur', 'ghost-' + tag)
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE orders (id text PRIMARY KEY, stripe_payment_intent_id text, amount int,
                       currency text, status text, created_at timestamptz DEFAULT now())""")
        rows = [('ok-' + tag, ok, 1000, 'eur', 'paid'),
                ('missing-' + tag, 'pi_gone' + tag, 800, 'eur', 'paid'),
                ('amount-' + tag, amount, 2000, 'eur', 'paid'),
                ('currency-' + tag, currency, 700, 'usd', 'paid'),
                ('drift-' + tag, drift, 900, 'eur', 'pending'),
                ('dup-' + tag, dup_a, 4500, 'eur', 'paid'),
                ('shared1-' + tag, shared, 300, 'eur', 'paid'),
                ('shared2-' + tag, shared, 300, 'eur', 'paid')]
        cur.executemany('INSERT INTO orders (id, stripe_payment_intent_id, amount, currency, status) '
                        'VALUES (%s, %s, %s, %s, %s)', rows)
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user='postgres', login_db=db, api_key=KEY,
                api_base=stripe_server, since='1h', max_network_retries=1)
    return dict(args=args, tag=tag, conn=conn, url=stripe_server, dup_b=dup_b, dup_a=dup_a, ghost=ghost,
                shared=shared, drift=drift)


def refunds_of(url, pi_id):
    import stripe
    stripe.api_base = url
    return [r.to_dict() for r in stripe.Refund.list(api_key=KEY, payment_intent=pi_id, limit=100).data]


def mine(res, tag):
    """Discrepancies of this test's orders (localstripe also holds other tests' objects)."""
    out = []
    for d in res['discrepancies']:
        if tag in str(d.get('order')) or tag in str(d.get('payment_intent')):
            out.append((d['kind'], d['order']))
    return sorted(out)


def test_each_kind_is_found_and_only_those(shop):
    res = run_module('stripe_reconcile', shop['args'], verbosity=3)
    assert not res.failed, res.result
    t = shop['tag']
    assert mine(res, t) == sorted([
        ('amount_mismatch', 'amount-' + t), ('currency_mismatch', 'currency-' + t),
        ('duplicate_charge', 'dup-' + t), ('duplicate_charge', 'shared1-%s, shared2-%s' % (t, t)),
        ('missing_in_stripe', 'missing-' + t), ('missing_order', 'ghost-' + t),
        ('status_drift', 'drift-' + t)])
    assert res['changed'] is False and res['plan'] == []
    dup = [d for d in res['discrepancies'] if d['kind'] == 'duplicate_charge' and d.get('keep')][0]
    assert dup['keep'] == shop['dup_a'] and dup['payment_intent'] == shop['dup_b']
    assert res['summary']['amount_mismatch']['amounts'] == {'eur': 2000}
    assert res['summary']['currency_mismatch']['amounts'] == {'usd': 700}  # per currency, never summed across
    assert res['summary']['duplicate_charge']['amounts'] == {'eur': 4500 + 300}
    stats = harness(shop['url'], '/_harness/stats')
    assert stats.get('GET /v1/payment_intents', 0) >= 1
    # the module counts every call it makes (the seeding above only POSTed)
    assert res['api_requests'] == sum(v for k, v in stats.items() if k.startswith('GET')) == 2
    assert KEY not in res.stdout + res.stderr and KEY[-12:] not in res.stdout + res.stderr


def test_reconciled_twice_refunds_each_duplicate_once_and_fixes_status(shop):
    args = dict(shop['args'], state='reconciled', fix={'update_order_status': True, 'refund_duplicates': True})
    check = run_module('stripe_reconcile', args, check=True)
    assert check['changed'] is True and check['actions'] == []
    assert sorted(a['kind'] for a in check['plan'] if shop['tag'] in a['object'] or a['object'] == shop['dup_b']) == [
        'refund', 'update_order_status']
    assert refunds_of(shop['url'], shop['dup_b']) == []  # check mode wrote nothing to Stripe

    first = run_module('stripe_reconcile', args)
    assert not first.failed, first.result
    assert [a['object'] for a in first['actions'] if a['kind'] == 'refund'] == [shop['dup_b']]
    with shop['conn'].cursor() as cur:
        cur.execute("SELECT status FROM orders WHERE id = %s", ('drift-' + shop['tag'],))
        assert cur.fetchone()[0] == 'paid'
    second = run_module('stripe_reconcile', args)
    assert [a for a in second['actions'] if a['kind'] == 'refund'] == []
    assert len(refunds_of(shop['url'], shop['dup_b'])) == 1
    assert refunds_of(shop['url'], shop['dup_a']) == []  # the kept charge is never refunded
    assert refunds_of(shop['url'], shop['shared']) == []  # two rows, one charge: nothing to refund


def test_a_lost_answer_or_a_killed_run_never_refunds_twice(shop):
    args = dict(shop['args'], state='reconciled', fix={'refund_duplicates': True})
    # the refund is made but its answer is an error: the module looks before it retries
    harness(shop['url'], '/_harness/after', {'path': '/v1/refunds', 'do': '500'})
    res = run_module('stripe_reconcile', args)
    assert not res.failed, res.result
    assert len(refunds_of(shop['url'], shop['dup_b'])) == 1


def test_a_run_killed_right_after_the_refund_call_then_rerun(shop):
    args = dict(shop['args'], state='reconciled', fix={'refund_duplicates': True})
    harness(shop['url'], '/_harness/after', {'path': '/v1/refunds', 'do': 'hang'})
    cmd = [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local', '-m',
           'oncall.runbooks.stripe_reconcile', '-a', json.dumps(args)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 60
    while not refunds_of(shop['url'], shop['dup_b']) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run dies right after Stripe refunded
    proc.wait(10)
    assert len(refunds_of(shop['url'], shop['dup_b'])) == 1
    res = run_module('stripe_reconcile', args)
    assert not res.failed, res.result
    assert [a for a in res['actions'] if a['kind'] == 'refund'] == []
    assert len(refunds_of(shop['url'], shop['dup_b'])) == 1


def test_check_mode_leaves_stripe_and_orders_unchanged(shop):
    with shop['conn'].cursor() as cur:
        cur.execute('SELECT * FROM orders ORDER BY id')
        before = cur.fetchall()
    posts_before = dict((k, v) for k, v in harness(shop['url'], '/_harness/stats').items() if k.startswith('POST'))
    args = dict(shop['args'], state='reconciled', fix={'update_order_status': True, 'refund_duplicates': True})
    res = run_module('stripe_reconcile', args, check=True)
    assert res['changed'] is True
    with shop['conn'].cursor() as cur:
        cur.execute('SELECT * FROM orders ORDER BY id')
        assert cur.fetchall() == before
    posts_after = dict((k, v) for k, v in harness(shop['url'], '/_harness/stats').items() if k.startswith('POST'))
    assert posts_after == posts_before


@pytest.mark.parametrize('change,needle', [
    (dict(orders={'amount_column': 'total_cents'}), 'column "total_cents" does not exist'),
    (dict(since='yesterday'), 'since must be a duration'),
    (dict(full=True), 'do not combine it with since'),
    (dict(max_network_retries=-1), 'max_network_retries must not be negative'),
    (dict(api_base='file:///etc/passwd'), 'api_base must be an http or https URL'),
    (dict(status_url='ftp://status.example'), 'status_url must be an http or https URL'),
    (dict(failure_rate={'threshold': 150}), 'failure_rate.threshold must be a percentage from 0 to 100'),
    (dict(failure_rate={'threshold': float('nan')}), 'failure_rate.threshold must be a percentage from 0 to 100'),
    (dict(failure_rate={'window': 'soon'}), 'failure_rate.window'),
    (dict(failure_rate={'failed_statuses': []}), 'failure_rate.failed_statuses must list at least one order status'),
])
def test_bad_input_is_one_sentence(shop, change, needle):
    res = run_module('stripe_reconcile', dict(shop['args'], **change), verbosity=3)
    assert res.failed and needle in res['msg'], res.get('msg')
    assert 'sk_test_revoked_0000abcd' not in res.stdout + res.stderr and KEY not in res.stdout + res.stderr


def unknown(res):
    """A reconciliation that could not compare: a finding, not a failed task, and no counts."""
    assert not res.failed, res.result
    assert res['reconciliation'] == 'unknown' and res['changed'] is False
    assert res['discrepancies'] == [] and res['plan'] == [] and res['actions'] == []
    assert set(v['count'] for v in res['summary'].values()) == {None}
    assert '\n' not in res['msg'] and 'support@stripe.com' not in res['msg']
    return dict((f['object'], f) for f in res['findings'])


def test_stripe_failing_is_retried_then_reported(shop):
    harness(shop['url'], '/_harness/fail', {'status': 500, 'count': 1})
    res = run_module('stripe_reconcile', shop['args'])  # one retry is allowed: it recovers
    assert not res.failed and res['reconciliation'] == 'compared', res.result
    harness(shop['url'], '/_harness/fail', {'status': 429, 'count': 10})
    res = run_module('stripe_reconcile', dict(shop['args'], state='reconciled', fix={'update_order_status': True}))
    found = unknown(res)
    assert found['Stripe API']['figure'] == ('Stripe API rate limited: %s answered HTTP 429 after 1 retry (injected 429)'
                                             % shop['url'])
    assert res['stripe_api']['state'] == 'failing'
    harness(shop['url'], '/_harness/reset', {})
    with shop['conn'].cursor() as cur:  # nothing was fixed blind
        cur.execute("SELECT status FROM orders WHERE id = %s", ('drift-' + shop['tag'],))
        assert cur.fetchone()[0] == 'pending'


class Answering(object):
    """A real HTTP server on loopback answering every request with one status (a Stripe in trouble)."""

    def __init__(self, status):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                body = json.dumps({'error': {'type': 'api_error', 'message': 'Something went wrong on our end.\n'
                                             'Request req_8hP2 was logged; contact support@stripe.com.'}}).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize('status', [500, 503])
def test_stripe_5xx_after_retries_is_one_sentence(shop, status, tmp_path):
    server = Answering(status)
    report = tmp_path / 'd.json'
    try:
        res = run_module('stripe_reconcile', dict(shop['args'], api_base=server.url, report_path=str(report)),
                         verbosity=3)
    finally:
        server.stop()
    found = unknown(res)
    assert found['Stripe API']['figure'] == ('Stripe API 5xx: %s answered HTTP %d after 1 retry '
                                             '(Something went wrong on our end)' % (server.url, status))
    assert found['Stripe API']['verdict'] == 'critical' and found['duplicate charges (1h)']['verdict'] == 'unknown'
    assert res['orders'] == 8 and res['payment_intents'] is None
    assert not report.exists()  # no discrepancy file for a comparison that did not happen
    assert KEY not in res.stdout + res.stderr and 'req_8hP2' not in res.stdout


def test_stripe_unreachable_is_one_sentence(shop):
    port = free_port()
    res = run_module('stripe_reconcile', dict(shop['args'], api_base='http://user:pw@127.0.0.1:%d/' % port,
                                              max_network_retries=2))
    found = unknown(res)
    assert found['Stripe API']['figure'] == ('Stripe API unreachable: no answer from http://127.0.0.1:%d after 2 retries '
                                             '(connection refused)' % port)
    # credentials in the URL stay out of what the module says (the invocation echo is Ansible's)
    assert res['msg'].endswith(found['Stripe API']['figure']) and 'pw@' not in json.dumps(res['findings'])


def test_a_refused_key_is_a_finding_naming_its_last_four_characters(shop):
    res = run_module('stripe_reconcile', dict(shop['args'], api_key='sk_test_revoked_0000abcd'), verbosity=3)
    found = unknown(res)
    assert found['Stripe API']['figure'] == ('Stripe API key refused: %s rejected the API key ending in ...abcd'
                                             % shop['url'])
    assert res['stripe_api']['state'] == 'unknown'  # our key, not Stripe's trouble
    assert 'sk_test_revoked_0000abcd' not in res.stdout + res.stderr


def test_an_empty_window_and_an_unreachable_database(shop):
    res = run_module('stripe_reconcile', dict(shop['args'], since='2001-01-01T00:00:00Z', until='2001-01-02T00:00:00Z'))
    assert not res.failed and res['orders'] == 0 and res['discrepancies'] == []
    res = run_module('stripe_reconcile', dict(shop['args'], login_port=free_port()))
    found = unknown(res)
    assert found['orders database']['figure'].startswith('cannot connect to PostgreSQL')
    assert found['Stripe API']['verdict'] == 'ok' and res['database']['ok'] is False
