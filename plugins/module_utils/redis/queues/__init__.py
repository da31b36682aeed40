# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Queue backends for redis_queue and redis_queue_info.

Three flavors share one interface (``observe``, ``plan_*``, ``apply``):

* ``bullmq``: the BullMQ (v2+) layout. Observation is our own read-only pipeline (the
  library's ``getCounts`` script may rewrite a legacy marker, so it is not read-only);
  every change goes through the BullMQ Python package, whose Lua scripts are the ones the
  Node library runs.
* ``bull``: the Bull v3 layout (npm ``bull``). There is no maintained Python port, so the
  few scripts needed are here, written against the key layout Bull uses.
* ``list``: a plain Redis list used as a queue (LPUSH by producers, BRPOP by consumers).

A plan is computed from one observation; apply re-checks every item atomically in Redis
(still in the same state, still older than the cut-off, not locked by a worker), so a job
that moved between plan and apply is left alone.

Layout: ``base`` (BaseQueue, the abstract class a flavor implements; Observation; QueueError),
one file per flavor (``bullmq``, ``bull``, ``lists``), ``plan`` (the planner and its
prediction), ``discovery``, ``findings``, and ``entries`` (the one parser of the modules'
``queues`` option). This file names the flavors and re-exports what the modules use.
"""

from __future__ import annotations

# The names the modules, the unit tests and the bench use, from the files that define them.
# pylint: disable=unused-import
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.base import (  # noqa: F401
    BULL_STATES, BULLMQ_STATES, CLEANABLE, LIST_KINDS, RETRYABLE, BaseQueue, Observation, QueueError,
    now_ms)
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.bull import BullQueue
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.bullmq import BullMQQueue
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.discovery import check_flavor, detect_flavor, discover, glob_escape  # noqa: F401
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.entries import queue_entries  # noqa: F401
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.findings import findings  # noqa: F401
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.lists import ListQueue
from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.plan import plan, predict  # noqa: F401
# pylint: enable=unused-import

FLAVORS = {'bullmq': BullMQQueue, 'bull': BullQueue, 'list': ListQueue}


def make_queue(flavor, client, name, prefix='bull', batch_size=1000, conn_params=None):
    return FLAVORS[flavor](client, name, prefix=prefix, batch_size=batch_size,
                           conn_params=conn_params)
