# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The figures pg_maintenance plans from: dead-tuple ratio, estimated and measured index bloat,
whether a table's statistics counters can be trusted, and Measurer (pgstattuple, bounded)."""

from __future__ import annotations

import math
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import format_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.sql import PGSTATTUPLE_SQL


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


# -- statistics that cannot be trusted, and pgstattuple ----------------------------------------
#
# pg_stat_all_tables counts dead tuples from the moment its counters began. pg_stat_reset(),
# pg_stat_reset_single_table_counters(), a crash or an immediate shutdown (PostgreSQL 15 discards
# the statistics then) and a physical restore empty the counters, while the catalog (reltuples,
# relpages) still describes the table: pg_stat then shows no dead tuples and no plan is made.
# Such a table is recognised by (1) n_live_tup = n_dead_tup = 0 while reltuples > 0, or (2) pages
# in the catalog (someone vacuumed, analyzed or indexed it) but no VACUUM or ANALYZE in the
# counters: the dead tuples made before the counters began are invisible. Its figures are then
# measured with pgstattuple when that is possible, or reported as unknown.

def counters_unknown(t, prefix=''):
    """Why the statistics counters of table row *t* cannot be trusted, or None.

    *prefix* reads the table's columns of an index row (t_live, t_dead, ...)."""
    live, dead = t[prefix + 'live'], t[prefix + 'dead']
    reltuples, relpages = t[prefix + 'reltuples'], t[prefix + 'relpages']
    when = (' (the database statistics were reset at %s)' % t['stats_reset'][:19]
            if t.get('stats_reset') else ' (a reset, a crash or a restore)')
    if reltuples > 0 and live + dead == 0:
        return ('statistics counters empty (n_live_tup = n_dead_tup = 0) while the catalog counts %d rows%s'
                % (reltuples, when))
    if relpages > 0 and not t[prefix + 'maintained']:
        return 'no VACUUM or ANALYZE recorded since its statistics counters began%s' % when
    return None


def measured_index_bloat(m, fillfactor, block_size):
    """Share of an index's pages not needed, from pgstatindex: the leaf pages its live entries
    would fill at the index's fillfactor, plus the internal pages and the metapage, against the
    pages it has (empty and deleted ones included)."""
    total = m['index_size'] // block_size
    if total < 2 or not m['leaf_pages']:
        return 0.0
    density = m['avg_leaf_density']
    if density is None or math.isnan(density):  # NaN: no leaf page to average
        return 0.0
    needed = math.ceil(m['leaf_pages'] * density / float(fillfactor)) + m['internal_pages'] + 1
    return max(0.0, 1.0 - float(needed) / total)


class Measurer(object):
    """pgstattuple_approx for tables and pgstatindex for B-tree indexes, bounded.

    A relation larger than *max_size* is not measured (pgstattuple_approx reads every page that
    is not all-visible, pgstatindex the whole index), nothing is measured once *deadline*
    (the run's max_runtime) has passed, and each call runs under the session's lock_timeout and
    statement_timeout. ``why_not`` says why nothing can be measured."""

    def __init__(self, conn, params, max_size, deadline=None, clock=time.monotonic):
        self.conn = conn
        self.params = params
        self.max_size = max_size
        self.deadline = deadline
        self.clock = clock
        self.schema = None
        self.why_not = None
        rows = pgc.query(conn, PGSTATTUPLE_SQL)
        if not rows:
            self.why_not = ('the pgstattuple extension is not installed in database %s: run CREATE EXTENSION '
                            'pgstattuple there (it ships with PostgreSQL\'s contrib), or ANALYZE the tables'
                            % params.get('login_db'))
        elif not rows[0]['allowed']:
            self.why_not = ('role %s may not execute pgstattuple\'s functions: GRANT pg_stat_scan_tables TO %s, '
                            'or ANALYZE the tables' % (params.get('login_user'), params.get('login_user')))
        else:
            self.schema = rows[0]['schema']

    def _call(self, oid, sql):
        """(row, None) or (None, why)."""
        if self.schema is None:
            return None, self.why_not
        if self.deadline is not None and self.clock() >= self.deadline:
            return None, 'not measured: the maintenance window is over (max_runtime %s)' % format_duration(
                self.params.get('max_runtime_s') or 0)
        try:
            size = pgc.query(self.conn, 'SELECT pg_relation_size(%s) AS size', (oid,))[0]['size']
            if size > self.max_size:
                return None, ('not measured: %s is larger than measure_max_size %s'
                              % (_size(size), _size(self.max_size)))
            row = pgc.query(self.conn, sql % pgc.quote_ident(self.schema), (oid,))[0]
        except pgc.psycopg2.Error as exc:
            code = getattr(exc, 'pgcode', None)
            if code is None:
                raise
            return None, 'not measured: ' + {
                '55P03': 'lock not granted within lock_timeout %s' % format_duration(self.params['lock_timeout_s']),
                '57014': 'cancelled by statement_timeout'}.get(code, pgc.describe_error(exc, self.params))
        return row, None

    def table(self, oid):
        """({'live', 'dead', 'scanned_percent'}, None) or (None, why)."""
        row, why = self._call(oid, 'SELECT approx_tuple_count AS live, dead_tuple_count AS dead, '
                                   'scanned_percent FROM %s.pgstattuple_approx(%%s::regclass)')
        if row is None:
            return None, why
        return {'live': int(row['live']), 'dead': int(row['dead']),
                'scanned_percent': round(float(row['scanned_percent']), 1)}, None

    def gin(self, oid):
        """(pgstatginindex row: pending_pages, pending_tuples; None) or (None, why)."""
        return self._call(oid, 'SELECT pending_pages, pending_tuples FROM %s.pgstatginindex(%%s::regclass)')

    def index(self, oid):
        """(pgstatindex row, None) or (None, why)."""
        return self._call(oid, 'SELECT index_size, leaf_pages, internal_pages, empty_pages, deleted_pages, '
                               'avg_leaf_density FROM %s.pgstatindex(%%s::regclass)')


def _size(n):
    for unit in ('B', 'kB', 'MB', 'GB', 'TB'):
        if n < 1024 or unit == 'TB':
            return '%.0f %s' % (n, unit) if unit == 'B' else '%.1f %s' % (n, unit)
        n /= 1024.0
    return str(n)
