#!/usr/bin/env python
"""Flush 1,000,000 `gemini:*` keys while 50,000 other keys stay, with a client PINGing every ms.

Needs the development set-up (`scripts/setup --dev`): the benches reuse the tests' helpers,
which import pytest.

Contenders, each against a freshly filled redis-server on a free loopback port:
  keys|xargs DEL     the runbook's `redis-cli KEYS 'gemini:*' | xargs redis-cli DEL`
  scan|xargs UNLINK  `redis-cli --scan --pattern 'gemini:*' | xargs redis-cli UNLINK`
  module_utils       redis_cache's plan and apply, called in a Python process of their own
  ansible CLI        `ansible localhost -m oncall.runbooks.redis_cache` (state: flushed)

Printed per contender: wall time, worst and p99 PING round trip of the concurrent client (a
separate process that sends PING every millisecond), the slowest single command in Redis'
SLOWLOG (the server's own measure of a stall), Redis commands processed (the pinger's
own excluded), for the module the time of the flush itself (inner_s, without the Python
or Ansible start-up), peak RSS of the contender's processes, peak extra Redis memory (used_memory
sampled every 20 ms, minus the filled baseline), and whether every one of the other keys is
still there. Keys are made with DEBUG POPULATE: gemini:analysis:scene:N (1,000,000) and, as
the others, project:N and session:gemini:N (25,000 each; the second contains "gemini" but does
not match the pattern).

    .venv/bin/python bench/cache_flush.py [--keys 1000000] [--others 50000] [--only NAME] [--repeat N]

The machine's load changes every figure (two cores shared with other work): the script prints
the load average, and --repeat N interleaves N runs of each contender and prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

try:
    from helpers import _env, ansible_bin, free_port  # noqa: E402  (the tests' own helpers)
except ModuleNotFoundError as exc:  # pragma: no cover - a set-up without the test requirements
    raise SystemExit('bench/cache_flush.py needs the development set-up (scripts/setup --dev), '
                     'which installs what the tests need: %s' % exc)

PINGER = r'''
import json, sys, time, select
import redis
port = int(sys.argv[1])
c = redis.Redis(host="127.0.0.1", port=port)
m = redis.Redis(host="127.0.0.1", port=port)
samples, mem, info_calls = [], [], 0
next_tick = time.perf_counter()
next_mem = 0.0
print("ready", flush=True)
while True:
    if select.select([sys.stdin], [], [], 0)[0]:
        break
    t = time.perf_counter()
    c.ping()
    samples.append((time.perf_counter() - t) * 1000.0)
    if t >= next_mem:
        mem.append(int(m.info("memory")["used_memory"]))
        info_calls += 1
        next_mem = t + 0.02
    next_tick += 0.001
    delay = next_tick - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    else:
        next_tick = time.perf_counter()
print(json.dumps({"samples": samples, "mem": mem, "commands": len(samples) + info_calls}))
'''

MODULE_UTILS = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import cache as rc
params = dict(login_host="127.0.0.1", login_port=int(sys.argv[2]), db=0, url=None, login_user=None,
              login_password=None, tls=False, ca_certs=None, validate_certs=True, connect_timeout="5s",
              socket_timeout="30s", cluster_mode="auto", scan_count=1000, batch_size=1000,
              patterns=["gemini:*"], state="flushed", flush_all=False, confirm=False)
started = time.monotonic()
clustered, nodes = rconn.primaries(params, decode_responses=False)
stats = {}
removed = sum(rc.apply(nodes, a, params, clustered, stats) for a in rc.plan(nodes, params, False))
print(json.dumps(dict(stats, removed=removed, ms=(time.monotonic() - started) * 1000)))
'''

# runs a command and reports the peak RSS of its processes (the largest one)
RSS_WRAPPER = r'''
import resource, subprocess, sys, json
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr[-2000:])
print(proc.stdout.strip())
print(json.dumps({"rc": proc.returncode, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
'''


class Server(object):
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix='oncall-bench-')
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'no', '--dir', self.dir, '--enable-debug-command', 'local'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('redis-server did not start')

    def client(self):
        import redis
        return redis.Redis(host='127.0.0.1', port=self.port, decode_responses=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def fill(client, keys, others):
    client.flushall()
    client.execute_command('DEBUG', 'POPULATE', keys, 'gemini:analysis:scene', 64)
    client.execute_command('DEBUG', 'POPULATE', others // 2, 'project', 64)
    client.execute_command('DEBUG', 'POPULATE', others - others // 2, 'session:gemini', 64)
    assert client.dbsize() == keys + others


def _s(value):
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)


def count(client, pattern):
    return sum(1 for _k in client.scan_iter(match=pattern, count=5000))


def contenders(port):
    cli = 'redis-cli -h 127.0.0.1 -p %d' % port
    args = json.dumps(dict(login_host='127.0.0.1', login_port=port, state='flushed', patterns=['gemini:*']))
    return [
        ('keys|xargs DEL', ['sh', '-c', "%s KEYS 'gemini:*' | xargs %s DEL > /dev/null" % (cli, cli)]),
        ('scan|xargs UNLINK', ['sh', '-c', "%s --scan --pattern 'gemini:*' | xargs %s UNLINK > /dev/null"
                               % (cli, cli)]),
        ('module_utils', [sys.executable, '-c', MODULE_UTILS, os.path.join(ROOT, '.collections'),
                          str(port)]),
        ('ansible CLI', [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
                         '-m', 'oncall.runbooks.redis_cache', '-a', args]),
    ]


def measure(server, name, cmd, keys, others):
    client = server.client()
    fill(client, keys, others)
    baseline = int(client.info('memory')['used_memory'])
    # the server's own view of a stall: every command slower than 1 ms goes to the SLOWLOG
    client.config_set('slowlog-log-slower-than', 1000)
    client.config_set('slowlog-max-len', 100000)
    client.slowlog_reset()
    calls_before = int(client.info('stats')['total_commands_processed'])
    pinger = subprocess.Popen([sys.executable, '-c', PINGER, str(server.port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert pinger.stdout.readline().strip() == 'ready'
    time.sleep(0.2)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, '-c', RSS_WRAPPER] + cmd, capture_output=True, text=True,
                          cwd=ROOT, env=_env(), check=False)
    wall = time.monotonic() - started
    time.sleep(0.1)
    pinger.stdin.close()
    out = json.loads(pinger.stdout.read().strip().splitlines()[-1])
    pinger.wait(10)
    slow = client.slowlog_get(100000)
    slowest = {}
    slowest['slowest_cmd_ms'] = round(max([e['duration'] for e in slow] or [0]) / 1000.0, 2)
    worst = max([x['duration'] for x in slow] or [0])
    slowest['slowest_cmd'] = ([_s(e['command'])[:40] for e in slow if e['duration'] == worst] or [''])[0]
    calls = int(client.info('stats')['total_commands_processed']) - calls_before - out['commands'] - 1
    lines = proc.stdout.strip().splitlines()
    wrapper = json.loads(lines[-1])
    samples = sorted(out['samples'])
    row = dict(
        contender=name, rc=wrapper['rc'], wall_s=round(wall, 2),
        worst_ping_ms=round(samples[-1], 2), p99_ping_ms=round(samples[int(len(samples) * 0.99)], 2),
        pings=len(samples), commands=calls, peak_rss_mb=round(wrapper['maxrss_kb'] / 1024.0, 1),
        redis_extra_mb=round((max(out['mem']) - baseline) / 1048576.0, 1),
        gemini_left=count(client, 'gemini:*'),
        others_left=count(client, 'project:*') + count(client, 'session:gemini:*'),
    )
    row['others_lost'] = others - row['others_left']
    row.update(slowest)
    if name == 'ansible CLI':
        doc = json.loads('\n'.join(lines[:-1]))
        result = doc['plays'][0]['tasks'][0]['hosts']['localhost']
        row['inner_s'] = result['actions'][0]['seconds']
    elif name == 'module_utils':
        inner = json.loads(lines[-2])
        row['inner_s'] = round(inner['ms'] / 1000.0, 2)
    client.close()
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--keys', type=int, default=1000000)
    parser.add_argument('--others', type=int, default=50000)
    parser.add_argument('--only', action='append', help='run only these contenders (by name)')
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs per contender (interleaved); the table shows each run and the median wall time')
    args = parser.parse_args()
    server = Server()
    rows = []
    try:
        for _run in range(args.repeat):
            for name, cmd in contenders(server.port):
                if args.only and name not in args.only:
                    continue
                rows.append(measure(server, name, cmd, args.keys, args.others))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    cols = ['contender', 'wall_s', 'inner_s', 'worst_ping_ms', 'p99_ping_ms', 'slowest_cmd_ms',
            'slowest_cmd', 'commands', 'peak_rss_mb', 'redis_extra_mb', 'gemini_left', 'others_lost']
    print()
    print(' | '.join(cols))
    for row in rows:
        print(' | '.join(str(row.get(c)) for c in cols))
    if args.repeat > 1:
        print()
        print('contender | median wall_s | median worst_ping_ms | median slowest_cmd_ms')
        for name in dict.fromkeys(r['contender'] for r in rows):
            mine = [r for r in rows if r['contender'] == name]

            def median(key, mine=mine):
                values = sorted(r[key] for r in mine)
                return values[len(values) // 2]
            print('%s | %s | %s | %s' % (name, median('wall_s'), median('worst_ping_ms'),
                                         median('slowest_cmd_ms')))
    print('load average during the run: %.2f %.2f %.2f' % os.getloadavg())
    if any(r['others_lost'] or r['gemini_left'] or r['rc'] for r in rows):
        print('FAILED: a contender lost other keys, left gemini keys, or failed')
        sys.exit(1)


if __name__ == '__main__':
    main()
