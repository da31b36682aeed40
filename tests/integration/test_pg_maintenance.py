# -*- coding: utf-8 -*-
"""pg_maintenance and pg_health_info against a real PostgreSQL 15 started by the test run.

Bloat is made for real: bulk DELETEs on tables with autovacuum switched off.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from helpers import run_module


def conn_args(server, db, **extra):
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user='postgres', login_db=db)
    args.update(extra)
    return args


def flush_stats(cur):
    # A backend sends its table counters at most once a second; force it, so that ANALYZE's
    # row count and the INSERT's counters do not add up to twice the rows.
    cur.execute('SELECT pg_stat_force_next_flush()')
    cur.execute('SELECT 1')


def make_table(conn, name, rows=20000, delete_share=0.0, index=True):
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE %s (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)' % name)
        cur.execute("INSERT INTO %s SELECT g, md5(g::text) FROM generate_series(1, %d) g" % (name, rows))
        if index:
            cur.execute('CREATE INDEX %s_v ON %s (v)' % (name, name))
        flush_stats(cur)
        cur.execute('ANALYZE %s' % name)
        if delete_share:
            cur.execute('DELETE FROM %s WHERE id %% 100 < %d' % (name, int(delete_share * 100)))
        flush_stats(cur)


def ensure_role(conn, name, password):
    """Roles are cluster-wide: create once, (re)set the password every time."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        verb = 'ALTER' if cur.fetchone() else 'CREATE'
        cur.execute("%s ROLE %s LOGIN PASSWORD '%s'" % (verb, name, password))


def stats(conn):
    with conn.cursor() as cur:
        cur.execute("""SELECT relname, vacuum_count, analyze_count, n_dead_tup
                       FROM pg_stat_user_tables ORDER BY relname""")
        tables = cur.fetchall()
        cur.execute("""SELECT c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind = 'i' AND n.nspname = 'public' ORDER BY 1""")
        return tables, cur.fetchall()


def wait_stats(conn, table, dead_at_least):
    """Counters of other sessions reach the shared statistics within a second or so."""
    deadline = time.time() + 10
    while time.time() < deadline:
        with conn.cursor() as cur:
            cur.execute('SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s', (table,))
            row = cur.fetchone()
            if row and row[0] >= dead_at_least:
                return
        time.sleep(0.2)
    raise AssertionError('statistics of %s never showed %d dead tuples' % (table, dead_at_least))


def test_vacuums_exactly_the_bloated_tables(pgdb):
    server, db, conn = pgdb
    for name in ('calm_a', 'calm_b', 'calm_c'):
        make_table(conn, name, rows=5000)
    make_table(conn, 'bloated_orders', rows=20000, delete_share=0.4)
    make_table(conn, 'bloated_cards', rows=20000, delete_share=0.6)
    wait_stats(conn, 'bloated_cards', 12000)
    before = stats(conn)[0]

    res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}))
    assert not res.failed, res.result
    assert sorted(d['object'] for d in res['done']) == ['public.bloated_cards', 'public.bloated_orders']
    assert res['plan'][0]['object'] == 'public.bloated_cards'  # most dead tuples first
    assert '60% dead tuples (12000) >= 10%' in res['plan'][0]['reason']
    after = stats(conn)[0]
    vacuumed = dict((b[0], a[1] - b[1]) for b, a in zip(before, after))
    assert vacuumed == {'bloated_cards': 1, 'bloated_orders': 1, 'calm_a': 0, 'calm_b': 0, 'calm_c': 0}
    assert res['after']['tables']['public.bloated_cards']['dead_tuples'] == 0

    again = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}))
    assert again['changed'] is False and again['plan'] == []


def test_check_mode_changes_nothing(pgdb):
    server, db, conn = pgdb
    make_table(conn, 'bloated', rows=30000, delete_share=0.9)
    wait_stats(conn, 'bloated', 27000)
    conn.cursor().execute('CREATE TABLE fresh (id int)')
    conn.cursor().execute('INSERT INTO fresh SELECT generate_series(1, 100)')
    ensure_role(conn, 'idler', 'idler-pw')
    idle = server.connect(db=db, user='idler', password='idler-pw', application_name='idle-app')
    time.sleep(1.2)
    before = stats(conn)
    ops = {'vacuum': {}, 'analyze': {}, 'reindex': {'min_size': '0'},
           'terminate': {'idle_for': '1s'}}
    # throttling options change nothing in check mode: no session setting, no pause, no statement
    res = run_module('pg_maintenance', conn_args(server, db, operations=ops, vacuum_cost_delay='50ms',
                                                 vacuum_cost_limit=1, pause='10s'), check=True, diff=True)
    assert not res.failed, res.result
    assert 'throttle' not in res.result
    kinds = sorted(set(p['operation'] for p in res['plan']))
    assert 'terminate' in kinds and 'vacuum analyze' in kinds and 'reindex' in kinds
    assert res['done'] == []
    assert stats(conn) == before
    with idle.cursor() as cur:  # the idle session is still alive
        cur.execute('SELECT 1')
    idle.close()


def test_a_locked_table_is_skipped_within_lock_timeout(pgdb):
    server, db, conn = pgdb
    make_table(conn, 'busy', rows=20000, delete_share=0.5, index=False)
    make_table(conn, 'free', rows=20000, delete_share=0.5, index=False)
    wait_stats(conn, 'free', 10000)
    holder = server.connect(db=db)
    holder.autocommit = False
    holder.cursor().execute('LOCK TABLE busy IN ACCESS EXCLUSIVE MODE')
    try:
        res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}},
                                                     lock_timeout='1s'))
    finally:
        holder.rollback()
        holder.close()
    assert not res.failed, res.result
    assert [d['object'] for d in res['done']] == ['public.free']
    assert [s['object'] for s in res['skipped_items']] == ['public.busy']
    assert 'lock not granted within lock_timeout 1s' in res['skipped_items'][0]['why']


def test_check_mode_diff_predicts_the_real_run(pgdb):
    """--check --diff shows what the real run then shows (issue 16): VACUUM, ANALYZE, REINDEX,
    the drop of an invalid leftover and a termination - and check mode changes nothing."""
    server, db, conn = pgdb
    make_table(conn, 'bloated', rows=30000, delete_share=0.9)
    wait_stats(conn, 'bloated', 27000)
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE fresh (id int) WITH (autovacuum_enabled = false)')
        cur.execute('INSERT INTO fresh SELECT generate_series(1, 100)')
        flush_stats(cur)
        # an invalid leftover of an interrupted REINDEX CONCURRENTLY (as the interrupted test makes one)
        snapshot = old_snapshot(server, db)
        other = server.connect(db=db)
        with other.cursor() as ocur:
            ocur.execute("SET statement_timeout = '1s'")
            with pytest.raises(psycopg2.errors.QueryCanceled):
                ocur.execute('REINDEX INDEX CONCURRENTLY bloated_v')
        other.close()
        snapshot.rollback()
        snapshot.close()
    assert ('bloated_v_ccnew', False) in [(st[0], st[1]) for st in index_state(conn, 'bloated')]
    ensure_role(conn, 'idler', 'idler-pw')
    idle = server.connect(db=db, user='idler', password='idler-pw', application_name='idle-app')
    time.sleep(1.2)
    ops = {'vacuum': {}, 'analyze': {}, 'reindex': {'min_size': '0'}, 'terminate': {'idle_for': '1s', 'users': ['idler']}}
    before = stats(conn)

    check = run_module('pg_maintenance', conn_args(server, db, operations=ops), check=True, diff=True)
    assert not check.failed, check.result
    assert stats(conn) == before  # nothing vacuumed, analyzed, rebuilt or dropped
    with idle.cursor() as cur:  # and the idle session is alive
        cur.execute('SELECT 1')
    time.sleep(1.2)  # idle again for longer than idle_for
    d = check['diff']
    assert d['before'] != d['after']
    assert d['before']['tables']['public.bloated'] == {
        'dead_tuples': 27000, 'dead_ratio': 0.9, 'modified_since_analyze': 27000}
    assert d['after']['tables']['public.bloated'] == {'dead_tuples': 0, 'dead_ratio': 0.0, 'modified_since_analyze': 0}
    assert d['after']['tables']['public.fresh'] == {'modified_since_analyze': 0}
    assert d['before']['indexes']['public.bloated_v']['bloat'] == 'at or above 30%'
    assert d['after']['indexes']['public.bloated_v'] == {'valid': True, 'bloat': 'below 30%'}
    assert d['before']['indexes']['public.bloated_v_ccnew'] == {'valid': False, 'bloat': 'unknown'}
    assert 'public.bloated_v_ccnew' not in d['after']['indexes']
    (session,) = d['before']['sessions']
    assert d['before']['sessions'][session] == {'pid': idle.get_backend_pid(), 'user': 'idler', 'state': 'idle'}
    assert d['after']['sessions'] == {}

    real = run_module('pg_maintenance', conn_args(server, db, operations=ops), diff=True)
    assert not real.failed, real.result
    assert real['changed'] and real['skipped_items'] == [], real['skipped_items']
    assert real['diff'] == check['diff']
    assert stats(conn) != before
    with pytest.raises(psycopg2.OperationalError):
        idle.cursor().execute('SELECT 1')


def index_state(conn, table):
    with conn.cursor() as cur:
        cur.execute("""SELECT i.relname, x.indisvalid, i.oid FROM pg_index x
                       JOIN pg_class i ON i.oid = x.indexrelid
                       WHERE x.indrelid = %s::regclass ORDER BY 1""", (table,))
        return cur.fetchall()


def old_snapshot(server, db):
    """A session holding a REPEATABLE READ snapshot: REINDEX CONCURRENTLY waits for it."""
    snapshot = server.connect(db=db)
    snapshot.autocommit = False
    snapshot.set_session(isolation_level='REPEATABLE READ')
    snapshot.cursor().execute('SELECT count(*) FROM pg_class')
    return snapshot


def test_interrupted_reindex_leaves_an_invalid_index_the_next_run_drops(pgdb):
    server, db, conn = pgdb
    make_table(conn, 'cards', rows=60000, delete_share=0.9)
    wait_stats(conn, 'cards', 50000)
    # an old snapshot makes REINDEX CONCURRENTLY wait; its statement_timeout interrupts it
    snapshot = old_snapshot(server, db)
    other = server.connect(db=db)
    with other.cursor() as cur:
        cur.execute("SET statement_timeout = '1s'")
        with pytest.raises(psycopg2.errors.QueryCanceled):
            cur.execute('REINDEX INDEX CONCURRENTLY cards_v')
    other.close()
    snapshot.rollback()
    snapshot.close()
    states = index_state(conn, 'cards')
    assert ('cards_v_ccnew', False) in [(st[0], st[1]) for st in states]
    old_oid = dict((st[0], st[2]) for st in states)['cards_v']

    res = run_module('pg_maintenance', conn_args(server, db, operations={'reindex': {}}))
    assert not res.failed, res.result
    ops = [(d['operation'], d['object']) for d in res['done']]
    assert ops[0] == ('drop invalid index', 'public.cards_v_ccnew')
    assert ('reindex', 'public.cards_v') in ops
    states = index_state(conn, 'cards')
    assert all(st[1] for st in states)
    assert [st[0] for st in states] == ['cards_pkey', 'cards_v']
    assert dict((st[0], st[2]) for st in states)['cards_v'] != old_oid  # rebuilt
    assert run_module('pg_maintenance', conn_args(server, db, operations={'reindex': {}}))['changed'] is False


def test_reindex_that_times_out_drops_its_own_leftover(pgdb):
    server, db, conn = pgdb
    make_table(conn, 'orders', rows=60000, delete_share=0.9)
    wait_stats(conn, 'orders', 50000)
    snapshot = old_snapshot(server, db)

    def release_after_the_module_waited():
        # hold the snapshot until the module's REINDEX has waited past its statement_timeout
        # (not a fixed delay: under load the module may take seconds to start)
        watcher = server.connect(db=db)
        deadline = time.time() + 120
        while time.time() < deadline:
            with watcher.cursor() as cur:
                cur.execute("""SELECT 1 FROM pg_stat_activity WHERE application_name = 'oncall.runbooks'
                               AND query ILIKE 'REINDEX%%'""")
                if cur.fetchall():
                    break
            time.sleep(0.05)
        time.sleep(2.5)
        watcher.close()
        snapshot.rollback()

    release = threading.Thread(target=release_after_the_module_waited)
    release.start()
    try:
        res = run_module('pg_maintenance', conn_args(server, db, operations={'reindex': {}},
                                                     statement_timeout='1s', tables=['orders']))
    finally:
        release.join()
        snapshot.close()
    assert not res.failed, res.result
    assert res['skipped_items'] and 'statement_timeout' in res['skipped_items'][0]['why'], (res['done'], res['msg'])
    # nothing half-built is left behind once the old snapshot is gone
    res = run_module('pg_maintenance', conn_args(server, db, operations={'reindex': {}}, tables=['orders']))
    assert all(st[1] for st in index_state(conn, 'orders'))
    assert not [st[0] for st in index_state(conn, 'orders') if 'ccnew' in st[0]]


def test_terminate_kills_only_the_matching_idle_sessions(pgdb):
    server, db, conn = pgdb
    ensure_role(conn, 'app', 'app-pw')
    ensure_role(conn, 'batch', 'batch-pw')
    targets = [server.connect(db=db, user='app', password='app-pw', application_name='festivals-api')
               for i in range(2)]
    other_app = server.connect(db=db, user='app', password='app-pw', application_name='reporting')
    other_user = server.connect(db=db, user='batch', password='batch-pw', application_name='festivals-api')
    superuser = server.connect(db=db, application_name='festivals-api')
    busy = server.connect(db=db, user='app', password='app-pw', application_name='festivals-api')

    def long_query():
        try:
            busy.cursor().execute('SELECT pg_sleep(120)')
        except psycopg2.errors.QueryCanceled:
            pass  # cancelled below, once the module has run

    worker = threading.Thread(target=long_query)
    worker.start()
    time.sleep(1.5)
    try:
        res = run_module('pg_maintenance', conn_args(server, db, operations={'terminate': {
            'idle_for': '1s', 'users': ['app'], 'applications': ['festivals-*']}}))
    finally:
        conn.cursor().execute('SELECT pg_cancel_backend(%s)', (busy.get_backend_pid(),))
        worker.join()
    assert not res.failed, res.result
    pids = sorted(c.get_backend_pid() for c in targets)
    assert sorted(d['figures']['pid'] for d in res['done']) == pids
    for c in targets:
        with pytest.raises(psycopg2.OperationalError):
            c.cursor().execute('SELECT 1')
    for c in (other_app, other_user, superuser, busy):
        c.cursor().execute('SELECT 1')
        c.close()


@pytest.mark.parametrize('args,needle', [
    (dict(operations={'vacuum': {'full': True}}), 'allow_blocking'),
    (dict(operations={'vaccum': {}}), "unknown operation 'vaccum'"),
    (dict(operations={'vacuum': {'min_dead_ratio': 2}}), 'operations.vacuum.min_dead_ratio must be a number from 0 to 1'),
    (dict(operations={'vacuum': {}}, lock_timeout='soon'), 'lock_timeout must be a duration'),
    (dict(operations={'vacuum': {}}, login_db='no_such_db'), 'database no_such_db does not exist'),
    (dict(operations={'vacuum': {}}, login_user='app', login_password='wrong'), 'refused the credentials'),
    # throttling: validated numbers, never text spliced into SQL
    (dict(operations={'vacuum': {}}, vacuum_cost_delay="1ms'; DROP TABLE x; --"),
     'vacuum_cost_delay must be a duration from 0ms to 100ms'),
    (dict(operations={'vacuum': {}}, vacuum_cost_delay='2'), 'vacuum_cost_delay must be a duration from 0ms to 100ms'),
    (dict(operations={'vacuum': {}}, vacuum_cost_limit=0), 'vacuum_cost_limit must be an integer from 1 to 10000'),
    (dict(operations={'vacuum': {}}, pause='soon'), 'pause must be a duration'),
])
def test_bad_input_is_one_sentence(pgdb, args, needle):
    server, db, conn = pgdb
    ensure_role(conn, 'app', 'right')
    args = dict(args)
    res = run_module('pg_maintenance', conn_args(server, args.pop('db', db), **args), verbosity=3)
    assert res.failed
    assert needle in res['msg'], res['msg']
    assert 'Traceback' not in res.stdout and '\n' not in res['msg']
    assert "'wrong'" not in res.stdout or 'login_password' not in res.stdout


def test_unreachable_server_and_empty_scope(pgdb):
    server, db, conn = pgdb
    from helpers import free_port
    res = run_module('pg_maintenance', dict(login_host='127.0.0.1', login_port=free_port(), login_db=db,
                                            operations={'vacuum': {}}))
    assert res.failed and res['msg'].startswith('cannot connect to PostgreSQL at 127.0.0.1:')
    make_table(conn, 'lonely', rows=100)
    res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}, tables=['nomatch*']))
    assert not res.failed and res['changed'] is False
    assert any('no table matches' in w for w in res.get('warnings', []))


def test_health_info_reports_checks_and_notes(pgdb):
    server, db, conn = pgdb
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE generated_cards (card_number text, expiry_date text, cvv text)')
        cur.execute("INSERT INTO generated_cards VALUES ('1','01/30','123'), ('1','01/30','123'), ('2','02/30','1')")
        cur.execute('CREATE TABLE schema_migrations (version text, executed_at timestamptz)')
        cur.execute("INSERT INTO schema_migrations VALUES ('001', now() - interval '1 day'), ('002', now())")
    dupes = ('SELECT count(*) FROM (SELECT 1 FROM generated_cards GROUP BY card_number, expiry_date, cvv '
             'HAVING count(*) > 1) d')
    res = run_module('pg_health_info', conn_args(server, db, checks=[{'name': 'duplicate cards', 'sql': dupes}]))
    assert not res.failed, res.result
    assert res['health']['checks'] == [{'name': 'duplicate cards', 'value': 1, 'max': 0, 'ok': False}]
    assert [f['verdict'] for f in res['findings'] if f['object'] == 'check duplicate cards'] == ['critical']
    assert [m['version'] for m in res['health']['migrations']] == ['002', '001']
    assert any('pg_stat_statements is not installed' in n for n in res['notes'])
    conn.cursor().execute('CREATE EXTENSION pg_stat_statements')
    res = run_module('pg_health_info', conn_args(server, db, sections=['statements']))
    assert res['notes'] == [] and isinstance(res['health']['statements'], list)
    # a check may not write: it must be a query, and runs in a read-only transaction
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=[
        {'name': 'sneaky', 'sql': 'DELETE FROM generated_cards RETURNING 1'}]))
    assert res.failed and 'must be a query' in res['msg']
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=[
        {'name': 'sneaky', 'sql': 'WITH d AS (DELETE FROM generated_cards RETURNING 1) SELECT count(*) FROM d'}]))
    assert res.failed and 'read-only transaction' in res['msg']
    with conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM generated_cards')
        assert cur.fetchone()[0] == 3


def test_backup_is_verified_idempotent_restorable_and_rotated(pgdb, tmp_path):
    server, db, conn = pgdb
    make_table(conn, 'orders', rows=3000)
    dest = str(tmp_path / 'backups')
    args = conn_args(server, db, dest=dest, keep=2, max_age='1h')

    check = run_module('pg_backup', args, check=True)
    assert check['changed'] is True and not (tmp_path / 'backups').exists()

    first = run_module('pg_backup', args)
    assert not first.failed, first.result
    dump = first['backup']['path']
    assert first['backup']['tables_with_data'] == ['public.orders']
    import hashlib
    assert hashlib.sha256(open(dump, 'rb').read()).hexdigest() == first['backup']['sha256']
    assert run_module('pg_backup', args)['changed'] is False  # young enough: nothing to do

    # the dump restores: same rows in a fresh database
    with conn.cursor() as cur:
        cur.execute('CREATE DATABASE %s_restored' % db[:40])
    import subprocess
    subprocess.run(['pg_restore', '-h', '127.0.0.1', '-p', str(server.port), '-U', 'postgres',
                    '-d', '%s_restored' % db[:40], dump], check=True)
    restored = server.connect(db='%s_restored' % db[:40])
    with restored.cursor() as cur:
        cur.execute('SELECT count(*) FROM orders')
        assert cur.fetchone()[0] == 3000
    restored.close()
    conn.cursor().execute('DROP DATABASE %s_restored' % db[:40])

    # rotation: max_age 0 forces a new one each run; only the 2 newest stay, and a foreign
    # file in the directory is never touched
    (tmp_path / 'backups' / 'keep-me.txt').write_text('not ours')
    paths = [dump]
    for attempt in range(2):
        time.sleep(1.1)  # file names carry the second
        paths.append(run_module('pg_backup', dict(args, max_age='0'))['backup']['path'])
    names = sorted(p.name for p in (tmp_path / 'backups').iterdir())
    assert 'keep-me.txt' in names
    dumps = sorted(n for n in names if n.endswith('.dump'))
    assert dumps == sorted(p.rsplit('/', 1)[1] for p in paths[1:])


def test_max_runtime_starts_nothing_after_the_window(pgdb):
    server, db, conn = pgdb
    make_table(conn, 'late_a', rows=20000, delete_share=0.5, index=False)
    make_table(conn, 'late_b', rows=20000, delete_share=0.5, index=False)
    res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}, max_runtime='0s'))
    assert not res.failed and res['changed'] is False
    assert res['done'] == [] and len(res['plan']) == 2
    assert [s['why'] for s in res['skipped_items']] == ['maintenance window over (max_runtime 0s)'] * 2


def test_connection_lost_halfway_reports_done_and_remaining(pgdb):
    server, db, conn = pgdb
    make_table(conn, 'first', rows=30000, delete_share=0.9, index=False)
    make_table(conn, 'second', rows=20000, delete_share=0.5, index=False)
    make_table(conn, 'third', rows=20000, delete_share=0.4, index=False)
    holder = server.connect(db=db)
    holder.autocommit = False
    holder.cursor().execute('LOCK TABLE second IN ACCESS EXCLUSIVE MODE')

    def kill_module_backend():
        # while the module waits for the lock on "second", its session goes away
        watcher = server.connect(db=db)
        deadline = time.time() + 30
        while time.time() < deadline:
            with watcher.cursor() as cur:
                cur.execute("""SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                               WHERE application_name = 'oncall.runbooks' AND wait_event_type = 'Lock'""")
                if cur.fetchall():
                    break
            time.sleep(0.05)
        watcher.close()

    killer = threading.Thread(target=kill_module_backend)
    killer.start()
    try:
        res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}, lock_timeout='20s'))
    finally:
        killer.join()
        holder.rollback()
        holder.close()
    assert res.failed
    assert 'was lost after 1 of 3 statement(s)' in res['msg']
    assert [d['object'] for d in res['done']] == ['public.first']
    assert [r['object'] for r in res['remaining']] == ['public.second', 'public.third']


def test_throttle_reaches_the_server_and_pauses_between_statements(pgdb):
    """vacuum_cost_delay / vacuum_cost_limit are set in the module's own session: its backend is
    seen sleeping in VacuumDelay (a wait an unthrottled manual VACUUM never has), the module
    returns the values the server showed, and between the two VACUUMs the session sits idle
    for the pause."""
    server, db, conn = pgdb
    make_table(conn, 'slow_a', rows=1500, delete_share=0.5, index=False)
    make_table(conn, 'slow_b', rows=1500, delete_share=0.6, index=False)
    wait_stats(conn, 'slow_a', 750)
    seen = []
    halt = threading.Event()

    def watch():
        watcher = server.connect(db=db, application_name='throttle-watcher')
        while not halt.is_set():
            with watcher.cursor() as cur:
                cur.execute("""SELECT state, wait_event, left(query, 40) FROM pg_stat_activity
                               WHERE application_name = 'oncall.runbooks'""")
                seen.extend(cur.fetchall())
            time.sleep(0.01)
        watcher.close()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {'min_dead_tuples': 100}},
                                                     vacuum_cost_delay='2ms', vacuum_cost_limit=1, pause='1s'))
    finally:
        halt.set()
        thread.join()
    assert not res.failed, res.result
    assert [d['object'] for d in res['done']] == ['public.slow_b', 'public.slow_a']
    assert res['throttle'] == {'vacuum_cost_delay': '2ms', 'vacuum_cost_limit': 1, 'pause': '1s'}
    assert any(w == 'VacuumDelay' for state, w, q in seen), set(seen)
    # after the first VACUUM its session is idle (the pause), then runs the second one
    first_idle = [i for i, (state, w, q) in enumerate(seen) if state == 'idle' and q.startswith('VACUUM "public"."slow_b"')]
    second = [i for i, (state, w, q) in enumerate(seen) if state == 'active' and q.startswith('VACUUM "public"."slow_a"')]
    assert first_idle and second and first_idle[0] < second[0], set(seen)
