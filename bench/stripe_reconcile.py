#!/usr/bin/env python
"""Reconcile 10,000 orders against 10,000 PaymentIntents: stripe_reconcile against the
per-order approach (one PaymentIntent retrieve per order, what a naive script does).

Both run against localstripe (tests/helpers/stripe_api.py) and a throw-away PostgreSQL on
loopback. Printed: Stripe API requests, wall time, and the module process' peak memory.

    .venv/bin/python bench/stripe_reconcile.py [--orders 10000] [--skip-per-order]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

from helpers import PostgresServer, free_port  # noqa: E402  (the tests' own server starters)

MODULE = os.path.join(ROOT, 'plugins', 'modules', 'stripe_reconcile.py')
KEY = 'sk_test_bench_0000'


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.load(resp)


def stats(api):
    with urllib.request.urlopen(api + '/_harness/stats', timeout=30) as resp:
        return sum(json.load(resp).values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--orders', type=int, default=10000)
    ap.add_argument('--skip-per-order', action='store_true')
    args = ap.parse_args()
    port = free_port()
    harness = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'helpers', 'stripe_api.py'), '--port', str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    harness.stdout.readline()
    api = 'http://127.0.0.1:%d' % port
    pg = PostgresServer()
    tmp = tempfile.mkdtemp(prefix='oncall-bench-')
    try:
        t = time.perf_counter()
        ids = post(api + '/_harness/bulk', {'count': args.orders, 'prefix': 'o-'})['ids']
        conn = pg.connect()
        with conn.cursor() as cur:
            cur.execute('CREATE TABLE orders (id text PRIMARY KEY, stripe_payment_intent_id text, amount int, '
                        'currency text, status text, created_at timestamptz DEFAULT now())')
            cur.executemany('INSERT INTO orders VALUES (%s, %s, 1000, %s, %s, now())',
                            [('o-%d' % i, pi, 'eur', 'pending') for i, pi in enumerate(ids)])
        print('seeded %d PaymentIntents and orders in %.1f s' % (len(ids), time.perf_counter() - t))
        post(api + '/_harness/reset', {})

        module_args = {'ANSIBLE_MODULE_ARGS': {
            'api_key': KEY, 'api_base': api, 'login_host': '127.0.0.1', 'login_port': pg.port,
            'login_user': 'postgres', 'db': 'postgres', 'since': '1d', 'max_items': 10}}
        args_file = os.path.join(tmp, 'args.json')
        with open(args_file, 'w') as handle:
            json.dump(module_args, handle)
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, '.collections'))
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, MODULE, args_file], stdout=subprocess.PIPE, env=env, text=True)
        out = proc.stdout.read()
        status, usage = os.wait4(proc.pid, 0)[1:]
        wall = time.perf_counter() - t
        result = json.loads(out)
        if status or result.get('failed'):
            raise SystemExit('module failed: %s' % result.get('msg'))
        rows = [{'approach': 'stripe_reconcile (list pages)', 'requests': result['api_requests'],
                 'server_counted': stats(api), 'wall_s': round(wall, 2),
                 'peak_rss_mb': round(usage.ru_maxrss / 1024.0, 1),
                 'discrepancies': sum(v['count'] for v in result['summary'].values())}]

        if not args.skip_per_order:
            import stripe
            stripe.api_base = api
            post(api + '/_harness/reset', {})
            t = time.perf_counter()
            for pi in ids:
                stripe.PaymentIntent.retrieve(pi, api_key=KEY)
            rows.append({'approach': 'per-order retrieve', 'requests': len(ids), 'server_counted': stats(api),
                         'wall_s': round(time.perf_counter() - t, 2), 'peak_rss_mb': None, 'discrepancies': None})

        print('%-32s %9s %9s %9s %9s' % ('approach', 'requests', 'counted', 'wall s', 'peak MB'))
        for row in rows:
            peak = row['peak_rss_mb'] if row['peak_rss_mb'] is not None else '-'
            print('%-32s %9d %9d %9.2f %9s' % (row['approach'], row['requests'], row['server_counted'], row['wall_s'], peak))
        if len(rows) == 2:
            print('requests: %.2f%% of the per-order approach' % (100.0 * rows[0]['requests'] / rows[1]['requests']))
        print(json.dumps(rows))
    finally:
        harness.kill()
        harness.wait(10)
        pg.stop()


if __name__ == '__main__':
    main()
