#!/usr/bin/env python
"""Weekly PostgreSQL maintenance under pgbench load: pg_maintenance next to the runbook's `VACUUM ANALYZE;`.

A throw-away PostgreSQL 15 (tests/helpers/servers.py PostgresServer, autovacuum_naptime=1h, and
autovacuum_enabled=false on every table) gets a database `bench` of --tables tables t000..
(int primary key, a text column, a secondary btree index, --rows rows each) plus pgbench's own
tables (`pgbench -i -s --scale`). The seed state is "maintained last week": one VACUUM ANALYZE
of the whole database. Then --bloated tables get 40% of their rows DELETEd, so they carry dead
tuples that pg_stat_all_tables reports (the statistics are flushed before anything reads them).

While `pgbench -n -c --clients -j 2` runs its TPC-B load on the same database (per-transaction
log, -l), each contender runs once on the same state (the bloated tables are put back and
re-bloated identically, pgbench's tables are re-initialised before every run):

  idle   no maintenance: pgbench's baseline p99 and max latency
  A      the runbook's blanket `VACUUM ANALYZE;` on the whole database (pgbench's tables and
         the system catalogs included: that is what the command does)
  B1     pg_maintenance's logic in-process (module_utils Maintenance: observe, plan, apply) with
         operations {vacuum: {}, analyze: {}}, lock_timeout 2s, exclude_tables ['pgbench_*']
  B2     the same through the real `ansible` CLI (-m oncall.runbooks.pg_maintenance), end to end
  C      REINDEX CONCURRENTLY through the module (ansible CLI, operations {reindex: {min_size: 0}})
         on 3 tables whose indexes are bloated (90% of rows deleted, then VACUUMed), while a
         pgbench custom script UPDATEs and INSERTs into exactly those 3 tables; its idle
         baseline (C0) is the same script without maintenance, run before the 90% DELETE. The
         --bloated tables are restored first, so only these 3 tables have bloated indexes.

Latency figures are computed from pgbench's per-transaction logs over every transaction that
overlaps the contender's wall-time window (so a transaction blocked by it is counted); tps is
transactions completed inside the window per second. "p99 rest" is the p99 of the same pgbench
run outside the window (0.5 s margins): a paired baseline, since other load on the machine moves
the idle run's p99 from one run to the next. A watcher samples pg_stat_activity every
50 ms for pgbench sessions waiting on a heavyweight lock ('relation' waits are the ones
maintenance could cause; TPC-B has its own 'transactionid' row-lock waits).

Printed: a table (contender, wall seconds, what was vacuumed/analyzed/reindexed, tps, p99, max,
transactions in the window, transactions longer than lock_timeout, longest relation-lock wait
seen), the ratios against the issue's targets, then one JSON line with everything.

    .venv/bin/python bench/pg_maintenance.py [--tables 200] [--bloated 10] [--rows 20000]
        [--seconds 15] [--scale 10] [--clients 4]

Run it with the checkout's venv Python: the ansible CLI and its interpreter are taken from it.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

try:
    from helpers import PG_BIN, PostgresServer, ansible_bin, run_module  # noqa: E402  (the tests' own server and module runner)
    from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc  # noqa: E402
    from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import maintenance as pgm  # noqa: E402
    import yaml  # noqa: E402
except ImportError as exc:
    sys.exit('bench/pg_maintenance.py needs the development set-up (%s is missing): run scripts/setup --dev, '
             'then .venv/bin/python bench/pg_maintenance.py' % (getattr(exc, 'name', None) or exc))

DB = 'bench'
WARMUP_S = 2.0  # pgbench runs this long before a contender starts
LOCK_TIMEOUT_S = 2.0
DELETE_SHARE = 40  # percent of rows deleted in a bloated table
TEXT = "left(md5(%s::text), 16)"

WRITE_SCRIPT = r'''\set k random(1, %(tenth)d)
\set n random(%(first_new)d, %(last_new)d)
BEGIN;
UPDATE %(table)s SET v = left(md5(random()::text), 16) WHERE id = 10 * :k;
INSERT INTO %(table)s VALUES (:n, left(md5(random()::text), 16)) ON CONFLICT (id) DO UPDATE SET v = excluded.v;
END;
'''

# a VACUUM or ANALYZE of the module (application_name oncall.runbooks) or of the blanket command
STATEMENTS_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name IN ('oncall.runbooks', 'runbook') AND state = 'active'
  AND (query ILIKE 'VACUUM%%' OR query ILIKE 'ANALYZE%%')
"""

WAITS_SQL = """
SELECT wait_event, count(*), max(extract(epoch FROM now() - query_start))::float
FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'pgbench' AND wait_event_type = 'Lock'
GROUP BY wait_event
"""


# ---- the database ---------------------------------------------------------------------------

def sql(conn, statement, args=None):
    with conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall() if cur.description else None


def flush_stats(conn):
    # A backend sends its table counters at most once a second; force it (as the integration
    # tests do), so ANALYZE's row count and the DML counters do not add up twice.
    sql(conn, 'SELECT pg_stat_force_next_flush()')
    sql(conn, 'SELECT 1')


def wait_dead(conn, names, dead_at_least):
    deadline = time.time() + 15
    while time.time() < deadline:
        rows = sql(conn, 'SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE relname = ANY(%s)',
                   (list(names),))
        if len(rows) == len(names) and all(dead >= dead_at_least for name, dead in rows):
            return
        time.sleep(0.2)
    raise RuntimeError('the statistics never showed %d dead tuples in %s' % (dead_at_least, ', '.join(names)))


def create_tables(conn, names, rows):
    for name in names:  # one round trip per table: 2,000 tables build in a few minutes
        sql(conn, 'CREATE TABLE %s (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false); '
                  'INSERT INTO %s SELECT g, %s FROM generate_series(1, %d) g; CREATE INDEX %s_v ON %s (v)'
            % (name, name, TEXT % 'g', rows, name, name))


def restore(conn, names, rows):
    """Put back the rows a bloat DELETE removed and VACUUM ANALYZE: the table is 'maintained' again.

    The first VACUUM clears dead tuples a run left behind (the idle run vacuums nothing): rows
    put back while their dead index entries are still there would split index pages, and the
    next contender would start from a bigger index.
    """
    for name in names:
        sql(conn, 'VACUUM %s' % name)
    for name in names:
        sql(conn, 'INSERT INTO %s SELECT g, %s FROM generate_series(1, %d) g ON CONFLICT (id) DO NOTHING'
            % (name, TEXT % 'g', rows))
    flush_stats(conn)
    for name in names:
        sql(conn, 'VACUUM ANALYZE %s' % name)


def bloat(conn, names, rows):
    """Same state every time: all rows present, vacuumed and analyzed, then 40% DELETEd."""
    restore(conn, names, rows)
    for name in names:
        sql(conn, 'DELETE FROM %s WHERE id %% 100 < %d' % (name, DELETE_SHARE))
    flush_stats(conn)
    wait_dead(conn, names, int(rows * DELETE_SHARE / 100))


def pgbench_init(server, scale):
    subprocess.run([PG_BIN + '/pgbench', '-i', '-q', '-s', str(scale), '-h', '127.0.0.1', '-p', str(server.port),
                    '-U', 'postgres', DB], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def reset_pgbench(server, conn, scale):
    """Fresh pgbench tables (pgbench -i vacuums them), autovacuum off, and a checkpoint."""
    pgbench_init(server, scale)
    for name in ('pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'):
        sql(conn, 'ALTER TABLE %s SET (autovacuum_enabled = false)' % name)
    sql(conn, 'CHECKPOINT')


def counters(conn):
    rows = sql(conn, 'SELECT schemaname, relname, vacuum_count, analyze_count FROM pg_stat_all_tables')
    return dict(((schema, name), (vac, ana)) for schema, name, vac, ana in rows)


def kind_of(schema, name):
    if schema == 'public':
        return 'pgbench' if name.startswith('pgbench_') else 'bench'
    return 'toast' if schema == 'pg_toast' else 'catalog'


def work_done(before, after, bloated):
    """Which tables' vacuum_count / analyze_count went up, by kind."""
    out = {'vacuumed': {'bench': 0, 'pgbench': 0, 'toast': 0, 'catalog': 0},
           'analyzed': {'bench': 0, 'pgbench': 0, 'toast': 0, 'catalog': 0}}
    vacuumed_bench = set()
    for key, (vac, ana) in after.items():
        old_vac, old_ana = before.get(key, (0, 0))
        kind = kind_of(*key)
        if vac > old_vac:
            out['vacuumed'][kind] += 1
            if kind == 'bench':
                vacuumed_bench.add(key[1])
        if ana > old_ana:
            out['analyzed'][kind] += 1
    out['vacuumed_bloated'] = len(vacuumed_bench & set(bloated))
    out['vacuumed_unbloated_bench'] = len(vacuumed_bench - set(bloated))
    return out


# ---- load and observation ---------------------------------------------------------------------

class Pgbench(object):
    """pgbench in the background, writing one log line per transaction."""

    running = []

    def __init__(self, server, logdir, name, seconds, clients, scripts=None):
        self.prefix = os.path.join(logdir, name)
        self.seconds = seconds
        cmd = [PG_BIN + '/pgbench', '-n', '-c', str(clients), '-j', '2', '-T', str(int(math.ceil(seconds))), '-r',
               '-l', '--log-prefix=' + self.prefix, '-h', '127.0.0.1', '-p', str(server.port), '-U', 'postgres']
        for script in scripts or []:
            cmd += ['-f', script]
        cmd.append(DB)
        self.started = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        Pgbench.running.append(self)
        self.ended = None
        self.stdout = ''

    def wait(self):
        out, err = self.proc.communicate(timeout=self.seconds + 300)
        self.ended = time.time()
        Pgbench.running.remove(self)
        if self.proc.returncode:
            raise RuntimeError('pgbench failed (%d): %s' % (self.proc.returncode, err[-2000:]))
        self.stdout = out
        return self

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self in Pgbench.running:
            Pgbench.running.remove(self)

    def transactions(self):
        """(start, end, latency_ms, script) of every logged transaction."""
        txs = []
        for path in glob.glob(self.prefix + '.*'):
            with open(path) as log:
                for line in log:
                    fields = line.split()
                    if len(fields) < 6 or not fields[2].isdigit():
                        continue  # 'skipped' transactions would say so in column 3
                    latency = int(fields[2]) / 1e6
                    end = int(fields[4]) + int(fields[5]) / 1e6
                    txs.append((end - latency, end, latency * 1000.0, int(fields[3])))
        return txs


def window_stats(txs, t0, t1):
    """Transactions overlapping [t0, t1]: count, p99, max; tps of those completed inside it."""
    lat = sorted(ms for start, end, ms, script in txs if end >= t0 and start <= t1)
    done = sum(1 for start, end, ms, script in txs if t0 <= end <= t1)
    if not lat:
        return dict(txs=0, tps=0.0, p99_ms=None, max_ms=None, over_lock_timeout=0)
    return dict(txs=len(lat), tps=round(done / max(t1 - t0, 1e-6), 1),
                p99_ms=round(lat[max(int(math.ceil(0.99 * len(lat))) - 1, 0)], 2),
                max_ms=round(lat[-1], 2),
                over_lock_timeout=sum(1 for ms in lat if ms > LOCK_TIMEOUT_S * 1000))


class LockWatcher(threading.Thread):
    """Samples pgbench sessions waiting on a heavyweight lock, by wait_event."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.conn = server.connect(db=DB, application_name='bench-watcher')
        self.halt = threading.Event()
        self.samples = 0
        self.waits = {}  # wait_event -> [samples with a waiter, longest query age seen in s]
        self.statements = []  # times a maintenance statement of the module (or the blanket) was seen running

    def run(self):
        while not self.halt.is_set():
            for event, count, age in sql(self.conn, WAITS_SQL):
                entry = self.waits.setdefault(event, [0, 0.0])
                entry[0] += 1
                entry[1] = max(entry[1], age or 0.0)
            if sql(self.conn, STATEMENTS_SQL)[0][0]:
                self.statements.append(time.time())
            self.samples += 1
            time.sleep(0.05)

    def finish(self):
        self.halt.set()
        self.join(10)
        self.conn.close()
        return dict(samples=self.samples, statements_seen=(self.statements[0], self.statements[-1])
                    if self.statements else None,
                    waits=dict((k, {'samples': v[0], 'longest_s': round(v[1], 3)}) for k, v in self.waits.items()),
                    longest_relation_wait_s=round(self.waits.get('relation', [0, 0.0])[1], 3))


def measured(server, args, logdir, name, action=None, scripts=None, seconds=None):
    """Run pgbench; after WARMUP_S run action() (None: idle); figures over the action's window."""
    watcher = LockWatcher(server)
    bench = Pgbench(server, logdir, name, WARMUP_S + (seconds or args.seconds), args.clients, scripts)
    watcher.start()
    result = {}
    try:
        time.sleep(WARMUP_S)
        t0 = time.time()
        if action is not None:
            result = action() or {}
        t1 = time.time()
        if bench.proc.poll() is not None:
            result['warning'] = 'pgbench ended before %s did: its figures miss the end; raise --seconds' % name
            print('WARNING: ' + result['warning'], flush=True)
        bench.wait()
    finally:
        bench.kill()
        watch = watcher.finish()
    txs = bench.transactions()
    if action is None:
        t1 = max(end for start, end, ms, script in txs)
    result.update(window_stats(txs, t0, t1))
    seen = watch.pop('statements_seen')
    if seen is not None:
        # the part of the window in which maintenance statements ran (sampled every 50 ms): what
        # throttling acts on, without the Ansible start-up around it
        s0, s1 = seen[0] - 0.05, seen[1] + 0.05
        stmt = window_stats(txs, s0, s1)
        result.update(statements_s=round(s1 - s0, 2), statements_p99_ms=stmt['p99_ms'], statements_txs=stmt['txs'],
                      statements_tps=stmt['tps'])
    if action is not None:
        # the same pgbench run outside the window (0.5 s margins): a paired baseline that other
        # load on the machine affects the same way
        rest = sorted(ms for start, end, ms, script in txs
                      if start >= t0 - WARMUP_S + 0.5 and (end < t0 - 0.5 or start > t1 + 0.5))
        result['p99_rest_ms'] = round(rest[max(int(math.ceil(0.99 * len(rest))) - 1, 0)], 2) if rest else None
    result.update(wall_s=round(t1 - t0, 3), lock_waits=watch,
                  pgbench_after_s=round(bench.ended - t1, 1) if action is not None else None)
    return result


# ---- contenders -------------------------------------------------------------------------------

def module_params(server, **extra):
    params = dict((key, spec.get('default')) for key, spec in pgc.postgres_argument_spec().items())
    params.update(login_host='127.0.0.1', login_port=server.port, login_user='postgres', login_db=DB)
    params.update(extra)
    return params


def blanket(server):
    conn = server.connect(db=DB, application_name='runbook')
    try:
        sql(conn, 'VACUUM ANALYZE;')
    finally:
        conn.close()
    return {}


def module_in_process(server):
    params = module_params(server, operations={'vacuum': {}, 'analyze': {}}, lock_timeout_s=LOCK_TIMEOUT_S,
                           statement_timeout_s=None, schemas=['*'], tables=[], exclude_tables=['pgbench_*'],
                           allow_blocking=False)
    t0 = time.monotonic()
    maint = pgm.Maintenance(pgc.connect(params), params)
    try:
        items = maint.plan(maint.observe())
        t1 = time.monotonic()
        done, skipped = maint.apply(items)
    finally:
        maint.conn.close()
    return dict(planned=len(items), done=len(done), skipped=len(skipped) + len(maint.not_planned),
                operations=sorted(set(d['operation'] for d in done)),
                observe_plan_ms=round((t1 - t0) * 1000, 1), apply_ms=round((time.monotonic() - t1) * 1000, 1))


def module_cli(server, operations, **extra):
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user='postgres', db=DB,
                operations=operations, lock_timeout='%ds' % LOCK_TIMEOUT_S, exclude_tables=['pgbench_*'])
    args.update(extra)
    res = run_module('pg_maintenance', args)
    if res.failed:
        raise RuntimeError('pg_maintenance failed: %s' % json.dumps(res.result)[:2000])
    return dict(planned=len(res['plan']), done=len(res['done']), skipped=len(res['skipped_items']),
                operations=sorted(set(d['operation'] for d in res['done'])),
                objects=[d['object'] for d in res['done']], skipped_items=res['skipped_items'],
                module_seconds=round(sum(d['seconds'] for d in res['done']), 3), msg=res['msg'],
                # the module's own before/after figures: sizes of the planned indexes around apply
                index_mb_before=round(sum(v['size'] for v in res['before']['indexes'].values()) / 1048576.0, 2),
                index_mb_after=round(sum(v['size'] for v in res['after']['indexes'].values()) / 1048576.0, 2))


DATABASE_PLAY = 'Weekly maintenance - database'
MAINTENANCE_TASK = 'Vacuum and analyze the tables past their thresholds'


def weekly_database_play(tmp, server):
    """The weekly window's database play, taken verbatim from playbooks/weekly_maintenance.yml,
    and an inventory whose postgres_servers host is the bench's server."""
    with open(os.path.join(ROOT, 'playbooks', 'weekly_maintenance.yml')) as fh:
        plays = yaml.safe_load(fh)
    play = [p for p in plays if p.get('name') == DATABASE_PLAY]
    if len(play) != 1:
        raise RuntimeError('playbooks/weekly_maintenance.yml has no play named %r' % DATABASE_PLAY)
    playbook = os.path.join(tmp, 'weekly_database.yml')
    with open(playbook, 'w') as fh:
        yaml.safe_dump(play, fh, sort_keys=False)
    inventory = os.path.join(tmp, 'inventory.yml')
    with open(inventory, 'w') as fh:
        yaml.safe_dump({'all': {'children': {'postgres_servers': {'hosts': {'benchdb': {
            'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
            'oncall_pg_host': '127.0.0.1', 'oncall_pg_port': server.port, 'oncall_pg_user': 'postgres',
            'oncall_pg_db': DB, 'oncall_pg_password': '',
            'postgres_exclude_tables': ['pgbench_*'], 'postgres_lock_timeout': '%ds' % LOCK_TIMEOUT_S}}}}}}, fh)
    return playbook, inventory


def ansible_env():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
               ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_NOCOLOR='1')
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    return env


def module_playbook(playbook, inventory, extra_vars=None):
    """ansible-playbook on the weekly window's database play; figures of its pg_maintenance task."""
    cmd = [ansible_bin('ansible-playbook'), playbook, '-i', inventory]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=3600, check=False)
    try:
        start = proc.stdout.find('{')
        doc = json.loads(proc.stdout[start:])
        tasks = [t for t in doc['plays'][0]['tasks'] if t['task']['name'].endswith(MAINTENANCE_TASK)]
        res = tasks[-1]['hosts']['benchdb']
    except (ValueError, KeyError, IndexError):
        raise RuntimeError('ansible-playbook (rc %d) gave no pg_maintenance result: %s %s'
                           % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    if proc.returncode or res.get('failed'):
        raise RuntimeError('the database play failed: %s' % json.dumps(res)[:2000])
    return dict(planned=len(res['plan']), done=len(res['done']), skipped=len(res['skipped_items']),
                operations=sorted(set(d['operation'] for d in res['done'])), throttle=res.get('throttle'),
                module_seconds=round(sum(d['seconds'] for d in res['done']), 3), msg=res['msg'])


def write_scripts(tmp, tables, rows):
    paths = []
    for table in tables:
        path = os.path.join(tmp, 'write_%s.sql' % table)
        with open(path, 'w') as fh:
            # new ids in (rows, 2 * rows]: the table at most doubles however long pgbench runs
            fh.write(WRITE_SCRIPT % dict(table=table, tenth=max(rows // 10, 1), first_new=rows + 1,
                                         last_new=rows * 2))
        paths.append(path)
    return paths


# ---- report -----------------------------------------------------------------------------------

def work_text(row):
    if 'work' in row:
        v, a = row['work']['vacuumed'], row['work']['analyzed']
        return 'vac %d/%d/%d/%d, ana %d/%d/%d' % (
            v['bench'], v['pgbench'], v['toast'], v['catalog'], a['bench'], a['pgbench'], a['catalog'])
    if 'reindexed' in row:
        return 'reindex %d, skipped %d' % (row['reindexed'], row['skipped'])
    return '-'


def fmt(value, pattern):
    return pattern % value if value is not None else '-'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--tables', type=int, default=2000)
    ap.add_argument('--bloated', type=int, default=20, help='tables with 40%% of their rows deleted')
    ap.add_argument('--rows', type=int, default=5000, help='rows per table')
    ap.add_argument('--seconds', type=float, default=30, help='pgbench run after the warm-up, per contender')
    ap.add_argument('--blanket-seconds', type=float, default=120,
                    help='pgbench run after the warm-up while the blanket VACUUM ANALYZE runs')
    ap.add_argument('--curve', default='0ms/200/0s,2ms/1000/0s,2ms/2000/0s,10ms/200/0s',
                    help='throttle settings of the playbook runs: vacuum_cost_delay/vacuum_cost_limit/pause,...')
    ap.add_argument('--no-reindex', action='store_true', help='skip the REINDEX CONCURRENTLY contender (C)')
    ap.add_argument('--scale', type=int, default=10, help='pgbench -i scale')
    ap.add_argument('--clients', type=int, default=4, help='pgbench -c')
    args = ap.parse_args()
    if args.bloated + 3 > args.tables:
        ap.error('--tables must be at least --bloated + 3')
    if not os.path.exists(ansible_bin('ansible')):
        ap.error('run this with the checkout venv Python (.venv/bin/python): no ansible next to %s' % sys.executable)

    width = max(3, len(str(args.tables - 1)))
    names = ['t%0*d' % (width, i) for i in range(args.tables)]
    step = args.tables // args.bloated if args.bloated else 1
    bloated = [names[i * step] for i in range(args.bloated)]
    reindexed = [n for n in reversed(names) if n not in bloated][:3]

    loadavg = list(round(x, 2) for x in os.getloadavg())
    tmp = tempfile.mkdtemp(prefix='oncall-pgbench-')
    os.chmod(tmp, 0o755)
    server = PostgresServer()
    try:
        admin = server.connect()
        sql(admin, 'CREATE DATABASE %s' % DB)
        admin.close()
        conn = server.connect(db=DB, application_name='bench-setup')
        t = time.perf_counter()
        create_tables(conn, names, args.rows)
        pgbench_init(server, args.scale)
        flush_stats(conn)
        t_seed = time.perf_counter()
        sql(conn, 'VACUUM ANALYZE')  # last week's maintenance: every table vacuumed and analyzed
        setup = dict(create_s=round(t_seed - t, 1), seed_vacuum_analyze_s=round(time.perf_counter() - t_seed, 1),
                     db_mb=round(sql(conn, 'SELECT pg_database_size(current_database())')[0][0] / 1048576.0, 1),
                     tables=args.tables, bloated=bloated, reindex_tables=reindexed, rows=args.rows,
                     scale=args.scale, clients=args.clients, seconds=args.seconds, server_port=server.port,
                     loadavg_before=loadavg, cpus=os.cpu_count())
        print('setup: %d tables x %d rows + pgbench -s %d = %.0f MB in %.0f s; first VACUUM ANALYZE of it all '
              '(no load) %.1f s' % (args.tables, args.rows, args.scale, setup['db_mb'], setup['create_s'],
                                    setup['seed_vacuum_analyze_s']), flush=True)

        rows = []

        def contender(label, action, prepare_bloat=True, scripts=None, seconds=None):
            if prepare_bloat:
                bloat(conn, bloated, args.rows)
                reset_pgbench(server, conn, args.scale)
            before = counters(conn)
            res = measured(server, args, tmp, label.split()[0], action, scripts, seconds)
            if action is not None and scripts is None:
                res['work'] = work_done(before, counters(conn), bloated)
            res['contender'] = label
            rows.append(res)
            print('  %-44s %7.2f s  p99 %s ms' % (label, res['wall_s'], fmt(res['p99_ms'], '%.2f')), flush=True)
            return res

        playbook, inventory = weekly_database_play(tmp, server)
        idle = contender('idle (pgbench TPC-B, no maintenance)', None)
        blanket_row = contender('A runbook: VACUUM ANALYZE; (whole database)', lambda: blanket(server),
                                seconds=args.blanket_seconds)
        inproc = contender('B1 pg_maintenance vacuum+analyze, in-process', lambda: module_in_process(server))
        cli = contender('B2 pg_maintenance vacuum+analyze, ansible CLI',
                        lambda: module_cli(server, {'vacuum': {}, 'analyze': {}}))
        play = contender('P weekly database play, role defaults', lambda: module_playbook(playbook, inventory))
        curve = []
        for setting in [c for c in args.curve.split(',') if c]:
            delay, limit, pause = setting.split('/')
            extra = dict(postgres_vacuum_cost_delay=delay, postgres_vacuum_cost_limit=int(limit),
                         postgres_maintenance_pause=pause)
            curve.append(contender('P %s' % setting, lambda extra=extra: module_playbook(playbook, inventory, extra)))

        if args.no_reindex:
            conn.close()
            report(rows, idle, blanket_row, inproc, cli, play, curve, None, None, setup)
            return
        # C: the vacuum-bloated tables are put back (so only the 3 below have bloated indexes),
        # an idle run of the write script, then 90% of the 3 tables' rows deleted and VACUUMed.
        restore(conn, bloated, args.rows)
        scripts = write_scripts(tmp, reindexed, args.rows)
        write_idle = contender('C0 idle writes into %d tables (no maintenance)' % len(reindexed), None,
                               prepare_bloat=False, scripts=scripts)
        for name in reindexed:
            sql(conn, 'DELETE FROM %s WHERE id %% 10 <> 0' % name)
        flush_stats(conn)
        for name in reindexed:
            sql(conn, 'VACUUM ANALYZE %s' % name)
        sql(conn, 'CHECKPOINT')
        reindex = contender('C REINDEX CONCURRENTLY via module, ansible CLI',
                            lambda: module_cli(server, {'reindex': {'min_size': '0'}}), prepare_bloat=False,
                            scripts=scripts)
        reindex['reindexed'] = reindex['done']
        conn.close()
        report(rows, idle, blanket_row, inproc, cli, play, curve, reindex, write_idle, setup)
    finally:
        for bench in list(Pgbench.running):
            bench.kill()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def report(rows, idle, blanket_row, inproc, cli, play, curve, reindex, write_idle, setup):
    print()
    print('tables vacuumed: bench/pgbench/toast/catalog, analyzed: bench/pgbench/catalog (from pg_stat_all_tables '
          'counters); txs: transactions overlapping the window; >2s: longer than lock_timeout; rel wait: longest '
          'relation-lock wait of a pgbench session seen')
    print('%-48s %7s  %-30s %6s %7s %8s %7s %4s %8s %9s' % (
        'contender', 'wall s', 'tables vacuumed, analyzed', 'tps', 'p99 ms', 'max ms', 'txs', '>2s', 'rel wait',
        'p99 rest'))
    for row in rows:
        print('%-48s %7.2f  %-30s %6.0f %7s %8s %7d %4d %7.2fs %9s' % (
            row['contender'], row['wall_s'], work_text(row), row['tps'], fmt(row['p99_ms'], '%.2f'),
            fmt(row['max_ms'], '%.1f'), row['txs'], row['over_lock_timeout'],
            row['lock_waits']['longest_relation_wait_s'], fmt(row.get('p99_rest_ms'), '%.2f')))
    ratios = dict(
        blanket_over_module_in_process=ratio(blanket_row['wall_s'], inproc['wall_s']),
        blanket_over_module_cli=ratio(blanket_row['wall_s'], cli['wall_s']),
        blanket_over_playbook=ratio(blanket_row['wall_s'], play['wall_s']),
        blanket_p99_over_idle=ratio(blanket_row['p99_ms'], idle['p99_ms']),
        module_in_process_p99_over_idle=ratio(inproc['p99_ms'], idle['p99_ms']),
        module_cli_p99_over_idle=ratio(cli['p99_ms'], idle['p99_ms']),
        playbook_p99_over_idle=ratio(play['p99_ms'], idle['p99_ms']),
        blanket_p99_over_rest=ratio(blanket_row['p99_ms'], blanket_row['p99_rest_ms']),
        module_in_process_p99_over_rest=ratio(inproc['p99_ms'], inproc['p99_rest_ms']),
        module_cli_p99_over_rest=ratio(cli['p99_ms'], cli['p99_rest_ms']),
        playbook_p99_over_rest=ratio(play['p99_ms'], play['p99_rest_ms']),
    )
    targets = dict(
        wall_5x_playbook=(ratios['blanket_over_playbook'] or 0) >= 5,
        p99_2x_playbook=(ratios['playbook_p99_over_idle'] or 99) <= 2,
        wall_5x_in_process=(ratios['blanket_over_module_in_process'] or 0) >= 5,
        wall_5x_cli=(ratios['blanket_over_module_cli'] or 0) >= 5,
    )
    if reindex is not None:
        ratios['reindex_max_over_idle_write_max'] = ratio(reindex['max_ms'], write_idle['max_ms'])
        targets['reindex_no_write_over_lock_timeout'] = (reindex['over_lock_timeout'] == 0
                                                         and reindex['max_ms'] < LOCK_TIMEOUT_S * 1000)
    print()
    print('idle baseline: p99 %.2f ms, max %.1f ms, %.0f tps' % (idle['p99_ms'], idle['max_ms'], idle['tps']))
    print('module vacuumed %d of %d bloated tables and %d other bench tables (in-process); %d and %d (ansible CLI); '
          '%d and %d (playbook); the blanket command vacuumed %d bench + %d pgbench tables' % (
              inproc['work']['vacuumed_bloated'], len(setup['bloated']), inproc['work']['vacuumed_unbloated_bench'],
              cli['work']['vacuumed_bloated'], cli['work']['vacuumed_unbloated_bench'],
              play['work']['vacuumed_bloated'], play['work']['vacuumed_unbloated_bench'],
              blanket_row['work']['vacuumed']['bench'], blanket_row['work']['vacuumed']['pgbench']))
    print('module in-process: observe+plan %.0f ms, apply %.0f ms' % (inproc['observe_plan_ms'], inproc['apply_ms']))
    print()
    print('throttle trade-off through ansible-playbook (delay/limit/pause): wall s, seconds the module spent in '
          'statements, p99 ms over the whole window, p99/idle, p99/rest, blanket/wall; then over the part of the '
          'window where a VACUUM/ANALYZE was seen running: seconds, p99 ms, p99/idle, transactions')
    for row in [blanket_row, inproc, cli, play] + curve:
        print('  %-44s %7.2f %7.2f %8s %6s %6s %6s | %6s %8s %6s %6s' % (
            row['contender'][:44], row['wall_s'], row.get('module_seconds') or 0, fmt(row['p99_ms'], '%.2f'),
            ratio(row['p99_ms'], idle['p99_ms']), ratio(row['p99_ms'], row['p99_rest_ms']),
            ratio(blanket_row['wall_s'], row['wall_s']), fmt(row.get('statements_s'), '%.2f'),
            fmt(row.get('statements_p99_ms'), '%.2f'), ratio(row.get('statements_p99_ms'), idle['p99_ms']),
            row.get('statements_txs', '-')))
    print()
    print('ratio blanket/module wall: %s (ansible-playbook, weekly database play), %s (in-process), %s (ansible CLI)'
          '   target >= 5 through the playbook: %s' % (
              ratios['blanket_over_playbook'], ratios['blanket_over_module_in_process'],
              ratios['blanket_over_module_cli'], targets['wall_5x_playbook']))
    print('ratio module p99/idle p99: %s (playbook), %s (in-process), %s (ansible CLI); blanket %s   target <= 2 '
          'through the playbook: %s' % (
              ratios['playbook_p99_over_idle'], ratios['module_in_process_p99_over_idle'],
              ratios['module_cli_p99_over_idle'], ratios['blanket_p99_over_idle'], targets['p99_2x_playbook']))
    print('ratio p99 in window / p99 of the same pgbench run outside it: %s (playbook), %s (in-process), '
          '%s (ansible CLI); blanket %s' % (ratios['playbook_p99_over_rest'], ratios['module_in_process_p99_over_rest'],
                                            ratios['module_cli_p99_over_rest'], ratios['blanket_p99_over_rest']))
    print('load average (1, 5, 15 min) before the run %s, after %s, %d CPUs%s' % (
        setup['loadavg_before'], list(round(x, 2) for x in os.getloadavg()), setup['cpus'],
        ': other processes were busy before it started, latency figures are noisy'
        if setup['loadavg_before'][0] > 0.5 else ''))
    if reindex is not None:
        print('reindex: %s, indexes %.2f -> %.2f MB (module before/after); write-script idle p99 %.2f ms, max %.1f ms'
              % (reindex['msg'], reindex['index_mb_before'], reindex['index_mb_after'], write_idle['p99_ms'],
                 write_idle['max_ms']))
        print('reindex: max write %.1f ms (idle max %.1f ms), %d writes over lock_timeout %ds   target: %s' % (
            reindex['max_ms'], write_idle['max_ms'], reindex['over_lock_timeout'], LOCK_TIMEOUT_S,
            targets['reindex_no_write_over_lock_timeout']))
    print(json.dumps(dict(setup=setup, rows=rows, ratios=ratios, targets=targets)))


if __name__ == '__main__':
    main()
