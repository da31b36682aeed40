# -*- coding: utf-8 -*-
"""connection.quote_ident, which quotes names without a connection so that planning is pure,
beside the reference: libpq's PQescapeIdentifier (psycopg2.extensions.quote_ident) on a real
server, and PostgreSQL itself, which must find the very name it was given."""
from __future__ import annotations

import psycopg2.extensions
import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc

NAMES = ['orders', 'Orders', 'x"; DROP TABLE victim; --', 'a.b', 'we ird', 'zählung', '"', '""', "o'brien",
         'tab\there', 'línea\nnueva', 'ab' * 31 + 'c', '$1', 'select']


@pytest.mark.parametrize('name', NAMES)
def test_quote_ident_is_what_libpq_makes_and_names_exactly_that_table(pgdb, name):
    conn = pgdb[2]
    assert pgc.quote_ident(name) == psycopg2.extensions.quote_ident(name, conn)
    assert pgc.quote_ident('public', name) == '%s.%s' % (psycopg2.extensions.quote_ident('public', conn),
                                                         psycopg2.extensions.quote_ident(name, conn))
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE victim (id int)')
        cur.execute('CREATE TABLE %s (id int)' % pgc.quote_ident('public', name))
        cur.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                    "AND relkind = 'r' ORDER BY relname")
        names = sorted(r[0] for r in cur.fetchall())
    # the one table made with the quoted name, by that name, and nothing dropped
    assert names == sorted(['victim', name])
