# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_maintenance: observe tables, indexes and sessions, plan against thresholds, apply.

The runbooks run ``VACUUM ANALYZE;`` on everything and ``REINDEX DATABASE`` "in a maintenance
window". Here the desired state is stated as thresholds (dead-tuple ratio, rows modified since
the last ANALYZE, estimated index bloat, idle time of a session) and only the objects outside
them are touched, each under ``lock_timeout`` so that a busy object is skipped, never waited on.
"""

from __future__ import annotations

import fnmatch
import math
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    format_duration, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common import size
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc

OPERATIONS = ('terminate', 'vacuum', 'analyze', 'reindex')

DEFAULTS = {
    'vacuum': {'min_dead_ratio': 0.1, 'min_dead_tuples': 1000, 'freeze_min_xid_age': None,
               'full': False},
    'analyze': {'min_modified_ratio': 0.1, 'max_stats_age': '7d'},
    'reindex': {'min_bloat_ratio': 0.3, 'min_size': '1MB', 'invalid': True},
    'terminate': {'idle_for': '10m', 'idle_in_transaction_for': '5m', 'active_for': None,
                  'users': [], 'exclude_users': [], 'applications': [],
                  'include_superusers': False},
}

SYSTEM_SCHEMAS = ('pg_catalog', 'information_schema')

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.oid::bigint AS oid,
       coalesce(s.n_live_tup, 0) AS live, coalesce(s.n_dead_tup, 0) AS dead,
       coalesce(s.n_mod_since_analyze, 0) AS modified,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float AS stats_age,
       age(c.relfrozenxid)::bigint AS xid_age, c.reltuples::float AS reltuples
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
  AND n.nspname NOT LIKE 'pg_temp%%'
"""

# Nothing here takes a lock: sizes come from the catalog (relpages, as of the last VACUUM,
# ANALYZE or build), so observing never waits behind a session holding an exclusive lock.
# pg_maintenance measures the real size of each index it considers, under lock_timeout.
#
# Expected size of a btree from the live rows of its table (the index's own tuple count for
# a partial index) and the average width of its columns. Using live rows, not the index's
# reltuples, sees the bloat a mass DELETE leaves before VACUUM has run, so one run that
# vacuums and reindexes converges. Each leaf item is an 8-byte tuple header plus the
# MAXALIGNed key and a 4-byte line pointer;
# each leaf item is an 8-byte tuple header plus the MAXALIGNed key and a 4-byte line pointer;
# pages hold (8192 - 24 - 16) * fillfactor bytes. Estimates need ANALYZE statistics; an
# index whose columns have none is not estimated.
INDEXES_SQL = """
SELECT n.nspname AS schema, t.relname AS "table", i.relname AS name, i.oid::bigint AS oid,
       x.indisvalid AS valid, am.amname AS method,
       i.relpages::bigint AS pages, i.relpages::bigint * current_setting('block_size')::int AS size,
       CASE WHEN x.indpred IS NULL AND st.n_live_tup IS NOT NULL AND st.n_live_tup + st.n_dead_tup > 0
            THEN st.n_live_tup::float ELSE i.reltuples::float END AS tuples,
       current_setting('block_size')::int AS block_size,
       coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(i.reloptions) o
                 WHERE o LIKE 'fillfactor=%%'), 90) AS fillfactor,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid AND k.contype = 'x')
         AS exclusion,
       (SELECT sum(coalesce(s.avg_width, -1000000))
          FROM pg_attribute a
          LEFT JOIN pg_stats s ON s.schemaname = n.nspname
               AND ((s.tablename = t.relname AND s.attname = a.attname)
                 OR (s.tablename = i.relname AND s.attname = a.attname))
         WHERE a.attrelid = i.oid AND a.attnum > 0) AS key_width
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
JOIN pg_am am ON am.oid = i.relam
LEFT JOIN pg_stat_all_tables st ON st.relid = t.oid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
"""

SESSIONS_SQL = """
SELECT a.pid, a.usename AS "user", a.application_name AS application, a.state,
       a.client_addr::text AS client, a.backend_type,
       extract(epoch FROM now() - a.state_change)::float AS state_age,
       extract(epoch FROM now() - a.query_start)::float AS query_age,
       a.state_change::text AS state_change, coalesce(r.rolsuper, false) AS superuser,
       left(a.query, 200) AS query
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
"""


class MaintenanceError(Exception):
    """A refusal or failure phrased for the operator."""


def parse_size(value):
    """'1MB' / '512kB' / bytes -> bytes."""
    try:
        return size.parse_size(value)
    except size.SizeError as exc:
        raise MaintenanceError(str(exc))


def normalise(params):
    """Validate the operations dict and fill in defaults; returns {op: settings}."""
    ops = params.get('operations') or {}
    if not isinstance(ops, dict) or not ops:
        raise MaintenanceError('operations must name at least one of %s' % ', '.join(OPERATIONS))
    out = {}
    for name, settings in ops.items():
        if name not in OPERATIONS:
            raise MaintenanceError('unknown operation %r: choose from %s' % (name, ', '.join(OPERATIONS)))
        settings = settings or {}
        if not isinstance(settings, dict):
            raise MaintenanceError('operations.%s must be a dict of settings ({} for defaults)' % name)
        unknown = set(settings) - set(DEFAULTS[name])
        if unknown:
            raise MaintenanceError('operations.%s has unknown setting(s) %s; known: %s'
                                   % (name, ', '.join(sorted(unknown)), ', '.join(sorted(DEFAULTS[name]))))
        merged = dict(DEFAULTS[name])
        merged.update(settings)
        out[name] = merged
    if 'vacuum' in out:
        v = out['vacuum']
        for key in ('min_dead_ratio',):
            if not 0 <= float(v[key]) <= 1:
                raise MaintenanceError('operations.vacuum.%s must be between 0 and 1' % key)
        if int(v['min_dead_tuples']) < 0:
            raise MaintenanceError('operations.vacuum.min_dead_tuples must not be negative')
        if v['full'] and not params.get('allow_blocking'):
            raise MaintenanceError('VACUUM FULL takes an ACCESS EXCLUSIVE lock for the whole rewrite: '
                                   'set allow_blocking: true to allow it')
    if 'analyze' in out:
        a = out['analyze']
        a['max_stats_age_s'] = (parse_duration(a['max_stats_age'], 'operations.analyze.max_stats_age')
                                if a['max_stats_age'] not in (None, '') else None)
    if 'reindex' in out:
        r = out['reindex']
        if not 0 < float(r['min_bloat_ratio']) < 1:
            raise MaintenanceError('operations.reindex.min_bloat_ratio must be between 0 and 1')
        r['min_size_b'] = parse_size(r['min_size'])
    if 'terminate' in out:
        t = out['terminate']
        for key in ('idle_for', 'idle_in_transaction_for', 'active_for'):
            t[key + '_s'] = (parse_duration(t[key], 'operations.terminate.' + key)
                             if t[key] not in (None, '') else None)
    return out


def in_scope(schema, name, params):
    schemas = params.get('schemas') or ['*']
    if not any(fnmatch.fnmatchcase(schema, p) for p in schemas):
        return False
    full = '%s.%s' % (schema, name)
    tables = params.get('tables') or []
    if tables and not any(fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(name, p) for p in tables):
        return False
    for pattern in params.get('exclude_tables') or []:
        if fnmatch.fnmatchcase(full, pattern) or fnmatch.fnmatchcase(name, pattern):
            return False
    return True


def dead_ratio(t):
    total = t['live'] + t['dead']
    return float(t['dead']) / total if total else 0.0


def index_bloat(ix):
    """Estimated share of an index's pages that are not needed, or None when unknown."""
    if ix['method'] != 'btree' or ix['key_width'] is None or ix['key_width'] < 0 or ix['pages'] < 2:
        return None
    item = 8 + int(math.ceil(ix['key_width'] / 8.0)) * 8 + 4
    usable = (ix['block_size'] - 24 - 16) * ix['fillfactor'] / 100.0
    expected = math.ceil(max(ix['tuples'], 0) * item / usable) + 1
    return max(0.0, 1.0 - float(expected) / ix['pages'])


class Item(object):
    """One planned statement."""

    def __init__(self, operation, obj, reason, statement, figures=None, rank=0, oid=None,
                 transactional=False):
        self.operation = operation
        self.object = obj
        self.reason = reason
        self.statement = statement
        self.figures = figures or {}
        self.rank = rank
        self.oid = oid
        self.transactional = transactional

    def to_dict(self):
        return {'operation': self.operation, 'object': self.object, 'reason': self.reason,
                'statement': self.statement, 'figures': dict(self.figures)}


class Maintenance(object):
    def __init__(self, conn, params):
        self.conn = conn
        self.params = params
        self.ops = normalise(params)
        self.not_planned = []  # objects past a threshold that cannot be handled safely

    # -- observe --------------------------------------------------------------------------
    def tables(self):
        rows = pgc.query(self.conn, TABLES_SQL)
        return [r for r in rows if in_scope(r['schema'], r['name'], self.params)]

    def indexes(self):
        rows = [r for r in pgc.query(self.conn, INDEXES_SQL)
                if in_scope(r['schema'], r['table'], self.params)]
        measured = []
        for r in rows:
            if r['valid'] and r['method'] != 'btree':
                continue
            try:
                size = pgc.query(self.conn, 'SELECT pg_relation_size(%s) AS size', (r['oid'],))[0]['size']
            except pgc.psycopg2.Error as exc:
                if getattr(exc, 'pgcode', None) != '55P03':
                    raise
                self.not_planned.append(dict(operation='reindex', object='%s.%s' % (r['schema'], r['name']),
                                             why='lock not granted within lock_timeout while measuring'))
                continue
            r['size'] = size
            r['pages'] = size // r['block_size']
            measured.append(r)
        return measured

    def sessions(self):
        return pgc.query(self.conn, SESSIONS_SQL)

    def set_timeouts(self):
        """Bound every lock wait of this session, observation included."""
        with self.conn.cursor() as cur:
            cur.execute('SET lock_timeout = %s', ('%dms' % int(self.params['lock_timeout_s'] * 1000),))
            if self.params.get('statement_timeout_s'):
                cur.execute('SET statement_timeout = %s',
                            ('%dms' % int(self.params['statement_timeout_s'] * 1000),))

    def observe(self):
        self.set_timeouts()
        obs = {}
        if {'vacuum', 'analyze'} & set(self.ops):
            obs['tables'] = self.tables()
        if 'reindex' in self.ops:
            obs['indexes'] = self.indexes()
        if 'terminate' in self.ops:
            obs['sessions'] = self.sessions()
        return obs

    def scope_is_empty(self, obs):
        return ('tables' in obs and not obs['tables']) and ('indexes' not in obs or not obs['indexes'])

    # -- plan -----------------------------------------------------------------------------
    def plan(self, obs):
        items = []
        if 'terminate' in self.ops:
            items += self._plan_terminate(obs['sessions'])
        if 'tables' in obs:
            items += self._plan_tables(obs['tables'])
        if 'reindex' in self.ops:
            items += self._plan_reindex(obs['indexes'])
        return items

    def _plan_tables(self, tables):
        vac = self.ops.get('vacuum')
        ana = self.ops.get('analyze')
        items = []
        for t in tables:
            name = pgc.quote_ident(self.conn, t['schema'], t['name'])
            obj = '%s.%s' % (t['schema'], t['name'])
            reasons, options = [], []
            ratio = dead_ratio(t)
            figures = {'dead_tuples': t['dead'], 'live_tuples': t['live'], 'dead_ratio': round(ratio, 4)}
            need_vacuum = False
            if vac:
                if t['dead'] >= int(vac['min_dead_tuples']) and ratio >= float(vac['min_dead_ratio']):
                    need_vacuum = True
                    reasons.append('%.0f%% dead tuples (%d) >= %.0f%%'
                                   % (ratio * 100, t['dead'], float(vac['min_dead_ratio']) * 100))
                if vac['freeze_min_xid_age'] and t['xid_age'] >= int(vac['freeze_min_xid_age']):
                    need_vacuum = True
                    options.append('FREEZE')
                    figures['xid_age'] = t['xid_age']
                    reasons.append('xid age %d >= %d' % (t['xid_age'], int(vac['freeze_min_xid_age'])))
                if need_vacuum and vac['full']:
                    options.append('FULL')
            need_analyze = False
            if ana:
                base = max(t['reltuples'], t['live'], 1)
                mod_ratio = float(t['modified']) / base
                if t['modified'] > 0 and mod_ratio >= float(ana['min_modified_ratio']):
                    need_analyze = True
                    reasons.append('%.0f%% of rows modified since the last ANALYZE (%d) >= %.0f%%'
                                   % (mod_ratio * 100, t['modified'], float(ana['min_modified_ratio']) * 100))
                elif ana['max_stats_age_s'] is not None and (t['live'] + t['dead']) > 0:
                    if t['stats_age'] is None:
                        need_analyze = True
                        reasons.append('never analyzed')
                    elif t['stats_age'] > ana['max_stats_age_s']:
                        need_analyze = True
                        reasons.append('statistics %s old > %s'
                                       % (format_duration(t['stats_age']), ana['max_stats_age']))
                figures['modified_since_analyze'] = t['modified']
            if need_vacuum:
                if need_analyze:
                    options.append('ANALYZE')
                stmt = 'VACUUM (%s) %s' % (', '.join(options), name) if options else 'VACUUM %s' % name
                op = 'vacuum analyze' if need_analyze else 'vacuum'
                items.append(Item(op, obj, '; '.join(reasons), stmt, figures, rank=t['dead'], oid=t['oid']))
            elif need_analyze:
                items.append(Item('analyze', obj, '; '.join(reasons), 'ANALYZE %s' % name, figures,
                                  rank=0, oid=t['oid']))
        items.sort(key=lambda i: -i.rank)
        return items

    def _plan_reindex(self, indexes):
        r = self.ops['reindex']
        blocking = self.params.get('allow_blocking')
        items = []
        for ix in indexes:
            name = pgc.quote_ident(self.conn, ix['schema'], ix['name'])
            obj = '%s.%s' % (ix['schema'], ix['name'])
            figures = {'size': ix['size'], 'valid': ix['valid']}
            if not ix['valid']:
                if not r['invalid']:
                    continue
                if ix['name'].endswith(('_ccnew', '_ccold')) or '_ccnew' in ix['name'] or '_ccold' in ix['name']:
                    items.append(Item('drop invalid index', obj,
                                      'invalid leftover of an interrupted REINDEX CONCURRENTLY',
                                      'DROP INDEX CONCURRENTLY IF EXISTS %s' % name, figures, oid=ix['oid']))
                else:
                    stmt = 'REINDEX INDEX %s%s' % ('' if blocking else 'CONCURRENTLY ', name)
                    items.append(Item('reindex', obj, 'index is invalid (a failed concurrent build)',
                                      stmt, figures, oid=ix['oid']))
                continue
            bloat = index_bloat(ix)
            if bloat is None or ix['size'] < r['min_size_b']:
                continue
            figures['bloat_ratio'] = round(bloat, 4)
            if bloat < float(r['min_bloat_ratio']):
                continue
            if ix['exclusion'] and not blocking:
                self.not_planned.append(dict(operation='reindex', object=obj, figures=figures,
                                             why='backs an exclusion constraint, which REINDEX '
                                                 'CONCURRENTLY cannot rebuild; needs allow_blocking'))
                continue
            stmt = 'REINDEX INDEX %s%s' % ('' if blocking else 'CONCURRENTLY ', name)
            items.append(Item('reindex', obj, 'estimated bloat %.0f%% >= %.0f%% (%s)'
                              % (bloat * 100, float(r['min_bloat_ratio']) * 100, _size(ix['size'])),
                              stmt, figures, rank=ix['size'], oid=ix['oid']))
        items.sort(key=lambda i: (i.operation != 'drop invalid index', -i.rank))
        return items

    def _plan_terminate(self, sessions):
        t = self.ops['terminate']
        items = []
        for s in sessions:
            if s['backend_type'] != 'client backend':
                continue  # replication senders, autovacuum and background workers
            if s['superuser'] and not t['include_superusers']:
                continue
            if t['users'] and s['user'] not in t['users']:
                continue
            if s['user'] in (t['exclude_users'] or []):
                continue
            if t['applications'] and not any(fnmatch.fnmatchcase(s['application'] or '', p)
                                             for p in t['applications']):
                continue
            limit = {'idle': t['idle_for_s'], 'idle in transaction': t['idle_in_transaction_for_s'],
                     'idle in transaction (aborted)': t['idle_in_transaction_for_s'],
                     'active': t['active_for_s']}.get(s['state'])
            age = s['query_age'] if s['state'] == 'active' else s['state_age']
            if limit is None or age is None or age < limit:
                continue
            obj = 'pid %d (%s, %s)' % (s['pid'], s['user'], s['application'] or 'no application')
            reason = '%s for %s >= %s' % (s['state'], format_duration(age), format_duration(limit))
            item = Item('terminate', obj, reason, 'SELECT pg_terminate_backend(%d)' % s['pid'],
                        {'pid': s['pid'], 'user': s['user'], 'state': s['state'],
                         'seconds': int(age), 'client': s['client']})
            item.session = s
            items.append(item)
        return items

    # -- apply ----------------------------------------------------------------------------
    def apply(self, items, max_runtime_s=None, clock=time.monotonic):
        started = clock()
        done, skipped = [], []
        cur = self.conn.cursor()
        for index, item in enumerate(items):
            if max_runtime_s is not None and clock() - started >= max_runtime_s:
                for rest in items[index:]:
                    skipped.append(dict(rest.to_dict(), why='maintenance window over (max_runtime %s)'
                                        % format_duration(max_runtime_s)))
                break
            t0 = clock()
            try:
                if item.operation == 'terminate':
                    ok = self._terminate(cur, item)
                    if not ok:
                        skipped.append(dict(item.to_dict(), why='session ended or changed state before it '
                                            'was terminated'))
                        continue
                else:
                    cur.execute(item.statement)
            except Exception as exc:  # psycopg2 errors carry a SQLSTATE
                code = getattr(exc, 'pgcode', None)
                if code is None:
                    # the connection is gone: report what was done and what was not
                    raise ApplyInterrupted(done, skipped, items[index:], pgc.describe_error(exc, self.params))
                why = {'55P03': 'lock not granted within lock_timeout %s' % format_duration(self.params['lock_timeout_s']),
                       '57014': 'cancelled by statement_timeout'}.get(code, pgc.describe_error(exc, self.params))
                entry = dict(item.to_dict(), why=why)
                if item.operation == 'reindex' and 'CONCURRENTLY' in item.statement:
                    entry['cleanup'] = self._drop_leftovers(cur, item)
                skipped.append(entry)
                continue
            done.append(dict(item.to_dict(), seconds=round(clock() - t0, 3)))
        return done, skipped

    def _terminate(self, cur, item):
        s = item.session
        cur.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                    'WHERE pid = %s AND state = %s AND state_change::text = %s',
                    (s['pid'], s['state'], s['state_change']))
        row = cur.fetchone()
        return bool(row and row[0])

    def _drop_leftovers(self, cur, item):
        """A failed REINDEX CONCURRENTLY leaves <name>_ccnew invalid: drop it now."""
        rows = pgc.query(self.conn, """
            SELECT n.nspname AS schema, i.relname AS name FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
            WHERE NOT x.indisvalid AND x.indrelid = (SELECT indrelid FROM pg_index WHERE indexrelid = %s)
              AND i.relname LIKE %s""", (item.oid, item.object.split('.', 1)[1] + '_ccnew%'))
        dropped = []
        for row in rows:
            try:
                cur.execute('DROP INDEX CONCURRENTLY IF EXISTS %s'
                            % pgc.quote_ident(self.conn, row['schema'], row['name']))
                dropped.append('%s.%s' % (row['schema'], row['name']))
            except Exception:  # pylint: disable=broad-except
                pass  # left for the next run, which drops invalid leftovers first
        return dropped

    # -- figures --------------------------------------------------------------------------
    def figures(self, items):
        """Dead tuples of the planned tables and bloat of the planned indexes, as of now."""
        tables = set(i.object for i in items if i.operation in ('vacuum', 'vacuum analyze', 'analyze'))
        indexes = set(i.object for i in items if i.operation == 'reindex')
        out = {'tables': {}, 'indexes': {}}
        if tables:
            for t in pgc.query(self.conn, TABLES_SQL):
                key = '%s.%s' % (t['schema'], t['name'])
                if key in tables:
                    out['tables'][key] = {'dead_tuples': t['dead'], 'dead_ratio': round(dead_ratio(t), 4),
                                          'modified_since_analyze': t['modified']}
        if indexes:
            for ix in pgc.query(self.conn, INDEXES_SQL):
                key = '%s.%s' % (ix['schema'], ix['name'])
                if key in indexes:
                    ix['size'] = pgc.query(self.conn, 'SELECT pg_relation_size(%s) AS size', (ix['oid'],))[0]['size']
                    ix['pages'] = ix['size'] // ix['block_size']
                    bloat = index_bloat(ix)
                    out['indexes'][key] = {'size': ix['size'], 'valid': ix['valid'],
                                           'bloat_ratio': None if bloat is None else round(bloat, 4)}
        return out


class ApplyInterrupted(Exception):
    def __init__(self, done, skipped, remaining, cause):
        Exception.__init__(self, cause)
        self.done = done
        self.skipped = skipped
        self.remaining = remaining
        self.cause = cause


def _size(n):
    for unit in ('B', 'kB', 'MB', 'GB', 'TB'):
        if n < 1024 or unit == 'TB':
            return '%.0f %s' % (n, unit) if unit == 'B' else '%.1f %s' % (n, unit)
        n /= 1024.0
    return str(n)
