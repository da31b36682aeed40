# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_maintenance's catalog queries: tables, indexes and sessions as pg_maintenance observes
them (read by pg_health_info too), and where pgstattuple is installed."""

from __future__ import annotations

SYSTEM_SCHEMAS = ('pg_catalog', 'information_schema')

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.oid::bigint AS oid,
       coalesce(s.n_live_tup, 0) AS live, coalesce(s.n_dead_tup, 0) AS dead,
       coalesce(s.n_mod_since_analyze, 0) AS modified,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float AS stats_age,
       age(c.relfrozenxid)::bigint AS xid_age, c.reltuples::float AS reltuples,
       c.relpages::bigint AS relpages,
       (coalesce(s.vacuum_count, 0) + coalesce(s.autovacuum_count, 0) + coalesce(s.analyze_count, 0)
        + coalesce(s.autoanalyze_count, 0))::bigint AS maintained,
       (SELECT d.stats_reset::text FROM pg_stat_database d WHERE d.datname = current_database())
         AS stats_reset,
       (pg_has_role(c.relowner, 'USAGE')
        OR (NOT c.relisshared AND pg_has_role((SELECT datdba FROM pg_database
                                               WHERE datname = current_database()), 'USAGE')))
         AS may_vacuum
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
# pages hold (8192 - 24 - 16) * fillfactor bytes. Estimates need ANALYZE statistics; an
# index whose columns have none is not estimated.
INDEXES_SQL = """
SELECT n.nspname AS schema, t.relname AS "table", i.relname AS name, i.oid::bigint AS oid,
       x.indisvalid AS valid, am.amname AS method, t.oid::bigint AS table_oid,
       i.reltuples::float AS index_reltuples, (x.indpred IS NOT NULL) AS partial,
       coalesce(st.n_live_tup, 0) AS t_live, coalesce(st.n_dead_tup, 0) AS t_dead,
       t.reltuples::float AS t_reltuples, t.relpages::bigint AS t_relpages,
       (coalesce(st.vacuum_count, 0) + coalesce(st.autovacuum_count, 0) + coalesce(st.analyze_count, 0)
        + coalesce(st.autoanalyze_count, 0))::bigint AS t_maintained,
       pg_has_role(i.relowner, 'USAGE') AS may_reindex,
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
       left(a.query, 200) AS query,
       CASE WHEN coalesce(r.rolsuper, false)
            THEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
            ELSE coalesce(pg_has_role(a.usesysid, 'USAGE'), false)
                 OR pg_has_role('pg_signal_backend', 'USAGE') END AS may_signal
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
"""

# Where the pgstattuple extension is installed, and whether this role may execute the functions
# Measurer calls (see measure.py).
PGSTATTUPLE_SQL = """
SELECT n.nspname AS schema,
       has_function_privilege(quote_ident(n.nspname) || '.pgstattuple_approx(regclass)', 'EXECUTE')
       AND has_function_privilege(quote_ident(n.nspname) || '.pgstatindex(regclass)', 'EXECUTE')
         AS allowed
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pgstattuple'
"""
