# -*- coding: utf-8 -*-
"""playbooks/runbooks/payment_failure.yml against the lab's real PostgreSQL, localstripe
(tests/helpers/stripe_api.py), and a real HTTP server on loopback that plays Stripe's status page
and, when asked, a Stripe API answering 5xx. An unreachable Stripe API or status page is a
closed loopback port.

Every row of the decision table (roles/payments/README.md) is run here with --tags remediate,
for real: the kill switch goes off only on customer impact (the orders' failure rate) together
with Stripe trouble; one observer alone, or one that could not look, switches nothing.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading

import pytest

from helpers import ROOT, free_port, recap

KEY = 'sk_test_payment_runbook_Q7wZ2k9d'
REPORT = 'payment_failure-latest.json'


class FakeStripeSide(object):
    """A real HTTP server: /status.json in statuspage.io's shape (indicator settable, or
    'garbage' for a page that is not JSON), and every /v1/ path answering api_status (a Stripe
    API in trouble: its error body, as Stripe sends one)."""

    def __init__(self):
        page = self
        self.indicator = 'none'
        self.api_status = 500
        self.api_hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, code, body):
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 (the stdlib's name)
                if self.path.startswith('/v1/'):
                    page.api_hits += 1
                    return self._answer(page.api_status, json.dumps({'error': {
                        'type': 'api_error', 'message': 'An unknown error occurred.\nPlease contact support@stripe.com.'}}).encode())
                if self.path == '/status.json':
                    if page.indicator == 'garbage':
                        return self._answer(200, b'<html>maintenance</html>')
                    return self._answer(200, json.dumps({'page': {'name': 'Stripe'}, 'status': {
                        'indicator': page.indicator, 'description': 'Partial outage' if page.indicator != 'none'
                        else 'All Systems Operational'}}, separators=(',', ':')).encode())
                return self._answer(404, b'{}')

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope='module')
def localstripe():
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'helpers', 'stripe_api.py'), '--port', str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()  # {"ready": port}
    yield 'http://127.0.0.1:%d' % port
    proc.kill()
    proc.wait(10)


@pytest.fixture(scope='module')
def side():
    server = FakeStripeSide()
    yield server
    server.stop()


def closed_url(path=''):
    return 'http://127.0.0.1:%d%s' % (free_port(), path)


class Shop(object):
    """The lab's orders, the kill switch and its audit table, seen from the test."""

    def __init__(self, lab, api):
        self.lab = lab
        self.api = api
        self.conn = lab.pg()

    def orders(self, total, failed, minutes_ago=1):
        """total orders created minutes_ago, `failed` of them failed; the paid ones charged in localstripe."""
        import stripe
        stripe.api_base = self.api
        with self.conn.cursor() as cur:
            cur.execute('DELETE FROM marketplace."Order"')
            for i in range(total):
                order = 'o-%d' % i
                pi = None
                if i >= failed:
                    pi = stripe.PaymentIntent.create(api_key=KEY, amount=1500, currency='eur', confirm=True,
                                                     payment_method='pm_card_visa',
                                                     metadata={'order_id': order}).to_dict()['id']
                cur.execute('INSERT INTO marketplace."Order" (id, "stripePaymentIntentId", amount, currency, status, '
                            '"createdAt") VALUES (%s, %s, 1500, %s, %s, now() - make_interval(mins => %s))',
                            (order, pi, 'eur', 'failed' if i < failed else 'paid', minutes_ago))

    def flag(self):
        with self.conn.cursor() as cur:
            cur.execute('SELECT payments_enabled FROM marketplace.configuration')
            return cur.fetchone()[0]

    def set_flag(self, value):
        with self.conn.cursor() as cur:
            cur.execute('UPDATE marketplace.configuration SET payments_enabled = %s', (value,))

    def state(self):
        """Everything the runbook may change: the flag, the audit rows, the orders."""
        with self.conn.cursor() as cur:
            cur.execute('SELECT * FROM marketplace.configuration ORDER BY key')
            config = cur.fetchall()
            cur.execute("SELECT to_regclass('oncall_runbooks_audit') IS NOT NULL")
            audit = []
            if cur.fetchone()[0]:
                cur.execute('SELECT id, key, old, new, reason FROM oncall_runbooks_audit ORDER BY id')
                audit = cur.fetchall()
            cur.execute('SELECT id, status FROM marketplace."Order" ORDER BY id')
            return config, audit, cur.fetchall()

    def audit_rows(self):
        return self.state()[1]


@pytest.fixture()
def shop(lab_session, localstripe, side):
    """The session's lab with only what these tests touch put back (a full reseed costs ~10 s)."""
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(localstripe + '/_config/data', method='DELETE'), timeout=10)
    side.indicator, side.api_status = 'none', 500
    lab = lab_session
    s = Shop(lab, localstripe)
    with s.conn.cursor() as cur:
        cur.execute('DROP TABLE IF EXISTS oncall_runbooks_audit')
        cur.execute("UPDATE marketplace.configuration SET payments_enabled = true WHERE key = 'PAYMENTS_ENABLED'")
    if os.path.exists(os.path.join(lab.report_dir, REPORT)):
        os.remove(os.path.join(lab.report_dir, REPORT))
    yield s
    s.conn.close()


def report(lab):
    with open(os.path.join(lab.report_dir, REPORT)) as handle:
        return json.load(handle)


def findings(rep):
    return dict((f['object'], f) for f in rep['findings'])


def decision_row(rep):
    return [t for t in rep['tables'] if t['title'].startswith('Kill switch decision')][0]['rows'][0]


def last_line(proc):
    """The run's closing line (the callback may wrap it: joined again here)."""
    m = re.search(r'TASK \[oncall\.runbooks\.report : Verdict, report and next step\].*?msg: (.*?)\n(?:\S|\n)', proc.stdout, re.S)
    assert m, proc.stdout[-3000:]
    text = ' '.join(m.group(1).split())
    if text[:3] in ('|- ', '>- '):  # the YAML callback shows a message of several lines as a block
        text = text[3:]
    return text[1:-1].replace("''", "'") if text[:1] in '\'"' else text


# impact: orders (total, failed) or 'none' (no order in the window) or 'pg down';
# status: indicator, 'down' (closed port) or 'garbage'; api: 'ok' (localstripe), 'down' (closed
# port), 500/503 (the server above), 'revoked' (localstripe refusing the key).
ROWS = [
    # 1. customer impact AND Stripe trouble: the only rows that switch payments off
    ('impact+status incident', (10, 5), 'major', 'ok', 'critical', 'off'),
    ('impact+api unreachable', (10, 5), 'none', 'down', 'critical', 'off'),
    ('impact+api 503', (10, 5), 'none', 503, 'critical', 'off'),
    ('impact+status down+api 500', (10, 5), 'down', 500, 'critical', 'off'),
    # 2. impact, Stripe healthy by both observers: the cause is ours; nothing to switch off
    ('impact+stripe healthy', (10, 5), 'none', 'ok', 'warning', 'on'),
    # 3. impact, a Stripe observer could not look and the other saw no trouble
    ('impact+status down', (10, 5), 'down', 'ok', 'unknown', 'none'),
    ('impact+status garbage', (10, 5), 'garbage', 'ok', 'unknown', 'none'),
    ('impact+key refused', (10, 5), 'none', 'revoked', 'unknown', 'none'),
    # 4. Stripe trouble, no customer impact
    ('status incident alone', (10, 0), 'major', 'ok', 'warning', 'none'),
    ('api unreachable alone', (10, 0), 'none', 'down', 'warning', 'none'),
    ('api 500 alone', (10, 0), 'none', 500, 'warning', 'none'),
    # 5. all well
    ('all well', (10, 0), 'none', 'ok', 'ok', 'on'),
    # 6. no impact, an observer could not look (the status page unreachable from the controller)
    ('status page unreachable alone', (10, 0), 'down', 'ok', 'unknown', 'none'),
    # 7. the failure rate could not be read: never corroborated
    ('no orders+stripe trouble', 'none', 'major', 503, 'unknown', 'none'),
    ('pg down+stripe trouble', 'pg down', 'major', 'down', 'unknown', 'none'),
    ('no orders+stripe healthy', 'none', 'none', 'ok', 'unknown', 'on'),
    ('no orders+status down', 'none', 'down', 'ok', 'unknown', 'none'),
]


def extra_vars(shop, side, status, api):
    out = {'oncall_stripe_api_key': KEY, 'payments_stripe_retries': 1, 'payments_incident': 'INC-7 payments failing'}
    out['oncall_stripe_status_url'] = closed_url('/status.json') if status == 'down' else side.url + '/status.json'
    side.indicator = status if status != 'down' else 'none'
    if api == 'ok':
        out['oncall_stripe_api_base'] = shop.api
    elif api == 'revoked':
        out['oncall_stripe_api_base'] = shop.api
        out['oncall_stripe_api_key'] = 'sk_test_revoked_0000wxyz'
    elif api == 'down':
        out['oncall_stripe_api_base'] = closed_url()
    else:
        side.api_status = api
        out['oncall_stripe_api_base'] = side.url
    return out


@pytest.mark.parametrize('name,impact,status,api,verdict,action', ROWS, ids=[r[0] for r in ROWS])
def test_every_row_of_the_decision_table(shop, side, name, impact, status, api, verdict, action):
    ev = extra_vars(shop, side, status, api)
    if impact == 'none':
        shop.orders(4, 2, minutes_ago=180)  # orders, but none in the last hour
    elif impact == 'pg down':
        shop.orders(10, 5)
        ev['oncall_pg_port'] = free_port()
    else:
        shop.orders(*impact)
    before = shop.state()
    res = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    rep = report(shop.lab)  # the report is written in every row
    f = findings(rep)
    assert f['payments kill switch']['verdict'] == verdict, f['payments kill switch']
    assert f['payments kill switch']['action'] == action
    assert decision_row(rep)['action'] == action
    for finding in rep['findings']:  # every figure is one line, and the key is nowhere
        assert '\n' not in str(finding['figure']) and 'support@stripe.com' not in str(finding['figure'])
    assert KEY not in res.stdout + res.stderr and KEY[-12:] not in json.dumps(rep)
    assert last_line(res).startswith('VERDICT ') and REPORT[:-12] in last_line(res)

    if action == 'off':
        assert recap(res)['failed'] == 0 and recap(res)['changed'] == 1, res.stdout[-3000:]
        assert shop.flag() is False
        assert shop.audit_rows()[-1][2:] == (True, False, 'INC-7 payments failing')
        assert decision_row(rep)['remediation'] == 'applied'
    else:  # nothing switched, nothing written
        assert shop.state() == before
        assert shop.flag() is True
        assert recap(res)['failed'] == 0 and recap(res)['changed'] == 0, res.stdout[-3000:]
        assert decision_row(rep)['remediation'] == 'nothing to switch'
        if impact == 'pg down':  # the switch cannot be read: the run still ends with its report
            assert f['orders database']['verdict'] == 'critical'
            assert 'cannot connect to PostgreSQL' in f['orders database']['figure']
            assert decision_row(rep)['switch_before'] == 'unknown'

    api_finding = f['Stripe API']
    if api == 'down':
        assert api_finding['verdict'] == 'critical'
        assert re.match(r'Stripe API unreachable: no answer from http://127\.0\.0\.1:\d+ after 1 retry '
                        r'\(connection refused\)$', api_finding['figure']), api_finding
    elif api in (500, 503):
        assert api_finding['verdict'] == 'critical'
        assert api_finding['figure'] == ('Stripe API 5xx: %s answered HTTP %d after 1 retry (An unknown error occurred)'
                                         % (side.url, api)), api_finding
    elif api == 'revoked':
        assert api_finding['figure'] == 'Stripe API key refused: %s rejected the API key ending in ...wxyz' % shop.api
    else:
        assert api_finding['verdict'] == 'ok'
    if status == 'down':
        assert f['Stripe status page']['verdict'] == 'unknown'
        assert f['Stripe status page']['figure'] == 'status page unreachable: connection refused'


def test_stripe_failing_with_impact_diagnosis_check_then_one_real_switch(shop, side):
    """Defect 1 (a): a Stripe API answering 503 after its retries used to crash the diagnosis
    inside stripe_reconcile (no verdict, no report, the kill switch never reached)."""
    shop.orders(10, 4)
    ev = extra_vars(shop, side, 'none', 503)
    del ev['payments_incident']  # the reason recorded is then the decision's own
    diagnosis = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev)
    # critical (40% of orders failed, Stripe failing): the job fails on its verdict, after the report
    assert recap(diagnosis)['failed'] == 0 and recap(diagnosis)['verdict_failed'] and recap(diagnosis)['changed'] == 0, diagnosis.stdout[-3000:]
    rep = report(shop.lab)
    assert decision_row(rep)['action'] == 'off' and decision_row(rep)['remediation'] == 'not run (diagnosis only)'
    assert findings(rep)['payment failure rate (last 1h)']['figure'] == '40% (4 of 10 orders failed)'
    assert findings(rep)['duplicate charges (1d)']['verdict'] == 'unknown'
    assert rep['incident']['impact'] == '40.0% of 10 orders failed'
    line = last_line(diagnosis)
    assert line.startswith('VERDICT CRITICAL') and 'payment_failure-' in line
    assert line.endswith('next: ansible-playbook playbooks/runbooks/payment_failure.yml --tags remediate '
                         '-e payments_incident=INC-...'), line
    assert shop.flag() is True

    before = shop.state()
    check = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate', check=True, diff=True)
    assert recap(check)['failed'] == 0 and recap(check)['changed'] == 1, check.stdout[-3000:]
    assert '+PAYMENTS_ENABLED: False' in check.stdout
    assert shop.state() == before  # --check changed nothing: flag, audit rows, orders

    off = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    assert recap(off)['failed'] == 0 and recap(off)['changed'] == 1, off.stdout[-3000:]
    assert shop.flag() is False
    rows = shop.audit_rows()
    assert len(rows) == 1 and rows[0][2:4] == (True, False)
    assert rows[0][4] == 'payment_failure runbook: customers fail to pay and Stripe is in trouble: switch payments off'
    rep = report(shop.lab)
    assert rep['incident']['fix_applied'] == 'kill switch off'
    switch_step = [st for st in rep['steps'] if st['name'] == 'Kill switch'][0]
    assert json.dumps(switch_step).count('disable payments') >= 1, switch_step
    assert last_line(off).endswith('next: once Stripe has recovered: ansible-playbook playbooks/runbooks/payment_failure.yml '
                                   '--tags remediate (reconciles the outage window, then accepts payments again)')
    again = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    assert recap(again)['changed'] == 0 and len(shop.audit_rows()) == 1, again.stdout[-3000:]


def test_only_the_status_page_unreachable_switches_nothing(shop, side):
    """Defect 1 (b): with only the status page unreachable from the controller, remediation
    used to plan to switch payments off (even with no failed payment at all)."""
    shop.orders(10, 0)
    ev = extra_vars(shop, side, 'down', 'ok')
    before = shop.state()
    check = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate', check=True, diff=True)
    assert recap(check)['changed'] == 0 and 'PAYMENTS_ENABLED: False' not in check.stdout, check.stdout[-3000:]
    res = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    assert recap(res)['changed'] == 0 and shop.state() == before
    rep = report(shop.lab)
    assert findings(rep)['Stripe status page']['verdict'] == 'unknown'
    assert decision_row(rep)['remediation'] == 'nothing to switch'


def test_switched_off_then_stripe_recovers_reconcile_then_on(shop, side):
    """Stripe healthy by both observers and payments off: reconcile the outage window first,
    then accept payments again (moved from test_playbooks.py, now with customer impact)."""
    import stripe
    stripe.api_base = shop.api

    def pi(order):
        return stripe.PaymentIntent.create(api_key=KEY, amount=1500, currency='eur', confirm=True,
                                           payment_method='pm_card_visa', metadata={'order_id': order}).to_dict()['id']
    paid, drifted, dup_a = pi('o-paid'), pi('o-drift'), pi('o-dup')
    pi('o-dup')  # charged twice
    with shop.conn.cursor() as cur:
        cur.execute('DELETE FROM marketplace."Order"')
        cur.executemany('INSERT INTO marketplace."Order" (id, "stripePaymentIntentId", amount, currency, status) '
                        'VALUES (%s, %s, 1500, %s, %s)', [('o-paid', paid, 'eur', 'paid'), ('o-drift', drifted, 'eur', 'pending'),
                                                          ('o-dup', dup_a, 'eur', 'paid'), ('o-f1', None, 'eur', 'failed'),
                                                          ('o-f2', None, 'eur', 'failed')])

    def order_status(order):
        with shop.conn.cursor() as cur:
            cur.execute('SELECT status FROM marketplace."Order" WHERE id = %s', (order,))
            return cur.fetchone()[0]
    ev = extra_vars(shop, side, 'major', 'ok')
    off = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    assert recap(off)['changed'] == 1 and shop.flag() is False, off.stdout[-3000:]
    assert findings(report(shop.lab))['duplicate charges (1d)']['verdict'] == 'critical'

    ev = extra_vars(shop, side, 'none', 'ok')  # Stripe back; the window still shows the failures
    diagnosis = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev)
    assert shop.flag() is False and last_line(diagnosis).endswith(
        'next: ansible-playbook playbooks/runbooks/payment_failure.yml --tags remediate'), last_line(diagnosis)
    back = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    assert recap(back)['failed'] == 0, back.stdout[-3000:]
    assert shop.flag() is True
    assert order_status('o-drift') == 'paid'  # the outage window was reconciled first
    rep = report(shop.lab)
    assert rep['incident']['start_time'] and rep['incident']['fix_applied'] == 'kill switch on'
    assert [r[2:4] for r in shop.audit_rows()] == [(True, False), (False, True)]
    again = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    assert recap(again)['changed'] == 0, again.stdout[-3000:]

    nightly = shop.lab.playbook('reconcile_payments.yml', extra_vars=ev)  # reports, fixes nothing
    assert recap(nightly)['failed'] == 0 and recap(nightly)['changed'] == 0, nightly.stdout[-3000:]
    with open(os.path.join(shop.lab.report_dir, 'reconcile_payments-latest.json')) as handle:
        nightly_report = json.load(handle)
    assert sorted(row['kind'] for row in nightly_report['tables'][0]['rows']) == ['duplicate_charge']
    assert os.path.exists(os.path.join(shop.lab.report_dir, 'reconcile-discrepancies.csv'))


def test_nightly_reconciliation_with_stripe_down_reports_unknown(shop, side):
    shop.orders(3, 0)
    ev = extra_vars(shop, side, 'none', 'down')
    res = shop.lab.playbook('reconcile_payments.yml', extra_vars=ev)
    assert recap(res)['failed'] == 0 and recap(res)['verdict_failed'] and recap(res)['changed'] == 0, res.stdout[-3000:]
    with open(os.path.join(shop.lab.report_dir, 'reconcile_payments-latest.json')) as handle:
        rep = json.load(handle)
    f = findings(rep)
    assert f['Stripe API']['verdict'] == 'critical' and f['Stripe API']['figure'].startswith('Stripe API unreachable: ')
    assert f['duplicate charges (1d)']['verdict'] == 'unknown'
    assert rep['tables'][0]['rows'] == []
    assert 'VERDICT CRITICAL - report ' in res.stdout and 'reconcile_payments-' in res.stdout


def test_a_failing_step_still_leaves_the_report_and_fails_the_run(shop, side):
    shop.orders(10, 5)
    ev = extra_vars(shop, side, 'major', 'ok')
    ev['oncall_orders'] = {'table': 'marketplace.no_such_orders'}
    before = shop.state()
    res = shop.lab.playbook('runbooks/payment_failure.yml', extra_vars=ev, tags='remediate')
    assert res.returncode != 0 and shop.state() == before
    rep = report(shop.lab)
    step = [f for f in rep['findings'] if f['object'].startswith('payment failure runbook on ')]
    assert step and step[0]['verdict'] == 'critical', rep['findings']
    assert 'the orders mapping does not match the database' in step[0]['figure']
    assert 'fix the failed part, then rerun' in last_line(res)
