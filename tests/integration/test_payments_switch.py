# -*- coding: utf-8 -*-
"""payments_switch against a real PostgreSQL: the flag and its audit row are committed together
or not at all, and the module says which (issue 13, item 6).

Before: with an unusual audit_table the switch and its audit row were committed, then the module
failed reading the audit table back (to_regclass of the raw option), or silently returned no
last change (a mixed-case name).
"""

from __future__ import annotations

import time

import pytest

from helpers import free_port, run_module

REASON = 'INC-9 Stripe API 5xx'


@pytest.fixture()
def shop(pgdb):
    server, db, conn = pgdb
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA marketplace')
        cur.execute('CREATE SCHEMA ops')
        cur.execute('CREATE TABLE marketplace.configuration (key text PRIMARY KEY, payments_enabled boolean NOT NULL, '
                    'note text)')
        cur.execute("INSERT INTO marketplace.configuration VALUES ('PAYMENTS_ENABLED', true, 'x')")
        cur.execute('CREATE TABLE marketplace.not_audit (x int)')
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user='postgres', login_db=db)
    return dict(args=args, conn=conn)


def flag(conn):
    with conn.cursor() as cur:
        cur.execute('SELECT payments_enabled FROM marketplace.configuration')
        return cur.fetchone()[0]


def tables(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")
        return cur.fetchall()


def audit_rows(conn, schema, name):
    from psycopg2 import sql
    with conn.cursor() as cur:
        cur.execute(sql.SQL('SELECT key, old, new, reason FROM {} ORDER BY id').format(sql.Identifier(schema, name)))
        return cur.fetchall()


def test_switch_off_check_mode_then_once_then_nothing(shop):
    before = (flag(shop['conn']), tables(shop['conn']))
    check = run_module('payments_switch', dict(shop['args'], enabled=False, reason=REASON), check=True, diff=True)
    assert check['changed'] is True and check['committed'] is False and check['enabled'] is False
    assert (flag(shop['conn']), tables(shop['conn'])) == before
    first = run_module('payments_switch', dict(shop['args'], enabled=False, reason=REASON))
    assert first['changed'] is True and first['committed'] is True, first.result
    assert first['msg'].startswith('payments disabled: committed with audit row ')
    assert check['plan'] == [{'action': 'disable payments', 'count': 1, 'object': 'marketplace.configuration key = PAYMENTS_ENABLED',
                              'from': True, 'to': False, 'reason': REASON}] and check['actions'] == []
    assert first['actions'] == [dict(check['plan'][0], audit_row=first['actions'][0]['audit_row'])]
    assert first['last_change']['reason'] == REASON and first['last_change']['new'] is False
    assert flag(shop['conn']) is False
    assert audit_rows(shop['conn'], 'public', 'oncall_runbooks_audit') == [('PAYMENTS_ENABLED', True, False, REASON)]
    second = run_module('payments_switch', dict(shop['args'], enabled=False, reason=REASON))
    assert second['changed'] is False and second['committed'] is False and second['msg'] == 'payments disabled: already so'
    assert second['plan'] == [] and second['actions'] == []
    assert len(audit_rows(shop['conn'], 'public', 'oncall_runbooks_audit')) == 1


# audit_table -> (schema, table) where the row must land, or the sentence it is refused with
CASES = [
    ('AuditLog', ('public', 'AuditLog')),  # case kept, as written
    ('"Audit Log"', ('public', 'Audit Log')),  # a name that needs quoting, quoted
    ('ops.audit', ('ops', 'audit')),  # schema-qualified
    ('ops."Audit.Log"', ('ops', 'Audit.Log')),  # a dot inside a quoted name
    ('"x""; DROP TABLE marketplace.configuration; --"', ('public', 'x"; DROP TABLE marketplace.configuration; --')),
    ('Audit Log', "audit_table is not a valid name: 'Audit Log' (letters, digits, _ and $, or a double-quoted name)"),
    ('x; DROP TABLE marketplace.configuration; --', 'audit_table is not a valid name'),
    ("audit'); DROP TABLE marketplace.configuration; --", 'audit_table is not a valid name'),
    ('nosuch.audit', 'audit_table nosuch.audit cannot be created: schema nosuch does not exist'),
    ('marketplace.configuration', 'audit_table marketplace.configuration is the configuration table itself'),
    ('marketplace.not_audit', 'audit_table marketplace.not_audit exists but is not an audit table (no column id, key, '),
    ('a.b.c', "audit_table has 3 dotted parts, at most 2 allowed: 'a.b.c'"),
    ('"unterminated', 'audit_table has an unterminated quoted name'),
    ('ops.', "audit_table ends with a dot: 'ops.'"),
    ('""', 'audit_table has an empty quoted name'),
    ('x' * 64, "audit_table: 'xxxxxxxxxxxxxxxxxxxx...' is longer than PostgreSQL's 63 bytes"),
]


@pytest.mark.parametrize('audit_table,expected', CASES, ids=[c[0][:30] for c in CASES])
def test_an_unusual_audit_table_is_all_or_nothing(shop, audit_table, expected):
    before = tables(shop['conn'])
    started = time.time()
    res = run_module('payments_switch', dict(shop['args'], enabled=False, reason=REASON, audit_table=audit_table))
    elapsed = time.time() - started
    if isinstance(expected, tuple):  # fully applied: the flag, its audit row, and the module says so
        assert not res.failed, res.result
        assert res['changed'] is True and res['committed'] is True and res['enabled'] is False
        assert flag(shop['conn']) is False
        assert audit_rows(shop['conn'], *expected) == [('PAYMENTS_ENABLED', True, False, REASON)]
        assert res['last_change']['reason'] == REASON and 0 <= res['last_change']['seconds_ago'] <= elapsed + 1
        assert sorted(set(tables(shop['conn'])) - set(before)) == [expected]
        assert ('marketplace', 'configuration') in tables(shop['conn'])
        back = run_module('payments_switch', dict(shop['args'], enabled=True, reason='recovered', audit_table=audit_table))
        assert back['committed'] is True and len(audit_rows(shop['conn'], *expected)) == 2
    else:  # not at all: one sentence naming the option, nothing changed
        assert res.failed and res['msg'].startswith(expected), res['msg']
        assert res['msg'].endswith('; nothing was changed') and '\n' not in res['msg']
        assert res['committed'] is False
        assert flag(shop['conn']) is True and tables(shop['conn']) == before


@pytest.mark.parametrize('change,expected', [
    (dict(table='marketplace.nosuch'), 'table marketplace.nosuch does not exist (option table)'),
    (dict(key_column='name'), 'marketplace.configuration has no column name (option key_column)'),
    (dict(flag_column='note'), 'marketplace.configuration.note is text, not boolean (option flag_column)'),
    (dict(flag_column='a.b'), "flag_column has 2 dotted parts, at most 1 allowed: 'a.b'"),
    (dict(key='NO_SUCH_KEY'), 'marketplace.configuration has no row with key = NO_SUCH_KEY'),
    (dict(reason='  '), 'disabling payments needs a reason'),
    (dict(login_port=0), 'cannot connect to PostgreSQL'),
])
def test_bad_options_change_nothing(shop, change, expected):
    if change.get('login_port') == 0:
        change = dict(change, login_port=free_port())
    before = tables(shop['conn'])
    res = run_module('payments_switch', dict(dict(shop['args'], enabled=False, reason=REASON), **change))
    assert res.failed and res['msg'].startswith(expected), res['msg']
    assert '\n' not in res['msg']
    assert flag(shop['conn']) is True and tables(shop['conn']) == before


def test_a_switch_that_cannot_commit_reports_nothing_committed(shop):
    """A deferred constraint fails at COMMIT: the server rolled it all back, and the module says so."""
    with shop['conn'].cursor() as cur:
        cur.execute('CREATE TABLE ops.audit (id bigserial PRIMARY KEY, key text NOT NULL, old boolean, new boolean, '
                    'actor text NOT NULL, reason text, changed_at timestamptz NOT NULL DEFAULT now(), '
                    'CONSTRAINT no_reason_x UNIQUE (key) DEFERRABLE INITIALLY DEFERRED)')
        cur.execute("INSERT INTO ops.audit (key, old, new, actor) VALUES ('PAYMENTS_ENABLED', false, true, 'seed')")
    res = run_module('payments_switch', dict(shop['args'], enabled=False, reason=REASON, audit_table='ops.audit'))
    assert res.failed and res['committed'] is False, res.result
    assert res['msg'].endswith('while committing the switch; nothing was changed')
    assert 'duplicate key value violates unique constraint' in res['msg'] and '\n' not in res['msg']
    assert flag(shop['conn']) is True and len(audit_rows(shop['conn'], 'ops', 'audit')) == 1
