# -*- coding: utf-8 -*-
"""The tests' helpers, in one package: the servers they start, the CLIs they run, the lab, Node's
queues, and one harness per outside system (alert_loop, app, aws, awx, cert, eda, k8s, receiver,
redis_cluster, runbooks, stripe_api). tests/conftest.py registers the shared fixtures on top of
them; the benches import them without pytest.

The names most tests use are here; a harness is imported from its own module
(``from helpers.app import AppLab``).
"""

from __future__ import annotations

# pylint: disable=unused-import
from helpers.paths import NODE_DIR, PG_BIN, ROOT  # noqa: F401  (first: it sets the environment up)
from helpers.redis_cluster import answered_by, free_port  # noqa: F401
from helpers.cli import (  # noqa: F401
    VERDICT_TASK, ModuleRun, _env, ansible_bin, recap, run_ansible, run_module, run_playbook)
from helpers.keys import HOUSEKEEPING_SUFFIXES, dump_keys  # noqa: F401
from helpers.lab import Lab, running  # noqa: F401
from helpers.node import Worker, node  # noqa: F401
from helpers.servers import PostgresServer, RedisServer, stop_process  # noqa: F401
