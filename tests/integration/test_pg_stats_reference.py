# -*- coding: utf-8 -*-
"""pg_maintenance and pg_health_info beside PostgreSQL's own measurement, pgstattuple.

Tables with known bloat are made for real (filled, a known share deleted, autovacuum off); the
set of tables the module plans to VACUUM and the set of indexes it plans to REINDEX, at the
module's default thresholds, must equal the sets computed in the test from pgstattuple() and
pgstatindex() on the same tables - before and after the statistics are reset (pg_stat_reset(),
a single table's reset, a crash), and for an index whose table was never analyzed.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import PG_BIN, PostgresServer, run_module
from test_pg_maintenance import conn_args, ensure_role, flush_stats, wait_stats

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import maintenance as pgm

VACUUM_DEFAULTS = pgm.DEFAULTS['vacuum']
REINDEX_DEFAULTS = pgm.DEFAULTS['reindex']

# name: (rows, share of rows deleted); autovacuum is off, nothing vacuums them
TABLES = {
    'dead_40': (20000, 0.40),   # over both thresholds
    'dead_25': (30000, 0.25),
    'dead_05': (20000, 0.05),   # under min_dead_ratio
    'small_50': (1500, 0.50),   # over the ratio, under min_dead_tuples
    'clean': (10000, 0.0),
}


def sql(conn, statement, args=None):
    with conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall() if cur.description else None


def fill(conn, name, rows, share, analyze=True, index=False):
    sql(conn, 'CREATE TABLE %s (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)' % name)
    sql(conn, 'INSERT INTO %s SELECT g, md5(g::text) FROM generate_series(1, %d) g' % (name, rows))
    if index:
        sql(conn, 'CREATE INDEX %s_v ON %s (v)' % (name, name))
    if analyze:
        flush_stats(conn.cursor())
        sql(conn, 'ANALYZE %s' % name)
    if share:
        sql(conn, 'DELETE FROM %s WHERE id %% 100 < %d' % (name, int(share * 100)))
    flush_stats(conn.cursor())


def make_tables(conn):
    for name, (rows, share) in TABLES.items():
        fill(conn, name, rows, share)
    wait_stats(conn, 'dead_25', 7500)


def pgstattuple_vacuum_set(conn):
    """The tables past the module's default VACUUM thresholds according to pgstattuple()."""
    expected = set()
    for name, live, dead in sql(conn, """
            SELECT c.relname, s.tuple_count, s.dead_tuple_count
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                 LATERAL pgstattuple(c.oid::regclass) s
            WHERE n.nspname = 'public' AND c.relkind = 'r'"""):
        ratio = float(dead) / (live + dead) if live + dead else 0.0
        if dead >= VACUUM_DEFAULTS['min_dead_tuples'] and ratio >= VACUUM_DEFAULTS['min_dead_ratio']:
            expected.add('public.' + name)
    return expected


def pgstatindex_reindex_set(conn):
    """The B-tree indexes past the module's default REINDEX thresholds according to pgstatindex():
    the share of leaf space a fresh build at the index's fillfactor (90 for a B-tree) would not
    need, for indexes of at least min_size."""
    min_size = pgm.parse_size(REINDEX_DEFAULTS['min_size'])
    expected = set()
    for name, index_size, density in sql(conn, """
            SELECT i.relname, s.index_size, s.avg_leaf_density
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_namespace n ON n.oid = i.relnamespace JOIN pg_am am ON am.oid = i.relam,
                 LATERAL pgstatindex(i.oid::regclass) s
            WHERE n.nspname = 'public' AND am.amname = 'btree'"""):
        if index_size >= min_size and 1 - density / 90.0 >= REINDEX_DEFAULTS['min_bloat_ratio']:
            expected.add('public.' + name)
    return expected


def planned(res, *operations):
    return set(p['object'] for p in res['plan'] if p['operation'] in operations)


def pg_counters(conn):
    return sql(conn, """SELECT relname, vacuum_count, analyze_count FROM pg_stat_user_tables
                        ORDER BY relname""")


@pytest.mark.parametrize('reset', ['none', 'pg_stat_reset', 'single_table'])
def test_vacuum_plan_equals_pgstattuple_before_and_after_a_reset(pgdb, reset):
    server, db, conn = pgdb
    sql(conn, 'CREATE EXTENSION pgstattuple')
    make_tables(conn)
    expected = pgstattuple_vacuum_set(conn)
    assert expected == {'public.dead_40', 'public.dead_25'}  # the data is what the test means

    if reset == 'pg_stat_reset':
        sql(conn, 'SELECT pg_stat_reset()')
    elif reset == 'single_table':
        sql(conn, "SELECT pg_stat_reset_single_table_counters('dead_40'::regclass)")
    if reset != 'none':
        dead = dict(sql(conn, 'SELECT relname, n_dead_tup FROM pg_stat_user_tables'))
        assert dead['dead_40'] == 0  # pg_stat no longer sees the dead tuples

    check = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}), check=True, diff=True)
    assert not check.failed, check.result
    assert planned(check, 'vacuum') == expected
    if reset != 'none':
        by_object = dict((p['object'], p) for p in check['plan'])
        assert 'pgstattuple_approx' in by_object['public.dead_40']['figures']['source']
        assert 'measured with pgstattuple_approx' in by_object['public.dead_40']['reason']
    # check mode's diff predicts the VACUUM, it does not repeat before
    assert check['diff']['after']['tables']['public.dead_40']['dead_tuples'] == 0
    assert check['diff']['before']['tables']['public.dead_40']['dead_tuples'] >= 8000

    res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}))
    assert not res.failed, res.result
    assert set(d['object'] for d in res['done']) == expected
    assert pgstattuple_vacuum_set(conn) == set()
    assert run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}))['changed'] is False


def test_without_pgstattuple_a_reset_is_a_warning_naming_the_tables(pgdb):
    server, db, conn = pgdb
    make_tables(conn)
    sql(conn, 'SELECT pg_stat_reset()')
    before = pg_counters(conn)
    res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}))
    assert not res.failed, res.result
    assert res['plan'] == [] and res['changed'] is False
    unknown = [f for f in res['findings'] if f['verdict'] == 'warning']
    assert len(unknown) == 1 and set(unknown[0]['tables']) == set('public.' + t for t in TABLES)
    assert 'CREATE EXTENSION pgstattuple' in unknown[0]['how']
    assert set(s['object'] for s in res['skipped_items']) == set('public.' + t for t in TABLES)
    assert any('dead tuples unknown for' in w and 'CREATE EXTENSION pgstattuple' in w for w in res['warnings'])
    assert pg_counters(conn) == before

    # with analyze among the operations, ANALYZE brings the counters back: the next run plans VACUUM
    res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}, 'analyze': {}}))
    assert set(d['object'] for d in res['done'] if d['operation'] == 'analyze') == set('public.' + t for t in TABLES)
    assert all('statistics counters were reset' in d['reason'] for d in res['done'])
    sql(conn, 'CREATE EXTENSION pgstattuple')
    res = run_module('pg_maintenance', conn_args(server, db, operations={'vacuum': {}}), check=True)
    assert planned(res, 'vacuum') == pgstattuple_vacuum_set(conn) == {'public.dead_40', 'public.dead_25'}

    # pg_health_info says the same: unknown without the extension, measured with it
    sql(conn, 'SELECT pg_stat_reset()')
    info = run_module('pg_health_info', conn_args(server, db, sections=['dead_tuples']))
    rows = dict(('%s.%s' % (r['schema'], r['name']), r) for r in info['health']['dead_tuples'])
    assert rows['public.dead_40']['source'] == 'pgstattuple_approx'
    assert rows['public.dead_40']['dead_tuples'] == 8000
    sql(conn, 'DROP EXTENSION pgstattuple')
    info = run_module('pg_health_info', conn_args(server, db, sections=['dead_tuples']))
    warn = [f for f in info['findings'] if 'unknown' in f['object']]
    assert warn and warn[0]['verdict'] == 'warning' and 'public.dead_40' in warn[0]['tables']


def bloat_indexes(conn, analyze=True):
    """ix_bloated: 80% of the rows deleted and VACUUMed (sparse leaves); ix_mild: 5%; ix_clean."""
    for name, share in (('ix_bloated', 0.8), ('ix_mild', 0.05), ('ix_clean', 0.0)):
        fill(conn, name, 60000, share, analyze=analyze, index=True)
        sql(conn, 'VACUUM %s' % name)  # removes the index entries of the deleted rows
    flush_stats(conn.cursor())


@pytest.mark.parametrize('case', ['analyzed', 'after_pg_stat_reset', 'never_analyzed'])
def test_reindex_plan_equals_pgstatindex(pgdb, case):
    server, db, conn = pgdb
    sql(conn, 'CREATE EXTENSION pgstattuple')
    bloat_indexes(conn, analyze=(case != 'never_analyzed'))
    expected = pgstatindex_reindex_set(conn)
    assert expected == {'public.ix_bloated_pkey', 'public.ix_bloated_v'}
    if case == 'after_pg_stat_reset':
        sql(conn, 'SELECT pg_stat_reset()')
    if case == 'never_analyzed':
        assert not sql(conn, "SELECT 1 FROM pg_stats WHERE tablename LIKE 'ix_%%'")

    res = run_module('pg_maintenance', conn_args(server, db, operations={'reindex': {}}), check=True)
    assert not res.failed, res.result
    assert planned(res, 'reindex') == expected
    if case == 'never_analyzed':
        assert all(p['figures']['source'] == 'pgstatindex' for p in res['plan'])
    # pg_health_info's bloated list agrees
    info = run_module('pg_health_info', conn_args(server, db, sections=['indexes']))
    assert set('%s.%s' % (b['schema'], b['name']) for b in info['health']['indexes']['bloated']) == expected

    if case == 'never_analyzed':
        # without pgstattuple, the indexes that cannot be estimated are named with the reason
        sql(conn, 'DROP EXTENSION pgstattuple')
        res = run_module('pg_maintenance', conn_args(server, db, operations={'reindex': {}}), check=True)
        assert res['plan'] == []
        skipped = dict((s['object'], s['why']) for s in res['skipped_items'])
        assert set(skipped) == {'public.%s_%s' % (t, c) for t in ('ix_bloated', 'ix_mild', 'ix_clean')
                                for c in ('pkey', 'v')}
        assert all('never analyzed' in w and 'CREATE EXTENSION pgstattuple' in w for w in skipped.values())
        info = run_module('pg_health_info', conn_args(server, db, sections=['indexes']))
        named = set('%s.%s' % (u['schema'], u['name']) for u in info['health']['indexes']['bloat_unknown'])
        # pg_health_info takes sizes from the catalog (no lock), so its 1MB line may fall elsewhere
        assert expected <= named <= set(skipped)
        assert [f['verdict'] for f in info['findings'] if 'bloat is unknown' in f['object']] == ['warning']
        return
    res = run_module('pg_maintenance', conn_args(server, db, operations={'reindex': {}}))
    assert set(d['object'] for d in res['done']) == expected
    assert pgstatindex_reindex_set(conn) == set()


def test_a_crash_empties_pg_stat_and_the_plan_still_equals_pgstattuple():
    """An immediate shutdown discards the statistics (PostgreSQL 15): a cluster of its own."""
    server = PostgresServer()
    try:
        conn = server.connect()
        sql(conn, 'CREATE EXTENSION pgstattuple')
        make_tables(conn)
        sql(conn, 'CHECKPOINT')
        conn.close()
        server._run([PG_BIN + '/pg_ctl', '-D', server.data, '-m', 'immediate', 'stop'])
        server._run([PG_BIN + '/pg_ctl', '-D', server.data, '-w', '-l', server.dir + '/log', '-o',
                     '-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off' % (server.port, server.dir),
                     'start'])
        conn = server.connect()
        assert sql(conn, "SELECT sum(n_dead_tup) FROM pg_stat_user_tables")[0][0] == 0
        expected = pgstattuple_vacuum_set(conn)
        assert expected == {'public.dead_40', 'public.dead_25'}
        res = run_module('pg_maintenance', conn_args(server, 'postgres', operations={'vacuum': {}}), check=True)
        assert not res.failed, res.result
        assert planned(res, 'vacuum') == expected
        conn.close()
    finally:
        server.stop()


# -- least privilege (issue 14, defect 5) ---------------------------------------------------------

def lp_args(server, db, **extra):
    return conn_args(server, db, login_user='maint_lp', login_password='lp-pw', **extra)


def test_least_privilege_role_vacuum_skipped_with_postgres_reason_not_done(pgdb):
    server, db, conn = pgdb
    ensure_role(conn, 'maint_lp', 'lp-pw')
    sql(conn, 'REVOKE pg_read_all_stats, pg_signal_backend, pg_stat_scan_tables FROM maint_lp')
    make_tables(conn)
    before = pg_counters(conn)
    ops = {'vacuum': {}, 'analyze': {'min_modified_ratio': 0.1}}

    check = run_module('pg_maintenance', lp_args(server, db, operations=ops), check=True)
    assert not check.failed, check.result
    assert planned(check, 'vacuum analyze') == {'public.dead_40', 'public.dead_25'}
    assert check['changed'] is False  # PostgreSQL would skip each one: check mode says so
    assert all('owns neither the table nor the database' in s['why'] for s in check['skipped_items'])

    res = run_module('pg_maintenance', lp_args(server, db, operations=ops))
    assert not res.failed, res.result
    assert res['done'] == [] and res['changed'] is False
    whys = dict((s['object'], s['why']) for s in res['skipped_items'])
    assert set(whys) == {'public.dead_40', 'public.dead_25', 'public.small_50'}  # small_50: ANALYZE
    # PostgreSQL's own reason, as its WARNING gave it (PostgreSQL 15 wording)
    assert whys['public.dead_40'] == ('PostgreSQL skipped it: skipping "dead_40" --- only table or '
                                      'database owner can vacuum it')
    assert pg_counters(conn) == before

    # the owner's role may: only what really ran is done
    sql(conn, 'ALTER TABLE dead_40 OWNER TO maint_lp')
    res = run_module('pg_maintenance', lp_args(server, db, operations=ops))
    assert [d['object'] for d in res['done']] == ['public.dead_40'] and res['changed'] is True
    assert sorted(s['object'] for s in res['skipped_items']) == ['public.dead_25', 'public.small_50']


def test_a_table_whose_owner_changed_after_the_plan_is_skipped_from_the_servers_warning(pgdb):
    """The notice path itself: the plan was made while the role owned the table."""
    server, db, conn = pgdb
    ensure_role(conn, 'maint_lp', 'lp-pw')
    make_tables(conn)
    sql(conn, 'ALTER TABLE dead_40 OWNER TO maint_lp')
    params = dict(lp_args(server, db, operations={'vacuum': {}}), schemas=['*'], tables=[], exclude_tables=[],
                  lock_timeout='2s', statement_timeout=None, max_runtime=None, allow_blocking=False,
                  ssl_mode='prefer', connect_timeout=10, connect_params={}, measure_max_size='1GB')
    pgm.validate(params)
    maint = pgm.Maintenance(None, params)
    from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
    maint.conn = pgc.connect(params)
    try:
        items = maint.plan(maint.observe())
        assert [i.object for i in items if i.denied is None] == ['public.dead_40']
        sql(conn, 'ALTER TABLE dead_40 OWNER TO postgres')
        before = pg_counters(conn)
        done, skipped = maint.apply([i for i in items if i.object == 'public.dead_40'])
    finally:
        maint.conn.close()
    assert done == []
    assert skipped[0]['why'].startswith('PostgreSQL skipped it: skipping "dead_40"')
    assert pg_counters(conn) == before


def test_least_privilege_terminate_needs_pg_read_all_stats_and_pg_signal_backend(pgdb):
    server, db, conn = pgdb
    ensure_role(conn, 'maint_lp', 'lp-pw')
    ensure_role(conn, 'app_x', 'app-pw')
    sql(conn, 'REVOKE pg_read_all_stats, pg_signal_backend FROM maint_lp')
    idle = server.connect(db=db, user='app_x', password='app-pw', application_name='idle-app')
    import time
    time.sleep(1.2)
    ops = {'terminate': {'idle_for': '1s', 'users': ['app_x']}}
    try:
        # 1. the role cannot read the session's state: a warning, not a silent "nothing to do"
        res = run_module('pg_maintenance', lp_args(server, db, operations=ops))
        assert not res.failed and res['plan'] == []
        hidden = [f for f in res['findings'] if f['object'].startswith('sessions hidden')]
        assert hidden and hidden[0]['verdict'] == 'warning' and 'pg_read_all_stats' in hidden[0]['how']
        # 2. it can read it but not signal it: PostgreSQL refuses, the session lives, nothing changed
        sql(conn, 'GRANT pg_read_all_stats TO maint_lp')
        check = run_module('pg_maintenance', lp_args(server, db, operations=ops), check=True)
        assert len(check['plan']) == 1 and check['changed'] is False
        assert 'pg_signal_backend' in check['skipped_items'][0]['why']
        res = run_module('pg_maintenance', lp_args(server, db, operations=ops))
        assert res['done'] == [] and res['changed'] is False
        assert 'pg_signal_backend' in res['skipped_items'][0]['why']
        sql(idle, 'SELECT 1')
        time.sleep(1.2)  # idle again for longer than idle_for (the SELECT made it active)
        # 3. with pg_signal_backend it is terminated
        sql(conn, 'GRANT pg_signal_backend TO maint_lp')
        res = run_module('pg_maintenance', lp_args(server, db, operations=ops))
        assert [d['figures']['pid'] for d in res['done']] == [idle.get_backend_pid()]
    finally:
        sql(conn, 'REVOKE pg_read_all_stats, pg_signal_backend FROM maint_lp')
        idle.close()


def test_least_privilege_pgstattuple_needs_pg_stat_scan_tables(pgdb):
    server, db, conn = pgdb
    ensure_role(conn, 'maint_lp', 'lp-pw')
    sql(conn, 'REVOKE pg_stat_scan_tables FROM maint_lp')
    sql(conn, 'CREATE EXTENSION pgstattuple')
    make_tables(conn)
    sql(conn, 'ALTER TABLE dead_40 OWNER TO maint_lp')
    sql(conn, 'SELECT pg_stat_reset()')
    res = run_module('pg_maintenance', lp_args(server, db, operations={'vacuum': {}}), check=True)
    assert res['plan'] == []
    warn = [f for f in res['findings'] if f['verdict'] == 'warning']
    assert 'GRANT pg_stat_scan_tables TO maint_lp' in warn[0]['how']
    sql(conn, 'GRANT pg_stat_scan_tables TO maint_lp')
    try:
        res = run_module('pg_maintenance', lp_args(server, db, operations={'vacuum': {}}), check=True)
        assert planned(res, 'vacuum') == {'public.dead_40', 'public.dead_25'}
        # dead_25 belongs to postgres: planned by its figures, but PostgreSQL would skip it
        assert [s['object'] for s in res['skipped_items']] == ['public.dead_25']
        assert res['changed'] is True
    finally:
        sql(conn, 'REVOKE pg_stat_scan_tables FROM maint_lp')


def test_restore_into_a_new_database_plans_from_measured_figures(pgdb, tmp_path):
    """pg_restore: the restored tables carry no dead tuples, pg_stat counts the COPY's rows."""
    server, db, conn = pgdb
    make_tables(conn)
    dump = str(tmp_path / 'db.dump')
    subprocess.run([PG_BIN + '/pg_dump', '-h', '127.0.0.1', '-p', str(server.port), '-U', 'postgres', '-Fc',
                    '-f', dump, db], check=True)
    target = db[:40] + '_restored'
    admin = server.connect()
    sql(admin, 'DROP DATABASE IF EXISTS %s' % target)
    sql(admin, 'CREATE DATABASE %s' % target)
    try:
        subprocess.run([PG_BIN + '/pg_restore', '-h', '127.0.0.1', '-p', str(server.port), '-U', 'postgres',
                        '-d', target, dump], check=True)
        restored = server.connect(db=target)
        sql(restored, 'CREATE EXTENSION pgstattuple')
        res = run_module('pg_maintenance', conn_args(server, target, operations={'vacuum': {}}), check=True)
        assert not res.failed, res.result
        assert planned(res, 'vacuum') == pgstattuple_vacuum_set(restored) == set()
        restored.close()
    finally:
        sql(admin, 'DROP DATABASE IF EXISTS %s WITH (FORCE)' % target)
        admin.close()
