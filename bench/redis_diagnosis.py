#!/usr/bin/env python
"""Diagnosis at scale: redis_cache health (keys per pattern) and redis_queue_info discovery on a
keyspace of millions of keys, beside `redis-cli --scan --pattern P | wc -l`.

Needs the development set-up (`scripts/setup --dev`: the benches reuse the tests' helpers, which
import pytest).

A redis-server on a free loopback port is filled with DEBUG POPULATE: 60% cache:user:N, 30%
cache:page:N, 10% sess:N, plus one real BullMQ and one real Bull queue (lab/node). Contenders,
each run --repeat times (interleaved), through the `ansible` CLI as users run them:

  redis-cli scan|wc     `redis-cli --scan --pattern P | wc -l`, once per pattern (the anchor)
  health estimated      redis_cache, patterns counted from a bounded sample (the default)
  health exact          redis_cache count_method: exact (a full SCAN MATCH per pattern)
  queue discovery       redis_queue_info, discovery of every queue under the prefix
  queue read (named)    redis_queue_info with the two queues named, as the queues role passes
                        the inventory's queues_managed (no discovery SCAN)

Printed per run: wall time, SCAN calls the server saw, the counts and how they were obtained;
then medians and spread, and the load average.

    .venv/bin/python bench/redis_diagnosis.py [--keys 2000000] [--repeat 3] [--skip-exact]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))
sys.path.insert(0, os.path.join(ROOT, 'bench'))

try:
    from helpers import _env, ansible_bin, node  # noqa: E402  (the tests' own helpers)
    from cache_flush import Server  # noqa: E402  (a redis-server with DEBUG enabled)
except ModuleNotFoundError as exc:  # pragma: no cover - a set-up without the test requirements
    raise SystemExit('bench/redis_diagnosis.py needs the development set-up (scripts/setup --dev), '
                     'which installs what the tests need: %s' % exc)

PATTERNS = ['cache:*', 'cache:page:*', 'sess:*']


def fill(client, keys):
    client.flushall()
    for prefix, share in (('cache:user', 0.6), ('cache:page', 0.3), ('sess', 0.1)):
        client.execute_command('DEBUG', 'POPULATE', int(keys * share), prefix, 16)


def scan_calls(client):
    return int(client.info('commandstats').get('cmdstat_scan', {}).get('calls', 0))


def cli_anchor(port):
    counts = {}
    for pattern in PATTERNS:
        out = subprocess.run('redis-cli -h 127.0.0.1 -p %d --scan --pattern %s | wc -l'
                             % (port, pattern.replace('*', '\\*')), shell=True, check=True,
                             capture_output=True, text=True).stdout
        counts[pattern] = int(out.strip())
    return counts


def ansible(module, args):
    cmd = [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-m', 'oncall.runbooks.' + module, '-a', json.dumps(args)]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
    doc = json.loads(proc.stdout[proc.stdout.find('{'):])
    result = doc['plays'][0]['tasks'][0]['hosts']['localhost']
    if result.get('failed'):
        raise SystemExit('%s failed: %s' % (module, result.get('msg')))
    return result


def run(client, port, name):
    conn = dict(login_host='127.0.0.1', login_port=port)
    client.config_resetstat()
    started = time.monotonic()
    if name == 'redis-cli scan|wc':
        counts, how = cli_anchor(port), 'exact'
    elif name == 'queue discovery':
        res = ansible('redis_queue_info', conn)
        counts = dict((q['name'], q['flavor']) for q in res['queues'])
        how = 'discovery'
    elif name == 'queue read (named)':
        # the queues named as the inventory names them (queues_managed): no discovery SCAN
        res = ansible('redis_queue_info', dict(conn, queues=[{'name': 'mq-bench', 'flavor': 'bullmq'},
                                                             {'name': 'b-bench', 'flavor': 'bull'}]))
        counts = dict((q['name'], q['counts'].get('wait')) for q in res['queues'])
        how = 'named (waiting jobs)'
    else:
        args = dict(conn, patterns=PATTERNS, count_timeout='10m')
        if name == 'health exact':
            args['count_method'] = 'exact'
        res = ansible('redis_cache', args)
        counts = dict((p['pattern'], p['count']) for p in res['patterns'])
        how = ','.join(sorted(set(
            '%s(±%s, %s sampled)' % (p['count_method'], p['count_margin'], p['sampled_keys'])
            if p['count_method'] == 'estimated' else p['count_method'] for p in res['patterns'])))
    wall = time.monotonic() - started
    return dict(contender=name, wall_s=round(wall, 2), scan_calls=scan_calls(client), counts=counts,
                how=how, load1=round(os.getloadavg()[0], 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--keys', type=int, default=2000000)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--skip-exact', action='store_true', help='leave out the exact health')
    args = ap.parse_args()
    server = Server()
    rows = []
    try:
        client = server.client()
        t = time.monotonic()
        fill(client, args.keys)
        node('qtool.js', 'bullmq', 'add', '--queue', 'mq-bench', '--count', 5, port=server.port)
        node('qtool.js', 'bull', 'add', '--queue', 'b-bench', '--count', 5, port=server.port)
        print('filled %d keys in %.1fs; used_memory %s; load %.2f %.2f %.2f'
              % (client.dbsize(), time.monotonic() - t, client.info('memory')['used_memory_human'],
                 *os.getloadavg()), flush=True)
        names = ['redis-cli scan|wc', 'health estimated', 'queue discovery', 'queue read (named)']
        if not args.skip_exact:
            names.append('health exact')
        for _run in range(args.repeat):
            for name in names:
                rows.append(run(client, server.port, name))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    print()
    print('contender | median wall_s | min..max | scan calls | counts | how')
    anchor = None
    for name in dict.fromkeys(r['contender'] for r in rows):
        mine = [r for r in rows if r['contender'] == name]
        walls = sorted(r['wall_s'] for r in mine)
        median = walls[len(walls) // 2]
        anchor = median if name == 'redis-cli scan|wc' else anchor
        print('%s | %.2f | %.2f..%.2f | %d | %s | %s' % (
            name, median, walls[0], walls[-1], mine[-1]['scan_calls'],
            json.dumps(mine[-1]['counts'], sort_keys=True), mine[-1]['how']))
    for name in dict.fromkeys(r['contender'] for r in rows):
        if name != 'redis-cli scan|wc':
            walls = sorted(r['wall_s'] for r in rows if r['contender'] == name)
            print('ratio %s / redis-cli scan|wc: %.2f' % (name, walls[len(walls) // 2] / anchor))
    print('load average at the end: %.2f %.2f %.2f' % os.getloadavg())


if __name__ == '__main__':
    main()
