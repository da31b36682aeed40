# -*- coding: utf-8 -*-
"""The service_wait module's logic (module_utils/services/wait.py) on what systemd and the Docker
Engine API return: the verdict on a state, the messages, what is refused before anything runs.
The module runs against a real systemd and a real Docker daemon in the services_systemd and
services_docker Molecule scenarios; the health URLs here against a real loopback server."""

from __future__ import annotations

import pytest
from helpers.web import loopback_http

from ansible_collections.oncall.runbooks.plugins.module_utils.services import wait as sw

# What `systemctl show --property=Id,ActiveState,SubState,MainPID a@1.service a@2.service` prints
# (systemd 252): one block per unit, in the order asked, properties in systemd's own order.
SHOW = 'MainPID=4242\nId=a@1.service\nActiveState=active\nSubState=running\n\n' \
       'MainPID=0\nId=a@2.service\nActiveState=activating\nSubState=start-pre\n'


def test_parse_show_one_dict_per_unit_in_order():
    units = sw.parse_show(SHOW)
    assert [u['Id'] for u in units] == ['a@1.service', 'a@2.service']
    assert units[0] == {'MainPID': '4242', 'Id': 'a@1.service', 'ActiveState': 'active', 'SubState': 'running'}


@pytest.mark.parametrize('states,verdict', [
    ([('active', 'running'), ('active', 'running')], 'healthy'),
    ([('active', 'running'), ('activating', 'start-pre')], 'waiting'),
    ([('active', 'running'), ('failed', 'failed')], 'failed'),
    ([('active', 'exited'), ('active', 'running')], 'waiting'),  # a oneshot that ended is not a running service
    ([('active', 'running')], 'waiting'),  # a unit missing from the answer is not healthy
])
def test_systemd_state(states, verdict):
    units = [{'Id': 'a@%d.service' % i, 'ActiveState': a, 'SubState': s} for i, (a, s) in enumerate(states, 1)]
    assert sw.systemd_state(units, ['a@1.service', 'a@2.service']) == verdict


def test_unit_urls_one_per_instance_without_repeats():
    units = ['a@1.service', 'a@2.service', 'b.service']
    assert sw.unit_urls('http://127.0.0.1:810%i/health', units) == [
        'http://127.0.0.1:8101/health', 'http://127.0.0.1:8102/health', 'http://127.0.0.1:810/health']
    assert sw.unit_urls('http://127.0.0.1:8080/health', units) == ['http://127.0.0.1:8080/health']
    assert sw.unit_urls('', units) == []


@pytest.mark.parametrize('units,words', [
    ([], 'no instance of app to wait for: scale it first'),
    (['--root=/tmp'], 'units must be systemd unit names'),
    (['a.service; reboot'], 'units must be systemd unit names'),
    (['a\nb.service'], 'units must be systemd unit names'),
])
def test_units_refused_before_systemctl_runs(units, words):
    with pytest.raises(sw.WaitError, match=words):
        sw.check_units(units, 'app')


def test_systemctl_gets_the_units_after_a_double_dash():
    calls = []

    def run_command(argv):
        calls.append(argv)
        return 0, SHOW, ''
    assert len(sw.Systemd(run_command).show(['a@1.service', 'a@2.service'])) == 2
    assert calls == [['systemctl', 'show', '--property=Id,ActiveState,SubState,MainPID', '--',
                      'a@1.service', 'a@2.service']]


def container(status='running', running=True, health=None, policy='no', exit_code=0):
    doc = {'Id': 'abc', 'Name': '/web', 'Config': {'Image': 'web:v2', 'Env': ['PASSWORD=s3cr3t']},
           'State': {'Status': status, 'Running': running, 'ExitCode': exit_code, 'StartedAt': 'x'},
           'HostConfig': {'RestartPolicy': {'Name': policy}}}
    if health:
        doc['State']['Health'] = {'Status': health}
    return doc


@pytest.mark.parametrize('doc,verdict,said', [
    (container(), 'healthy', 'running, health none'),
    (container(health='healthy'), 'healthy', 'running, health healthy'),
    (container(health='starting'), 'waiting', 'running, health starting'),
    (container(health='unhealthy'), 'waiting', 'running, health unhealthy'),
    (container('exited', False, exit_code=3), 'failed', 'exited, exit code 3, health none'),
    (container('exited', False, policy='always'), 'waiting', 'exited, exit code 0, health none'),
    (container('restarting', False, policy='on-failure'), 'waiting', 'restarting, health none'),
    (None, 'waiting', 'it does not exist'),
])
def test_docker_state_and_its_sentence(doc, verdict, said):
    assert sw.docker_state(doc) == verdict
    assert sw.describe_container(doc) == said


def test_container_summary_never_carries_the_environment():
    summary = sw.container_summary(container(health='healthy'))
    assert summary['name'] == 'web' and summary['image'] == 'web:v2' and summary['health'] == 'healthy'
    assert 's3cr3t' not in repr(summary)


@pytest.mark.parametrize('host,tls,expected', [
    ('', False, ('unix', '/var/run/docker.sock')),
    ('unix:///run/user/1000/docker.sock', False, ('unix', '/run/user/1000/docker.sock')),
    ('tcp://10.0.0.5:2375', False, ('tcp', ('10.0.0.5', 2375))),
])
def test_docker_endpoint(host, tls, expected):
    assert sw.docker_endpoint(host, tls) == expected


@pytest.mark.parametrize('host,tls', [('ssh://me@docker-host', False), ('tcp://10.0.0.5:2376', True),
                                      ('npipe:////./pipe/docker_engine', False), ('tcp://h:port', False)])
def test_docker_endpoint_refused_in_one_sentence(host, tls):
    with pytest.raises(sw.WaitError, match='^docker_host must be unix:///path/to/docker.sock or tcp://host:port '
                                           'without TLS .* run the task on the Docker host'):
        sw.docker_endpoint(host, tls)


@pytest.mark.parametrize('name', ['--all', 'web; rm -rf /', '../../containers', '', 'a/b'])
def test_container_names_refused(name):
    with pytest.raises(sw.WaitError, match='name must be a Docker container name'):
        sw.check_container(name)


def test_a_daemon_that_is_not_there_is_a_sentence(tmp_path):
    with pytest.raises(sw.WaitError, match='^cannot reach the Docker daemon at .*nothing.sock'):
        sw.Docker('unix://%s/nothing.sock' % tmp_path).inspect('web')


def test_a_daemon_that_answers_garbage_is_a_sentence(tmp_path):
    import socket
    import threading
    path = str(tmp_path / 'garbage.sock')
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def answer():
        conn, _addr = server.accept()
        conn.recv(4096)
        conn.sendall(b'HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nnot json')
        conn.close()
    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(sw.WaitError, match='^the Docker daemon answered the inspect of web with something that is not JSON'):
            sw.Docker('unix://' + path).inspect('web')
    finally:
        server.close()


class Clock(object):
    """A clock the sleeps advance: the poll's deadline logic without waiting."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_poll_stops_on_a_verdict_or_at_the_deadline():
    clock = Clock()
    reads = iter(['waiting', 'waiting', 'healthy'])
    value, state = sw.poll(lambda: next(reads), lambda v: v, deadline=10, interval=1, clock=clock, sleep=clock.sleep)
    assert (value, state, clock.now) == ('healthy', 'healthy', 2.0)
    clock = Clock()
    value, state = sw.poll(lambda: 'waiting', lambda v: v, deadline=4.5, interval=2, clock=clock, sleep=clock.sleep)
    assert (state, clock.now) == ('waiting', 4.5)  # the last sleep is cut to the deadline


@pytest.fixture(scope='module')
def web():
    """A real HTTP server on loopback: /ok answers 200, /sick 500, /flaky 503 twice then 200."""
    seen = {'flaky': 0}

    def answer(path):
        if path == '/flaky':
            seen['flaky'] += 1
            return (200 if seen['flaky'] > 2 else 503), b'', {}
        return {'/ok': 200, '/sick': 500}.get(path, 404), b'', {}
    with loopback_http(answer) as base:
        yield base


def test_wait_urls_until_2xx_and_the_message_of_those_that_did_not(web):
    clock = Clock()
    answers = sw.wait_urls([web + '/flaky', web + '/sick'], deadline=5, interval=1, clock=clock, sleep=clock.sleep)
    assert [a['status'] for a in answers] == [200, 500]
    assert sw.health_message(answers) == web + '/sick answered 500'
    closed = sw.wait_urls(['http://127.0.0.1:9/health'], deadline=0, interval=1)
    assert sw.health_message(closed).startswith('http://127.0.0.1:9/health did not answer (')
