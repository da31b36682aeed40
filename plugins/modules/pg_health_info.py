#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_health_info
short_description: The runbooks' PostgreSQL diagnosis as data, with verdicts against thresholds
version_added: 0.1.0
description:
  - Read-only. Gathers what the runbooks ask for by hand with psql - connections by state and
    against C(max_connections), the longest-running queries, the slowest statements in
    C(pg_stat_statements), unused, invalid and bloated indexes, table sizes, dead-tuple ratios,
    transaction-id wraparound age, replication lag, the newest C(schema_migrations) rows - and
    runs user-defined C(checks) (named SQL returning a count, with a maximum).
  - Each figure that has a threshold becomes a finding with a verdict (V(ok), V(warning),
    V(critical)). A missing C(pg_stat_statements) is a note, not a failure.
  - Dead tuples of tables whose statistics counters were reset (C(pg_stat_reset()), a crash, a
    restore) and the bloat of B-tree indexes that cannot be estimated (never-analyzed table) are
    measured with C(pgstattuple) when it is installed (each relation up to 1GB, 60 seconds in all);
    otherwise they are a V(warning) finding naming them.
  - Numbers (O(limit), O(thresholds), each C(checks[].max)) are validated before connecting; an
    error is one sentence naming the option.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.postgres
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes.action_group_postgres
  - oncall.runbooks.attributes
options:
  sections:
    description: Which parts to gather; all by default.
    type: list
    elements: str
    choices: [connections, long_queries, statements, indexes, seq_scans, sizes, dead_tuples,
              wraparound, replication, migrations, checks]
  limit:
    description: Rows per list (top queries, largest tables, ...).
    type: int
    default: 10
  migrations:
    description: Where the applied migrations are recorded.
    type: dict
    default: {}
    suboptions:
      table:
        description: Table name, optionally schema-qualified.
        type: str
        default: schema_migrations
      order_by:
        description: Column giving the order in which migrations ran.
        type: str
        default: executed_at
      limit:
        description: Newest rows to return.
        type: int
        default: 5
  checks:
    description:
      - Named SQL queries returning one number, each with a C(max) (default 0); a value above it is
        a finding with verdict C(severity) (default V(critical)).
      - Each check is C(name), C(sql), and optionally C(max), C(severity), C(params) and C(identifiers).
      - C(sql) must be exactly one query (C(SELECT), C(WITH), C(VALUES) or C(TABLE)); several
        statements are refused before anything is sent (a C(;) inside quotes, dollar quotes,
        quoted identifiers or comments is part of the query). Functions that act outside a
        read-only transaction (C(set_config), C(lo_*), C(dblink*), C(pg_terminate_backend),
        session advisory locks, statistics resets, ...) are refused.
      - Each check runs alone in its own C(READ ONLY) transaction, rolled back afterwards, in a
        session whose transactions are all read-only (C(default_transaction_read_only) set at
        connection time and C(SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY)).
      - C(params) are values bound to C(%s) placeholders (a list) or to named placeholders (a dict) by
        psycopg2, never spliced into the text; with C(params), write C(%%) for a literal C(%).
      - C(identifiers) maps a C({name}) placeholder of C(sql) to a table or column name
        (C(schema.table) is split on the dot) or a list of names (joined with commas), quoted
        with C(psycopg2.sql.Identifier); with C(identifiers), write C({{) and C(}}) for literal braces.
      - Never build C(sql) from variables with Jinja; pass them as C(params) or C(identifiers).
    type: list
    elements: dict
    default: []
  check_role:
    description:
      - Role the checks run as (C(SET LOCAL ROLE) in each check's transaction), for example one
        with only C(SELECT) rights, or C(pg_read_all_data) and C(pg_monitor).
      - The read-only transaction stops writes to tables, but not what a superuser can do
        through functions that read server files; when O(login_user) is a superuser, give a
        role without those rights here. O(login_user) must be a member of it.
    type: str
  check_timeout:
    description:
      - C(statement_timeout) of each check (C(30s), C(2m), ...); V(0) for none.
    type: str
    default: 60s
  thresholds:
    description: Thresholds of the findings; defaults follow the runbooks.
    type: dict
    default: {}
    suboptions:
      connections_warning:
        description: Share of C(max_connections) in use that is a warning.
        type: float
        default: 0.8
      connections_critical:
        description: Share of C(max_connections) in use that is critical.
        type: float
        default: 0.9
      long_query_after:
        description:
          - A query running this long is reported (runbook 001 4.4 - 5 minutes), a duration such
            as V(90s) or V(5m); a bare number is seconds.
          - O(thresholds.long_query_seconds) is the former name (seconds), kept as an alias.
        type: str
        default: 5m
        aliases: [long_query_seconds]
      slow_query_mean_ms:
        description: Mean execution time above which a statement is slow (runbook 001 4.1 - 100 ms).
        type: int
        default: 100
      seq_scan_min_rows:
        description:
          - Live rows from which a table read more by sequential scans than by index scans is
            listed in C(seq_scans) (missing-index hints, runbook 001 5.3; no verdict).
        type: int
        default: 10000
      dead_ratio_warning:
        description: Dead-tuple share of a table that is a warning.
        type: float
        default: 0.2
      xid_warning:
        description: Share of the 2^31 transaction-id horizon that is a warning.
        type: float
        default: 0.5
      xid_critical:
        description: Share of the 2^31 transaction-id horizon that is critical.
        type: float
        default: 0.75
requirements:
  - psycopg2 (Python library)
seealso:
  - module: oncall.runbooks.pg_maintenance
'''

EXAMPLES = r'''
- name: Database diagnosis, with the runbook's duplicate-cards check
  oncall.runbooks.pg_health_info:
    login_db: payment_sandbox
    checks:
      - name: duplicate generated_cards
        sql: >-
          SELECT count(*) FROM (SELECT 1 FROM generated_cards
          GROUP BY card_number, expiry_date, cvv HAVING count(*) > 1) d
        max: 0
  register: pg_health

- name: A check over names and values that come from variables (never spliced into the SQL)
  oncall.runbooks.pg_health_info:
    login_db: payment_sandbox
    check_role: oncall_readonly
    check_timeout: 30s
    sections: [checks]
    checks:
      - name: stale reservations
        sql: SELECT count(*) FROM {table} WHERE {column} < now() - make_interval(secs => %s)
        identifiers: {table: "{{ pool_table }}", column: reserved_at}
        params: ["{{ max_age_seconds }}"]
        severity: warning

- name: Connections and long queries, authenticated with a client certificate (hostssl ... cert)
  oncall.runbooks.pg_health_info:
    login_host: db.internal
    login_user: oncall_monitor
    login_db: payment_sandbox
    ssl_mode: verify-full
    ca_cert: /etc/oncall/pg/root.crt
    ssl_cert: /etc/oncall/pg/oncall_monitor.crt
    ssl_key: /etc/oncall/pg/oncall_monitor.key
    connect_timeout: 5s
    sections: [connections, long_queries]
    thresholds:
      long_query_after: 2m

- name: Fail on a critical finding
  ansible.builtin.assert:
    that: pg_health.findings | selectattr('verdict', 'equalto', 'critical') | list | length == 0
'''

RETURN = r'''
health:
  description: One key per gathered section.
  returned: always
  type: dict
  sample:
    connections: {total: 12, max_connections: 100, ratio: 0.12, by_state: {idle: 9, active: 3}}
    wraparound: [{database: payment_sandbox, xid_age: 1021, ratio: 0.0}]
    seq_scans: [{schema: public, name: generated_cards, seq_scan: 42, seq_tup_read: 1260000, idx_scan: 0,
                 live_tuples: 30000, rows_per_seq_scan: 30000}]
findings:
  description: Figures with thresholds and their verdicts.
  returned: always
  type: list
  elements: dict
  sample:
    - {object: connections, figure: 12 of 100 (12%), threshold: ">= 80% warning, >= 90% critical", verdict: ok}
notes:
  description: What could not be gathered and why (for example pg_stat_statements absent).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import health as pgh


def main():
    argument_spec = pgc.postgres_argument_spec()
    argument_spec.update(
        sections=dict(type='list', elements='str', choices=list(pgh.SECTIONS)),
        limit=dict(type='int', default=10),
        migrations=dict(type='dict', default={}, options=dict(
            table=dict(type='str', default='schema_migrations'),
            order_by=dict(type='str', default='executed_at'),
            limit=dict(type='int', default=5),
        )),
        checks=dict(type='list', elements='dict', default=[]),
        check_role=dict(type='str'),
        check_timeout=dict(type='str', default='60s'),
        thresholds=dict(type='dict', default={}, options=dict(
            connections_warning=dict(type='float', default=0.8),
            connections_critical=dict(type='float', default=0.9),
            long_query_after=dict(type='str', default='5m', aliases=['long_query_seconds']),
            slow_query_mean_ms=dict(type='int', default=100),
            seq_scan_min_rows=dict(type='int', default=10000),
            dead_ratio_warning=dict(type='float', default=0.2),
            xid_warning=dict(type='float', default=0.5),
            xid_critical=dict(type='float', default=0.75),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, describe=lambda exc: pgc.failure_of(exc, module.params), requires=['psycopg2'])


def run(module):
    sections = module.params['sections'] or list(pgh.SECTIONS)
    try:
        pgh.validate_options(module.params)  # numbers and checks[].max, before connecting
        module.params['check_timeout_ms'] = parse_duration(module.params['check_timeout'], 'check_timeout') * 1000
    except DurationError as exc:
        module.fail_json(msg=str(exc))
    except pgh.HealthError as exc:
        module.fail_json(msg=str(exc))
    try:
        # read-only session: whatever a check ends, the next transaction cannot write
        conn = pgc.connect(module.params, read_only=True)
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = '5s'")  # a diagnosis never waits long on a lock
        health = pgh.Health(conn, module.params)
        data = health.collect(sections)
    except (pgc.PgConnectionError, pgh.HealthError) as exc:
        module.fail_json(msg=str(exc))
    except pgc.psycopg2.Error as exc:
        module.fail_json(msg=pgc.failure(exc, module.params))
    return dict(changed=False, health=data, findings=health.findings, notes=health.notes)


if __name__ == '__main__':
    main()
