# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance: observe tables, indexes and sessions, plan against the thresholds, apply under
lock_timeout, and the figures before and after; Item (one planned statement) and
ApplyInterrupted (the connection was lost part way)."""

from __future__ import annotations

import fnmatch
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import format_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.common import size
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import finding
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.options import (
    DEFAULT_MEASURE_MAX_SIZE, in_scope, normalise)
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.sql import (
    INDEXES_SQL, SESSIONS_SQL, TABLES_SQL)
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.measure import (
    Measurer, _size, counters_unknown, dead_ratio, index_bloat, measured_index_bloat)


def server_reason(notices):
    """PostgreSQL's own reason from the WARNINGs a statement raised, or None."""
    lines = [n.strip() for n in notices if n.strip()]
    if not lines:
        return None
    return '; '.join(line.split(':', 1)[1].strip() if ':' in line[:12] else line for line in lines)


class Item(object):
    """One planned statement."""

    def __init__(self, operation, obj, reason, statement, figures=None, rank=0, oid=None,
                 transactional=False, denied=None):
        self.operation = operation
        self.object = obj
        self.reason = reason
        self.statement = statement
        self.figures = figures or {}
        self.rank = rank
        self.oid = oid
        self.transactional = transactional
        self.denied = denied  # why PostgreSQL will refuse or skip it for this role, as far as we can tell

    def to_dict(self):
        # 'operation' is the 0.0 name of 'action', kept while tests and playbooks read it
        return {'object': self.object, 'action': self.operation, 'count': 1, 'reason': self.reason,
                'statement': self.statement, 'figures': dict(self.figures), 'operation': self.operation}


class Maintenance(object):
    def __init__(self, conn, params, clock=time.monotonic):
        self.conn = conn
        self.params = params
        self.ops = normalise(params)
        self.not_planned = []  # objects past a threshold, or of unknown state, that are not handled
        self.findings = []
        self.warnings = []
        self.clock = clock
        self.started = clock()
        self._measurer = None
        self.throttle = None  # vacuum_cost_delay / vacuum_cost_limit as the server showed them

    # -- observe --------------------------------------------------------------------------
    def measurer(self):
        if self._measurer is None:
            max_runtime = self.params.get('max_runtime_s')
            self._measurer = Measurer(
                self.conn, self.params,
                self.params.get('measure_max_size_b') or size.parse_size(DEFAULT_MEASURE_MAX_SIZE),
                deadline=None if max_runtime is None else self.started + max_runtime, clock=self.clock)
        return self._measurer

    def server_version(self):
        return int(pgc.query(self.conn, "SELECT current_setting('server_version_num')::int AS v")[0]['v'])

    def tables(self):
        rows = [r for r in pgc.query(self.conn, TABLES_SQL) if in_scope(r['schema'], r['name'], self.params)]
        if any(not r['may_vacuum'] for r in rows) and self.server_version() >= 170000:
            for r in rows:  # PostgreSQL 17 added the MAINTAIN privilege (and the pg_maintain role)
                if not r['may_vacuum']:
                    r['may_vacuum'] = pgc.query(self.conn, "SELECT has_table_privilege(%s::oid, 'MAINTAIN') AS m",
                                                (r['oid'],))[0]['m']
        unknown, measured = [], []
        for r in rows:
            r['unknown'] = counters_unknown(r)
            if not r['unknown'] or 'vacuum' not in self.ops:
                continue
            figures, why = self.measurer().table(r['oid'])
            obj = '%s.%s' % (r['schema'], r['name'])
            if figures is None:
                r['unmeasured'] = why
                unknown.append(obj)
                self.not_planned.append(dict(operation='vacuum', action='vacuum', count=1, object=obj,
                                             why='dead tuples unknown: %s; %s' % (r['unknown'], why)))
                continue
            r.update(live=figures['live'], dead=figures['dead'], measured=figures)
            measured.append(obj)
        if unknown:
            self.findings.append(finding(
                'dead tuples of %d table(s) whose statistics counters were reset' % len(unknown), 'unknown',
                'figures needed to plan VACUUM', 'warning', tables=unknown, how=self.measurer().why_not
                or 'raise measure_max_size or max_runtime, or ANALYZE the tables'))
            self.warnings.append('dead tuples unknown for %s (statistics counters reset): %s'
                                 % (', '.join(unknown[:10]) + (' and %d more' % (len(unknown) - 10)
                                                               if len(unknown) > 10 else ''),
                                    self.measurer().why_not or 'see skipped_items'))
        if measured:
            self.findings.append(finding(
                'dead tuples of %d table(s) whose statistics counters were reset' % len(measured),
                'measured with pgstattuple_approx', 'figures needed to plan VACUUM', 'ok', tables=measured))
        return rows

    def indexes(self):
        rows = [r for r in pgc.query(self.conn, INDEXES_SQL)
                if in_scope(r['schema'], r['table'], self.params)]
        min_size = self.ops.get('reindex', {}).get('min_size_b', 0)
        measured = []
        gin_pages = self.ops.get('reindex', {}).get('gin_min_pending_pages')
        for r in rows:
            if r['valid'] and r['method'] != 'btree' and not (r['method'] == 'gin' and gin_pages):
                continue
            try:
                size_ = pgc.query(self.conn, 'SELECT pg_relation_size(%s) AS size', (r['oid'],))[0]['size']
            except pgc.psycopg2.Error as exc:
                if getattr(exc, 'pgcode', None) != '55P03':
                    raise
                self.not_planned.append(dict(operation='reindex', action='reindex', count=1, object='%s.%s' % (r['schema'], r['name']),
                                             why='lock not granted within lock_timeout while measuring'))
                continue
            r['size'] = size_
            r['pages'] = size_ // r['block_size']
            measured.append(r)
            if r['valid'] and r['method'] == 'gin':
                self._gin_pending(r)
            elif r['valid']:
                self._index_bloat(r, min_size)
        return measured

    def _gin_pending(self, r):
        """Set r['gin_pending_pages'] from pgstatginindex (None: not measured, said in
        not_planned). A GIN index's pending list (fastupdate) grows with every insert until a
        VACUUM or a REINDEX merges it; a long one slows every search (runbook 004 Slow Search)."""
        m, why = self.measurer().gin(r['oid'])
        r['gin_pending_pages'] = None if m is None else int(m['pending_pages'])
        r['gin_pending_tuples'] = None if m is None else int(m['pending_tuples'])
        if m is None:
            self.not_planned.append(dict(operation='reindex', action='reindex', count=1,
                                         object='%s.%s' % (r['schema'], r['name']), figures={'size': r['size']},
                                         why='GIN pending list not measured: %s' % why))

    def _index_bloat(self, r, min_size):
        """Set r['bloat'] (None: unknown) and r['bloat_source'] for a valid btree index."""
        obj = '%s.%s' % (r['schema'], r['name'])
        table_unknown = counters_unknown(r, prefix='t_')
        if table_unknown and not r['partial']:
            # the live-row count is not to be trusted: estimate from the catalog instead
            r['tuples'] = r['index_reltuples']
        estimate = index_bloat(r) if r['tuples'] >= 0 else None
        r['bloat'], r['bloat_source'] = estimate, 'estimate'
        if r['size'] < min_size or r['pages'] < 2:
            return  # below the threshold: not a candidate, whatever its bloat
        if estimate is not None and not table_unknown:
            return
        why_unknown = (('statistics counters of its table cannot be trusted: %s' % table_unknown)
                       if table_unknown else 'its table was never analyzed, so there are no column '
                       'statistics to estimate its size from')
        m, why = self.measurer().index(r['oid'])
        if m is not None:
            r['bloat'] = measured_index_bloat(m, r['fillfactor'], r['block_size'])
            r['bloat_source'] = 'pgstatindex'
            return
        if estimate is not None:
            r['bloat_source'] = 'catalog estimate (reltuples)'
            return
        self.not_planned.append(dict(operation='reindex', action='reindex', count=1, object=obj, figures={'size': r['size']},
                                     why='bloat unknown: %s; %s' % (why_unknown, why)))

    def sessions(self):
        rows = pgc.query(self.conn, SESSIONS_SQL)
        t = self.ops['terminate']
        hidden = [r for r in rows if r['backend_type'] is None and r['user'] is not None
                  and (not r['superuser'] or t['include_superusers'])
                  and (not t['users'] or r['user'] in t['users']) and r['user'] not in t['exclude_users']
                  and (not t['applications'] or any(fnmatch.fnmatchcase(r['application'] or '', p)
                                                    for p in t['applications']))]
        if hidden:
            who = sorted(set(r['user'] for r in hidden))
            self.findings.append(finding(
                'sessions hidden from role %s' % self.params.get('login_user'), len(hidden),
                'state readable to plan terminate', 'warning', users=who,
                how='GRANT pg_read_all_stats TO %s (and pg_signal_backend to terminate them)'
                    % self.params.get('login_user')))
            self.warnings.append('%d session(s) of %s cannot be judged: role %s may not read their state in '
                                 'pg_stat_activity (GRANT pg_read_all_stats TO %s)'
                                 % (len(hidden), ', '.join(who), self.params.get('login_user'),
                                    self.params.get('login_user')))
        return [r for r in rows if r['backend_type'] is not None]

    def set_timeouts(self):
        """Bound every lock wait of this session, observation included."""
        with self.conn.cursor() as cur:
            cur.execute('SET lock_timeout = %s', ('%dms' % int(self.params['lock_timeout_s'] * 1000),))
            if self.params.get('statement_timeout_s'):
                cur.execute('SET statement_timeout = %s',
                            ('%dms' % int(self.params['statement_timeout_s'] * 1000),))

    def set_throttle(self):
        """vacuum_cost_delay and vacuum_cost_limit of this session (they act on VACUUM and
        ANALYZE), as the validated numbers passed as parameters to set_config; returns the
        values the server then shows in this session, or None when neither option is set."""
        delay, limit = self.params.get('vacuum_cost_delay_ms'), self.params.get('vacuum_cost_limit_n')
        if delay is None and limit is None:
            return None
        with self.conn.cursor() as cur:
            if delay is not None:
                cur.execute("SELECT set_config('vacuum_cost_delay', %s, false)", ('%gms' % delay,))
            if limit is not None:
                cur.execute("SELECT set_config('vacuum_cost_limit', %s, false)", (str(int(limit)),))
            cur.execute("SELECT current_setting('vacuum_cost_delay'), current_setting('vacuum_cost_limit')")
            shown_delay, shown_limit = cur.fetchone()
        return {'vacuum_cost_delay': shown_delay, 'vacuum_cost_limit': int(shown_limit)}

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
            name = pgc.quote_ident(t['schema'], t['name'])
            obj = '%s.%s' % (t['schema'], t['name'])
            reasons, options = [], []
            ratio = dead_ratio(t)
            figures = {'dead_tuples': t['dead'], 'live_tuples': t['live'], 'dead_ratio': round(ratio, 4)}
            if t.get('measured'):
                figures['source'] = 'pgstattuple_approx (statistics counters reset)'
                figures['scanned_percent'] = t['measured']['scanned_percent']
            elif t.get('unmeasured'):
                figures.update(dead_tuples=None, live_tuples=None, dead_ratio=None)
            need_vacuum = False
            if vac and not t.get('unmeasured'):
                if t['dead'] >= vac['min_dead_tuples'] and ratio >= vac['min_dead_ratio']:
                    need_vacuum = True
                    reasons.append('%.0f%% dead tuples (%d%s) >= %.0f%%'
                                   % (ratio * 100, t['dead'], ', measured with pgstattuple_approx'
                                      if t.get('measured') else '', vac['min_dead_ratio'] * 100))
            if vac:
                if vac['freeze_min_xid_age'] and t['xid_age'] >= vac['freeze_min_xid_age']:
                    need_vacuum = True
                    options.append('FREEZE')
                    figures['xid_age'] = t['xid_age']
                    reasons.append('xid age %d >= %d' % (t['xid_age'], vac['freeze_min_xid_age']))
                if need_vacuum and vac['full']:
                    options.append('FULL')
            need_analyze = False
            if ana:
                base = max(t['reltuples'], t['live'], 1)
                mod_ratio = float(t['modified']) / base
                has_rows = (t['live'] + t['dead']) > 0 or (t['unknown'] and t['reltuples'] > 0)
                if t['modified'] > 0 and mod_ratio >= ana['min_modified_ratio']:
                    need_analyze = True
                    reasons.append('%.0f%% of rows modified since the last ANALYZE (%d) >= %.0f%%'
                                   % (mod_ratio * 100, t['modified'], ana['min_modified_ratio'] * 100))
                elif ana['max_stats_age_s'] is not None and has_rows:
                    if t['stats_age'] is None:
                        need_analyze = True
                        reasons.append('no ANALYZE recorded since the statistics counters were reset'
                                       if t['unknown'] else 'never analyzed')
                    elif t['stats_age'] > ana['max_stats_age_s']:
                        need_analyze = True
                        reasons.append('statistics %s old > %s'
                                       % (format_duration(t['stats_age']), ana['max_stats_age']))
                figures['modified_since_analyze'] = t['modified']
            denied = None if t['may_vacuum'] else (
                'role %s owns neither the table nor the database (VACUUM and ANALYZE need ownership%s)'
                % (self.params.get('login_user'), ', or MAINTAIN on PostgreSQL 17+'))
            if need_vacuum:
                if need_analyze:
                    options.append('ANALYZE')
                stmt = 'VACUUM (%s) %s' % (', '.join(options), name) if options else 'VACUUM %s' % name
                op = 'vacuum analyze' if need_analyze else 'vacuum'
                items.append(Item(op, obj, '; '.join(reasons), stmt, figures, rank=t['dead'], oid=t['oid'],
                                  denied=denied))
            elif need_analyze:
                items.append(Item('analyze', obj, '; '.join(reasons), 'ANALYZE %s' % name, figures,
                                  rank=0, oid=t['oid'], denied=denied))
        items.sort(key=lambda i: -i.rank)
        return items

    def _plan_reindex(self, indexes):
        r = self.ops['reindex']
        blocking = self.params.get('allow_blocking')
        items = []
        for ix in indexes:
            name = pgc.quote_ident(ix['schema'], ix['name'])
            obj = '%s.%s' % (ix['schema'], ix['name'])
            figures = {'size': ix['size'], 'valid': ix['valid']}
            denied = None if ix['may_reindex'] else (
                'role %s does not own the index (REINDEX needs ownership, or MAINTAIN on PostgreSQL 17+)'
                % self.params.get('login_user'))
            if not ix['valid']:
                if not r['invalid']:
                    continue
                if '_ccnew' in ix['name'] or '_ccold' in ix['name']:
                    items.append(Item('drop invalid index', obj,
                                      'invalid leftover of an interrupted REINDEX CONCURRENTLY',
                                      'DROP INDEX CONCURRENTLY IF EXISTS %s' % name, figures, oid=ix['oid'],
                                      denied=denied))
                else:
                    stmt = 'REINDEX INDEX %s%s' % ('' if blocking else 'CONCURRENTLY ', name)
                    items.append(Item('reindex', obj, 'index is invalid (a failed concurrent build)',
                                      stmt, figures, oid=ix['oid'], denied=denied))
                continue
            if ix['method'] == 'gin':
                pending = ix.get('gin_pending_pages')
                if pending is None or not r['gin_min_pending_pages'] or pending < r['gin_min_pending_pages']:
                    continue
                figures.update(gin_pending_pages=pending, gin_pending_tuples=ix.get('gin_pending_tuples'),
                               source='pgstatginindex')
                items.append(Item('reindex', obj, 'GIN pending list %d pages >= %d (measured with pgstatginindex)'
                                  % (pending, r['gin_min_pending_pages']),
                                  'REINDEX INDEX %s%s' % ('' if blocking else 'CONCURRENTLY ', name),
                                  figures, rank=ix['size'], oid=ix['oid'], denied=denied))
                continue
            bloat = ix.get('bloat')
            if bloat is None or ix['size'] < r['min_size_b'] or ix['pages'] < 2:
                continue
            figures['bloat_ratio'] = round(bloat, 4)
            if ix.get('bloat_source', 'estimate') != 'estimate':
                figures['source'] = ix['bloat_source']
            if bloat < r['min_bloat_ratio']:
                continue
            if ix['exclusion'] and not blocking:
                self.not_planned.append(dict(operation='reindex', action='reindex', count=1, object=obj, figures=figures,
                                             why='backs an exclusion constraint, which REINDEX '
                                                 'CONCURRENTLY cannot rebuild; needs allow_blocking'))
                continue
            stmt = 'REINDEX INDEX %s%s' % ('' if blocking else 'CONCURRENTLY ', name)
            how = 'measured with pgstatindex' if ix.get('bloat_source') == 'pgstatindex' else 'estimated'
            items.append(Item('reindex', obj, '%s bloat %.0f%% >= %.0f%% (%s)'
                              % (how, bloat * 100, r['min_bloat_ratio'] * 100, _size(ix['size'])),
                              stmt, figures, rank=ix['size'], oid=ix['oid'], denied=denied))
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
            if s['user'] in t['exclude_users']:
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
            denied = None if s['may_signal'] else (
                'role %s may not signal sessions of %s (needs membership in pg_signal_backend%s)'
                % (self.params.get('login_user'), s['user'],
                   ', and a superuser to end a superuser\'s session' if s['superuser'] else ''))
            item = Item('terminate', obj, reason, 'SELECT pg_terminate_backend(%d)' % s['pid'],
                        {'pid': s['pid'], 'user': s['user'], 'state': s['state'],
                         'seconds': int(age), 'client': s['client']}, denied=denied)
            item.session = s
            items.append(item)
        return items

    # -- apply ----------------------------------------------------------------------------
    def predict(self, items):
        """Check mode: the items PostgreSQL would refuse or skip for this role, each with why."""
        return [dict(i.to_dict(), why='PostgreSQL would not run it: %s' % i.denied) for i in items if i.denied]

    def apply(self, items, max_runtime_s=None, clock=None):
        clock = clock or self.clock
        started = self.started if clock is self.clock else clock()
        done, skipped = [], []
        if any(i.operation in ('vacuum', 'vacuum analyze', 'analyze') for i in items):
            self.throttle = self.set_throttle()
        pause = self.params.get('pause_s') or 0.0
        cur = self.conn.cursor()
        ran = False
        for index, item in enumerate(items):
            if pause and ran:
                # a pause between statements lets the server catch up; never past the window
                wait = pause if max_runtime_s is None else min(pause, max(0.0, max_runtime_s - (clock() - started)))
                time.sleep(wait)
            if max_runtime_s is not None and clock() - started >= max_runtime_s:
                for rest in items[index:]:
                    skipped.append(dict(rest.to_dict(), why='maintenance window over (max_runtime %s)'
                                        % format_duration(max_runtime_s)))
                break
            t0 = clock()
            ran = True
            del self.conn.notices[:]
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
                if code == '42501' and item.denied:  # insufficient privilege: say which one
                    why = '%s (%s)' % (why, item.denied)
                entry = dict(item.to_dict(), why=why)
                if item.operation == 'reindex' and 'CONCURRENTLY' in item.statement:
                    entry['cleanup'] = self._drop_leftovers(cur, item)
                skipped.append(entry)
                continue
            notices = [n for n in self.conn.notices if n.strip()]
            if notices and item.operation in ('vacuum', 'vacuum analyze', 'analyze') and (
                    item.denied or any('skipping' in n for n in notices)):
                # PostgreSQL skips, with a WARNING and no error, a table the role may not vacuum
                skipped.append(dict(item.to_dict(), why='PostgreSQL skipped it: %s' % server_reason(notices)))
                continue
            entry = dict(item.to_dict(), seconds=round(clock() - t0, 3))
            if notices:
                entry['server_messages'] = [n.strip() for n in notices]
            done.append(entry)
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
                            % pgc.quote_ident(row['schema'], row['name']))
                dropped.append('%s.%s' % (row['schema'], row['name']))
            except Exception:  # pylint: disable=broad-except
                pass  # left for the next run, which drops invalid leftovers first
        return dropped

    # -- figures --------------------------------------------------------------------------
    @staticmethod
    def figures_before(items):
        """The figures the plan was made from, per planned table, index and session."""
        out = {'tables': {}, 'indexes': {}, 'sessions': {}}
        for i in items:
            f = i.figures
            if i.operation in ('vacuum', 'vacuum analyze', 'analyze'):
                out['tables'][i.object] = {'dead_tuples': f.get('dead_tuples'), 'dead_ratio': f.get('dead_ratio'),
                                           'modified_since_analyze': f.get('modified_since_analyze', 0)}
            elif i.operation in ('reindex', 'drop invalid index'):
                out['indexes'][i.object] = {'size': f.get('size'), 'valid': f.get('valid'),
                                            'bloat_ratio': f.get('bloat_ratio')}
                if 'gin_pending_pages' in f:
                    out['indexes'][i.object]['gin_pending_pages'] = f['gin_pending_pages']
            elif i.operation == 'terminate':
                out['sessions'][i.object] = {'pid': f.get('pid'), 'user': f.get('user'), 'state': f.get('state')}
        return out

    @staticmethod
    def predict_after(before, items, skipped):
        """Check mode's diff: what the figures will be once the plan ran (VACUUM leaves no dead
        tuples, ANALYZE nothing modified since, a rebuilt index no bloat, a dropped leftover and a
        terminated session are gone); items PostgreSQL would skip stay as they are."""
        after = dict((kind, dict((k, dict(v)) for k, v in before.get(kind, {}).items()))
                     for kind in ('tables', 'indexes', 'sessions'))
        unchanged = set(s['object'] for s in skipped)
        for i in items:
            if i.object in unchanged:
                continue
            if i.operation in ('vacuum', 'vacuum analyze'):
                after['tables'][i.object].update(dead_tuples=0, dead_ratio=0.0)
            if i.operation in ('analyze', 'vacuum analyze'):
                after['tables'][i.object]['modified_since_analyze'] = 0
            if i.operation == 'reindex':
                ix = after['indexes'][i.object]
                ratio = ix.get('bloat_ratio') or 0.0
                ix.update(valid=True, bloat_ratio=0.0, size=int(ix['size'] * (1 - ratio)) if ix['size'] else ix['size'])
                if 'gin_pending_pages' in ix:
                    ix.update(bloat_ratio=None, gin_pending_pages=0)
            if i.operation == 'drop invalid index':
                after['indexes'].pop(i.object, None)
            if i.operation == 'terminate':
                after['sessions'].pop(i.object, None)
        return after

    def figures(self, items, done=(), clock=None, wait=5.0):
        """Dead tuples of the planned tables, bloat of the planned indexes and the state of the
        planned sessions, as of now. A terminated backend leaves pg_stat_activity a moment after
        pg_terminate_backend() returned: wait for it (at most *wait* seconds)."""
        clock = clock or self.clock
        tables = set(i.object for i in items if i.operation in ('vacuum', 'vacuum analyze', 'analyze'))
        indexes = dict((i.object, i) for i in items if i.operation in ('reindex', 'drop invalid index'))
        sessions = dict((i.figures['pid'], i.object) for i in items if i.operation == 'terminate')
        out = {'tables': {}, 'indexes': {}, 'sessions': {}}
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
                    bloat = index_bloat(ix) if ix['valid'] else None
                    if ix['valid'] and indexes[key].figures.get('source') == 'pgstatindex':
                        m, _why = self.measurer().index(ix['oid'])
                        bloat = measured_index_bloat(m, ix['fillfactor'], ix['block_size']) if m else None
                    out['indexes'][key] = {'size': ix['size'], 'valid': ix['valid'],
                                           'bloat_ratio': None if bloat is None else round(bloat, 4)}
                    if indexes[key].figures.get('source') == 'pgstatginindex':
                        m, _why = self.measurer().gin(ix['oid']) if ix['valid'] else (None, None)
                        out['indexes'][key].update(bloat_ratio=None,
                                                   gin_pending_pages=int(m['pending_pages']) if m else None)
        if sessions:
            terminated = set(d['figures']['pid'] for d in done if d.get('operation') == 'terminate')
            deadline = clock() + wait
            while True:
                rows = pgc.query(self.conn, 'SELECT pid, usename AS "user", state FROM pg_stat_activity '
                                            'WHERE pid = ANY(%s)', (list(sessions),))
                if not terminated & set(r['pid'] for r in rows) or clock() >= deadline:
                    break
                time.sleep(0.05)
            for r in rows:
                out['sessions'][sessions[r['pid']]] = {'pid': r['pid'], 'user': r['user'], 'state': r['state']}
        return out

    def diff_view(self, figs, items):
        """What the diff shows of *figs*: per planned object, the figures its statement acts on
        (dead tuples for VACUUM, rows modified since ANALYZE, validity and bloat against
        min_bloat_ratio for REINDEX, the session's state for a termination), so that check mode's
        prediction reads as the real run's measurement does."""
        view = {'tables': {}, 'indexes': {}, 'sessions': dict((k, dict(v)) for k, v in figs.get('sessions', {}).items())}
        threshold = (self.ops.get('reindex') or {}).get('min_bloat_ratio')
        for i in items:
            if i.operation in ('vacuum', 'vacuum analyze', 'analyze') and i.object in figs['tables']:
                t = figs['tables'][i.object]
                shown = {}
                if i.operation != 'analyze':
                    shown.update(dead_tuples=t['dead_tuples'], dead_ratio=t['dead_ratio'])
                if i.operation != 'vacuum':
                    shown['modified_since_analyze'] = t['modified_since_analyze']
                view['tables'][i.object] = shown
            elif i.operation in ('reindex', 'drop invalid index') and i.object in figs['indexes']:
                ix = figs['indexes'][i.object]
                ratio = ix.get('bloat_ratio')
                if ratio is None or threshold is None or not ix['valid']:
                    bloat = 'unknown'
                else:
                    bloat = '%s %.0f%%' % ('at or above' if ratio >= threshold else 'below', threshold * 100)
                view['indexes'][i.object] = {'valid': ix['valid'], 'bloat': bloat}
                if 'gin_pending_pages' in ix:
                    view['indexes'][i.object] = {'valid': ix['valid'], 'gin_pending_pages': ix['gin_pending_pages']}
        return view


class ApplyInterrupted(Exception):
    def __init__(self, done, skipped, remaining, cause):
        Exception.__init__(self, cause)
        self.done = done
        self.skipped = skipped
        self.remaining = remaining
        self.cause = cause
