# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_maintenance: observe tables, indexes and sessions, plan against thresholds, apply.

The runbooks run ``VACUUM ANALYZE;`` on everything and ``REINDEX DATABASE`` "in a maintenance
window". Here the desired state is stated as thresholds (dead-tuple ratio, rows modified since
the last ANALYZE, estimated index bloat, idle time of a session) and only the objects outside
them are touched, each under ``lock_timeout`` so that a busy object is skipped, never waited on.

Private to the oncall.runbooks collection: imported by its own modules and plugins only. Names
here may change in any release without a deprecation; other collections must not import them.

Layout: ``options`` (the operations, their defaults and limits, the validators, ``validate``,
``in_scope``, MaintenanceError), ``sql`` (the catalog queries), ``measure`` (dead-tuple ratio,
index bloat, untrustworthy statistics counters, Measurer for pgstattuple) and ``core`` (Item,
Maintenance, which observes, plans and applies, ApplyInterrupted). This file re-exports the
public names, so that callers keep reading them as ``maintenance.<name>``.
"""

from __future__ import annotations

# The names pg_maintenance, pg_health_info, the tests and the bench use, from the files that define them.
# pylint: disable=unused-import
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.options import (  # noqa: F401
    COST_DELAY_MAX_S, COST_LIMIT_MAX, DEFAULT_MEASURE_MAX_SIZE, DEFAULTS, INT_MAX, OPERATIONS, PAUSE_MAX_S,
    PG_TIMEOUT_MAX_S, RUNTIME_MAX_S, XID_HORIZON, MaintenanceError, check_bool, check_cost_delay,
    check_duration, check_names, check_number, in_scope, normalise, parse_size, validate)
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.sql import (  # noqa: F401
    INDEXES_SQL, PGSTATTUPLE_SQL, SESSIONS_SQL, SYSTEM_SCHEMAS, TABLES_SQL)
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.measure import (  # noqa: F401
    Measurer, counters_unknown, dead_ratio, index_bloat, measured_index_bloat)
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance.core import ApplyInterrupted, Item, Maintenance, server_reason  # noqa: F401
# pylint: enable=unused-import
