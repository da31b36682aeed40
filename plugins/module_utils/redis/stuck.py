# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stuck jobs (runbook 001 2.6, 000 "Job Queue Issues"): active jobs no worker holds any more.

A BullMQ or Bull worker holds a lock key (<prefix>:<queue>:<id>:lock, with a TTL it keeps
renewing) on every job it processes. An active job without that lock belongs to a worker that
died; with no live worker to notice it (their stalled-job check), it stays active for ever.
An active job whose lock is held but that started longer ago than a limit is reported too, as
running long, since only an operator can tell a slow job from a hung one.
"""

from __future__ import annotations

SCAN_LIMIT = 1000


def active_jobs(client, prefix, name, now_ms, running_longer_than_ms=0, limit=SCAN_LIMIT):
    """(stuck ids, long-running ids) among the first `limit` active jobs of a queue."""
    base = '%s:%s:' % (prefix, name)
    ids = client.lrange(base + 'active', 0, limit - 1)
    if not ids:
        return [], []
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.exists(base + job_id + ':lock')
        pipe.hget(base + job_id, 'processedOn')
        pipe.exists(base + job_id)
    res = pipe.execute()
    stuck, slow = [], []
    for i, job_id in enumerate(ids):
        locked, processed_on, exists = res[3 * i], res[3 * i + 1], res[3 * i + 2]
        if not exists:
            continue
        if not locked:
            stuck.append(job_id)
        elif running_longer_than_ms and processed_on and now_ms - int(processed_on) > running_longer_than_ms:
            slow.append(job_id)
    return stuck, slow


def failed_sample(client, prefix, name, count):
    """The most recent failed jobs of a BullMQ or Bull queue with their failedReason (001 5.5)."""
    if count <= 0:
        return []
    base = '%s:%s:' % (prefix, name)
    ids = client.zrevrange(base + 'failed', 0, count - 1)
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(base + job_id, 'failedReason', 'finishedOn', 'attemptsMade')
    out = []
    for job_id, (reason, finished, attempts) in zip(ids, pipe.execute()):
        out.append(dict(id=job_id, reason=(reason or '')[:300],
                        finished_on=int(finished) if finished else None,
                        attempts=int(attempts) if attempts else 0))
    return out
