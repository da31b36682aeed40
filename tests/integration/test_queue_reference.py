# -*- coding: utf-8 -*-
"""redis_queue beside the real libraries, on identical copies of one queue (issue 15, Queues).

lab/node/reference.js builds a queue with jobs in every state (waiting, active, delayed,
prioritized, completed, failed, paused), jobs with logs, priorities, metrics, deduplicated
("debounced") jobs and, for BullMQ, two job schedulers and a flow parent waiting on a failed
child, all made by the real npm libraries. Every key is then COPYed to a second database, the
module runs its operation on db 0 and the library its own operation on db 1 with the
equivalent arguments, and the two databases are compared key by key: type, TTL presence, and
every member, field and list element.

What is normalised (and only that; docs/queues.md lists the same):

* Stream entry ids of BullMQ's ``events`` stream: Redis makes them from its clock at XADD,
  so the same event gets another id on each copy. Entries are compared in order, by fields.
* Nothing else. A difference anywhere else fails the test with the key named.
"""

from __future__ import annotations

import pytest
import redis

from helpers import dump_keys, node, run_module

DB_MODULE, DB_LIBRARY = 0, 1


def port_of(r):
    return r.connection_pool.connection_kwargs['port']


def build(r, flavor, queue, *opts):
    return node('reference.js', 'build', '--flavor', flavor, '--queue', queue, '--db', DB_MODULE,
                *opts, port=port_of(r))


def library(r, flavor, queue, *opts):
    return node('reference.js', 'op', '--flavor', flavor, '--queue', queue, '--db', DB_LIBRARY,
                *opts, port=port_of(r))


def copy_all(r):
    """COPY every key of db 0 to db 1 (values and expiries): two identical queues."""
    for key in r.scan_iter(count=1000):
        assert r.copy(key, key, destination_db=DB_LIBRARY)


def db_client(r, db):
    return redis.Redis(port=port_of(r), db=db, decode_responses=True)


def normalised(client):
    out = {}
    for key, (kind, has_ttl, value) in dump_keys(client).items():
        if kind in ('stream', b'stream'):
            value = [sorted(fields.items()) for _id, fields in value]
        out[key] = (kind, has_ttl, value)
    return out


def differences(a, b):
    """Readable differences between two normalised dumps, key by key."""
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append('%s only after the module: %r' % (key, a[key]))
        elif key not in a:
            out.append('%s only after the library: %r' % (key, b[key]))
        elif a[key] != b[key]:
            out.append('%s differs: module %r, library %r' % (key, a[key], b[key]))
    return out


# (case id, module arguments, library op arguments, build options)
OPERATIONS = [
    ('clean-completed', dict(clean=[{'status': 'completed'}]), ['--op', 'clean', '--state', 'completed'], []),
    ('clean-failed', dict(clean=[{'status': 'failed'}]), ['--op', 'clean', '--state', 'failed'], []),
    ('clean-delayed', dict(clean=[{'status': 'delayed'}]), ['--op', 'clean', '--state', 'delayed'], []),
    ('clean-wait', dict(clean=[{'status': 'wait'}]), ['--op', 'clean', '--state', 'wait'], []),
    ('clean-wait-paused', dict(clean=[{'status': 'wait'}]), ['--op', 'clean', '--state', 'wait'], ['--paused']),
    ('retry-failed', dict(retry={'status': 'failed'}), ['--op', 'retry', '--state', 'failed'], []),
    ('retry-completed', dict(retry={'status': 'completed'}), ['--op', 'retry', '--state', 'completed'], []),
    ('pause', dict(state='paused'), ['--op', 'pause'], []),
    ('resume', dict(state='running'), ['--op', 'resume'], ['--paused']),
    ('drain', dict(drain=True, confirm=True), ['--op', 'drain'], ['--no-every']),
    ('drain-delayed', dict(drain=True, drain_delayed=True, confirm=True), ['--op', 'drain', '--delayed'],
     ['--no-every']),
    ('drain-paused', dict(drain=True, confirm=True), ['--op', 'drain'], ['--paused', '--no-every']),
    ('absent', dict(state='absent', confirm=True), ['--op', 'obliterate'], ['--no-active']),
]
# BullMQ only: a job scheduler's job waits in the wait list. BullMQ's drain would drop it
# (test_bullmq_drain_drops_a_waiting_scheduler_job): the module drains with the library's
# clean of each state instead, and is compared with that.
SCHEDULER_WAITING = [
    ('drain-scheduler-waiting', dict(drain=True, confirm=True), ['--op', 'drain-clean'], []),
    ('drain-delayed-scheduler-waiting', dict(drain=True, drain_delayed=True, confirm=True),
     ['--op', 'drain-clean', '--delayed'], []),
]

# Bull has no library operation that retries completed jobs (its retryJobs takes failed ones).
CASES = [pytest.param(flavor, *op, id='%s-%s' % (flavor, op[0]))
         for flavor in ('bull', 'bullmq') for op in OPERATIONS
         if not (flavor == 'bull' and op[0] == 'retry-completed')]
CASES += [pytest.param('bullmq', *op, id='bullmq-%s' % op[0]) for op in SCHEDULER_WAITING]


def bull_obliterate_leftovers(diff):
    """Bull's obliterate means to delete each job's debounce key (it calls removeDebounceKey)
    but reads the job's deid after deleting the job, so the keys survive it; those without an
    expiry make Bull drop every later job with that id. The module deletes them: the one
    difference allowed, and only as keys the library left."""
    return [d for d in diff if not (':de:' in d and 'only after the library' in d)]


@pytest.mark.parametrize('flavor,case,module_args,library_args,build_opts', CASES)
def test_module_leaves_redis_as_the_library_does(r, flavor, case, module_args, library_args,
                                                 build_opts):
    queue = 'ref-%s' % flavor
    build(r, flavor, queue, *build_opts)
    copy_all(r)
    mine, theirs = db_client(r, DB_MODULE), db_client(r, DB_LIBRARY)
    try:
        assert normalised(mine) == normalised(theirs)
        args = dict(login_host='127.0.0.1', login_port=port_of(r), db=DB_MODULE, name=queue, flavor=flavor,
                    **module_args)
        res = run_module('redis_queue', args)
        assert not res.failed, res.result
        assert res['changed'] is True
        library(r, flavor, queue, *library_args)
        diff = differences(normalised(mine), normalised(theirs))
        if flavor == 'bull' and case == 'absent':
            diff = bull_obliterate_leftovers(diff)
            assert list(mine.scan_iter(match='bull:%s:*' % queue)) == []
        assert diff == [], '\n'.join(diff)
        # plan and removal agree: the same run again has nothing to do, in check mode too
        again = run_module('redis_queue', args, check=True)
        assert not again.failed, again.result
        assert again['changed'] is False, again['plan']
    finally:
        mine.close()
        theirs.close()


def test_bullmq_drain_drops_a_waiting_scheduler_job(r):
    """Why the module does not call BullMQ's drain while a scheduler's job waits in a list: the
    library's drain takes that job out of the wait list (its hash stays, in no state: the
    scheduler never fires again) and leaves the id of a job it deleted. The module's drain
    keeps the scheduler's job waiting and leaves no dangling id."""
    queue = 'ref-sched'
    build(r, 'bullmq', queue, '--no-active')
    copy_all(r)
    mine, theirs = db_client(r, DB_MODULE), db_client(r, DB_LIBRARY)
    try:
        every = [j for j in mine.lrange('bull:%s:wait' % queue, 0, -1)
                 if j.startswith('repeat:sched-every:')]
        assert len(every) == 1
        library(r, 'bullmq', queue, '--op', 'drain')
        left = theirs.lrange('bull:%s:wait' % queue, 0, -1)
        assert every[0] not in left and theirs.exists('bull:%s:%s' % (queue, every[0]))
        assert [j for j in left if not theirs.exists('bull:%s:%s' % (queue, j))] != []

        res = run_module('redis_queue', dict(login_host='127.0.0.1', login_port=port_of(r), db=DB_MODULE,
                                             name=queue, drain=True, confirm=True))
        assert not res.failed, res.result
        assert mine.lrange('bull:%s:wait' % queue, 0, -1) == every
        assert mine.zcard('bull:%s:prioritized' % queue) == 0
    finally:
        mine.close()
        theirs.close()
