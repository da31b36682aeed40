#!/usr/bin/env python
"""Fixed cost of a module call through `ansible` ad hoc, beside `ansible localhost -m ping`.

Every round runs, in a shuffled order, `ansible localhost -c local -m ping` (the anchor) and,
for each module of the collection, `ansible localhost -c local -m oncall.runbooks.<module>` with
one unknown option: AnsibleModule refuses it after the module and every module_utils it imports
at load time are imported, so that call costs exactly the fixed part of a call (the controller's
start-up, the AnsiballZ payload, the interpreter, the imports, the argument check) and no work.
A few modules are also called for real against a throw-away PostgreSQL and redis-server (the
tests' own, tests/helpers), so that what they import only when they work is counted too.

Printed per module: median wall time and spread over --rounds, the difference to ping's median of
the same rounds, and `python -X importtime` of the module (cumulative ms, and its heaviest
third-party imports). Then the same ping / module pairs with the configuration variants named by
--variants (ANSIBLE_PIPELINING, ...), and what they save on a playbook of --tasks tasks (a
`debug` task costs nothing remotely, so the difference is the per-task overhead of the variant).

    .venv/bin/python bench/fixed_cost.py [--rounds 5] [--modules pg_health_info,redis_queue_info]
        [--variants pipelining] [--tasks 20]

Run it with the checkout's venv Python: the ansible CLI and the interpreter are taken from it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

try:
    from helpers import PostgresServer, RedisServer, ansible_bin  # noqa: E402  (the tests' own servers)
except ImportError as exc:
    sys.exit('bench/fixed_cost.py needs the development set-up (%s is missing): run scripts/setup --dev, '
             'then .venv/bin/python bench/fixed_cost.py' % (getattr(exc, 'name', None) or exc))

PROBE = {'_fixed_cost_probe': 1}  # an unknown option: refused after the imports, before any work

VARIANTS = {
    'default': {},
    'pipelining': {'ANSIBLE_PIPELINING': '1'},
}


def modules():
    names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'plugins', 'modules'))
                   if f.endswith('.py') and not f.startswith('_'))
    return names


def env_for(variant):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
               ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env.update(VARIANTS[variant])
    return env


def call(module, args, variant='default'):
    """(wall seconds, status) of one `ansible` ad hoc call."""
    cmd = [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local', '-m', module]
    if args:
        cmd += ['-a', json.dumps(args)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env_for(variant), capture_output=True, text=True, timeout=300,
                          check=False)
    wall = time.perf_counter() - t0
    try:
        res = json.loads(proc.stdout[proc.stdout.find('{'):])['plays'][0]['tasks'][0]['hosts']['localhost']
        msg = res.get('msg') or ''
        status = 'failed' if res.get('failed') else 'ok'
        if status == 'failed' and ('Unsupported parameters' in msg or 'missing required arguments' in msg):
            status = 'argument check refused the probe (no work)'
        elif status == 'failed':
            status = 'failed: ' + msg[:80]
    except (ValueError, KeyError, IndexError):
        status = 'no result (rc %d): %s' % (proc.returncode, (proc.stderr or proc.stdout)[-200:])
    return wall, status


def importtime(module):
    """Cumulative import ms of the module and its three heaviest third-party packages."""
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-c',
                           'import ansible_collections.oncall.runbooks.plugins.modules.%s' % module],
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, '.collections')),
                          capture_output=True, text=True, check=False)
    total, third = None, {}
    for line in proc.stderr.splitlines():
        if not line.startswith('import time:') or '|' not in line:
            continue
        _self, cumulative, name = line[len('import time:'):].split('|')
        if not cumulative.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip())) // 2
        name = name.strip()
        if name == 'ansible_collections.oncall.runbooks.plugins.modules.%s' % module:
            total = int(cumulative) / 1000.0
        top = name.split('.')[0]
        if top not in ('ansible', 'ansible_collections', 'encodings') and depth <= 4 and '.' not in name:
            if int(cumulative) / 1000.0 >= 10 and top not in sys.stdlib_module_names:
                third[top] = max(third.get(top, 0), int(cumulative) / 1000.0)
    heavy = sorted(third.items(), key=lambda kv: -kv[1])[:3]
    return total, heavy


HIDDEN = {  # what plugins/module_utils/common/imports.py hides, per library (see that file)
    'kafka': ('botocore', 'boto3'),
    'stripe': ('aiohttp', 'httpx', 'anyio'),
}
IMPORT_ONE = ('import sys, time; sys.path.insert(0, %r); t = time.perf_counter(); %s; '
              'print(time.perf_counter() - t)')


def library_import(name, hidden, rounds):
    """Median seconds to import *name* plainly and with *hidden* hidden, alternating."""
    plain, lean = [], []
    collections = os.path.join(ROOT, '.collections')
    lean_stmt = ('from ansible_collections.oncall.runbooks.plugins.module_utils.common.imports import import_without; '
                 'import_without(%r, %r)' % (name, hidden))
    for attempt in range(rounds):
        for out, stmt in ((plain, 'import %s' % name), (lean, lean_stmt)):
            proc = subprocess.run([sys.executable, '-c', IMPORT_ONE % (collections, stmt)], capture_output=True,
                                  text=True, check=True)
            out.append(float(proc.stdout.strip()))
    return summary(plain), summary(lean)


def summary(values):
    return statistics.median(values), min(values), max(values)


def playbook_cost(tasks, variant, rounds):
    """Median wall of a playbook of *tasks* ping tasks on localhost."""
    with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as fh:
        fh.write('- hosts: localhost\n  gather_facts: false\n  tasks:\n')
        for i in range(tasks):
            fh.write('    - name: ping %d\n      ansible.builtin.ping:\n' % i)
        path = fh.name
    walls = []
    try:
        for attempt in range(rounds):
            t0 = time.perf_counter()
            subprocess.run([ansible_bin('ansible-playbook'), path, '-i', 'localhost,', '-c', 'local'], cwd=ROOT,
                           env=env_for(variant), capture_output=True, check=True, timeout=600)
            walls.append(time.perf_counter() - t0)
    finally:
        os.unlink(path)
    return summary(walls)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--modules', default='', help='comma-separated subset (default: every module)')
    ap.add_argument('--variants', default='pipelining', help='comma-separated: %s' % ', '.join(VARIANTS))
    ap.add_argument('--tasks', type=int, default=20, help='tasks of the playbook the variants are compared on')
    args = ap.parse_args()
    if not os.path.exists(ansible_bin('ansible')):
        ap.error('run this with the checkout venv Python (.venv/bin/python): no ansible next to %s' % sys.executable)
    names = [m for m in args.modules.split(',') if m] or modules()
    load_before = [round(x, 2) for x in os.getloadavg()]

    pg = PostgresServer()
    rs = RedisServer()
    try:
        real = {
            'pg_health_info (real call)': ('oncall.runbooks.pg_health_info',
                                           dict(login_host='127.0.0.1', login_port=pg.port, login_db='postgres')),
            'pg_maintenance (real call, check mode of nothing)': (
                'oncall.runbooks.pg_maintenance',
                dict(login_host='127.0.0.1', login_port=pg.port, login_db='postgres', operations={'analyze': {}},
                     tables=['no_such_table'])),
            'redis_queue_info (real call)': ('oncall.runbooks.redis_queue_info',
                                             dict(login_host='127.0.0.1', login_port=rs.port)),
            'host_health_info (real call)': ('oncall.runbooks.host_health_info', {}),
        }
        jobs = {'ping (anchor)': ('ansible.builtin.ping', None)}
        for m in names:
            jobs[m] = ('oncall.runbooks.' + m, PROBE)
        jobs.update(real)
        walls = dict((k, []) for k in jobs)
        statuses = {}
        for attempt in range(args.rounds):
            order = list(jobs)
            random.shuffle(order)
            for key in order:
                wall, status = call(*jobs[key])
                walls[key].append(wall)
                statuses[key] = status
        ping = summary(walls['ping (anchor)'])
        print('ansible ad hoc, %d rounds (shuffled); median s [min..max]; +ping: median minus ping\'s median; '
              'import ms: python -X importtime of the module (cumulative), heaviest third-party packages'
              % args.rounds)
        print('%-52s %7s %17s %7s %8s  %s' % ('call', 'median', 'spread', '+ping', 'import', 'status / heavy imports'))
        rows = {}
        for key in jobs:
            med, low, high = summary(walls[key])
            module = jobs[key][0].split('.')[-1]
            imp, heavy = importtime(module) if key in names else (None, [])
            rows[key] = dict(median_s=round(med, 3), min_s=round(low, 3), max_s=round(high, 3),
                             over_ping_s=round(med - ping[0], 3), import_ms=imp, heavy=heavy, status=statuses[key])
            print('%-52s %7.3f [%6.3f..%6.3f] %+7.3f %8s  %s%s' % (
                key, med, low, high, med - ping[0], '%.0f' % imp if imp is not None else '-', statuses[key],
                (' | ' + ', '.join('%s %.0f' % kv for kv in heavy)) if heavy else ''))
        over = [k for k in rows if rows[k]['over_ping_s'] > 0.3]
        print()
        print('over ping + 0.3 s: %s' % (', '.join(over) or 'none'))

        print()
        print('library imports, plain and with the optional back-ends the modules never use hidden '
              '(median s [min..max], %d alternating rounds)' % args.rounds)
        libs = {}
        for name, hidden in HIDDEN.items():
            plain, lean = library_import(name, hidden, args.rounds)
            libs[name] = dict(plain=plain, hidden=lean)
            print('  %-8s plain %.3f [%.3f..%.3f]  without %s %.3f [%.3f..%.3f]  saves %.3f s' % (
                (name,) + plain + (', '.join(hidden),) + lean + (plain[0] - lean[0],)))

        variants = {}
        for variant in ['default'] + [v for v in args.variants.split(',') if v and v != 'default']:
            if variant not in VARIANTS:
                ap.error('unknown variant %s: choose from %s' % (variant, ', '.join(VARIANTS)))
            pairs = {'ping': [], 'pg_health_info': []}
            for attempt in range(args.rounds):
                pairs['ping'].append(call('ansible.builtin.ping', None, variant)[0])
                pairs['pg_health_info'].append(call(*real['pg_health_info (real call)'], variant=variant)[0])
            book = playbook_cost(args.tasks, variant, max(3, args.rounds // 2))
            variants[variant] = dict(ping=summary(pairs['ping']), pg_health_info=summary(pairs['pg_health_info']),
                                     playbook=book)
        print()
        print('configuration variants (median s [min..max]); playbook: %d ping tasks on localhost' % args.tasks)
        base = variants['default']['playbook'][0]
        for variant, v in variants.items():
            print('  %-12s ping %.3f [%.3f..%.3f]  pg_health_info %.3f [%.3f..%.3f]  playbook %.2f [%.2f..%.2f]'
                  '  per task vs default %+.3f s' % ((variant,) + v['ping'] + v['pg_health_info'] + v['playbook']
                                                     + ((v['playbook'][0] - base) / args.tasks,)))
        print('load average (1, 5, 15 min) before %s, after %s, %d CPUs' % (
            load_before, [round(x, 2) for x in os.getloadavg()], os.cpu_count()))
        print(json.dumps(dict(rows=rows, libraries=libs, variants=variants, load_before=load_before,
                              load_after=[round(x, 2) for x in os.getloadavg()])))
    finally:
        pg.stop()
        rs.stop()


if __name__ == '__main__':
    main()
