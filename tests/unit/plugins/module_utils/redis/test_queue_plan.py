# -*- coding: utf-8 -*-
"""The planning logic of redis_queue, on observations made up here (no Redis)."""
from __future__ import annotations

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import queues as rq
from ansible_collections.oncall.runbooks.plugins.modules import redis_queue


class FakeQueue(object):
    """Stands in for a backend: answers the planner's questions from fixed figures."""

    flavor = 'bullmq'
    name = 'q'

    def __init__(self, clean=0, retry=0, locked=()):
        self._clean, self._retry, self._locked = clean, retry, set(locked)

    def plan_clean(self, obs, rule, now):
        if not self._clean:
            return None
        return Action('clean', 'q/' + rule['status'], 'old', count=self._clean,
                      params={'status': rule['status']}, destructive=True)

    def plan_retry(self, obs, rule, now):
        if not self._retry:
            return None
        return Action('retry', 'q/failed', 'x', count=self._retry, params={'status': 'failed'})

    def plan_drain(self, obs, delayed):
        n = obs.counts['wait'] + (obs.counts['delayed'] if delayed else 0)
        return Action('drain', 'q', 'd', count=n, params={'delayed': delayed}) if n else None

    def job_locations(self, ids):
        return [(i, i != 'missing', i in self._locked) for i in ids]


COUNTS = {'wait': 5, 'paused': 0, 'active': 1, 'delayed': 2, 'prioritized': 0,
          'waiting_children': 0, 'completed': 10, 'failed': 4}


def obs(paused=False, exists=True, **counts):
    c = dict(COUNTS)
    c.update(counts)
    return rq.Observation(exists, paused, c)


def kinds(actions):
    return [a.kind for a in actions]


def test_pause_comes_first_and_resume_last():
    q = FakeQueue(clean=3, retry=2)
    params = {'state': 'paused', 'clean': [{'status': 'completed'}], 'retry': {'status': 'failed'}}
    assert kinds(rq.plan(q, obs(), params)) == ['pause', 'clean', 'retry']
    params['state'] = 'running'
    assert kinds(rq.plan(q, obs(paused=True), params)) == ['clean', 'retry', 'resume']


def test_desired_state_already_met_gives_empty_plan():
    q = FakeQueue()
    assert rq.plan(q, obs(paused=True), {'state': 'paused'}) == []
    assert rq.plan(q, obs(paused=False), {'state': 'running'}) == []
    assert rq.plan(q, obs(), {'state': 'present', 'clean': [{'status': 'failed'}]}) == []


def test_absent_plans_one_destructive_obliterate_with_the_totals():
    actions = rq.plan(FakeQueue(), obs(), {'state': 'absent'})
    assert kinds(actions) == ['obliterate']
    assert actions[0].count == sum(COUNTS.values())
    assert actions[0].destructive
    assert rq.plan(FakeQueue(), obs(exists=False), {'state': 'absent'}) == []


def test_remove_jobs_refuses_a_locked_job_and_skips_missing_ones():
    with pytest.raises(rq.QueueError, match='locked'):
        rq.plan(FakeQueue(locked=['7']), obs(), {'remove_jobs': ['6', '7']})
    actions = rq.plan(FakeQueue(), obs(), {'remove_jobs': ['6', 'missing']})
    assert actions[0].ids == ['6'] and actions[0].count == 1


def test_predict_follows_the_plan():
    o = obs()
    actions = rq.plan(FakeQueue(clean=4, retry=3), o, {
        'state': 'paused', 'clean': [{'status': 'completed'}], 'retry': {'status': 'failed'},
        'drain': True, 'drain_delayed': True})
    after = rq.predict(o, actions, 'bullmq')
    assert after['paused'] is True
    assert after['counts']['completed'] == 6
    assert after['counts']['failed'] == 1
    assert after['counts']['wait'] == 0 and after['counts']['paused'] == 0
    assert after['counts']['delayed'] == 0
    assert after['counts']['active'] == 1  # never touched


def params(**kw):
    base = dict(name='q', flavor='bullmq', prefix='bull', state='present', clean=None, retry=None,
                drain=False, drain_delayed=False, remove_jobs=None, requeue_from=None,
                requeue_limit=0, confirm=False, allow_missing=False, batch_size=1000)
    base.update(kw)
    return base


def rule(**kw):
    base = dict(status='failed', older_than='0s', limit=0)
    base.update(kw)
    return base


@pytest.mark.parametrize('kw,message', [
    (dict(state='absent'), 'set confirm: true'),
    (dict(drain=True), 'set confirm: true'),
    (dict(drain_delayed=True), 'only applies together with drain'),
    (dict(state='absent', confirm=True, drain=True), 'do not combine'),
    (dict(clean=[rule(limit=-1)]), 'clean[0].limit must not be negative'),
    (dict(clean=[rule(older_than='soon')]), 'clean[0].older_than must be a duration'),
    (dict(retry=dict(status='failed', limit=-2)), 'retry.limit must not be negative'),
    (dict(retry=dict(status='failed', limit=0), clean=[rule()]), 'use two tasks'),
    (dict(flavor='list', state='paused'), 'cannot be paused'),
    (dict(flavor='list', clean=[rule(status='wait', older_than='1h', limit=3)]), 'no timestamps'),
    (dict(flavor='list', clean=[rule(status='wait')]), 'needs a limit'),
    (dict(flavor='list', retry=dict(status='failed', limit=0)), 'use requeue_from'),
    (dict(requeue_from='x'), 'applies to flavor list'),
    (dict(batch_size=0), 'batch_size must be at least 1'),
])
def test_validate_refuses(kw, message):
    with pytest.raises(rq.QueueError) as err:
        redis_queue.validate(params(**kw))
    assert message in str(err.value)


def test_validate_parses_durations_once():
    out = redis_queue.validate(params(clean=[rule(older_than='24h')]))
    assert out['clean'][0]['older_than_s'] == 86400


def test_a_configured_queue_that_does_not_exist_is_a_warning_naming_it():
    entries = [{'name': 'emial', 'flavor': 'bull', 'exists': False, 'counts': {'wait': 0}},
               {'name': 'email', 'flavor': 'bull', 'exists': True, 'counts': {'wait': 3}},
               {'name': 'festivals:queue:low', 'flavor': 'list', 'exists': False, 'counts': {'wait': 0}}]
    found = dict((f['object'], f) for f in rq.findings(entries))
    assert found['emial missing']['verdict'] == 'warning' and 'emial' in found['emial missing']['reason']
    assert 'emial waiting' not in found
    assert found['email waiting']['verdict'] == 'ok'
    assert 'festivals:queue:low missing' not in found  # an empty list has no key: normal


@pytest.mark.parametrize('params,needle', [
    ({'socket_timeout': -1}, "socket_timeout must not be negative, got -1"),
    ({'socket_timeout': '-1s'}, "socket_timeout must be a duration such as 30s"),
    ({'socket_timeout': float('nan')}, 'socket_timeout must be a duration'),
    ({'connect_timeout': float('inf')}, 'connect_timeout must be a duration'),
    ({'connect_timeout': '0s'}, "connect_timeout must be a duration from 0.001s to 3600s, not '0s'"),
    ({'connect_timeout': '2h'}, "connect_timeout must be a duration from 0.001s to 3600s, not '2h'"),
    ({'socket_timeout': 'soon'}, "socket_timeout must be a duration such as 30s, 10m, 24h or 7d, not 'soon'"),
    ({'socket_timeout': '9' * 400}, 'socket_timeout must be a duration'),
    ({'url': 'redis://h:99999999/0'}, 'url has a malformed host or port'),
    ({'url': 'redis://h:0/0'}, 'url port must be between 1 and 65535'),
    ({'url': 'ftp://h/0'}, 'url must start with redis://, rediss:// or unix://, got ftp://'),
    ({'url': 'localhost:6379'}, 'url must start with'),
    ({'url': 'redis:///0'}, 'url names no host'),
    ({'url': 'redis://:s3cret@h/db0'}, 'url database'),
])
def test_connection_options_are_refused_with_one_sentence_naming_the_option(params, needle):
    from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn
    with pytest.raises(rconn.RedisConnectionError) as err:
        rconn.check_params(dict({'connect_timeout': 5, 'socket_timeout': 30}, **params))
    assert needle in str(err.value) and '\n' not in str(err.value)
    assert 's3cret' not in str(err.value)


def test_good_connection_options_pass():
    from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn
    for url in (None, 'redis://h', 'redis://:pw@h:6380/2', 'rediss://u:pw@h/0', 'unix:///tmp/r.sock'):
        rconn.check_params({'connect_timeout': '5s', 'socket_timeout': '500ms', 'url': url})


@pytest.mark.parametrize('given,seconds', [
    (('5s', '30s'), (5.0, 30.0)), (('500ms', '1m'), (0.5, 60.0)), (('2', '1.5'), (2.0, 1.5)),
    ((3, 0.25), (3.0, 0.25)), (('1h', '1m30s'), (3600.0, 90.0)),
])
def test_timeouts_are_durations_parsed_by_the_one_parser(given, seconds):
    from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn
    params = dict(connect_timeout=given[0], socket_timeout=given[1], login_host='h', login_port=1, db=0)
    assert rconn.timeouts(params) == seconds
    kwargs = rconn.client_kwargs(params)
    assert (kwargs['socket_connect_timeout'], kwargs['socket_timeout']) == seconds


# ---- the one parser of the queues option (redis_queue and redis_queue_info) -----------------

def test_queue_entries_take_names_dicts_and_the_default_flavor():
    got = rq.queue_entries(['emails', {'name': 'pdf', 'flavor': 'bull'}, {'name': 'low'}, 42],
                           'bullmq', ('bullmq', 'bull', 'list'))
    assert got == [{'name': 'emails', 'flavor': 'bullmq'}, {'name': 'pdf', 'flavor': 'bull'},
                   {'name': 'low', 'flavor': 'bullmq'}, {'name': '42', 'flavor': 'bullmq'}]
    # the same name in two flavors is two queues
    assert len(rq.queue_entries(['q', {'name': 'q', 'flavor': 'bull'}], 'bullmq', ('bullmq', 'bull'))) == 2


@pytest.mark.parametrize('items,flavors,message', [
    ([{'flavor': 'bull'}], ('bullmq', 'bull'), 'queues[0] needs a name: give a queue name or a dict'),
    (['ok', ''], ('bullmq', 'bull'), 'queues[1] needs a name'),
    ([None], ('bullmq',), 'queues[0] needs a name'),
    ([True], ('bullmq',), 'queues[0] needs a name'),
    ([['a', 'b']], ('bullmq',), 'queues[0] needs a name'),
    ([{'name': 'q', 'flavor': 'rq'}], ('bullmq', 'bull', 'list'), "queues[0].flavor must be bullmq, bull or list, not 'rq'"),
    ([{'name': 'q', 'flavor': 'list'}], ('any', 'bullmq'), "queues[0].flavor must be any or bullmq, not 'list'"),
    (['q', {'name': 'q'}], ('bullmq',), 'queue q (bullmq) is listed twice in queues'),
])
def test_queue_entries_refuse_with_one_sentence_naming_the_item(items, flavors, message):
    with pytest.raises(rq.QueueError) as exc:
        rq.queue_entries(items, 'bullmq', flavors)
    assert str(exc.value).startswith(message) and '\n' not in str(exc.value)


def test_a_flavor_must_provide_observe_set_paused_and_run_action():
    class Half(rq.BaseQueue):
        def observe(self):
            return None

    with pytest.raises(TypeError):
        Half(None, 'q')  # pylint: disable=abstract-class-instantiated
    for flavor in rq.FLAVORS.values():
        assert flavor(None, 'q').name == 'q'


def test_apply_dispatches_once_for_every_flavor():
    """pause and resume go to set_paused, the flavor's other actions to run_action, anything else
    is refused naming the queue; progress starts again at 0 for each action."""
    class Recorder(rq.BaseQueue):
        flavor = 'test'

        def __init__(self):
            super().__init__(None, 'q')
            self.calls = []

        def observe(self):
            return None

        def set_paused(self, paused):
            self.calls.append(('paused', paused))

        def run_action(self, action):
            self.calls.append((action.kind, self.progress))
            self.progress = 7
            return 3, ['a']

    q = Recorder()
    assert q.apply(Action('pause', 'q', 'x', count=1)) == (1, [])
    assert q.apply(Action('clean', 'q', 'x', count=3)) == (3, ['a'])
    assert q.apply(Action('drain', 'q', 'x', count=3)) == (3, ['a'])
    assert q.calls == [('paused', True), ('clean', 0), ('drain', 0)]
    with pytest.raises(rq.QueueError, match='queue q [(]test[)] has no action requeue'):
        q.apply(Action('requeue', 'q', 'x'))
    with pytest.raises(rq.QueueError, match='queue q [(]list[)] has no action retry'):
        rq.FLAVORS['list'](None, 'q').apply(Action('retry', 'q', 'x'))
