# -*- coding: utf-8 -*-
"""The PostgreSQL maintenance planner on observations made up here (no server, no connection).

Planning is pure: identifiers are quoted without a connection (connection.quote_ident, compared
with libpq's own quoting on a real server in tests/integration/test_pg_quote.py), so the rules
that choose VACUUM, ANALYZE, REINDEX and pg_terminate_backend can be walked case by case."""
from __future__ import annotations

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import maintenance as pm


def planner(operations, **params):
    """A Maintenance with no connection: planning must not need one."""
    return pm.Maintenance(None, dict(params, operations=operations, login_user='maint'))


def table(name='orders', schema='public', **kw):
    t = {'oid': 16384, 'schema': schema, 'name': name, 'live': 1000, 'dead': 0, 'reltuples': 1000,
         'modified': 0, 'stats_age': 60, 'xid_age': 1000, 'unknown': False, 'may_vacuum': True}
    t.update(kw)
    return t


def index(name='orders_pkey', schema='public', **kw):
    ix = {'oid': 16390, 'schema': schema, 'name': name, 'size': 64 << 20, 'pages': 8192, 'valid': True,
          'method': 'btree', 'bloat': 0.1, 'bloat_source': 'estimate', 'exclusion': False,
          'may_reindex': True}
    ix.update(kw)
    return ix


def session(pid=4242, **kw):
    s = {'pid': pid, 'user': 'app', 'application': 'web', 'backend_type': 'client backend',
         'superuser': False, 'state': 'idle in transaction', 'state_age': 600.0, 'query_age': 600.0,
         'client': '10.0.0.5', 'may_signal': True}
    s.update(kw)
    return s


def plan_of(m, tables=(), indexes=(), sessions=()):
    obs = {'tables': list(tables), 'sessions': list(sessions)}
    if 'reindex' in m.ops:
        obs['indexes'] = list(indexes)
    return [(i.operation, i.object, i.statement) for i in m.plan(obs)]


# -- vacuum and analyze ------------------------------------------------------------------------

def test_a_table_past_both_vacuum_thresholds_is_vacuumed_and_the_reason_gives_the_figures():
    m = planner({'vacuum': {'min_dead_ratio': 0.2, 'min_dead_tuples': 100}})
    items = m.plan({'tables': [table(dead=500, live=1000)], 'sessions': []})
    assert [(i.operation, i.statement) for i in items] == [('vacuum', 'VACUUM "public"."orders"')]
    assert items[0].figures == {'dead_tuples': 500, 'live_tuples': 1000, 'dead_ratio': 0.3333}
    assert items[0].reason.startswith('33% dead tuples (500) >= 20%')


@pytest.mark.parametrize('dead,live', [(99, 10), (150, 1000)])
def test_one_threshold_alone_plans_nothing(dead, live):
    # 99 dead tuples are under min_dead_tuples; 150 of 1,150 is 13%, under min_dead_ratio
    m = planner({'vacuum': {'min_dead_ratio': 0.2, 'min_dead_tuples': 100}})
    assert plan_of(m, [table(dead=dead, live=live)]) == []


def test_vacuum_and_analyze_together_become_one_statement():
    m = planner({'vacuum': {'min_dead_ratio': 0.1, 'min_dead_tuples': 1}, 'analyze': {'min_modified_ratio': 0.1}})
    assert plan_of(m, [table(dead=300, live=700, modified=400)]) == [
        ('vacuum analyze', 'public.orders', 'VACUUM (ANALYZE) "public"."orders"')]


def test_freeze_is_planned_on_xid_age_even_without_dead_tuples():
    m = planner({'vacuum': {'freeze_min_xid_age': 150000000}})
    items = m.plan({'tables': [table(xid_age=200000000)], 'sessions': []})
    assert [i.statement for i in items] == ['VACUUM (FREEZE) "public"."orders"']
    assert items[0].figures['xid_age'] == 200000000


def test_vacuum_full_is_refused_without_allow_blocking_and_planned_with_it():
    with pytest.raises(pm.MaintenanceError, match='allow_blocking'):
        planner({'vacuum': {'full': True, 'min_dead_tuples': 1}})
    m = planner({'vacuum': {'full': True, 'min_dead_tuples': 1, 'min_dead_ratio': 0.1}}, allow_blocking=True)
    assert plan_of(m, [table(dead=500)]) == [('vacuum', 'public.orders', 'VACUUM (FULL) "public"."orders"')]


def test_tables_are_planned_most_dead_tuples_first():
    m = planner({'vacuum': {'min_dead_ratio': 0.1, 'min_dead_tuples': 1}})
    got = plan_of(m, [table('small', dead=200), table('big', dead=9000), table('mid', dead=700)])
    assert [item[1] for item in got] == ['public.big', 'public.mid', 'public.small']


def test_counters_reset_never_plan_a_vacuum_from_unknown_figures():
    # statistics reset and not measured: the dead-tuple figures are unknown, not zero
    m = planner({'vacuum': {'min_dead_ratio': 0.0, 'min_dead_tuples': 0}})
    assert plan_of(m, [table(dead=0, live=0, unmeasured=True)]) == []


def test_never_analyzed_table_with_rows_is_analyzed_and_an_empty_one_is_not():
    m = planner({'analyze': {'max_stats_age': '7d'}})
    items = m.plan({'tables': [table('filled', stats_age=None), table('empty', stats_age=None, live=0, dead=0)],
                    'sessions': []})
    assert [(i.operation, i.statement, i.reason) for i in items] == [
        ('analyze', 'ANALYZE "public"."filled"', 'never analyzed')]


def test_stale_statistics_are_analyzed_with_the_age_in_the_reason():
    m = planner({'analyze': {'max_stats_age': '1d'}})
    items = m.plan({'tables': [table(stats_age=3 * 86400)], 'sessions': []})
    assert [i.operation for i in items] == ['analyze']
    assert 'old > 1d' in items[0].reason


def test_a_table_the_role_may_not_vacuum_is_planned_with_why_postgres_would_refuse():
    m = planner({'vacuum': {'min_dead_ratio': 0.1, 'min_dead_tuples': 1}})
    items = m.plan({'tables': [table(dead=500, may_vacuum=False)], 'sessions': []})
    assert 'role maint owns neither the table nor the database' in items[0].denied
    assert m.predict(items)[0]['why'].startswith('PostgreSQL would not run it: role maint')


# -- reindex -----------------------------------------------------------------------------------

def test_a_bloated_index_is_reindexed_concurrently_unless_blocking_is_allowed():
    ops = {'reindex': {'min_bloat_ratio': 0.3, 'min_size': '1MB'}}
    assert plan_of(planner(ops), indexes=[index(bloat=0.5)]) == [
        ('reindex', 'public.orders_pkey', 'REINDEX INDEX CONCURRENTLY "public"."orders_pkey"')]
    assert plan_of(planner(ops, allow_blocking=True), indexes=[index(bloat=0.5)]) == [
        ('reindex', 'public.orders_pkey', 'REINDEX INDEX "public"."orders_pkey"')]


@pytest.mark.parametrize('kw', [{'bloat': 0.2}, {'size': 512 << 10}, {'pages': 1}, {'bloat': None}])
def test_an_index_under_a_threshold_or_of_unknown_bloat_is_left_alone(kw):
    assert plan_of(planner({'reindex': {'min_bloat_ratio': 0.3, 'min_size': '1MB'}}), indexes=[index(**kw)]) == []


def test_an_exclusion_constraint_index_is_not_planned_and_says_why():
    m = planner({'reindex': {'min_bloat_ratio': 0.3, 'min_size': '1MB'}})
    assert plan_of(m, indexes=[index(bloat=0.6, exclusion=True)]) == []
    assert m.not_planned[0]['object'] == 'public.orders_pkey'
    assert 'exclusion constraint' in m.not_planned[0]['why']


def test_a_leftover_of_an_interrupted_concurrent_reindex_is_dropped_before_anything_else():
    m = planner({'reindex': {'min_bloat_ratio': 0.3, 'min_size': '1MB'}})
    got = plan_of(m, indexes=[index('big_idx', bloat=0.9, size=1 << 30),
                              index('orders_pkey_ccnew', valid=False, bloat=None),
                              index('broken_idx', valid=False, bloat=None)])
    assert got == [
        ('drop invalid index', 'public.orders_pkey_ccnew', 'DROP INDEX CONCURRENTLY IF EXISTS "public"."orders_pkey_ccnew"'),
        ('reindex', 'public.big_idx', 'REINDEX INDEX CONCURRENTLY "public"."big_idx"'),
        ('reindex', 'public.broken_idx', 'REINDEX INDEX CONCURRENTLY "public"."broken_idx"')]


def test_invalid_indexes_are_left_alone_when_invalid_is_off():
    m = planner({'reindex': {'invalid': False}})
    assert plan_of(m, indexes=[index('broken_idx', valid=False, bloat=None)]) == []


def test_a_gin_index_is_reindexed_on_its_pending_list_not_on_bloat():
    m = planner({'reindex': {'gin_min_pending_pages': 100}})
    assert plan_of(m, indexes=[index('doc_gin', method='gin', bloat=0.9, gin_pending_pages=50)]) == []
    items = m.plan({'tables': [], 'sessions': [],
                    'indexes': [index('doc_gin', method='gin', gin_pending_pages=250, gin_pending_tuples=9000)]})
    assert [i.statement for i in items] == ['REINDEX INDEX CONCURRENTLY "public"."doc_gin"']
    assert items[0].figures['source'] == 'pgstatginindex'


# -- terminate ---------------------------------------------------------------------------------

def test_a_session_idle_in_transaction_past_its_limit_is_terminated_by_pid():
    m = planner({'terminate': {'idle_in_transaction_for': '5m'}})
    items = m.plan({'tables': [], 'sessions': [session(pid=4242, state_age=600.0)]})
    assert [(i.operation, i.statement) for i in items] == [('terminate', 'SELECT pg_terminate_backend(4242)')]
    assert items[0].reason == 'idle in transaction for 10m >= 5m'


@pytest.mark.parametrize('kw', [
    {'state_age': 120.0},                          # under the limit
    {'backend_type': 'autovacuum worker'},        # not a client
    {'superuser': True},                           # superusers need include_superusers
    {'user': 'replicator'},                        # excluded by name
    {'application': 'psql'},                       # not a matching application
    {'state': 'active', 'query_age': 10.0},        # active, but not for long
])
def test_sessions_outside_the_rules_are_left_alone(kw):
    m = planner({'terminate': {'idle_in_transaction_for': '5m', 'active_for': '1h',
                               'exclude_users': ['replicator'], 'applications': ['web*']}})
    assert plan_of(m, sessions=[session(**kw)]) == []


def test_users_limits_the_sessions_to_those_roles():
    m = planner({'terminate': {'idle_in_transaction_for': '5m', 'users': ['batch']}})
    got = plan_of(m, sessions=[session(pid=1, user='app'), session(pid=2, user='batch')])
    assert got == [('terminate', 'pid 2 (batch, web)', 'SELECT pg_terminate_backend(2)')]


# -- names are data --------------------------------------------------------------------------

@pytest.mark.parametrize('schema,name,quoted', [
    ('public', 'Orders', '"public"."Orders"'),
    ('public', 'x"; DROP TABLE users; --', '"public"."x""; DROP TABLE users; --"'),
    ('we ird', 'a.b', '"we ird"."a.b"'),
    ('public', 'zählung', '"public"."zählung"'),
])
def test_a_hostile_or_odd_table_name_stays_one_quoted_identifier(schema, name, quoted):
    m = planner({'vacuum': {'min_dead_ratio': 0.1, 'min_dead_tuples': 1}})
    want = [('vacuum', '%s.%s' % (schema, name), 'VACUUM %s' % quoted)]
    assert plan_of(m, [table(name, schema=schema, dead=500)]) == want


def test_quote_ident_refuses_what_cannot_be_a_name():
    with pytest.raises(ValueError, match='NUL'):
        pgc.quote_ident('public', 'a\x00b')
    with pytest.raises(TypeError, match='string'):
        pgc.quote_ident(None)
