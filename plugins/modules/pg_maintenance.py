#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_maintenance
short_description: Vacuum, analyze, reindex and terminate sessions only where thresholds are crossed
version_added: 0.1.0
description:
  - Converges a PostgreSQL database to healthy maintenance thresholds instead of running
    C(VACUUM ANALYZE) on everything. It reads C(pg_stat_all_tables), the index catalog and
    C(pg_stat_activity), plans one statement per object outside its threshold (with the measured
    figure as the reason), and applies the plan unless in check mode.
  - Every statement runs under O(lock_timeout); an object whose lock cannot be had in time is
    skipped and reported, never waited on. O(max_runtime) stops starting new work when the
    maintenance window ends and reports what remains.
  - Blocking operations (C(VACUUM FULL), a non-concurrent C(REINDEX)) need O(allow_blocking=true).
    Indexes are rebuilt with C(REINDEX INDEX CONCURRENTLY); invalid C(_ccnew) leftovers of an
    interrupted rebuild are dropped (first by this run, or by the next one if the server went away).
  - Sessions are terminated only when they match, never this module's own backend, replication or
    autovacuum workers, and superusers only with C(include_superusers).
  - Statistics that cannot be trusted are detected - after C(pg_stat_reset()),
    C(pg_stat_reset_single_table_counters()), a crash or immediate shutdown, or a restore,
    C(pg_stat_all_tables) shows no dead tuples. A table whose counters are empty while the catalog
    counts rows, or that has pages but no VACUUM or ANALYZE in its counters, is measured with
    C(pgstattuple_approx) (and its B-tree indexes with C(pgstatindex)) when the C(pgstattuple)
    extension is installed in the database and the role may execute it (C(pg_stat_scan_tables)).
    Measuring is bounded by O(measure_max_size) per relation, by O(max_runtime) (the same window as
    the work), and by O(lock_timeout) and O(statement_timeout) per call. What cannot be measured is
    a C(warning) in RV(findings) naming the tables and how to get their figures, and an entry in
    RV(skipped_items); it is never an empty plan without a word.
  - A B-tree index whose bloat cannot be estimated from the catalog (its table was never analyzed)
    is measured with C(pgstatindex), or listed in RV(skipped_items) with the reason.
  - Every option and every operation setting is validated before anything connects (types,
    ranges, NaN and infinity refused); an error is one sentence naming the option.
  - PostgreSQL skips a C(VACUUM) or C(ANALYZE) of a table the role does not own with a WARNING,
    not an error. The server's notices are read after each statement; such an item goes to
    RV(skipped_items) with PostgreSQL's own reason, is not counted as done, and does not make the
    task changed. Privileges the role needs - table ownership (C(MAINTAIN) from PostgreSQL 17;
    PostgreSQL 15 and 16 have no such privilege), C(pg_signal_backend) to terminate sessions of
    other roles, C(pg_read_all_stats) to see their state, C(pg_stat_scan_tables) for
    C(pgstattuple) - are in the collection's C(docs/postgres.md).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.postgres
  - oncall.runbooks.attributes.action_group_postgres
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs only catalog, statistics and (read-only) C(pgstattuple) queries and returns the plan;
        statements PostgreSQL would refuse or skip for this role are predicted into RV(skipped_items)
        and do not count as a change.
  diff_mode:
    support: full
    details:
      - Shows dead tuples of the planned tables and bloat of the planned indexes before and after;
        in check mode, after is the prediction (no dead tuples after VACUUM, no bloat after REINDEX).
  idempotent:
    support: full
    details: Only tables and indexes past their thresholds are planned; after the statements they are not.
options:
  operations:
    description:
      - The operations to run, each a key with its settings (C({}) takes the defaults).
      - C(vacuum) settings are C(min_dead_ratio) (default V(0.1)), C(min_dead_tuples) (V(1000)),
        C(freeze_min_xid_age) (unset; when set, tables whose C(relfrozenxid) age reaches it get
        C(VACUUM (FREEZE))) and C(full) (V(false); needs O(allow_blocking)).
      - C(analyze) settings are C(min_modified_ratio) (V(0.1)) of rows modified since the last
        ANALYZE, and C(max_stats_age) (V(7d)).
      - C(reindex) settings are C(min_bloat_ratio) (V(0.3)) of the estimated btree bloat,
        C(min_size) (V(1MB)) below which indexes are left alone, C(invalid) (V(true)) to
        rebuild invalid indexes and drop C(_ccnew)/C(_ccold) leftovers, and
        C(gin_min_pending_pages) (unset, so GIN indexes are left alone) - GIN indexes whose pending
        list (C(pgstatginindex) of C(pgstattuple)) has at least that many pages are rebuilt.
        C(pgstattuple) has no measure of a GIN index's dead entries; the pending list is what it
        can measure, and what a C(REINDEX) empties.
      - C(terminate) settings are C(idle_for) (V(10m)), C(idle_in_transaction_for) (V(5m)),
        C(active_for) (unset, so active queries are never terminated unless it is set), C(users),
        C(exclude_users), C(applications) (glob patterns) and C(include_superusers) (V(false)).
    type: dict
    required: true
  schemas:
    description: Glob patterns of the schemas in scope.
    type: list
    elements: str
    default: ['*']
  tables:
    description: Glob patterns (C(schema.table) or C(table)) of the tables in scope; empty means all.
    type: list
    elements: str
    default: []
  exclude_tables:
    description: Glob patterns of tables (and their indexes) to leave alone.
    type: list
    elements: str
    default: []
  lock_timeout:
    description: How long one statement may wait for a lock before the object is skipped.
    type: str
    default: 2s
  statement_timeout:
    description: Longest one statement may run (unset means no limit).
    type: str
  max_runtime:
    description:
      - When this much time has passed (C(2h)), start no new statement and report the rest as skipped.
    type: str
  allow_blocking:
    description:
      - Allow C(VACUUM FULL) and plain C(REINDEX), which block writes (and reads) on the object.
    type: bool
    default: false
  vacuum_cost_delay:
    description:
      - How long C(VACUUM) and C(ANALYZE) sleep each time they have spent O(vacuum_cost_limit) of
        I/O cost (PostgreSQL's cost-based vacuum delay), as a duration from V(0ms) (no delay) to
        V(100ms); set in the module's session, so it acts on every C(VACUUM) and C(ANALYZE) it
        runs. A bare number is seconds, as for every duration option.
      - Unset, the server's setting applies; a manual C(VACUUM) runs unthrottled by default
        (C(vacuum_cost_delay = 0)). The postgres role sets both for the weekly window; the measured
        trade-off (wall time against the latency of concurrent transactions) is in the collection's
        C(docs/postgres.md).
      - Does not act on C(REINDEX CONCURRENTLY), which PostgreSQL does not throttle.
    type: str
  vacuum_cost_limit:
    description:
      - The I/O cost (an integer from V(1) to V(10000)) C(VACUUM) and C(ANALYZE) accumulate before
        they sleep O(vacuum_cost_delay); set in the module's session. Unset, the server's setting
        applies (V(200) by default).
    type: int
  pause:
    description:
      - How long to wait between two statements (a duration, at most V(1h)); never past
        O(max_runtime). V(0s) (the default) does not wait.
    type: str
    default: 0s
  measure_max_size:
    description:
      - Largest table or index measured with C(pgstattuple_approx) / C(pgstatindex) when its
        statistics cannot be trusted (C(pgstattuple_approx) reads every page not marked
        all-visible, C(pgstatindex) the whole index). Larger ones are listed in
        RV(skipped_items) as not measured.
    type: str
    default: 1GB
requirements:
  - psycopg2 (Python library)
seealso:
  - module: oncall.runbooks.pg_health_info
'''

EXAMPLES = r'''
- name: Weekly window - vacuum and analyze only what needs it, stop at 4 AM
  oncall.runbooks.pg_maintenance:
    login_host: db.internal
    login_user: maintenance
    login_password: "{{ vault_pg_password }}"
    login_db: payment_sandbox
    operations:
      vacuum: {min_dead_ratio: 0.2}
      analyze: {}
    exclude_tables: ['audit.*']
    max_runtime: 2h

- name: Connection options set once for every module of the postgres action group
  module_defaults:
    group/oncall.runbooks.postgres:
      login_host: db.internal
      login_user: maintenance
      login_password: "{{ vault_pg_password }}"
      login_db: payment_sandbox
  block:
    - name: Monthly window - rebuild bloated and invalid indexes without blocking writes
      oncall.runbooks.pg_maintenance:
        operations:
          reindex: {min_bloat_ratio: 0.3}

    - name: Then a verified backup
      oncall.runbooks.pg_backup:
        dest: /var/backups/postgres
        max_age: 25d

- name: Connection pool exhausted - terminate idle sessions of the app after 10 minutes
  oncall.runbooks.pg_maintenance:
    login_db: payment_sandbox
    operations:
      terminate:
        idle_for: 10m
        users: [festivals]
'''

RETURN = r'''
plan:
  description: One item per statement the module decided on, in order.
  returned: always
  type: list
  elements: dict
  contains:
    operation:
      description: C(vacuum), C(vacuum analyze), C(analyze), C(reindex), C(drop invalid index) or C(terminate).
      type: str
    object:
      description: The table, index or session.
      type: str
    reason:
      description: Why, with the measured figure.
      type: str
    statement:
      description: The SQL statement.
      type: str
    figures:
      description: The measurements behind the decision.
      type: dict
  sample:
    - operation: vacuum
      object: public.generated_cards
      reason: 41% dead tuples (20480) >= 10%
      statement: VACUUM public.generated_cards
      figures: {dead_tuples: 20480, live_tuples: 29520, dead_ratio: 0.4096}
done:
  description: Plan items applied, each with C(seconds).
  returned: always
  type: list
  elements: dict
skipped_items:
  description:
    - Objects past a threshold that were not handled, or whose state could not be measured, each
      with C(why) (lock not granted within O(lock_timeout), window over, cannot be rebuilt
      concurrently, skipped by PostgreSQL for lack of privilege with its own reason, dead tuples or
      bloat unknown and why, ...).
    - In check mode, the planned statements PostgreSQL would refuse or skip for this role.
    - Named so because Ansible reserves C(skipped) for skipped tasks.
  returned: always
  type: list
  elements: dict
before:
  description:
    - Dead tuples of the planned tables, size, validity and bloat of the planned indexes, and
      C(pid), C(user) and C(state) of the sessions planned for termination, before.
  returned: always
  type: dict
  sample: {tables: {public.generated_cards: {dead_tuples: 20480, dead_ratio: 0.4096, modified_since_analyze: 0}},
           indexes: {}, sessions: {}}
after:
  description:
    - The same figures after the run; in check mode, the predicted figures (no dead tuples after a
      planned VACUUM, nothing modified since ANALYZE, no bloat after REINDEX, a dropped leftover
      index and a terminated session gone; unchanged for statements PostgreSQL would skip).
    - With C(--diff), the diff shows of both the figures each planned statement acts on (dead
      tuples for VACUUM, rows modified since ANALYZE, validity and bloat against
      C(min_bloat_ratio) for REINDEX, the session's state), so check mode's diff is the one the
      real run then shows, when nothing else changed in between.
  returned: always
  type: dict
findings:
  description:
    - What the module could not judge, with a verdict - C(warning) for tables whose dead tuples are
      unknown (statistics reset and no C(pgstattuple)) with C(tables) and C(how), or for sessions
      hidden from the role (no C(pg_read_all_stats)); C(ok) for tables measured with
      C(pgstattuple_approx) after a reset.
  returned: always
  type: list
  elements: dict
  sample:
    - object: dead tuples of 2 table(s) whose statistics counters were reset
      figure: unknown
      threshold: figures needed to plan VACUUM
      verdict: warning
      tables: [public.orders, public.cards]
      how: "the pgstattuple extension is not installed in database shop: run CREATE EXTENSION pgstattuple there"
database:
  description: The database worked on (C(name), C(server)).
  returned: always
  type: dict
  sample: {name: payment_sandbox, server: "db.internal:5432/payment_sandbox"}
msg:
  description: One-line summary.
  returned: always
  type: str
throttle:
  description:
    - The cost-based delay the C(VACUUM) and C(ANALYZE) statements ran under, as the server showed
      it in the module's session after setting it (C(vacuum_cost_delay), C(vacuum_cost_limit)),
      and the O(pause) between statements.
    - Returned when O(vacuum_cost_delay) or O(vacuum_cost_limit) is set and a C(VACUUM) or
      C(ANALYZE) was applied (not in check mode, which sets nothing).
  returned: when a throttled VACUUM or ANALYZE ran
  type: dict
  sample: {vacuum_cost_delay: 2ms, vacuum_cost_limit: 1000, pause: 0s}
actions:
  description:
    - What was done, in order, as plan items whose C(count) is what was really handled (docs/plan.md);
      empty in check mode.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import maintenance as pgm


def run(module):
    params = dict(module.params)
    pgm.validate(params)  # every option is checked before anything connects
    maint = pgm.Maintenance(None, params)
    maint.conn = pgc.connect(params)
    obs = maint.observe()
    items = maint.plan(obs)
    result = dict(changed=False, plan=[i.to_dict() for i in items], done=[],
                  skipped_items=list(maint.not_planned), findings=maint.findings,
                  database=dict(name=params['login_db'], server=pgc.where(params)))
    warnings = list(maint.warnings)
    if maint.scope_is_empty(obs):
        warnings.append('no table matches schemas %s, tables %s, exclude_tables %s'
                        % (params['schemas'], params['tables'], params['exclude_tables']))
    before = maint.figures_before(items)
    result['before'] = before
    if module.check_mode:
        predicted = maint.predict(items)
        result['skipped_items'] += predicted
        result['after'] = maint.predict_after(before, items, predicted)
        result['changed'] = len(predicted) < len(items)
    elif not items:
        result['after'] = before
    else:
        try:
            done, skipped = maint.apply(items, params['max_runtime_s'])
        except pgm.ApplyInterrupted as exc:
            result.update(done=exc.done, skipped_items=result['skipped_items'] + exc.skipped, changed=bool(exc.done),
                          remaining=[i.to_dict() for i in exc.remaining])
            result['msg'] = ('the connection to %s was lost after %d of %d statement(s): %s'
                             % (pgc.where(params), len(exc.done), len(items), exc.cause))
            raise pgm.MaintenanceError(result.pop('msg'), **dict(result, actions=result['done']))
        result.update(done=done, skipped_items=result['skipped_items'] + skipped, changed=bool(done))
        if maint.throttle:
            result['throttle'] = dict(maint.throttle, pause=params.get('pause') or '0s')
        result['after'] = maint.figures(items, done)
    if warnings:
        result['warnings'] = warnings
    if module.check_mode:
        result['msg'] = '%d planned, %d would run, %d skipped' % (
            len(items), len(items) - len(maint.predict(items)), len(result['skipped_items']))
    else:
        result['msg'] = '%d planned, %d done, %d skipped' % (len(items), len(result['done']),
                                                             len(result['skipped_items']))
    result['actions'] = result['done']  # done: the 0.0 name of actions, kept while playbooks read it
    if module._diff:
        # the figures each planned statement acts on; in check mode after is the prediction
        result['diff'] = dict(before=maint.diff_view(result['before'], items),
                              after=maint.diff_view(result['after'], items))
    return result


def main():
    argument_spec = pgc.postgres_argument_spec()
    argument_spec.update(
        operations=dict(type='dict', required=True),
        schemas=dict(type='list', elements='str', default=['*']),
        tables=dict(type='list', elements='str', default=[]),
        exclude_tables=dict(type='list', elements='str', default=[]),
        lock_timeout=dict(type='str', default='2s'),
        statement_timeout=dict(type='str'),
        max_runtime=dict(type='str'),
        allow_blocking=dict(type='bool', default=False),
        vacuum_cost_delay=dict(type='str'),
        vacuum_cost_limit=dict(type='int'),
        pause=dict(type='str', default='0s'),
        measure_max_size=dict(type='str', default=pgm.DEFAULT_MEASURE_MAX_SIZE),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, describe=lambda exc: pgc.failure_of(exc, module.params), requires=['psycopg2'])


if __name__ == '__main__':
    main()
