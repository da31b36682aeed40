# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many statements a piece of SQL holds, read the way PostgreSQL's lexer reads it.

pg_health_info runs user-written checks. A check must be exactly one query: a ';' ends a
statement only outside string constants ('...' with '' escapes, E'...' with backslash
escapes, B'', X'', N'', U&''), dollar-quoted strings ($$...$$, $tag$...$tag$), quoted
identifiers ("..." with ""), and comments (-- to the end of the line, /* */ nested).

The session the checks run in has standard_conforming_strings on, so a plain '...' string
treats backslashes as ordinary characters, as this lexer does. Where the server and this
lexer could read a quote differently (a quote right after a number, such as 1e'...'), the
text is refused rather than guessed.
"""

from __future__ import annotations

import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

# First words of a statement that only reads (a data-modifying WITH or SELECT INTO is then
# stopped by the READ ONLY transaction).
QUERY_WORDS = ('select', 'with', 'values', 'table')

# Functions with an effect outside the transaction (or that change the session's settings):
# a READ ONLY transaction does not stop them, so a check may not name them.
REFUSED_FUNCTIONS = frozenset((
    'set_config', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile',
    'pg_switch_wal', 'pg_promote', 'pg_notify', 'pg_log_backend_memory_contexts',
    'pg_wal_replay_pause', 'pg_wal_replay_resume', 'pg_logical_emit_message', 'pg_import_system_collations',
))
REFUSED_PREFIXES = (
    'lo_',                    # large objects: lo_export writes a file on the server
    'dblink',                 # a second connection, not read-only
    'pg_advisory_lock', 'pg_try_advisory_lock', 'pg_advisory_unlock',  # session locks outlive the rollback
    'pg_stat_reset', 'pg_stat_statements_reset',                       # statistics other checks rely on
    'pg_file_',               # adminpack: writes, renames, removes server files
    'pg_create_', 'pg_drop_replication_slot', 'pg_replication_origin_', 'pg_replication_slot_advance',
    'pg_backup_', 'pg_start_backup', 'pg_stop_backup',
)

_SPACE = re.compile(r'\s+')
_IDENT = re.compile(r'[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*')
_NUMBER = re.compile(r'[0-9.][0-9A-Za-z_.]*')
_DOLLAR_TAG = re.compile(r'\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$')
_PARAM = re.compile(r'\$[0-9]+')


class SqlTextError(OncallError, ValueError):
    """The SQL cannot be read safely; the message is the end of one sentence."""


def _quoted(sql, start, quote, backslash):
    """Index after the closing quote of a literal opening at start (sql[start] == quote)."""
    i, n = start + 1, len(sql)
    while i < n:
        c = sql[i]
        if backslash and c == '\\':
            i += 2
            continue
        if c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    what = 'quoted identifier' if quote == '"' else 'quoted string'
    raise SqlTextError('has an unterminated %s starting at character %d' % (what, start + 1))


def _comment_end(sql, start):
    depth, i, n = 0, start, len(sql)
    while i < n:
        if sql.startswith('/*', i):
            depth += 1
            i += 2
        elif sql.startswith('*/', i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SqlTextError('has an unterminated /* comment starting at character %d' % (start + 1))


def tokenize(sql):
    """[(kind, text)] with kind one of space, comment, string, ident (quoted identifier),
    word (keyword or unquoted identifier), number, param, semicolon, other."""
    out = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            j = _SPACE.match(sql, i).end()
            kind = 'space'
        elif sql.startswith('--', i):
            j = sql.find('\n', i)
            j = n if j < 0 else j + 1
            kind = 'comment'
        elif sql.startswith('/*', i):
            j = _comment_end(sql, i)
            kind = 'comment'
        elif c == "'":
            j, kind = _quoted(sql, i, "'", backslash=False), 'string'
        elif c == '"':
            j, kind = _quoted(sql, i, '"', backslash=False), 'ident'
        elif c == '$':
            tag = _DOLLAR_TAG.match(sql, i)
            param = _PARAM.match(sql, i)
            if param:
                j, kind = param.end(), 'param'
            elif tag:
                close = sql.find(tag.group(0), tag.end())
                if close < 0:
                    raise SqlTextError('has an unterminated dollar-quoted string %s starting at character %d'
                                       % (tag.group(0), i + 1))
                j, kind = close + len(tag.group(0)), 'string'
            else:
                j, kind = i + 1, 'other'
        elif c == ';':
            j, kind = i + 1, 'semicolon'
        elif _IDENT.match(sql, i):
            j = _IDENT.match(sql, i).end()
            word = sql[i:j].lower()
            nxt = sql[j] if j < n else ''
            if word == 'e' and nxt == "'":
                j, kind = _quoted(sql, j, "'", backslash=True), 'string'
            elif word in ('b', 'x', 'n') and nxt == "'":
                j, kind = _quoted(sql, j, "'", backslash=False), 'string'
            elif word == 'u' and sql.startswith("&'", j):
                j, kind = _quoted(sql, j + 1, "'", backslash=False), 'string'
            elif word == 'u' and sql.startswith('&"', j):
                j, kind = _quoted(sql, j + 1, '"', backslash=False), 'ident'
            else:
                kind = 'word'
        elif c.isdigit() or (c == '.' and i + 1 < n and sql[i + 1].isdigit()):
            j = _NUMBER.match(sql, i).end()
            if j < n and sql[j] in '\'"':
                raise SqlTextError('has a quote right after the number %s at character %d: put a space '
                                   'between them' % (sql[i:j], j + 1))
            kind = 'number'
        else:
            j, kind = i + 1, 'other'
        out.append((kind, sql[i:j]))
        i = j
    return out


def _significant(tokens):
    return [t for t in tokens if t[0] not in ('space', 'comment')]


def statements(sql):
    """The statements of sql (each a list of significant tokens), empty ones left out."""
    found, current = [], []
    for tok in _significant(tokenize(sql)):
        if tok[0] == 'semicolon':
            if current:
                found.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        found.append(current)
    return found


def _name(tok):
    if tok[0] == 'word':
        return tok[1].lower()
    if tok[0] == 'ident':
        text = tok[1]
        if text[:2].lower() == 'u&':
            text = text[2:]
        return text[1:-1].replace('""', '"')
    return None


def refused_function(name):
    return name in REFUSED_FUNCTIONS or name.startswith(REFUSED_PREFIXES)


def read_only_query(sql):
    """Check that sql is exactly one query that may run as a read-only check; raise
    SqlTextError (the end of a sentence) if not. Returns the significant tokens."""
    found = statements(sql)
    if len(found) != 1:
        raise SqlTextError('must be exactly one statement, found %s%s'
                           % (len(found) or 'none',
                              " (a ';' outside quotes and comments ends a statement)" if found else ''))
    toks = found[0]
    first = next((t for t in toks if t[1] != '('), None)
    if first is None or first[0] != 'word' or first[1].lower() not in QUERY_WORDS:
        raise SqlTextError('must be a query (SELECT, WITH, VALUES or TABLE), not %s'
                           % (first[1] if first else 'parentheses'))
    for tok, nxt in zip(toks, toks[1:]):
        name = _name(tok)
        if name and nxt[1] == '(' and refused_function(name):
            raise SqlTextError('may not call %s: it acts outside the read-only transaction' % name)
    return toks
