# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shop's orders table, as stripe_reconcile reads it: table and column names from the task
are identifiers (psycopg2.sql), values are bound, and nothing is written."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.stripe.reconcile import ReconcileError


def _table(name):
    from psycopg2 import sql
    return sql.Identifier(*[part.strip('"') for part in name.split('.')])


def read_orders(conn, o, since_ts, until_ts):
    from psycopg2 import sql
    table = _table(o['table'])
    cols = [o['id_column'], o['payment_intent_column'], o['amount_column'], o['currency_column'],
            o['status_column'], o['created_column']]
    names = ['id', 'payment_intent', 'amount', 'currency', 'status', 'created']
    select = sql.SQL('SELECT {} FROM {}').format(
        sql.SQL(', ').join(sql.SQL('{} AS {}').format(sql.Identifier(c), sql.Identifier(n))
                           for c, n in zip(cols, names)), table)
    where = sql.SQL('')
    args = []
    if since_ts is not None:
        where = sql.SQL(' WHERE {c} >= to_timestamp(%s) AND {c} < to_timestamp(%s)').format(
            c=sql.Identifier(o['created_column']))
        args = [since_ts, until_ts]
    with conn.cursor() as probe:  # a missing table or column is named before anything runs
        try:
            probe.execute(select + sql.SQL(' LIMIT 0'))
        except pgc.psycopg2.Error as exc:
            conn.rollback()
            raise ReconcileError('the orders mapping does not match the database: %s'
                                 % pgc.describe_error(exc, {}))
    rows = []
    with conn.cursor(name='oncall_reconcile_orders') as cur:  # server-side: streamed
        cur.itersize = 2000
        cur.execute(select + where, args)
        for row in cur:
            rows.append(dict(zip(names, row)))
    conn.rollback()
    return rows


def read_failure_rate(conn, o, seconds, failed_statuses):
    """(orders, failed) created in the last `seconds`; names as identifiers, values bound."""
    from psycopg2 import sql
    stmt = sql.SQL('SELECT count(*), count(*) FILTER (WHERE {s}::text = ANY(%s)) FROM {t} '
                   'WHERE {c} >= now() - make_interval(secs => %s)').format(
        s=sql.Identifier(o['status_column']), c=sql.Identifier(o['created_column']),
        t=_table(o['table']))
    with conn.cursor() as cur:
        cur.execute(stmt, (list(failed_statuses), float(seconds)))
        total, failed = cur.fetchone()
    conn.rollback()
    return int(total), int(failed)
