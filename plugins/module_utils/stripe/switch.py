# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""payments_switch: the payments kill switch and its audit row, all or nothing.

Every name is parsed and every table checked (read-only) before the one transaction that
changes the flag and inserts the audit row; the last change is read inside that transaction,
so nothing that runs after the COMMIT can fail. What the module reports is what was committed.
"""

from __future__ import annotations

import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

PLAIN = re.compile(r'[A-Za-z_][A-Za-z0-9_$]*\Z')
MAX_IDENT_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: longer names are silently truncated
AUDIT_COLUMNS = ('id', 'key', 'old', 'new', 'actor', 'reason', 'changed_at')


class SwitchError(OncallError):
    """Bad input or a table that does not fit, found before anything was changed."""


def parse_name(value, option, max_parts=2):
    """'schema.table', 'table', or either part double-quoted ("Audit Log"."x.y") -> parts.

    A plain part is taken as written (case kept, as the collection's other name options do);
    anything else must be double-quoted, with "" for a quote inside."""
    if not isinstance(value, str) or not value.strip():
        raise SwitchError('%s must be a name, got an empty value' % option)
    if '\x00' in value:
        raise SwitchError('%s must not contain a NUL character' % option)
    parts, i, text = [], 0, value.strip()
    while True:
        if i < len(text) and text[i] == '"':
            j, part = i + 1, []
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise SwitchError('%s has an unterminated quoted name: %r' % (option, value))
                part.append(text[j:k])
                if text[k + 1:k + 2] == '"':
                    part.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            name = ''.join(part)
            if not name:
                raise SwitchError('%s has an empty quoted name: %r' % (option, value))
        else:
            k = text.find('.', i)
            name = text[i:] if k < 0 else text[i:k]
            if not PLAIN.match(name):
                raise SwitchError('%s is not a valid name: %r (letters, digits, _ and $, or a double-quoted name)'
                                  % (option, value))
            i = len(text) if k < 0 else k
        if len(name.encode('utf-8')) > MAX_IDENT_BYTES:
            raise SwitchError('%s: %r is longer than PostgreSQL\'s %d bytes' % (option, name[:20] + '...', MAX_IDENT_BYTES))
        parts.append(name)
        if i == len(text):
            break
        if text[i] != '.':
            raise SwitchError('%s is not a valid name: %r (text after a quoted name)' % (option, value))
        i += 1
        if i == len(text):
            raise SwitchError('%s ends with a dot: %r' % (option, value))
    if len(parts) > max_parts:
        raise SwitchError('%s has %d dotted parts, at most %d allowed: %r' % (option, len(parts), max_parts, value))
    return tuple(parts)


def _regclass(cur, ident_sql):
    cur.execute('SELECT to_regclass(%s)::oid', (ident_sql,))
    return cur.fetchone()[0]


def _columns(cur, oid):
    cur.execute('SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute '
                'WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped', (oid,))
    return dict(cur.fetchall())


def check_tables(cur, quoted, names, options):
    """Read-only checks of the configuration and audit tables; returns whether the audit table exists.

    quoted: option -> the SQL text of the quoted name; names: option -> its parts."""
    table_oid = _regclass(cur, quoted['table'])
    if table_oid is None:
        raise SwitchError('table %s does not exist (option table)' % options['table'])
    cols = _columns(cur, table_oid)
    for option in ('key_column', 'flag_column'):
        if names[option][0] not in cols:
            raise SwitchError('%s has no column %s (option %s)' % (options['table'], options[option], option))
    if cols[names['flag_column'][0]] != 'boolean':
        raise SwitchError('%s.%s is %s, not boolean (option flag_column)'
                          % (options['table'], options['flag_column'], cols[names['flag_column'][0]]))
    audit_oid = _regclass(cur, quoted['audit_table'])
    if audit_oid is not None:
        if audit_oid == table_oid:
            raise SwitchError('audit_table %s is the configuration table itself' % options['audit_table'])
        missing = [c for c in AUDIT_COLUMNS if c not in _columns(cur, audit_oid)]
        if missing:
            raise SwitchError('audit_table %s exists but is not an audit table (no column %s)'
                              % (options['audit_table'], ', '.join(missing)))
        return True
    if len(names['audit_table']) == 2:
        cur.execute('SELECT 1 FROM pg_namespace WHERE nspname = %s', (names['audit_table'][0],))
        if cur.fetchone() is None:
            raise SwitchError('audit_table %s cannot be created: schema %s does not exist'
                              % (options['audit_table'], names['audit_table'][0]))
        schema = names['audit_table'][0]
    else:
        cur.execute('SELECT current_schema()')
        schema = cur.fetchone()[0]
        if schema is None:
            raise SwitchError('audit_table %s cannot be created: no schema on the search_path'
                              % options['audit_table'])
    cur.execute("SELECT has_schema_privilege(%s, 'CREATE')", (schema,))
    if not cur.fetchone()[0]:
        raise SwitchError('audit_table %s cannot be created: no CREATE privilege on schema %s'
                          % (options['audit_table'], schema))
    return False
