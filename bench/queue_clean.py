#!/usr/bin/env python
"""Clean 100,000 failed BullMQ jobs: redis_queue next to Node BullMQ's own queue.clean.

Needs the development set-up (`scripts/setup --dev`): the benches reuse the tests' helpers,
which import pytest.

For each contender the same queue is filled with real failed jobs (lab/node/qtool.js runs a
real BullMQ worker that throws), then cleaned while a second client PINGs Redis in a loop.
Printed per contender: wall time of the clean, Redis commands run (scripts count each command
inside them), the worst PING round trip
seen by the concurrent client, the slowest single command in Redis' SLOWLOG, and the
clean process' peak memory.

    .venv/bin/python bench/queue_clean.py [--jobs 100000] [--node-batch 10000] [--batch 1000] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

try:
    from helpers import RedisServer  # noqa: E402  (the tests' own server starter)
except ModuleNotFoundError as exc:  # pragma: no cover - a set-up without the test requirements
    raise SystemExit('bench/queue_clean.py needs the development set-up (scripts/setup --dev), '
                     'which installs what the tests need: %s' % exc)

NODE_DIR = os.path.join(ROOT, 'lab', 'node')

MODULE_CLEAN = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import redis
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import queues as rq
params = {"login_host": "127.0.0.1", "login_port": int(sys.argv[2]), "connect_timeout": "5s", "socket_timeout": "30s"}
client = redis.Redis(host="127.0.0.1", port=int(sys.argv[2]), decode_responses=True)
queue = rq.make_queue("bullmq", client, "bench", batch_size=int(sys.argv[3]), conn_params=params)
obs = queue.observe()
started = time.monotonic()
actions = rq.plan(queue, obs, {"clean": [{"status": "failed", "older_than": "0s", "older_than_s": 0}]})
planned = time.monotonic()
count, _ = queue.apply(actions[0])
done = time.monotonic()
print(json.dumps({"removed": count, "ms": (done - started) * 1000, "plan_ms": (planned - started) * 1000}))
'''


class Pinger(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        import redis
        self.client = redis.Redis(host='127.0.0.1', port=port)
        self.stop = threading.Event()
        self.samples = []

    def run(self):
        while not self.stop.is_set():
            t = time.perf_counter()
            self.client.ping()
            self.samples.append((time.perf_counter() - t) * 1000)
            time.sleep(0.001)


def run_measured(cmd, port):
    import redis
    admin = redis.Redis(host='127.0.0.1', port=port, decode_responses=True)
    admin.config_set('slowlog-log-slower-than', 1000)  # microseconds: log every call over 1 ms
    admin.config_set('slowlog-max-len', 100000)
    admin.slowlog_reset()
    calls_before = int(admin.info('stats')['total_commands_processed'])
    pinger = Pinger(port)
    pinger.start()
    time.sleep(0.2)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=NODE_DIR)
    out = proc.stdout.read()
    status, usage = os.wait4(proc.pid, 0)[1:]
    proc.returncode = status
    if status:
        raise SystemExit('%s failed with status %d' % (cmd[1], status))
    wall = (time.perf_counter() - started) * 1000
    time.sleep(0.2)
    pinger.stop.set()
    pinger.join()
    slow = admin.slowlog_get(100000)
    calls = int(admin.info('stats')['total_commands_processed']) - calls_before - len(pinger.samples)
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        process_wall_ms=round(wall, 1),
        redis_calls=calls,
        worst_ping_ms=round(max(pinger.samples), 2),
        p99_ping_ms=round(sorted(pinger.samples)[int(len(pinger.samples) * 0.99)], 2),
        slowest_command_ms=round(max([e['duration'] for e in slow] or [0]) / 1000.0, 2),
        slowest_command=_text(max(slow, key=lambda e: e['duration'])['command'])[:60] if slow else '',
        peak_rss_mb=round(usage.ru_maxrss / 1024.0, 1),
    )
    return result


def _text(value):
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)


def fill(port, jobs):
    t = time.perf_counter()
    subprocess.run(['node', os.path.join(NODE_DIR, 'qtool.js'), 'bullmq', 'make-failed',
                    '--queue', 'bench', '--count', str(jobs), '--port', str(port)],
                   check=True, stdout=subprocess.DEVNULL, cwd=NODE_DIR)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--jobs', type=int, default=100000)
    ap.add_argument('--node-batch', type=int, default=10000)
    ap.add_argument('--batch', type=int, default=1000)
    ap.add_argument('--repeat', type=int, default=1,
                    help='runs of both contenders (interleaved); prints the median ratio and its spread')
    args = ap.parse_args()
    server = RedisServer()
    try:
        rows = []
        for _run in range(args.repeat):
            for name, cmd in (
                ('node bullmq queue.clean (batch %d)' % args.node_batch,
                 ['node', os.path.join(ROOT, 'bench', 'node_clean.js'), '--port', str(server.port),
                  '--queue', 'bench', '--batch', str(args.node_batch)]),
                ('oncall.runbooks redis_queue (batch %d)' % args.batch,
                 [sys.executable, '-c', MODULE_CLEAN, os.path.join(ROOT, '.collections'),
                  str(server.port), str(args.batch)]),
            ):
                server.client().flushall()
                fill_s = fill(server.port, args.jobs)
                res = run_measured(cmd, server.port)
                res['contender'] = name
                res['fill_s'] = round(fill_s, 1)
                res['load1'] = round(os.getloadavg()[0], 2)
                rows.append(res)
                print(json.dumps(res), flush=True)
        print('%-42s %8s %9s %10s %11s %10s %12s %8s %6s' % (
            'contender', 'removed', 'clean ms', 'redis cmds', 'worst ping', 'p99 ping', 'slowest cmd',
            'peak MB', 'load1'))
        for row in rows:
            print('%-42s %8d %9.0f %10d %9.2fms %8.2fms %10.2fms %8.1f %6.2f' % (
                row['contender'], row['removed'], row['ms'], row['redis_calls'],
                row['worst_ping_ms'], row['p99_ping_ms'], row['slowest_command_ms'],
                row['peak_rss_mb'], row['load1']))
        ratios = sorted(rows[i + 1]['ms'] / rows[i]['ms'] for i in range(0, len(rows), 2))
        print('ratio module/node clean time per run: %s' % ', '.join('%.2f' % r for r in ratios))
        print('median ratio %.2f (spread %.2f to %.2f); load average at the end %.2f %.2f %.2f'
              % ((ratios[len(ratios) // 2], ratios[0], ratios[-1]) + os.getloadavg()))
    finally:
        server.stop()


if __name__ == '__main__':
    main()
