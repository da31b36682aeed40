# -*- coding: utf-8 -*-
"""Issue 13 (security), PostgreSQL side, against a real PostgreSQL 15 started by the test run:
pg_health_info checks that try to write, pg_backup options that try to become pg_dump options
or to move its files, and secrets given through connect_params.

Every attack is tried for real, under --check and without: it fails with one sentence naming
the option, and the server (and the file system) is compared before and after."""

from __future__ import annotations

import os

import pytest

from helpers import recap, run_module


def conn_args(server, db, **extra):
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user='postgres', login_db=db)
    args.update(extra)
    return args


def db_state(conn):
    """Tables, their rows, roles and settings that an escaped check could change."""
    with conn.cursor() as cur:
        cur.execute("""SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'public' ORDER BY 1""")
        rels = cur.fetchall()
        cur.execute('SELECT count(*) FROM victim')
        rows = cur.fetchone()[0]
        cur.execute('SELECT rolname FROM pg_roles ORDER BY 1')
        roles = cur.fetchall()
        cur.execute('SELECT count(*) FROM pg_largeobject_metadata')
        los = cur.fetchone()[0]
        cur.execute("SELECT setconfig FROM pg_db_role_setting")
        settings = cur.fetchall()
    return rels, rows, roles, los, settings


@pytest.fixture()
def victim(pgdb):
    server, db, conn = pgdb
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE victim (id int PRIMARY KEY, note text)')
        cur.execute("INSERT INTO victim SELECT g, 'row ' || g FROM generate_series(1, 10) g")
        cur.execute("""CREATE FUNCTION writes_a_row() RETURNS int LANGUAGE plpgsql AS $$
                       BEGIN INSERT INTO victim VALUES (1000, 'written by a check'); RETURN 1; END $$""")
    return server, db, conn


ESCAPES = [
    # the original report: COMMIT ends the module's BEGIN READ ONLY, the DROP then runs in autocommit
    'COMMIT; DROP TABLE victim; SELECT 1',
    'SELECT 1; DROP TABLE victim',
    "SELECT 1 /* ; */ ; DELETE FROM victim",
    "SELECT 'a;b'; DELETE FROM victim",
    'SET default_transaction_read_only = off; DROP TABLE victim; SELECT 1',
    'COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DROP TABLE victim; SELECT 1',
    "SELECT $x$;$x$; DROP TABLE victim",
    "SELECT E'\\';'; DROP TABLE victim",
    'SELECT 1 AS "a;b"; DROP TABLE victim',
]


@pytest.mark.parametrize('check_mode', [False, True], ids=['apply', 'check'])
@pytest.mark.parametrize('sql', ESCAPES)
def test_a_check_of_several_statements_is_refused_before_it_is_sent(victim, sql, check_mode):
    server, db, conn = victim
    before = db_state(conn)
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=[
        {'name': 'innocent', 'sql': sql}]), check=check_mode)
    assert res.failed, res.result
    assert res['msg'].startswith('checks[0] (innocent) must be exactly one statement'), res['msg']
    assert '\n' not in res['msg']
    assert db_state(conn) == before


SINGLE_STATEMENT_WRITES = [
    # each is one statement: refused by the tokenizer's first-word rule or by the read-only
    # transaction, never run with write access
    ('SET default_transaction_read_only = off', 'must be a query'),
    ('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'must be a query'),
    ('COMMIT', 'must be a query'),
    ("DO $$ BEGIN COMMIT; DROP TABLE victim; END $$", 'must be a query'),
    ("COPY (SELECT 1) TO PROGRAM 'touch /tmp/oncall-copy-program'", 'must be a query'),
    ('DELETE FROM victim', 'must be a query'),
    ('WITH d AS (DELETE FROM victim RETURNING 1) SELECT count(*) FROM d', 'read-only transaction'),
    ('SELECT writes_a_row()', 'read-only transaction'),
    ("SELECT set_config('default_transaction_read_only', 'off', false)", 'set_config'),
    ("SELECT lo_export(lo_from_bytea(0, 'x'), '/tmp/oncall-lo-export')", 'lo_export'),
    ("SELECT count(*) FROM pg_catalog.pg_terminate_backend(pg_backend_pid())", 'pg_terminate_backend'),
]


@pytest.mark.parametrize('sql,needle', SINGLE_STATEMENT_WRITES)
def test_a_single_statement_that_writes_is_refused(victim, sql, needle):
    server, db, conn = victim
    before = db_state(conn)
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=[
        {'name': 'innocent', 'sql': sql}]))
    assert res.failed, res.result
    assert needle in res['msg'] and '\n' not in res['msg'], res['msg']
    assert db_state(conn) == before
    assert not os.path.exists('/tmp/oncall-copy-program') and not os.path.exists('/tmp/oncall-lo-export')


def test_checks_run_one_after_another_and_none_can_unlock_the_next(victim):
    """A first check that changes a setting cannot leave the session writable for the second:
    each runs in its own READ ONLY transaction, rolled back, in a read-only session."""
    server, db, conn = victim
    before = db_state(conn)
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=[
        {'name': 'show', 'sql': "SELECT CASE WHEN current_setting('default_transaction_read_only') = 'on' "
                                "AND current_setting('transaction_read_only') = 'on' THEN 0 ELSE 1 END"},
        {'name': 'write', 'sql': 'SELECT writes_a_row()'}]))
    assert res.failed and 'check write failed' in res['msg'] and 'read-only transaction' in res['msg'], res['msg']
    assert db_state(conn) == before


def test_legal_semicolons_quotes_and_comments_still_run(victim):
    server, db, conn = victim
    checks = [
        {'name': 'quoted semicolon', 'sql': "SELECT count(*) FROM victim WHERE note <> 'a;b'", 'max': 100},
        {'name': 'escaped quote', 'sql': "SELECT length('it''s; fine') - 10"},
        {'name': 'E string', 'sql': "SELECT length(E'\\';x') - 3"},
        {'name': 'dollar quoted', 'sql': 'SELECT length($q$a;b$q$) - 3'},
        {'name': 'identifier', 'sql': 'SELECT 0 AS "x;y"'},
        {'name': 'comments', 'sql': 'SELECT 0 -- ; DROP TABLE victim\n /* ; /* nested ; */ ; */'},
        {'name': 'trailing semicolon', 'sql': 'SELECT 0;  '},
        {'name': 'bound value', 'sql': 'SELECT count(*) FROM victim WHERE note = %s',
         'params': ["x'; DROP TABLE victim; --"]},
        {'name': 'bound identifier', 'sql': 'SELECT count(*) - 10 FROM {table} WHERE {column} > %s',
         'identifiers': {'table': 'public.victim', 'column': 'id'}, 'params': [0]},
        {'name': 'statement timeout', 'sql': "SELECT (current_setting('statement_timeout') = '2s')::int - 1"},
    ]
    before = db_state(conn)
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=checks,
                                                 check_timeout='2s'))
    assert not res.failed, res.result
    assert dict((c['name'], c['value']) for c in res['health']['checks']) == {
        'quoted semicolon': 10, 'escaped quote': 0, 'E string': 0, 'dollar quoted': 0, 'identifier': 0,
        'comments': 0, 'trailing semicolon': 0, 'bound value': 0, 'bound identifier': 0,
        'statement timeout': 0}
    assert db_state(conn) == before


def test_a_crafted_identifier_is_a_name_not_sql(victim):
    server, db, conn = victim
    before = db_state(conn)
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=[
        {'name': 'rows', 'sql': 'SELECT count(*) FROM {table}',
         'identifiers': {'table': 'victim; DROP TABLE victim; --'}}]))
    assert res.failed and res['msg'].startswith('check rows failed: relation "victim; DROP TABLE victim; --" '
                                                'does not exist'), res['msg']
    assert db_state(conn) == before


def test_check_timeout_ends_a_slow_check(victim):
    server, db, conn = victim
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], check_timeout='1s', checks=[
        {'name': 'slow', 'sql': 'SELECT count(*) FROM pg_sleep(5)'}]))
    assert res.failed and 'statement timeout' in res['msg'], res['msg']


def test_check_role_runs_checks_without_the_login_roles_rights(victim):
    server, db, conn = victim
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'checker'")
        if not cur.fetchone():
            cur.execute('CREATE ROLE checker NOLOGIN')
        cur.execute('CREATE TABLE secret_stuff (v text)')
        cur.execute('GRANT SELECT ON victim TO checker')
    ok = run_module('pg_health_info', conn_args(server, db, sections=['checks'], check_role='checker', checks=[
        {'name': 'who', 'sql': "SELECT (current_user <> 'checker')::int"},
        {'name': 'rows', 'sql': 'SELECT count(*) FROM victim', 'max': 100}]))
    assert not ok.failed, ok.result
    assert [c['value'] for c in ok['health']['checks']] == [0, 10]
    denied = run_module('pg_health_info', conn_args(server, db, sections=['checks'], check_role='checker', checks=[
        {'name': 'secret', 'sql': 'SELECT count(*) FROM secret_stuff'}]))
    assert denied.failed and 'permission denied for table secret_stuff' in denied['msg'], denied['msg']
    missing = run_module('pg_health_info', conn_args(server, db, sections=['checks'], check_role='nobody_here',
                                                     checks=[{'name': 'x', 'sql': 'SELECT 0'}]))
    assert missing.failed and missing['msg'].startswith('check_role'), missing['msg']
    assert '\n' not in missing['msg']


@pytest.mark.parametrize('check,needle', [
    ({'name': 'x'}, 'checks[0] needs a name and an sql'),
    ({'name': 'x', 'sql': 'SELECT %s', 'params': 'notalist'}, 'checks[0] (x) params must be a list'),
    ({'name': 'x', 'sql': 'SELECT 1 FROM {t}', 'identifiers': {'t': ''}}, 'checks[0] (x) identifiers.t'),
    ({'name': 'x', 'sql': 'SELECT 1 FROM {t}', 'identifiers': {'u': 'x'}}, 'checks[0] (x) names {t} but identifiers has no t'),
    ({'name': 'x', 'sql': '   '}, 'checks[0] (x) must be exactly one statement'),
    ({'name': 'x', 'sql': "SELECT 'open"}, 'unterminated'),
])
def test_bad_checks_are_one_sentence(victim, check, needle):
    server, db, conn = victim
    res = run_module('pg_health_info', conn_args(server, db, sections=['checks'], checks=[check]))
    assert res.failed and needle in res['msg'] and '\n' not in res['msg'], res['msg']


def test_a_password_given_through_connect_params_never_appears_with_vvv(victim, tmp_path):
    """connect_params (nested libpq parameters) is no_log: with -vvv the module's invocation, its
    result and its failures show neither the password nor the sslpassword."""
    server, db, conn = victim
    secret = 'Cp-s3cret-%d-pw' % os.getpid()
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'cp_user'")
        verb = 'ALTER' if cur.fetchone() else 'CREATE'
        cur.execute("%s ROLE cp_user LOGIN PASSWORD '%s'" % (verb, secret))
        cur.execute('GRANT SELECT ON victim TO cp_user')
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user='cp_user', login_db=db,
                connect_params={'password': secret, 'sslpassword': secret + '-key', 'application_name': 'cp'})
    ok = run_module('pg_health_info', dict(args, sections=['checks'],
                                           checks=[{'name': 'rows', 'sql': 'SELECT count(*) FROM victim', 'max': 99}]),
                    verbosity=3)
    assert not ok.failed, ok.result
    assert ok['health']['checks'][0]['value'] == 10  # the password from connect_params was used
    assert 'connect_params' in ok.stdout  # the invocation is printed, masked
    wrong = run_module('pg_health_info', dict(args, connect_params={'password': secret + 'x'}, sections=['checks'],
                                              checks=[{'name': 'rows', 'sql': 'SELECT 1'}]), verbosity=3)
    assert wrong.failed and 'refused the credentials of role cp_user' in wrong['msg']
    backup = run_module('pg_backup', dict(args, connect_params={'password': secret}, dest=str(tmp_path / 'b')),
                        verbosity=3)
    assert not backup.failed, backup.result
    for run in (ok, wrong, backup):
        assert secret not in run.stdout and secret not in run.stderr


# ---- the runbooks that used to splice variables into SQL ----------------------------------

UQ = 'runbooks/uniqueness_check_failures.yml'
DM = 'runbooks/database_migration_issues.yml'
UQ_SWITCHES = {'uniqueness_clean_pool': True}
DM_SWITCHES = {'database_migration_fix_duplicates': True}
WHOAMI = "{{ lookup('pipe', 'id -un') }}"


def lab_state(conn):
    with conn.cursor() as cur:
        cur.execute("""SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                       ORDER BY 1, 2""")
        tables = cur.fetchall()
        counts = []
        for table in ('generated_cards', 'card_uniqueness_pool', 'bloom_filter_cards', 'schema_migrations'):
            cur.execute('SELECT count(*) FROM %s' % table)
            counts.append(cur.fetchone()[0])
        cur.execute('SELECT min(reserved_at)::text FROM card_uniqueness_pool')
        return tables, counts, cur.fetchone()[0]


def failed_msg(proc):
    """The msg of the task that failed (the YAML callback folds a long one over several lines;
    a message of several lines would be a |- block)."""
    lines = proc.stdout.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(('fatal: [lab]', 'failed: [lab]'))), None)
    assert start is not None, proc.stdout[-4000:]
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith('msg: '):
            indent = len(lines[i]) - len(lines[i].lstrip())
            text = [lines[i].lstrip()[len('msg: '):]]
            for more in lines[i + 1:]:
                if not more.strip() or len(more) - len(more.lstrip()) <= indent:
                    break
                text.append(more.strip())
            assert not text[0].startswith('|'), 'a message of several lines: %s' % text
            return ' '.join(text).strip('\'"')
    raise AssertionError(proc.stdout[-4000:])


@pytest.mark.parametrize('playbook,extra,needle', [
    (UQ, dict(UQ_SWITCHES, uniqueness_pool_table='card_uniqueness_pool; DROP TABLE generated_cards; --'),
     'check stale reservations in card_uniqueness_pool; DROP TABLE generated_cards; -- (older than 24h) failed: '
     'relation "card_uniqueness_pool; DROP TABLE generated_cards; --" does not exist'),
    (UQ, dict(UQ_SWITCHES, uniqueness_pool_time_column="reserved_at < now() OR true; DELETE FROM card_uniqueness_pool; --"),
     # PostgreSQL cuts a name at 63 bytes (NAMEDATALEN): it is a name all the same
     'column "reserved_at < now() OR true; DELETE FROM card_uniqueness_pool; " does not exist'),
    (UQ, dict(UQ_SWITCHES, uniqueness_pool_max_age="1 day'; DROP TABLE generated_cards; --"),
     "uniqueness_pool_max_age must be a duration such as 30s, 10m, 24h or 7d"),
    (UQ, dict(UQ_SWITCHES, uniqueness_bloom_table=WHOAMI),
     'relation "root" does not exist'),
    (DM, dict(DM_SWITCHES, database_migration_unique_keys=[
        {'table': 'generated_cards a; DROP TABLE card_uniqueness_pool; --', 'columns': ['card_number'], 'keep_column': 'id'}]),
     'relation "generated_cards a; DROP TABLE card_uniqueness_pool; --" does not exist'),
    (DM, dict(DM_SWITCHES, database_migration_unique_keys=[
        {'table': 'generated_cards', 'columns': ['card_number) d; DROP TABLE card_uniqueness_pool; --'], 'keep_column': 'id'}]),
     'column "card_number) d; DROP TABLE card_uniqueness_pool; --" does not exist'),
    (DM, dict(DM_SWITCHES, database_migration_unique_keys=[
        {'table': WHOAMI, 'columns': ['card_number'], 'keep_column': 'id'}]),
     'relation "root" does not exist'),
], ids=['uq-table', 'uq-column', 'uq-age', 'uq-lookup', 'dm-table', 'dm-column', 'dm-lookup'])
def test_a_crafted_runbook_variable_is_a_name_not_sql(lab, playbook, extra, needle):
    """Each crafted -e value, in --check and for real, with the remediation switched on: the run
    fails with one sentence and the database is as it was. (A {{ lookup }} in -e is rendered by
    Ansible itself, which trusts the command line; its output is then only a name.)"""
    admin = lab.pg()
    before = lab_state(admin)
    for check in (True, False):
        run = lab.playbook(playbook, extra_vars=extra, tags='remediate', check=check)
        assert run.returncode != 0, run.stdout[-3000:]
        msg = failed_msg(run)
        assert needle in msg, msg
        assert lab_state(admin) == before
    admin.close()


def test_odd_names_reach_the_remediation_as_names(lab):
    """A table and columns whose names read like SQL, with real stale reservations and real
    duplicates: the clean-up and the de-duplication act on them and on nothing else."""
    admin = lab.pg()
    pool, cards, col = 'pool; DROP TABLE generated_cards; --', "cards' OR 1=1; --", 'num) d; --'
    with admin.cursor() as cur:
        cur.execute('DROP TABLE IF EXISTS "%s", "%s"' % (pool, cards.replace('"', '""')))
        cur.execute('CREATE TABLE "%s" (id int, reserved_at timestamptz)' % pool)
        cur.execute("""INSERT INTO "%s" SELECT g, now() - CASE WHEN g <= 3 THEN interval '3 days' ELSE interval '1 hour' END
                       FROM generate_series(1, 10) g""" % pool)
        cur.execute('CREATE TABLE "%s" (id int, "%s" text)' % (cards, col))
        cur.execute('INSERT INTO "%s" VALUES (1, \'a\'), (2, \'a\'), (3, \'b\'), (4, \'a\')' % cards)
    before = lab_state(admin)
    run = lab.playbook(UQ, extra_vars=dict(UQ_SWITCHES, uniqueness_pool_table=pool), tags='remediate')
    # no broken task; a critical verdict left after the remediation fails the job on purpose
    assert recap(run)['failed'] == 0, run.stdout[-4000:]
    dm = lab.playbook(DM, extra_vars=dict(DM_SWITCHES, database_migration_unique_keys=[
        {'table': cards, 'columns': [col], 'keep_column': 'id'}], database_migration_tables=[cards]), tags='remediate')
    assert recap(dm)['failed'] == 0, dm.stdout[-4000:]
    with admin.cursor() as cur:
        cur.execute('SELECT id FROM "%s" ORDER BY id' % pool)
        assert [r[0] for r in cur.fetchall()] == [4, 5, 6, 7, 8, 9, 10]
        cur.execute('SELECT id FROM "%s" ORDER BY id' % cards)
        assert [r[0] for r in cur.fetchall()] == [1, 3]
        cur.execute('DROP TABLE "%s", "%s"' % (pool, cards))
    after = lab_state(admin)
    assert after[1:] == before[1:] and [t for t in before[0] if t[1] not in (pool, cards)] == after[0]
    admin.close()
