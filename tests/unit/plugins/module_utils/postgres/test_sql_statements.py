# -*- coding: utf-8 -*-
"""The SQL lexer that decides whether a pg_health_info check is exactly one read-only query.

The integration tests (tests/integration/test_security_postgres.py) send the same kinds of text
to a real PostgreSQL; here the lexer's reading of each quoting rule is pinned down."""

from __future__ import annotations

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.statements import (
    SqlTextError, read_only_query, statements, tokenize)


def count(sql):
    return len(statements(sql))


@pytest.mark.parametrize('sql,n', [
    ('SELECT 1', 1),
    ('SELECT 1;', 1),
    ('SELECT 1 ; ; -- done', 1),
    ('SELECT 1; SELECT 2', 2),
    ("SELECT 'a;b'", 1),
    ("SELECT 'it''s; fine'", 1),
    ("SELECT 'a\\'; SELECT 2", 2),              # standard string: the backslash is a character
    ("SELECT E'a\\'; SELECT 2'", 1),            # E string: \' escapes the quote
    ("SELECT e'a\\\\'; SELECT 2", 2),           # E string: \\ is one backslash, then the quote ends it
    ("SELECT E'x'''; SELECT 2", 2),
    ("SELECT $$a;b$$", 1),
    ("SELECT $tag$ a $$ ; $ $tag$", 1),
    ("SELECT $a$ x $b$ ; $a$; SELECT 2", 2),
    ('SELECT $1; SELECT 2', 2),                  # $1 is a parameter, not a dollar quote
    ('SELECT a$b$ FROM t; SELECT 2', 2),          # a$b$ is an identifier
    ('SELECT 1 AS "a;b"', 1),
    ('SELECT 1 AS "a"";b"', 1),
    ('SELECT 1 AS U&"a;b"', 1),
    ("SELECT U&'a;b'", 1),
    ("SELECT B'0101', X'ff;'", 1),
    ('SELECT 1 -- ; SELECT 2', 1),
    ('SELECT 1 -- x\n; SELECT 2', 2),
    ('SELECT 1 /* ; */', 1),
    ('SELECT 1 /* /* ; */ ; */', 1),
    ('SELECT 1 /* /* */ */ ; SELECT 2', 2),
    ('SELECT 2 */* ; */ 3', 1),
    ("SELECT 'a' -- '\n; DROP TABLE x", 2),
    ("SELECT E 'a\\'; DROP TABLE x; --'", 2),     # E then a space: an identifier and a plain string
    ('SELECT 1.5e3; SELECT 2', 2),
    ('', 0),
    ('  -- nothing\n /* at all */ ;', 0),
])
def test_statement_count(sql, n):
    assert count(sql) == n


@pytest.mark.parametrize('sql,needle', [
    ("SELECT 'open", 'unterminated quoted string starting at character 8'),
    ('SELECT "open', 'unterminated quoted identifier'),
    ("SELECT E'\\'", 'unterminated quoted string'),
    ('SELECT $x$ open', 'unterminated dollar-quoted string $x$'),
    ('SELECT 1 /* /* */', 'unterminated /* comment'),
    ("SELECT 1e'\\'; DROP TABLE x; --'", 'quote right after the number 1e'),
])
def test_unreadable_text_is_refused(sql, needle):
    with pytest.raises(SqlTextError) as err:
        tokenize(sql)
    assert needle in str(err.value)


@pytest.mark.parametrize('sql', [
    'SELECT 1', '  select count(*) from t', '(SELECT 1) UNION (SELECT 2)', 'WITH x AS (SELECT 1) SELECT * FROM x',
    'VALUES (1)', 'TABLE t', '/* lead */ SELECT 1', "SELECT lo_limit FROM t", 'SELECT "set_config" FROM t',
    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%set_config(%'",
])
def test_queries_pass(sql):
    read_only_query(sql)


@pytest.mark.parametrize('sql,needle', [
    ('SELECT 1; SELECT 2', 'must be exactly one statement, found 2'),
    ('', 'must be exactly one statement, found none'),
    ('COMMIT', 'must be a query (SELECT, WITH, VALUES or TABLE), not COMMIT'),
    ('SET default_transaction_read_only = off', 'not SET'),
    ('DO $$ BEGIN COMMIT; END $$', 'not DO'),
    ("COPY t TO PROGRAM 'x'", 'not COPY'),
    ('EXPLAIN ANALYZE DELETE FROM t', 'not EXPLAIN'),
    ('()', 'not )'),
    ("SELECT set_config('x', 'y', false)", 'may not call set_config'),
    ("SELECT pg_catalog.SET_CONFIG('x', 'y', false)", 'may not call set_config'),
    ('SELECT "set_config" (\'x\', \'y\', false)', 'may not call set_config'),
    ("SELECT lo_export(1, '/tmp/x')", 'may not call lo_export'),
    ("SELECT dblink_exec('host=x', 'DROP TABLE t')", 'may not call dblink_exec'),
    ('SELECT pg_advisory_lock(1)', 'may not call pg_advisory_lock'),
    ('SELECT pg_terminate_backend /* c */ (1)', 'may not call pg_terminate_backend'),
])
def test_what_is_not_a_read_only_query(sql, needle):
    with pytest.raises(SqlTextError) as err:
        read_only_query(sql)
    assert needle in str(err.value)
