# -*- coding: utf-8 -*-
"""redis_queue and redis_queue_info against a real redis-server and real Node workers.

Jobs are created, processed and failed by the real libraries (npm bullmq 5.x and bull 4.x,
driven by lab/node/qtool.js and lab/node/worker.js); the modules run through the real
`ansible` CLI.
"""

from __future__ import annotations

import time

import pytest

from helpers import dump_keys, node, run_module

FLAVORS = ['bullmq', 'bull']
DAY_MS = 86400 * 1000


def conn(r):
    return {'login_port': r.connection_pool.connection_kwargs['port'], 'login_host': '127.0.0.1'}


def port_of(r):
    return r.connection_pool.connection_kwargs['port']


def make_failed(r, flavor, queue, count):
    return [str(i) for i in node('qtool.js', flavor, 'make-failed', '--queue', queue,
                                 '--count', count, port=port_of(r))['ids']]


def make_completed(r, flavor, queue, count):
    return [str(i) for i in node('qtool.js', flavor, 'make-completed', '--queue', queue,
                                 '--count', count, port=port_of(r))['ids']]


def add_jobs(r, flavor, queue, count, *extra):
    return [str(i) for i in node('qtool.js', flavor, 'add', '--queue', queue, '--count', count,
                                 *extra, port=port_of(r))['ids']]


def backdate(r, flavor, queue, state, ids, age_ms):
    node('qtool.js', flavor, 'backdate', '--queue', queue, '--state', state,
         '--ids', ','.join(ids), '--age-ms', age_ms, port=port_of(r))


def node_counts(r, flavor, queue):
    return node('qtool.js', flavor, 'counts', '--queue', queue, port=port_of(r))


# --- pause / resume with a running real worker ----------------------------------------------

@pytest.mark.parametrize('flavor', FLAVORS)
def test_pause_stops_a_real_worker_and_running_lets_it_continue(r, workers, flavor):
    queue = 'pause-%s' % flavor
    worker = workers(flavor, queue, port_of(r))
    first = add_jobs(r, flavor, queue, 5)
    assert worker.wait_for(lambda evs: set(first) <= set(worker.done_ids()), 30)

    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, state='paused'))
    assert not res.failed, res.result
    assert res['changed'] is True
    assert res['queue']['paused'] is True
    assert node_counts(r, flavor, queue)['isPaused'] is True

    second = add_jobs(r, flavor, queue, 5)
    time.sleep(2.5)  # the worker polls/blocks; give it every chance to (wrongly) take a job
    assert not set(second) & set(worker.done_ids())
    assert run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, state='paused'))[
        'changed'] is False

    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, state='running'))
    assert res['changed'] is True and res['queue']['paused'] is False
    assert worker.wait_for(lambda evs: set(second) <= set(worker.done_ids()), 30)


# --- several queues in one call (queues) -----------------------------------------------------

def test_queues_pauses_and_resumes_several_in_one_call_with_real_workers(r, workers):
    specs = [('many-a', 'bullmq'), ('many-b', 'bull'), ('many-c', 'bullmq')]
    queues = [{'name': q, 'flavor': f} for q, f in specs]
    done = {}
    for q, f in specs:
        worker = workers(f, q, port_of(r))
        done[q] = add_jobs(r, f, q, 2)
        assert worker.wait_for(lambda evs, w=worker, ids=done[q]: set(ids) <= set(w.done_ids()), 30)
    # many-c is paused before: the call leaves it paused and reports no change for it
    assert run_module('redis_queue', dict(conn(r), name='many-c', state='paused'))['changed'] is True

    before = dump_keys(r)
    res = run_module('redis_queue', dict(conn(r), queues=queues, state='paused'), check=True)
    assert not res.failed, res.result
    assert res['changed'] is True and res['actions'] == []
    assert [a['object'] for a in res['plan']] == ['many-a', 'many-b']
    assert dump_keys(r) == before

    res = run_module('redis_queue', dict(conn(r), queues=queues, state='paused'))
    assert not res.failed, res.result
    assert [(q['name'], q['paused_before'], q['paused'], q['changed']) for q in res['queues']] == [
        ('many-a', False, True, True), ('many-b', False, True, True), ('many-c', True, True, False)]
    assert [a['kind'] for a in res['actions']] == ['pause', 'pause']
    for q, f in specs:
        assert node_counts(r, f, q)['isPaused'] is True
    waiting = {q: add_jobs(r, f, q, 3) for q, f in specs}
    time.sleep(2.5)  # give every worker a chance to (wrongly) take a job
    for q, f in specs:
        assert node_counts(r, f, q)['completed'] == len(done[q])
    assert run_module('redis_queue', dict(conn(r), queues=queues, state='paused'))['changed'] is False

    res = run_module('redis_queue', dict(conn(r), queues=queues[:2], state='running'))
    assert res['changed'] is True and [q['paused'] for q in res['queues']] == [False, False]
    for q, f in specs[:2]:
        assert node_counts(r, f, q)['isPaused'] is False
        deadline = time.time() + 30
        while node_counts(r, f, q)['completed'] < len(done[q] + waiting[q]) and time.time() < deadline:
            time.sleep(0.5)
        assert node_counts(r, f, q)['completed'] == len(done[q] + waiting[q])
    assert node_counts(r, 'bullmq', 'many-c')['isPaused'] is True


def test_queues_tries_every_queue_and_names_the_one_that_failed(r):
    add_jobs(r, 'bullmq', 'ok-1', 2)
    add_jobs(r, 'bull', 'ok-2', 2)
    r.set('bull:typo:wait', 'not a list')
    queues = ['ok-1', {'name': 'typo', 'flavor': 'bullmq', 'warning': 100}, {'name': 'ok-2', 'flavor': 'bull'}]
    res = run_module('redis_queue', dict(conn(r), queues=queues, state='paused'))
    assert res.failed
    assert res['msg'].startswith('could not pause 1 of 3 queue(s): typo (')
    assert 'bull:typo:wait is a string, not a list' in res['msg']
    assert '\n' not in res['msg'] and 'Traceback' not in res.stdout
    rows = {q['name']: q for q in res['queues']}
    assert rows['ok-1']['paused'] is True and rows['ok-2']['paused'] is True
    assert 'error' in rows['typo'] and 'error' not in rows['ok-1']
    assert node_counts(r, 'bullmq', 'ok-1')['isPaused'] is True
    assert node_counts(r, 'bull', 'ok-2')['isPaused'] is True
    assert r.get('bull:typo:wait') == 'not a list'


# --- clean ------------------------------------------------------------------------------------

@pytest.mark.parametrize('flavor', FLAVORS)
@pytest.mark.parametrize('state', ['failed', 'completed'])
def test_clean_removes_exactly_the_jobs_older_than_the_grace(r, flavor, state):
    queue = 'clean-%s-%s' % (flavor, state)
    ids = (make_failed if state == 'failed' else make_completed)(r, flavor, queue, 20)
    old, young = ids[:7], ids[7:]
    backdate(r, flavor, queue, state, old, 2 * DAY_MS)
    backdate(r, flavor, queue, state, young[:3], 20 * 3600 * 1000)  # inside the 24h grace

    args = dict(conn(r), name=queue, flavor=flavor, clean=[{'status': state, 'older_than': '24h'}])
    check = run_module('redis_queue', args, check=True)
    assert check['changed'] is True
    assert check['plan'][0]['count'] == 7
    assert sorted(check['plan'][0]['ids'], key=int) == sorted(old, key=int)

    res = run_module('redis_queue', args)
    assert res['changed'] is True
    assert res['actions'][0]['count'] == 7
    left = r.zrange('bull:%s:%s' % (queue, state), 0, -1)
    assert sorted(left, key=int) == sorted(young, key=int)
    for job_id in old:
        assert not r.exists('bull:%s:%s' % (queue, job_id))
    for job_id in young:
        assert r.exists('bull:%s:%s' % (queue, job_id))
    assert node_counts(r, flavor, queue)[state] == 13

    again = run_module('redis_queue', args)
    assert again['changed'] is False and again['plan'] == []


@pytest.mark.parametrize('flavor', FLAVORS)
def test_clean_limit_and_waiting_jobs(r, flavor):
    queue = 'cleanwait-%s' % flavor
    add_jobs(r, flavor, queue, 10)
    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor,
                                         clean=[{'status': 'wait', 'older_than': '0s', 'limit': 4}]))
    assert res['actions'][0]['count'] == 4
    assert node_counts(r, flavor, queue)['waiting'] == 6


# --- retry --------------------------------------------------------------------------------

@pytest.mark.parametrize('flavor', FLAVORS)
def test_retry_makes_a_real_worker_process_failed_jobs_again(r, workers, flavor):
    queue = 'retry-%s' % flavor
    failed = make_failed(r, flavor, queue, 12)
    worker = workers(flavor, queue, port_of(r))  # this worker's processor succeeds
    time.sleep(0.5)
    assert not worker.done_ids()

    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, retry={'limit': 5}))
    assert res['actions'][0]['count'] == 5
    assert worker.wait_for(lambda evs: len(worker.done_ids('processed')) >= 5, 30)
    time.sleep(0.5)
    assert len(worker.done_ids('processed')) == 5
    assert set(worker.done_ids('processed')) <= set(failed)

    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, retry={}))
    assert res['actions'][0]['count'] == 7
    assert worker.wait_for(lambda evs: set(failed) <= set(worker.done_ids('processed')), 30)
    assert node_counts(r, flavor, queue)['failed'] == 0
    assert run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, retry={}))[
        'changed'] is False


# --- check mode and idempotence -------------------------------------------------------------

@pytest.mark.parametrize('flavor', FLAVORS)
def test_check_mode_leaves_every_key_as_it_was(r, flavor):
    queue = 'check-%s' % flavor
    make_failed(r, flavor, queue, 6)
    make_completed(r, flavor, queue, 6)
    add_jobs(r, flavor, queue, 4)
    before = dump_keys(r)
    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, state='paused',
                                         clean=[{'status': 'completed'}], retry={}, drain=True,
                                         drain_delayed=True, confirm=True), check=True, diff=True)
    assert not res.failed, res.result
    assert res['changed'] is True
    assert [a['kind'] for a in res['plan']] == ['pause', 'clean', 'retry', 'drain']
    assert res['actions'] == []
    assert res['diff']['after']['paused'] is True
    assert dump_keys(r) == before

    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, state='absent',
                                         confirm=True), check=True)
    assert res['plan'][0]['kind'] == 'obliterate'
    assert dump_keys(r) == before


def test_check_mode_on_a_list_leaves_it_as_it_was(r):
    r.lpush('festivals:queue:failed', *['f%d' % i for i in range(5)])
    r.lpush('festivals:queue:default', *['d%d' % i for i in range(9)])
    before = dump_keys(r)
    res = run_module('redis_queue', dict(conn(r), name='festivals:queue:default', flavor='list',
                                         requeue_from='festivals:queue:failed',
                                         clean=[{'status': 'wait', 'limit': 3}]), check=True)
    assert [a['kind'] for a in res['plan']] == ['clean', 'requeue']
    assert dump_keys(r) == before


@pytest.mark.parametrize('flavor', FLAVORS)
def test_second_identical_run_reports_no_change(r, flavor):
    queue = 'idem-%s' % flavor
    ids = make_failed(r, flavor, queue, 8)
    backdate(r, flavor, queue, 'failed', ids[:5], 3 * DAY_MS)
    args = dict(conn(r), name=queue, flavor=flavor, state='paused',
                clean=[{'status': 'failed', 'older_than': '1d'}])
    first = run_module('redis_queue', args, diff=True)
    assert first['changed'] is True
    assert first['diff']['before']['counts']['failed'] == 8
    assert first['diff']['after']['counts']['failed'] == 3
    second = run_module('redis_queue', args)
    assert second['changed'] is False and second['plan'] == []


# --- drain, remove, obliterate --------------------------------------------------------------

@pytest.mark.parametrize('flavor', FLAVORS)
def test_drain_keeps_active_completed_and_failed(r, workers, flavor):
    queue = 'drain-%s' % flavor
    make_failed(r, flavor, queue, 3)
    worker = workers(flavor, queue, port_of(r), '--delay-ms', '60000', '--concurrency', '1')
    add_jobs(r, flavor, queue, 6)
    assert worker.wait_for(lambda evs: r.llen('bull:%s:active' % queue) == 1, 15)
    active = r.lrange('bull:%s:active' % queue, 0, -1)

    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, drain=True, confirm=True))
    assert res['actions'][0]['count'] == 5
    assert r.lrange('bull:%s:active' % queue, 0, -1) == active
    assert r.exists('bull:%s:%s' % (queue, active[0]))
    assert r.zcard('bull:%s:failed' % queue) == 3
    assert r.llen('bull:%s:wait' % queue) == 0


@pytest.mark.parametrize('flavor', FLAVORS)
def test_remove_jobs_refuses_active_and_ignores_unknown(r, workers, flavor):
    queue = 'remove-%s' % flavor
    worker = workers(flavor, queue, port_of(r), '--delay-ms', '60000', '--concurrency', '1')
    ids = add_jobs(r, flavor, queue, 4)
    assert worker.wait_for(lambda evs: r.llen('bull:%s:active' % queue) == 1, 15)
    active = r.lrange('bull:%s:active' % queue, 0, -1)[0]
    before = dump_keys(r, 'bull:%s:[0-9]*' % queue)

    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, remove_jobs=[active]))
    assert res.failed and 'locked' in res['msg']
    assert dump_keys(r, 'bull:%s:[0-9]*' % queue) == before

    waiting = [i for i in ids if i != active][:2]
    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor,
                                         remove_jobs=waiting + ['999999']))
    assert res['actions'][0]['count'] == 2
    assert not any(r.exists('bull:%s:%s' % (queue, i)) for i in waiting)
    assert r.exists('bull:%s:%s' % (queue, active))


@pytest.mark.parametrize('flavor', FLAVORS)
def test_absent_obliterates_the_queue(r, flavor):
    queue = 'gone-%s' % flavor
    make_failed(r, flavor, queue, 4)
    add_jobs(r, flavor, queue, 4)
    add_jobs(r, flavor, 'neighbour', 2)
    res = run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, state='absent',
                                         confirm=True))
    assert res['changed'] is True, res.result
    assert list(r.scan_iter(match='bull:%s:*' % queue)) == []
    assert r.llen('bull:neighbour:wait') == 2
    assert run_module('redis_queue', dict(conn(r), name=queue, flavor=flavor, state='absent',
                                          confirm=True))['changed'] is False


def test_queues_cleans_several_in_one_call(r):
    """The weekly window's one call per host: the same rules on a BullMQ and a Bull queue of
    real failed jobs (a missing queue allowed), planned, applied once, then nothing to do."""
    old = {f: make_failed(r, f, 'sweep-%s' % f, 4) for f in FLAVORS}
    for f in FLAVORS:
        backdate(r, f, 'sweep-%s' % f, 'failed', old[f][:3], 2 * DAY_MS)
    queues = [{'name': 'sweep-%s' % f, 'flavor': f} for f in FLAVORS] + [{'name': 'sweep-none'}]
    args = dict(conn(r), queues=queues, clean=[{'status': 'failed', 'older_than': '24h'}],
                allow_missing=True)
    before = dump_keys(r)
    res = run_module('redis_queue', args, check=True)
    assert not res.failed, res.result
    assert res['changed'] is True and res['actions'] == [] and dump_keys(r) == before
    assert [(a['object'], a['count']) for a in res['plan']] == [
        ('sweep-bullmq/failed', 3), ('sweep-bull/failed', 3)]

    res = run_module('redis_queue', args)
    assert not res.failed, res.result
    assert [(q['name'], q['changed']) for q in res['queues']] == [
        ('sweep-bullmq', True), ('sweep-bull', True), ('sweep-none', False)]
    assert [a['count'] for a in res['actions']] == [3, 3]
    for f in FLAVORS:
        assert r.zrange('bull:sweep-%s:failed' % f, 0, -1) == old[f][3:]
        assert not r.exists('bull:sweep-%s:%s' % (f, old[f][0]))
    assert run_module('redis_queue', args)['changed'] is False


# --- plain lists ----------------------------------------------------------------------------

def test_list_requeue_and_trim(r):
    r.lpush('festivals:queue:failed', *['f%d' % i for i in range(5)])
    r.lpush('festivals:queue:critical', *['c%d' % i for i in range(10)])
    res = run_module('redis_queue', dict(conn(r), name='festivals:queue:critical', flavor='list',
                                         requeue_from='festivals:queue:failed', requeue_limit=3))
    assert res['actions'][0]['count'] == 3
    # oldest failed items (f0, f1, f2) go to the producer end, behind everything waiting
    assert r.lrange('festivals:queue:critical', 0, 2) == ['f2', 'f1', 'f0']
    assert r.llen('festivals:queue:failed') == 2

    res = run_module('redis_queue', dict(conn(r), name='festivals:queue:critical', flavor='list',
                                         clean=[{'status': 'wait', 'limit': 4}]))
    assert res['actions'][0]['count'] == 4
    # consumers BRPOP from the right: the four oldest were c0..c3
    assert r.lrange('festivals:queue:critical', -1, -1) == ['c4']

    res = run_module('redis_queue', dict(conn(r), name='festivals:queue:critical', flavor='list',
                                         state='paused'))
    assert res.failed and 'cannot be paused' in res['msg']


# --- bad input: one clear sentence, Redis untouched ----------------------------------------

@pytest.mark.parametrize('args,needle', [
    (dict(name='q', state='absent'), 'confirm: true'),
    (dict(name='q', drain=True), 'confirm: true'),
    (dict(name='q', clean=[{'status': 'failed', 'limit': -1}]), 'must not be negative'),
    (dict(name='q', retry={'limit': -5}), 'must not be negative'),
    (dict(name='q', clean=[{'status': 'failed', 'older_than': 'yesterday'}]), 'must be a duration'),
    (dict(name='missing', state='paused'), 'does not exist'),
    (dict(name='q', flavor='list', state='paused'), 'cannot be paused'),
    # several queues in one call (queues)
    (dict(queues=[{'name': 'q'}], state='present'), 'use state paused or running'),
    (dict(queues=[{'name': 'q'}], state='paused', drain=True, confirm=True), 'only pauses or resumes'),
    (dict(queues=[{'name': 'q'}, {'name': 'festivals:queue:low', 'flavor': 'list'}], state='paused'),
     'cannot be paused'),
    (dict(queues=[{'name': 'q'}, 'q'], state='paused'), 'listed twice'),
    (dict(queues=[{'flavor': 'bull'}], state='paused'), 'needs a name'),
    (dict(queues=[{'name': 'q', 'flavor': 'rq'}], state='paused'), "must be bullmq, bull or list, not 'rq'"),
    (dict(queues=[{'name': 'missing'}], state='paused'), 'does not exist'),
    (dict(queues=[{'name': 'q'}], name='q', state='paused'), 'mutually exclusive'),
    (dict(queues=[{'name': 'q'}], clean=[{'status': 'failed'}], state='paused'), 'leave state present'),
    (dict(queues=[{'name': 'q'}, {'name': 'festivals:queue:low', 'flavor': 'list'}],
          clean=[{'status': 'failed', 'older_than': '1h'}]), 'a plain list only has waiting items'),
    # issue 14, bad input
    (dict(name='festivals:queue:low', flavor='list', requeue_from='festivals:queue:low'),
     'requeue_from must name another list than name'),
    (dict(name='q', state='paused', flavor='bull'), 'has the keys of a BullMQ queue, not bull'),
    (dict(queues=[{'name': 'q', 'flavor': 'bull'}], state='paused'), 'has the keys of a BullMQ queue'),
    (dict(name='q', state='paused', socket_timeout=-1), "socket_timeout must be a duration such as 30s, 10m, 24h or 7d, not '-1'"),
    (dict(name='q', state='paused', socket_timeout='nan'), 'socket_timeout must be a duration such as 30s'),
    (dict(name='q', state='paused', socket_timeout='2h'), 'socket_timeout must be a duration from 0.001s to 3600s'),
    (dict(name='q', state='paused', connect_timeout=0), 'connect_timeout must be a duration from 0.001s'),
    (dict(name='q', state='paused', url='redis://127.0.0.1:notaport/0'), 'url has a malformed host or port'),
    (dict(name='q', state='paused', url='http://127.0.0.1/0'), 'url must start with redis://'),
    (dict(name='q', state='paused', url='redis://127.0.0.1:6379/zero'), 'url database'),
    (dict(name='q', state='paused', url=''), 'url must be a Redis URL'),
])
def test_bad_input_fails_with_one_sentence_and_touches_nothing(r, args, needle):
    add_jobs(r, 'bullmq', 'q', 3)
    before = dump_keys(r)
    res = run_module('redis_queue', dict(conn(r), **args))
    assert res.failed
    assert needle in res['msg']
    assert '\n' not in res['msg'] and 'Traceback' not in res.stdout
    assert dump_keys(r) == before


def test_bullmq_operation_on_a_bull_queue_is_refused_before_anything_changes(r, workers):
    """flavor bullmq on a Bull queue would pause it BullMQ's way (meta hash only): the Bull
    worker would go on, and its jobs would be stranded where Bull never looks. Refused with
    one sentence, the queue untouched, and the real Bull worker still processes its jobs."""
    queue = 'bull-not-mq'
    make_failed(r, 'bull', queue, 2)
    add_jobs(r, 'bull', queue, 3)
    before = dump_keys(r)
    for args in (dict(state='paused'), dict(clean=[{'status': 'failed'}]),
                 dict(drain=True, confirm=True), dict(state='absent', confirm=True)):
        res = run_module('redis_queue', dict(conn(r), name=queue, flavor='bullmq', **args))
        assert res.failed, res.result
        assert res['msg'] == ('queue bull-not-mq (prefix bull) has the keys of a Bull queue, not '
                              'bullmq: set flavor: bull (a bullmq operation on it would strand its '
                              'jobs where Bull never looks)')
        assert dump_keys(r) == before
    assert node_counts(r, 'bull', queue)['isPaused'] is False
    worker = workers('bull', queue, port_of(r))
    assert worker.wait_for(lambda evs: len(worker.done_ids('processed')) >= 3, 30)


def test_queue_info_reports_a_missing_configured_queue_as_a_warning(r):
    make_failed(r, 'bullmq', 'present', 1)
    res = run_module('redis_queue_info', dict(conn(r), queues=[
        {'name': 'present', 'flavor': 'bullmq'}, {'name': 'presnet', 'flavor': 'bullmq'},
        {'name': 'card-generaton', 'flavor': 'bull'}, 'nowhere',
        {'name': 'festivals:queue:empty', 'flavor': 'list'}]))
    assert not res.failed, res.result
    found = dict((f['object'], f) for f in res['findings'])
    for name in ('presnet', 'card-generaton', 'nowhere'):
        assert found['%s missing' % name]['verdict'] == 'warning'
        assert name in found['%s missing' % name]['reason']
        assert '%s waiting' % name not in found  # no "ok" backlog for a queue that is not there
    assert found['present waiting']['verdict'] == 'ok'
    # an empty plain list has no key either: that is normal, not a finding
    assert 'festivals:queue:empty missing' not in found


def test_wrong_key_type_is_named(r):
    r.set('bull:typo:wait', 'not a list')
    res = run_module('redis_queue', dict(conn(r), name='typo', state='paused'))
    assert res.failed
    assert 'bull:typo:wait is a string, not a list' in res['msg']
    assert r.get('bull:typo:wait') == 'not a list'


def test_missing_queue_with_allow_missing_is_ok(r):
    res = run_module('redis_queue', dict(conn(r), name='nothing', clean=[{'status': 'failed'}],
                                         allow_missing=True))
    assert not res.failed and res['changed'] is False


def test_unreachable_redis_names_the_address_and_cause():
    from helpers import free_port
    port = free_port()
    res = run_module('redis_queue', dict(login_host='127.0.0.1', login_port=port, name='q', state='paused'))
    assert res.failed
    assert res['msg'].startswith('cannot reach Redis at 127.0.0.1:%d/0' % port)
    assert 'refused' in res['msg'].lower()


def test_wrong_password_and_no_secret_in_verbose_output(redis_auth_server):
    secret = redis_auth_server.password
    client = redis_auth_server.client()
    client.flushall()
    client.lpush('festivals:queue:low', 'x')
    base = dict(login_host='127.0.0.1', login_port=redis_auth_server.port, name='festivals:queue:low',
                flavor='list')

    bad = run_module('redis_queue', dict(base, login_password='wrong-' + secret[::-1]), verbosity=3)
    assert bad.failed and 'refused the credentials' in bad['msg']

    ok = run_module('redis_queue', dict(base, login_password=secret, clean=[{'status': 'wait', 'limit': 1}]),
                    verbosity=3)
    assert not ok.failed and ok['changed'] is True
    via_url = run_module('redis_queue_info', dict(
        url='redis://:%s@127.0.0.1:%d/0' % (secret, redis_auth_server.port),
        queues=[{'name': 'festivals:queue:low', 'flavor': 'list'}]), verbosity=3)
    assert not via_url.failed
    for run in (bad, ok, via_url):
        assert secret not in run.stdout + run.stderr
        assert secret[::-1] not in run.stdout + run.stderr


# --- redis_queue_info -----------------------------------------------------------------------

def test_queue_info_discovers_both_flavors_with_the_libraries_counts(r):
    make_failed(r, 'bullmq', 'alpha', 3)
    add_jobs(r, 'bullmq', 'alpha', 4)
    add_jobs(r, 'bullmq', 'alpha', 2, '--delay-ms', DAY_MS)
    make_completed(r, 'bull', 'beta', 5)
    add_jobs(r, 'bull', 'beta', 1)
    run_module('redis_queue', dict(conn(r), name='beta', flavor='bull', state='paused'))
    for i in range(2000):  # unrelated keys: discovery must SCAN past them
        r.set('cache:%d' % i, i)

    res = run_module('redis_queue_info', conn(r))
    by_name = dict((q['name'], q) for q in res['queues'])
    assert sorted(by_name) == ['alpha', 'beta']
    assert by_name['alpha']['flavor'] == 'bullmq' and by_name['beta']['flavor'] == 'bull'
    alpha, beta = node_counts(r, 'bullmq', 'alpha'), node_counts(r, 'bull', 'beta')
    assert by_name['alpha']['counts']['failed'] == alpha['failed'] == 3
    assert by_name['alpha']['counts']['wait'] == alpha['waiting'] == 4
    assert by_name['alpha']['counts']['delayed'] == alpha['delayed'] == 2
    assert by_name['beta']['paused'] is True and beta['isPaused'] is True
    assert by_name['beta']['counts']['completed'] == beta['completed'] == 5
    assert by_name['beta']['counts']['paused'] == 1
    assert res['totals']['completed'] == 5 and res['changed'] is False
