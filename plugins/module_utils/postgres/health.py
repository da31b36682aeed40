# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_health_info: the runbooks' database diagnosis queries, as data with verdicts."""

from __future__ import annotations

import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import format_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import verdict as _verdict
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import statements
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import maintenance as pgm
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance import (
    INDEXES_SQL, TABLES_SQL, dead_ratio, index_bloat)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

SECTIONS = ('connections', 'long_queries', 'statements', 'indexes', 'seq_scans', 'sizes', 'dead_tuples',
            'wraparound', 'replication', 'migrations', 'checks')

XID_LIMIT = 2 ** 31

# Tables and indexes whose statistics cannot be trusted (a reset, a crash, a restore, never
# analyzed) are measured with pgstattuple when it is installed: each up to this size, all of them
# within this many seconds; the rest are reported as unknown.
MEASURE_MAX_SIZE = 1 << 30
MEASURE_BUDGET_S = 60


class HealthError(OncallError):
    pass


class Health(object):
    def __init__(self, conn, params):
        self.conn = conn
        self.p = params
        self.notes = []
        self.findings = []

    def q(self, sql, args=None):
        return pgc.query(self.conn, sql, args)

    def connections(self):
        rows = self.q("SELECT coalesce(state, backend_type) AS state, count(*)::int AS n "
                      "FROM pg_stat_activity GROUP BY 1 ORDER BY 2 DESC")
        total = self.q("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'")[0]['n']
        maximum = int(self.q("SELECT setting FROM pg_settings WHERE name = 'max_connections'")[0]['setting'])
        ratio = float(total) / maximum
        t = self.p['thresholds']
        self.findings.append({'object': 'connections', 'figure': '%d of %d (%.0f%%)' % (total, maximum, ratio * 100),
                              'threshold': '>= %.0f%% warning, >= %.0f%% critical'
                              % (t['connections_warning'] * 100, t['connections_critical'] * 100),
                              'verdict': _verdict(ratio, t['connections_warning'], t['connections_critical'])})
        return {'total': total, 'max_connections': maximum, 'ratio': round(ratio, 4),
                'by_state': dict((r['state'], r['n']) for r in rows)}

    def long_queries(self):
        rows = self.q("""
            SELECT pid, usename AS "user", application_name AS application, state,
                   extract(epoch FROM now() - query_start)::float AS seconds, left(query, 300) AS query
            FROM pg_stat_activity
            WHERE state <> 'idle' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
              AND query_start IS NOT NULL
            ORDER BY query_start LIMIT %s""", (self.p['limit'],))
        limit = self.p['thresholds']['long_query_after_s']
        over = [r for r in rows if r['seconds'] >= limit]
        self.findings.append({'object': 'queries running longer than %s' % format_duration(limit), 'figure': len(over),
                              'threshold': '> 0 warning', 'verdict': 'warning' if over else 'ok'})
        return rows

    def statements(self):
        present = self.q("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if not present:
            self.notes.append('pg_stat_statements is not installed in this database: no top queries '
                              '(CREATE EXTENSION pg_stat_statements, with it in shared_preload_libraries)')
            return []
        try:
            rows = self.q("""
                SELECT left(query, 300) AS query, calls, round(mean_exec_time::numeric, 2)::float AS mean_ms,
                       round(total_exec_time::numeric, 2)::float AS total_ms, rows
                FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY mean_exec_time DESC LIMIT %s""", (self.p['limit'],))
        except pgc.psycopg2.Error as exc:
            self.notes.append('pg_stat_statements cannot be read: %s' % pgc.describe_error(exc, self.p))
            return []
        slow = [r for r in rows if r['mean_ms'] > self.p['thresholds']['slow_query_mean_ms']]
        self.findings.append({'object': 'statements with mean time > %d ms' % self.p['thresholds']['slow_query_mean_ms'],
                              'figure': len(slow), 'threshold': '> 0 warning',
                              'verdict': 'warning' if slow else 'ok'})
        return rows

    def indexes(self):
        unused = self.q("""
            SELECT s.schemaname AS schema, s.relname AS "table", s.indexrelname AS name, s.idx_scan,
                   c.relpages::bigint * current_setting('block_size')::int AS size
            FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid
            JOIN pg_class c ON c.oid = s.indexrelid
            WHERE s.idx_scan = 0 AND NOT x.indisunique AND NOT x.indisprimary
            ORDER BY c.relpages DESC LIMIT %s""", (self.p['limit'],))
        all_ix = self.q(INDEXES_SQL)
        invalid = [{'schema': i['schema'], 'table': i['table'], 'name': i['name'], 'size': i['size']}
                   for i in all_ix if not i['valid']]
        bloated, unknown = self.bloated_indexes(all_ix)
        self.findings.append({'object': 'invalid indexes', 'figure': len(invalid), 'threshold': '> 0 warning',
                              'verdict': 'warning' if invalid else 'ok'})
        out = {'unused': unused, 'invalid': invalid, 'bloated': bloated}
        if unknown:
            out['bloat_unknown'] = unknown
            self.findings.append({'object': 'indexes of 1MB or more whose bloat is unknown', 'figure': len(unknown),
                                  'threshold': '> 0 warning', 'verdict': 'warning',
                                  'indexes': ['%s.%s' % (u['schema'], u['name']) for u in unknown]})
        return out

    def seq_scans(self):
        """Missing-index hints (runbook 001 5.3: idx_scan = 0 AND seq_scan > 0): tables of at least
        seq_scan_min_rows live rows read more often by sequential scans than through an index.
        Hints for a human (EXPLAIN ANALYZE, then an index), so data without a verdict."""
        rows = self.q("""
            SELECT schemaname AS schema, relname AS name, seq_scan, seq_tup_read,
                   coalesce(idx_scan, 0) AS idx_scan, n_live_tup AS live_tuples,
                   (seq_tup_read / greatest(seq_scan, 1))::bigint AS rows_per_seq_scan
            FROM pg_stat_user_tables
            WHERE seq_scan > coalesce(idx_scan, 0) AND n_live_tup >= %s
            ORDER BY seq_tup_read DESC LIMIT %s""", (self.p['thresholds']['seq_scan_min_rows'], self.p['limit']))
        return rows

    def sizes(self):
        # Sizes from the catalog (as of the last VACUUM/ANALYZE): pg_total_relation_size would
        # wait behind any session holding an exclusive lock, and a diagnosis must not hang.
        db = self.q("SELECT pg_database_size(current_database()) AS size")[0]['size']
        tables = self.q("""
            SELECT n.nspname AS schema, c.relname AS name,
                   (c.relpages + coalesce(t.relpages, 0) + coalesce(ix.pages, 0))::bigint * b.size AS total,
                   c.relpages::bigint * b.size AS heap, coalesce(ix.pages, 0)::bigint * b.size AS indexes
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
            LEFT JOIN (SELECT x.indrelid, sum(i.relpages) AS pages FROM pg_index x
                       JOIN pg_class i ON i.oid = x.indexrelid GROUP BY x.indrelid) ix ON ix.indrelid = c.oid
            CROSS JOIN (SELECT current_setting('block_size')::int AS size) b
            WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg_toast%%'
            ORDER BY 3 DESC LIMIT %s""", (self.p['limit'],))
        return {'database': db, 'tables': tables}

    def dead_tuples(self):
        rows, unknown = [], []
        for t in self.q(TABLES_SQL):
            row = {'schema': t['schema'], 'name': t['name'], 'dead_tuples': t['dead'], 'live_tuples': t['live']}
            why = pgm.counters_unknown(t)
            if why:
                m, not_measured = self.measurer().table(t['oid'])
                if m is None:
                    row.update(dead_tuples=None, live_tuples=None, dead_ratio=None, unknown=why)
                    unknown.append('%s.%s' % (t['schema'], t['name']))
                    rows.append(row)
                    continue
                t = dict(t, live=m['live'], dead=m['dead'])
                row.update(dead_tuples=m['dead'], live_tuples=m['live'], source='pgstattuple_approx')
            row['dead_ratio'] = round(dead_ratio(t), 4)
            rows.append(row)
        rows.sort(key=lambda r: -(r['dead_tuples'] if r['dead_tuples'] is not None else -1))
        t = self.p['thresholds']
        over = [r for r in rows if r['dead_ratio'] is not None and r['dead_ratio'] >= t['dead_ratio_warning']
                and r['dead_tuples'] >= 1000]
        self.findings.append({'object': 'tables with >= %.0f%% dead tuples' % (t['dead_ratio_warning'] * 100),
                              'figure': len(over), 'threshold': '> 0 warning',
                              'verdict': 'warning' if over else 'ok'})
        if unknown:
            self.findings.append({'object': 'tables whose dead tuples are unknown (statistics counters reset)',
                                  'figure': len(unknown), 'threshold': '> 0 warning', 'verdict': 'warning',
                                  'tables': unknown, 'how': self.measurer().why_not
                                  or 'larger than 1GB or over the 60s measuring budget: ANALYZE them'})
        return rows[:self.p['limit']]

    def wraparound(self):
        rows = self.q("SELECT datname AS database, age(datfrozenxid)::bigint AS xid_age FROM pg_database "
                      "WHERE datallowconn ORDER BY 2 DESC")
        for r in rows:
            r['ratio'] = round(float(r['xid_age']) / XID_LIMIT, 4)
        worst = rows[0]['ratio'] if rows else 0
        t = self.p['thresholds']
        self.findings.append({'object': 'transaction id age (share of wraparound)', 'figure': worst,
                              'threshold': '>= %.2f warning, >= %.2f critical' % (t['xid_warning'], t['xid_critical']),
                              'verdict': _verdict(worst, t['xid_warning'], t['xid_critical'])})
        return rows

    def replication(self):
        in_recovery = self.q("SELECT pg_is_in_recovery() AS r")[0]['r']
        if in_recovery:
            lag = self.q("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float AS s")[0]['s']
            return {'role': 'replica', 'replay_lag_seconds': lag, 'replicas': []}
        replicas = self.q("""
            SELECT application_name, client_addr::text AS client, state, sync_state,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,
                   extract(epoch FROM replay_lag)::float AS replay_lag_seconds
            FROM pg_stat_replication""")
        return {'role': 'primary', 'replicas': replicas}

    def migrations(self):
        m = self.p['migrations']
        exists = self.q("SELECT to_regclass(%s) IS NOT NULL AS e", (m['table'],))[0]['e']
        if not exists:
            self.notes.append('migrations table %s does not exist' % m['table'])
            return []
        table = pgc.quote_ident(*m['table'].split('.'))
        order = pgc.quote_ident(m['order_by'])
        rows = self.q('SELECT * FROM %s ORDER BY %s DESC NULLS LAST LIMIT %%s' % (table, order), (m['limit'],))
        return [dict((k, v if isinstance(v, (int, float, bool)) or v is None else str(v)) for k, v in r.items())
                for r in rows]

    def checks(self):
        """Each check alone, as exactly one query, in its own READ ONLY transaction of a
        read-only session, with check_timeout as its statement_timeout and as check_role when
        one is given, rolled back whatever happens."""
        out = []
        for i, check in enumerate(self.p['checks'] or []):
            name, text = check.get('name'), check.get('sql')
            if not name or not text:
                raise HealthError('checks[%d] needs a name and an sql' % i)
            maximum = int(check.get('max', 0))
            value = self._run_check(i, check)
            ok = value <= maximum
            out.append({'name': name, 'value': value, 'max': maximum, 'ok': ok})
            self.findings.append({'object': 'check %s' % name, 'figure': value, 'threshold': '<= %d' % maximum,
                                  'verdict': 'ok' if ok else check.get('severity', 'critical')})
        return out

    def _check_text(self, i, check):
        """The statement exactly as it is sent: identifiers quoted by psycopg2.sql.Identifier,
        values bound by psycopg2, then read by the lexer (one query, nothing refused)."""
        where = 'checks[%d] (%s)' % (i, check['name'])
        text = check['sql']
        identifiers = check.get('identifiers')
        if identifiers not in (None, {}):
            if not isinstance(identifiers, dict):
                raise HealthError('%s identifiers must be a dict of names, got %s' % (where, type(identifiers).__name__))
            names = {}
            for key, value in identifiers.items():
                parts = value if isinstance(value, list) else [value]
                if not parts or not all(isinstance(p, str) and p and all(p.split('.')) for p in parts):
                    raise HealthError('%s identifiers.%s must be a non-empty name ([schema.]name) or a list of them'
                                      % (where, key))
                names[key] = pgc.sql.SQL(', ').join(pgc.sql.Identifier(*p.split('.')) for p in parts)
            try:
                text = pgc.sql.SQL(text).format(**names).as_string(self.conn)
            except KeyError as exc:
                raise HealthError('%s names {%s} but identifiers has no %s' % (where, exc.args[0], exc.args[0]))
            except (ValueError, IndexError) as exc:
                raise HealthError('%s sql cannot take identifiers: %s (write {{ and }} for literal braces)'
                                  % (where, exc))
        params = check.get('params')
        if params is not None and not isinstance(params, (list, dict)):
            raise HealthError('%s params must be a list (or a dict for %%(name)s), got %s'
                              % (where, type(params).__name__))
        if params:
            try:
                with self.conn.cursor() as cur:
                    text = cur.mogrify(text, params).decode(pgc.psycopg2.extensions.encodings[self.conn.encoding])
            except (TypeError, ValueError, KeyError, IndexError, pgc.psycopg2.Error) as exc:
                raise HealthError('%s params do not fit its sql: %s (write %%%% for a literal %%)' % (where, exc))
        try:
            statements.read_only_query(text)
        except statements.SqlTextError as exc:
            raise HealthError('%s %s' % (where, exc))
        return text

    def _run_check(self, i, check):
        text = self._check_text(i, check)
        name = check['name']
        with self.conn.cursor() as cur:
            # autocommit connection: this transaction is the check's, and is rolled back
            cur.execute('BEGIN READ ONLY')
            try:
                cur.execute("SELECT set_config('statement_timeout', %s, true)",
                            ('%dms' % int(self.p.get('check_timeout_ms') or 0),))
                if self.p.get('check_role'):
                    try:
                        cur.execute(pgc.sql.SQL('SET LOCAL ROLE {}').format(pgc.sql.Identifier(self.p['check_role'])))
                    except pgc.psycopg2.Error as exc:
                        raise HealthError('check_role %s cannot be used: %s'
                                          % (self.p['check_role'], pgc.describe_error(exc, self.p)))
                cur.execute(text)
                row = cur.fetchone() if cur.description else None
                return int(row[0]) if row and row[0] is not None else 0
            except (pgc.psycopg2.Error, TypeError, ValueError) as exc:
                raise HealthError('check %s failed: %s' % (name, pgc.describe_error(exc, self.p)))
            finally:
                cur.execute('ROLLBACK')

    # -- statistics that cannot be trusted (see maintenance.counters_unknown) ---------------------
    def measurer(self):
        if getattr(self, '_measurer', None) is None:
            params = dict(self.p, lock_timeout_s=5, max_runtime_s=MEASURE_BUDGET_S)
            self._measurer = pgm.Measurer(self.conn, params, MEASURE_MAX_SIZE,
                                          deadline=time.monotonic() + MEASURE_BUDGET_S)
        return self._measurer

    def bloated_indexes(self, all_ix):
        """B-tree indexes of 1MB or more with 30% or more bloat: estimated from the catalog, or
        measured with pgstatindex when the estimate has nothing to stand on (a never-analyzed
        table, counters reset). Returns (bloated, unknown)."""
        bloated, unknown = [], []
        for ix in all_ix:
            if not ix['valid'] or ix['method'] != 'btree' or ix['size'] < 1 << 20:
                continue
            table_unknown = pgm.counters_unknown(ix, prefix='t_')
            if table_unknown and not ix['partial']:
                ix['tuples'] = ix['index_reltuples']
            bloat = index_bloat(ix) if ix['tuples'] >= 0 else None
            source = 'estimate'
            if bloat is None or table_unknown:
                m, why = self.measurer().index(ix['oid'])
                if m is not None:
                    bloat, source = pgm.measured_index_bloat(m, ix['fillfactor'], ix['block_size']), 'pgstatindex'
                elif bloat is None:
                    unknown.append({'schema': ix['schema'], 'name': ix['name'], 'size': ix['size'],
                                    'why': (table_unknown or 'its table was never analyzed') + '; ' + why})
                    continue
            if bloat >= 0.3:
                bloated.append({'schema': ix['schema'], 'name': ix['name'], 'size': ix['size'],
                                'bloat_ratio': round(bloat, 4), 'source': source})
        return bloated, unknown

    def collect(self, sections):
        return dict((name, getattr(self, name)()) for name in SECTIONS if name in sections)


def validate_options(params):
    """pg_health_info's one validation step, before connecting: every number finite and in range,
    every check's max a non-negative integer (normalised in place), one sentence naming the option."""
    try:
        params['limit'] = pgm.check_number(params.get('limit'), 'limit', 1, 10000, integer=True)
        mig = params.get('migrations') or {}
        if mig.get('limit') is not None:
            mig['limit'] = pgm.check_number(mig['limit'], 'migrations.limit', 1, 10000, integer=True)
        t = params.get('thresholds') or {}
        for key in ('connections_warning', 'connections_critical', 'dead_ratio_warning', 'xid_warning',
                    'xid_critical'):
            t[key] = pgm.check_number(t.get(key), 'thresholds.' + key, 0, 1)
        t['long_query_after_s'] = pgm.check_duration(t.get('long_query_after'), 'thresholds.long_query_after',
                                                     pgm.RUNTIME_MAX_S * 100)
        if t['long_query_after_s'] is None:
            raise pgm.MaintenanceError('thresholds.long_query_after must be a duration such as 5m, not empty')
        for key in ('slow_query_mean_ms', 'seq_scan_min_rows'):
            t[key] = pgm.check_number(t.get(key), 'thresholds.' + key, 0, pgm.INT_MAX, integer=True)
        for low, high in (('connections_warning', 'connections_critical'), ('xid_warning', 'xid_critical')):
            if t[low] > t[high]:
                raise pgm.MaintenanceError('thresholds.%s (%g) must not be above thresholds.%s (%g)'
                                           % (low, t[low], high, t[high]))
        for i, check in enumerate(params.get('checks') or []):
            if isinstance(check, dict) and 'max' in check:
                check['max'] = pgm.check_number(check['max'], 'checks[%d].max' % i, 0, pgm.INT_MAX, integer=True)
    except pgm.MaintenanceError as exc:
        raise HealthError(str(exc))
