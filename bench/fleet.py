#!/usr/bin/env python
"""The weekly window across N simulated hosts on this machine.

Every simulated host is an inventory host with ansible_connection=local and its own data:
  - its own Redis queue prefix (fleetNNN), seeded by lab/node/seed.js with the real BullMQ and
    Bull libraries (real workers complete and fail the jobs, some finished jobs backdated);
  - its own PostgreSQL database (fleet_NNN), created empty and seeded with real bloat by
    lab/sql/seed.sql (never cloned from a template: a clone starts with reset statistics);
  - its own log directory with rotated logs 15 to 65 days old.
One redis-server and one PostgreSQL 15 cluster serve them all (started here, as the tests do).

Per (N, forks, repeat): seed every host, run the window, verify every host's work was done
(queues cleaned per prefix, both bloated tables vacuumed once per database, old logs removed),
then run it again and require changed=0 on every host. Printed per run: wall time, seconds per
host, controller CPU (user+sys of ansible-playbook and all its children), CPU used by Redis and
PostgreSQL, and the load average; and the anchor: a one-task playbook (ansible.builtin.ping)
over the same inventory and forks, Ansible's own floor on this machine at this moment.

    .venv/bin/python bench/fleet.py [--hosts 10,25,50] [--forks 5,10,20] [--repeat 3]
        [--checkout DIR] [--mitogen DIR [--unpinned]] [--slices K] [--check-first] [--profile]

--checkout runs another checkout's playbook (for a before/after comparison); --mitogen DIR
runs with the mitogen_linear strategy from an unpacked mitogen wheel (pip install --target DIR),
and --unpinned with bench/strategy_plugins/mitogen_linear_unpinned (the same without mitogen's CPU
pinning); --slices K runs K ansible-playbook processes at once, each on every K-th host, as AWX job
slicing does;
--check-first runs a --check --diff pass before the window and requires that it changed nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from helpers import PG_BIN, PostgresServer, RedisServer  # noqa: E402  (the tests' own servers)

NODE_DIR = os.path.join(ROOT, 'lab', 'node')
SEED_SQL = os.path.join(ROOT, 'lab', 'sql', 'seed.sql')
QUEUES = [('ai-analysis', 'bullmq'), ('notifications', 'bullmq'), ('card-generation', 'bull'),
          ('email', 'bull')]
LISTS = ['festivals:queue:critical', 'festivals:queue:default', 'festivals:queue:low']
DAY = 86400


def host_name(i):
    return 'fleet%03d' % i


def write_inventory(path, n, redis_port, pg_port, logs_root, python):
    hosts = {}
    for i in range(1, n + 1):
        h = host_name(i)
        hosts[h] = {
            'oncall_queue_prefix': h,
            'oncall_pg_db': 'fleet_%03d' % i,
            'oncall_log_paths': [os.path.join(logs_root, h)],
        }
    group = {h: None for h in hosts}
    inv = {'all': {
        'vars': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': python,
            'oncall_redis_host': '127.0.0.1', 'oncall_redis_port': redis_port, 'oncall_redis_db': 0,
            'oncall_queues': ([{'name': q, 'flavor': f} for q, f in QUEUES]
                              + [{'name': k, 'flavor': 'list'} for k in LISTS]),
            'oncall_pg_host': '127.0.0.1', 'oncall_pg_port': pg_port, 'oncall_pg_user': 'postgres',
            'oncall_pg_password': 'unused-trusted-loopback',
            'oncall_disks': ['/'],
        },
        'hosts': hosts,
        'children': {g: {'hosts': group} for g in ('redis_servers', 'postgres_servers', 'app_servers')},
    }}
    with open(path, 'w') as f:
        json.dump(inv, f)  # JSON is YAML


def seed_redis(port, prefix):
    subprocess.run(['node', 'seed.js', '--port', str(port), '--prefix', prefix], cwd=NODE_DIR,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)


def psql(pg, db, *args):
    return subprocess.run([PG_BIN + '/psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1',
                           '-p', str(pg.port), '-U', 'postgres', '-d', db] + list(args),
                          check=True, capture_output=True, text=True, timeout=300)


def seed_pg(pg, i):
    db = 'fleet_%03d' % i
    # a new, empty database each time (template1 holds nothing), filled and bloated by the
    # lab's own seed: statistics are the real ones its DELETE and UPDATE left
    psql(pg, 'postgres', '-c', 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % db)
    psql(pg, 'postgres', '-c', 'CREATE DATABASE %s' % db)
    psql(pg, db, '-f', SEED_SQL)


def seed_logs(root, host):
    d = os.path.join(root, host)
    shutil.rmtree(d, ignore_errors=True)
    now = time.time()
    for sub, base, line in (('api', 'api.log', 'INFO request served\n' * 20), ('worker', 'worker.log', 'INFO job done\n')):
        os.makedirs(os.path.join(d, sub))
        for k in range(1, 7):
            p = os.path.join(d, sub, '%s.%d' % (base, k))
            with open(p, 'w') as f:
                f.write(line)
            age = now - (k * 10 + 5) * DAY
            os.utime(p, (age, age))
    with open(os.path.join(d, 'api', 'api.log'), 'w') as f:
        f.write('INFO started\nERROR upstream timeout\n')


def seed(n, redis, pg, logs_root, jobs=4):
    redis.client().flushall()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda i: seed_redis(redis.port, host_name(i)), range(1, n + 1)))
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda i: seed_pg(pg, i), range(1, n + 1)))
    for i in range(1, n + 1):
        seed_logs(logs_root, host_name(i))


def state(n, redis, pg, logs_root):
    """What every host holds: queue set sizes, vacuum counts of the bloated tables, log files."""
    r = redis.client()
    out = {}
    for i in range(1, n + 1):
        h = host_name(i)
        queues = {q: (r.zcard('%s:%s:completed' % (h, q)), r.zcard('%s:%s:failed' % (h, q)),
                      r.llen('%s:%s:wait' % (h, q))) for q, _f in QUEUES}
        conn = pg.connect(db='fleet_%03d' % i)
        with conn.cursor() as cur:
            cur.execute("SELECT relname, vacuum_count, analyze_count FROM pg_stat_user_tables "
                        "WHERE relname IN ('generated_cards', 'card_uniqueness_pool') ORDER BY 1")
            vac = cur.fetchall()
        conn.close()
        logs = sorted(os.path.relpath(os.path.join(dp, f), logs_root)
                      for dp, _d, fs in os.walk(os.path.join(logs_root, h)) for f in fs)
        out[h] = {'queues': queues, 'vacuum': vac, 'logs': logs}
    return out


def verify_done(n, st):
    """Every host's own work was done: the numbers the lab's seed leaves after one window."""
    bad = []
    for i in range(1, n + 1):
        h = host_name(i)
        s = st[h]
        for q, counts in s['queues'].items():
            if counts != (20, 5, 25):
                bad.append('%s queue %s: completed/failed/wait %s, expected (20, 5, 25)' % (h, q, counts))
        if [v[1] for v in s['vacuum']] != [1, 1]:
            bad.append('%s vacuum counts %s, expected one vacuum per bloated table' % (h, s['vacuum']))
        kept = sorted(os.path.basename(p) for p in s['logs'])
        if kept != ['api.log', 'api.log.1', 'api.log.2', 'worker.log.1', 'worker.log.2']:
            bad.append('%s logs kept %s' % (h, kept))
    return bad


RECAP = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def recaps(stdout):
    return {m.group(1): dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, m.groups()[1:])))
            for m in RECAP.finditer(stdout)}


def server_cpu(pids):
    """User+sys seconds of the server processes and their reaped children (postgres backends)."""
    total = 0.0
    tick = os.sysconf('SC_CLK_TCK')
    for pid in pids:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def run(cmd, env, cwd, servers, slices=None):
    """Run cmd once, or once per slice (`--limit` to that slice's hosts) all at the same time, as
    AWX runs a sliced job template: wall time until the last one ends, CPU of them all."""
    load = os.getloadavg()[0]
    srv_before = server_cpu(servers)
    started = time.perf_counter()
    cmds = [cmd] if not slices else [cmd[:-1] + ['--limit', ','.join(hosts), cmd[-1]] for hosts in slices]
    procs = []
    for c in cmds:
        out = tempfile.TemporaryFile(mode='w+')
        procs.append((subprocess.Popen(c, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True), out))
    rc, cpu, outs = 0, 0.0, []
    for proc, out in procs:
        _pid, status, usage = os.wait4(proc.pid, 0)
        rc = rc or os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        out.seek(0)
        outs.append(out.read())
        out.close()
    wall = time.perf_counter() - started
    return {'rc': rc, 'out': '\n'.join(outs), 'wall': wall, 'cpu': cpu,
            'servers_cpu': server_cpu(servers) - srv_before, 'load': load}


def lasting_keys(client):
    """Every key without an expiry (the libraries' own TTL keys, such as stalled-check, may
    expire during a run: that is time passing, not a change)."""
    keys = sorted(client.keys('*'))
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.ttl(k)
    return [k for k, ttl in zip(keys, pipe.execute()) if ttl == -1]


def postmaster_pid(pg):
    with open(os.path.join(pg.data, 'postmaster.pid')) as f:
        return int(f.readline())


ANCHOR = """- name: Anchor - one trivial task per host
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--hosts', default='10,25,50')
    ap.add_argument('--forks', default='5,10,20')
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--checkout', default=ROOT, help='checkout whose playbook runs (default: this one)')
    ap.add_argument('--mitogen', help='directory holding ansible_mitogen (pip install --target)')
    ap.add_argument('--unpinned', action='store_true',
                    help='with --mitogen: bench/strategy_plugins/mitogen_linear_unpinned (no CPU pinning)')
    ap.add_argument('--check-first', action='store_true', help='run --check --diff first, require no change')
    ap.add_argument('--profile', action='store_true', help='print the slowest tasks (profile_tasks)')
    ap.add_argument('--slices', type=int, default=1,
                    help='run the window as this many concurrent ansible-playbook runs, each limited to '
                         'every K-th host, as AWX job slicing splits an inventory (the anchor too)')
    ap.add_argument('--no-anchor', action='store_true')
    ap.add_argument('--json', help='write the measurements here')
    a = ap.parse_args()
    if a.unpinned and not a.mitogen:
        ap.error('--unpinned needs --mitogen DIR (the directory that holds ansible_mitogen)')
    sizes = [int(x) for x in a.hosts.split(',')]
    forks_list = [int(x) for x in a.forks.split(',')]
    checkout = os.path.abspath(a.checkout)
    work = tempfile.mkdtemp(prefix='oncall-fleet-')
    logs_root = os.path.join(work, 'logs')
    os.makedirs(logs_root)
    redis, pg = RedisServer(), PostgresServer()
    servers = [redis.proc.pid, postmaster_pid(pg)]
    python = sys.executable
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(checkout, 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_DEPRECATION_WARNINGS='0',
               ONCALL_REPORT_DIR=os.path.join(work, 'reports'))
    env['PATH'] = os.path.dirname(python) + os.pathsep + env.get('PATH', '')
    strategy = 'mitogen_linear_unpinned' if a.unpinned else 'mitogen_linear'
    if a.mitogen:
        env['PYTHONPATH'] = os.path.abspath(a.mitogen)
        env['ANSIBLE_STRATEGY'] = strategy
        env['ANSIBLE_STRATEGY_PLUGINS'] = (os.path.join(ROOT, 'bench', 'strategy_plugins') if a.unpinned else
                                           os.path.join(env['PYTHONPATH'], 'ansible_mitogen', 'plugins', 'strategy'))
    if a.profile:
        env['ANSIBLE_CALLBACKS_ENABLED'] = 'ansible.posix.profile_tasks'
        env['PROFILE_TASKS_TASK_OUTPUT_LIMIT'] = '25'
    anchor = os.path.join(work, 'anchor.yml')
    with open(anchor, 'w') as f:
        f.write(ANCHOR)
    ansible_playbook = os.path.join(os.path.dirname(python), 'ansible-playbook')
    rows = []
    failures = []
    print('checkout %s%s%s; %d cores; uptime: %s' % (
        checkout, ' (%s from %s)' % (strategy, a.mitogen) if a.mitogen else '',
        ' in %d concurrent slices' % a.slices if a.slices > 1 else '', os.cpu_count(),
        subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip()), flush=True)
    try:
        for n in sizes:
            inv = os.path.join(work, 'fleet-%d.json' % n)
            write_inventory(inv, n, redis.port, pg.port, logs_root, python)
            names = [host_name(i) for i in range(1, n + 1)]
            slices = [names[j::a.slices] for j in range(a.slices)] if a.slices > 1 else None
            for forks in forks_list:
                for rep in range(a.repeat):
                    t = time.perf_counter()
                    seed(n, redis, pg, logs_root)
                    seeded = time.perf_counter() - t
                    base = [ansible_playbook, '-i', inv, '-f', str(forks)]
                    row = {'hosts': n, 'forks': forks, 'repeat': rep + 1, 'seed_s': round(seeded, 1)}
                    if a.check_first:
                        before = state(n, redis, pg, logs_root)
                        keys_before = lasting_keys(redis.client())
                        chk = run(base + ['--check', '--diff', 'playbooks/weekly_maintenance.yml'], env, checkout, servers, slices)
                        rc = recaps(chk['out'])
                        why = []
                        if chk['rc'] != 0 or len(rc) < n or any(v['failed'] for v in rc.values()):
                            why.append('rc %d, recap %s: %s' % (chk['rc'], list(rc.values())[:2], chk['out'][-1500:]))
                        if state(n, redis, pg, logs_root) != before:
                            why.append('queues, vacuum counts or logs changed')
                        keys_after = lasting_keys(redis.client())
                        if keys_after != keys_before:
                            why.append('Redis keys changed: new %s, gone %s' % (
                                sorted(set(keys_after) - set(keys_before))[:10],
                                sorted(set(keys_before) - set(keys_after))[:10]))
                        if why:
                            failures.append('N=%d forks=%d: check mode: %s' % (n, forks, '; '.join(why)))
                        row['check_wall'] = chk['wall']
                    first = run(base + ['playbooks/weekly_maintenance.yml'], env, checkout, servers, slices)
                    rc1 = recaps(first['out'])
                    bad = verify_done(n, state(n, redis, pg, logs_root))
                    if first['rc'] != 0 or any(v['failed'] or v['unreachable'] for v in rc1.values()):
                        bad.append('first run rc %d: %s' % (first['rc'], first['out'][-3000:]))
                    second = run(base + ['playbooks/weekly_maintenance.yml'], env, checkout, servers, slices)
                    rc2 = recaps(second['out'])
                    changed2 = sorted(h for h, v in rc2.items() if v['changed'])
                    if second['rc'] != 0 or changed2 or len([h for h in rc2 if h.startswith('fleet')]) != n:
                        bad.append('second run rc %d, changed on %s' % (second['rc'], changed2[:5]))
                    if a.profile and rep == 0:
                        tail = first['out'][first['out'].rfind('=' * 20):]
                        print(first['out'][first['out'].rfind('PLAY RECAP'):][:200])
                        print(tail[-4000:])
                    for label, res in (('first', first), ('second', second)):
                        row[label] = {'wall': round(res['wall'], 1), 'cpu': round(res['cpu'], 1),
                                      'servers_cpu': round(res['servers_cpu'], 1), 'load': res['load']}
                    if not a.no_anchor:
                        anc = run(base + [anchor], env, checkout, servers, slices)
                        row['anchor'] = {'wall': round(anc['wall'], 1), 'cpu': round(anc['cpu'], 1), 'load': anc['load']}
                    row['verified'] = not bad
                    failures += ['N=%d forks=%d #%d: %s' % (n, forks, rep + 1, b) for b in bad[:10]]
                    rows.append(row)
                    f1, f2 = row['first'], row['second']
                    print('N=%-3d forks=%-2d #%d  first %6.1f s (%.2f s/host) cpu %6.1f s (%.2f/host) servers %5.1f s'
                          ' | second %6.1f s cpu %6.1f s | anchor %s | load %.1f | %s' % (
                              n, forks, rep + 1, f1['wall'], f1['wall'] / n, f1['cpu'], f1['cpu'] / n,
                              f1['servers_cpu'], f2['wall'], f2['cpu'],
                              '%.1f s cpu %.1f s' % (row['anchor']['wall'], row['anchor']['cpu']) if 'anchor' in row else '-',
                              f1['load'], 'verified' if not bad else 'NOT VERIFIED'), flush=True)
        print('\nmedian [min-max] over repeats; load = 1-min load average at the start of each run')
        print('| hosts | forks | first run wall s | s/host | controller CPU s/host | second run wall s | '
              'CPU s/host (2nd) | Redis+PG CPU s | anchor wall s | load |')
        print('|---|---|---|---|---|---|---|---|---|---|')

        def med(vals, fmt='%.1f'):
            return (fmt + ' [' + fmt + '-' + fmt + ']') % (statistics.median(vals), min(vals), max(vals))
        for n in sizes:
            for forks in forks_list:
                rs = [r for r in rows if r['hosts'] == n and r['forks'] == forks]
                print('| %d | %d | %s | %.2f | %s | %s | %s | %s | %s | %s |' % (
                    n, forks, med([r['first']['wall'] for r in rs]),
                    statistics.median(r['first']['wall'] for r in rs) / n,
                    med([r['first']['cpu'] / n for r in rs], '%.2f'),
                    med([r['second']['wall'] for r in rs]),
                    med([r['second']['cpu'] / n for r in rs], '%.2f'),
                    med([r['first']['servers_cpu'] for r in rs]),
                    med([r['anchor']['wall'] for r in rs]) if 'anchor' in rs[0] else '-',
                    med([r['first']['load'] for r in rs])))
        print('uptime: %s' % subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip())
        if a.json:
            with open(a.json, 'w') as f:
                json.dump(rows, f, indent=1)
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print('\nFAILED:\n' + '\n'.join(failures))
        return 1
    print('every host verified: queues cleaned per prefix, both bloated tables vacuumed per database, '
          'old logs removed; second run changed=0 on every host')
    return 0


if __name__ == '__main__':
    sys.exit(main())
