# -*- coding: utf-8 -*-
"""The Redis connection options as community.general names them, their old aliases, TLS, the
duration timeouts, the action group's module_defaults, and the roles and playbooks run as the
ACL user of ``oncall_redis_user`` (issue 16), against a real redis-server.

The server's ``default`` user is switched off: a connection that does not authenticate as the
ACL user ``oncall`` (or the test's own ``admin``) can run no command at all, so every module,
role and playbook below that succeeds did authenticate as ``oncall``, with the options or
variables under test. Queues are made by the real BullMQ and Bull libraries (lab/node/qtool.js)
before the ``default`` user is switched off; modules and playbooks run through the real
``ansible`` CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import redis

from helpers.cert import make_cert, write_pair
from helpers import ROOT, RedisServer, free_port, node, run_module, run_playbook

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509

ADMIN_PASSWORD = 'admin-Test-pa55'
PASSWORD = 'oncall-Test-pa55'
# what the roles below need (docs/redis.md: the union of the queue, cache and lock rules)
ONCALL_RULE = ('~bull:* ~opt:* ~cache:* ~oncall:lock:* &bull:* +@read +@write +@scripting -@dangerous '
               '+publish +ping +info +dbsize')
MODULES = ['redis_queue', 'redis_queue_info', 'redis_cache', 'redis_cluster', 'deploy_lock']


def admin(port):
    return redis.Redis(port=port, username='admin', password=ADMIN_PASSWORD, decode_responses=True)


@pytest.fixture(scope='module')
def server():
    """A redis-server whose only users are admin and oncall (default is off), with a BullMQ
    queue, a Bull queue, a list queue and cache keys."""
    srv = RedisServer()
    seed = srv.client()
    for flavor, queue in (('bullmq', 'opt-mq'), ('bull', 'opt-b')):
        for cmd in ('make-completed', 'add'):
            node('qtool.js', flavor, cmd, '--queue', queue, '--count', 3, port=srv.port)
    seed.rpush('opt:list', 'a', 'b')
    seed.mset(dict(('cache:%d' % i, 'v') for i in range(20)))
    seed.execute_command('ACL', 'SETUSER', 'admin', 'on', '>' + ADMIN_PASSWORD, '~*', '&*', '+@all')
    seed.execute_command('ACL', 'SETUSER', 'oncall', 'on', '>' + PASSWORD, *ONCALL_RULE.split())
    seed.execute_command('ACL', 'SETUSER', 'default', 'off')
    seed.close()
    with pytest.raises(redis.exceptions.RedisError):
        redis.Redis(port=srv.port).ping()  # nobody gets in as default
    yield srv
    srv.stop()


def as_oncall(port, old=False):
    if old:
        return dict(host='127.0.0.1', port=port, username='oncall', password=PASSWORD)
    return dict(login_host='127.0.0.1', login_port=port, login_user='oncall', login_password=PASSWORD)


def one_call(module, port):
    """Arguments of one run of module that reads (or takes and releases nothing of) the server."""
    return {
        'redis_queue': dict(name='opt:list', flavor='list', state='present'),
        'redis_queue_info': dict(queues=[{'name': 'opt-mq', 'flavor': 'bullmq'},
                                         {'name': 'opt:list', 'flavor': 'list'}]),
        'redis_cache': dict(patterns=['cache:*'], ttl_sample=1),
        'redis_cluster': dict(),
        'deploy_lock': dict(owner='opt-test', state='absent'),
    }[module]


@pytest.mark.parametrize('old', [False, True], ids=['login_names', 'old_aliases'])
@pytest.mark.parametrize('module', MODULES)
def test_each_module_connects_as_the_acl_user_by_new_names_and_old_aliases(server, module, old):
    args = dict(as_oncall(server.port, old), **one_call(module, server.port))
    res = run_module(module, args)
    assert not res.failed, res.result
    shown = res.get('invocation', {}).get('module_args', {})
    assert shown.get('login_user') == 'oncall' and shown.get('login_port') == server.port, shown
    assert PASSWORD not in res.stdout + res.stderr
    # the same call without the user is the default user, which is off: refused in one sentence
    res = run_module(module, dict(args, **({'username': None} if old else {'login_user': None})))
    assert res.failed and 'refused the credentials: check login_user and login_password' in res['msg'], res['msg']


def test_what_the_modules_read_as_the_acl_user_is_the_server(server):
    res = run_module('redis_queue_info', dict(as_oncall(server.port), **one_call('redis_queue_info', 0)))
    counts = dict((q['name'], q['counts']) for q in res['queues'])
    assert counts['opt-mq']['completed'] == 3 and counts['opt-mq']['wait'] == 3
    assert counts['opt:list']['wait'] == 2
    res = run_module('redis_cache', dict(as_oncall(server.port), patterns=['cache:*'], ttl_sample=1))
    assert res['patterns'][0]['count'] == 20
    res = run_module('redis_cluster', as_oncall(server.port))
    assert res['enabled'] is False


def test_without_a_password_the_message_names_login_password(server):
    res = run_module('redis_cache', dict(login_port=server.port))
    assert res.failed and 'requires a password: set login_password (or url)' in res['msg'], res['msg']


@pytest.mark.parametrize('module,args,needle', [
    ('redis_cache', dict(connect_timeout='0s'), "connect_timeout must be a duration from 0.001s to 3600s, not '0s'"),
    ('redis_queue_info', dict(socket_timeout='2h'), "socket_timeout must be a duration from 0.001s to 3600s, not '2h'"),
    ('deploy_lock', dict(owner='x', socket_timeout='soon'), "socket_timeout must be a duration such as 30s"),
    ('redis_cluster', dict(timeout='2h'), "timeout must be a duration from 1s to 3600s, not '2h'"),
    ('redis_cluster', dict(timeout=0), "timeout must be a duration from 1s to 3600s, not '0'"),
    ('redis_cache', dict(ca_certs='/nonexistent/ca.pem'), 'ca_certs: no file at'),
    ('redis_cache', dict(ca_cert='/nonexistent/ca.pem'), 'ca_certs: no file at'),
    ('redis_cache', dict(login_port=0), 'login_port must be a whole number from 1 to 65535'),
    ('redis_cluster', dict(login_host='-bad-'), 'login_host must be a host name or address'),
])
def test_bad_connection_options_are_one_sentence_naming_the_new_option(server, module, args, needle):
    watch = admin(server.port)

    def processed():
        return watch.info('stats')['total_commands_processed']
    first = processed()
    before = processed()  # before - first: what one INFO of the test's own counts
    res = run_module(module, dict(as_oncall(server.port), **dict(one_call(module, 0), **args)))
    assert res.failed and needle in res['msg'] and '\n' not in res['msg'], res['msg']
    assert processed() - before == before - first  # the module sent nothing
    watch.close()


@pytest.mark.parametrize('given', ['500ms', '2s', '1', '1m30s'])
def test_timeouts_are_durations(server, given):
    res = run_module('redis_cache', dict(as_oncall(server.port), connect_timeout=given, socket_timeout=given,
                                         ttl_sample=0))
    assert not res.failed, res.result


# --- TLS: tls, ca_certs (alias ca_cert), validate_certs --------------------------------------

@pytest.fixture(scope='module')
def tls_server():
    """redis-server listening only with TLS, its certificate (127.0.0.1) signed by a test CA."""
    tmp = tempfile.mkdtemp(prefix='oncall-redis-tls-')
    ca_cert, ca_key = x509.make_ca('oncall redis test CA')
    ca_pem, _ca_key = write_pair(tmp, 'ca', [ca_cert], ca_key)
    crt, key = make_cert(tmp, 'server', ['127.0.0.1', 'localhost'], 30, ca=(ca_cert, ca_key))
    port = free_port()
    proc = subprocess.Popen(
        ['redis-server', '--port', '0', '--tls-port', str(port), '--bind', '127.0.0.1',
         '--tls-cert-file', crt, '--tls-key-file', key, '--tls-ca-cert-file', ca_pem,
         '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--dir', tmp,
         '--requirepass', PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD, ssl=True, ssl_ca_certs=ca_pem)
    deadline = time.time() + 10
    while True:
        try:
            client.set('cache:tls', '1')
            break
        except redis.exceptions.ConnectionError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    yield dict(port=port, ca=ca_pem)
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize('ca_option', ['ca_certs', 'ca_cert'])
def test_tls_with_the_ca_bundle_by_its_name_and_its_alias(tls_server, ca_option):
    args = {'login_host': '127.0.0.1', 'login_port': tls_server['port'], 'login_password': PASSWORD,
            'tls': True, ca_option: tls_server['ca'], 'patterns': ['cache:*'], 'ttl_sample': 0}
    res = run_module('redis_cache', args)
    assert not res.failed, res.result
    assert res['patterns'][0]['count'] == 1


def test_tls_validate_certs(tls_server):
    base = dict(login_host='127.0.0.1', login_port=tls_server['port'], login_password=PASSWORD, tls=True,
                ttl_sample=0)
    unknown_ca = run_module('redis_cache', base)  # the system's CAs do not know the test CA
    assert unknown_ca.failed and 'certificate verify failed' in unknown_ca['msg'], unknown_ca['msg']
    assert '\n' not in unknown_ca['msg']
    assert not run_module('redis_cache', dict(base, validate_certs=False)).failed
    plain = run_module('redis_cache', dict(base, tls=False, connect_timeout='2s', socket_timeout='2s'))
    assert plain.failed


# --- module_defaults for group/oncall.runbooks.redis, roles, playbooks -------------------------

def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return path


def test_module_defaults_of_the_group_reach_every_member(server, tmp_path):
    """One play sets the connection once; each of the five modules runs with none of its own."""
    tasks = ''.join(
        '    - name: %s\n      oncall.runbooks.%s: %s\n      register: r_%s\n'
        % (m, m, json.dumps(one_call(m, 0)) if one_call(m, 0) else '{}', m) for m in MODULES)
    playbook = write(str(tmp_path / 'group.yml'), '''- hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/oncall.runbooks.redis:
      login_host: 127.0.0.1
      login_port: %d
      login_user: oncall
      login_password: "{{ redis_pw }}"
  tasks:
%s    - name: What each one saw
      ansible.builtin.copy:
        dest: "%s"
        content: "{{ {'queue': r_redis_queue.queue.exists, 'info': r_redis_queue_info.queues | length,
                      'cache': r_redis_cache.patterns[0].count, 'cluster': r_redis_cluster.enabled,
                      'lock': r_deploy_lock.held} | to_json }}"
        mode: "0600"
''' % (server.port, tasks, tmp_path / 'seen.json'))
    proc = run_playbook(playbook, inventory='localhost,', extra_vars={'redis_pw': PASSWORD})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with open(str(tmp_path / 'seen.json')) as f:
        seen = json.load(f)
    assert seen == {'queue': True, 'info': 2, 'cache': 20, 'cluster': False, 'lock': False}
    assert PASSWORD not in proc.stdout + proc.stderr


def test_roles_authenticate_as_oncall_redis_user(server, tmp_path):
    """The queues, cache and app_health roles, used on their own in a play of the user's, run as
    the ACL user of oncall_redis_user: reads, a BullMQ and a Bull clean, a flush, a ping."""
    conn = admin(server.port)
    assert conn.zcard('bull:opt-mq:completed') == 3 and conn.zcard('bull:opt-b:completed') == 3
    playbook = write(str(tmp_path / 'roles.yml'), '''- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Queues
      ansible.builtin.include_role:
        name: oncall.runbooks.queues
    - name: Clean the queues
      ansible.builtin.include_role:
        name: oncall.runbooks.queues
        tasks_from: clean
      vars:
        queues_clean_rules: [{status: completed, older_than: 0s}]
    - name: Cache
      ansible.builtin.include_role:
        name: oncall.runbooks.cache
      vars:
        cache_window: 0s
    - name: Flush the cache
      ansible.builtin.include_role:
        name: oncall.runbooks.cache
        tasks_from: flush
      vars:
        cache_flush_patterns: ["cache:*"]
        cache_flush_confirm: true
    - name: Record
      ansible.builtin.copy:
        dest: "%s"
        content: "{{ {'queues': queues_stats.queues | map(attribute='name') | sort,
                      'cleaned': queues_clean_results.queues | map(attribute='changed') | list,
                      'cache': cache_pattern_counts, 'flushed': cache_flush_result.deleted} | to_json }}"
        mode: "0600"
''' % (tmp_path / 'seen.json'))
    variables = dict(oncall_redis_host='127.0.0.1', oncall_redis_port=server.port, oncall_redis_user='oncall',
                     oncall_redis_password=PASSWORD,
                     oncall_queues=[{'name': 'opt-mq', 'flavor': 'bullmq'}, {'name': 'opt-b', 'flavor': 'bull'},
                                    {'name': 'opt:list', 'flavor': 'list'}])
    proc = run_playbook(playbook, inventory='localhost,', extra_vars=variables)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    with open(str(tmp_path / 'seen.json')) as f:
        seen = json.load(f)
    assert seen['queues'] == ['opt-b', 'opt-mq', 'opt:list']
    assert seen['cleaned'] == [True, True] and seen['flushed'] == 20
    assert conn.zcard('bull:opt-mq:completed') == 0 and conn.zcard('bull:opt-b:completed') == 0
    assert conn.dbsize() and not conn.keys('cache:*')
    assert PASSWORD not in proc.stdout + proc.stderr

    # without oncall_redis_user the same roles are the default user, which is off
    del variables['oncall_redis_user']
    proc = run_playbook(playbook, inventory='localhost,', extra_vars=variables)
    assert proc.returncode != 0 and 'refused the credentials' in proc.stdout


def test_app_health_pings_as_oncall_redis_user(server, tmp_path):
    playbook = write(str(tmp_path / 'app.yml'), '''- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Diagnose
      ansible.builtin.include_role:
        name: oncall.runbooks.app_health
    - name: Record
      ansible.builtin.copy:
        dest: "%s"
        content: "{{ app_health_findings | selectattr('object', 'eq', 'Redis PING') | first | to_json }}"
        mode: "0600"
''' % (tmp_path / 'seen.json'))
    # the processes are read through pm2 (the lab's, from npm) with a PM2_HOME of this test
    pm2_home = str(tmp_path / 'pm2')
    pm2 = os.path.join(ROOT, 'lab', 'node', 'node_modules', '.bin', 'pm2')
    variables = dict(oncall_redis_host='127.0.0.1', oncall_redis_port=server.port, oncall_redis_user='oncall',
                     oncall_redis_password=PASSWORD, oncall_services_backend='pm2', services_pm2_bin=pm2,
                     services_pm2_home=pm2_home, oncall_app_name='oncall-test-app')
    app = write(str(tmp_path / 'app.js'), 'setInterval(function () {}, 1000);\n')
    try:
        started = subprocess.run([pm2, 'start', app, '--name', 'oncall-test-app'], env=dict(os.environ, PM2_HOME=pm2_home),
                                 capture_output=True, text=True, timeout=120, check=False)
        assert started.returncode == 0, started.stdout + started.stderr
        for user, figure, verdict in (('oncall', 'PONG', 'ok'), ('nobody', 'refused the credentials', 'critical')):
            proc = run_playbook(playbook, inventory='localhost,', extra_vars=dict(variables, oncall_redis_user=user))
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
            with open(str(tmp_path / 'seen.json')) as f:
                found = json.load(f)
            assert figure in found['figure'] and found['verdict'] == verdict, found
    finally:
        subprocess.run([pm2, 'kill'], env=dict(os.environ, PM2_HOME=pm2_home), capture_output=True, timeout=60,
                       check=False)


def test_a_runbook_playbook_runs_as_oncall_redis_user(server, tmp_path):
    """job_queue_issues.yml's diagnosis: the Redis PING (redis_cache, through the play's
    module_defaults) and the queues (the queues role) as the ACL user; without the user the
    PING is a critical finding."""
    inventory = write(str(tmp_path / 'hosts.ini'), '[redis_servers]\nlocalhost ansible_connection=local\n')
    reports = str(tmp_path / 'reports')
    os.makedirs(reports)
    variables = dict(oncall_redis_host='127.0.0.1', oncall_redis_port=server.port, oncall_redis_user='oncall',
                     oncall_redis_password=PASSWORD, oncall_report_dir=reports,
                     job_queue_names=[{'name': 'opt-b', 'flavor': 'bull'}], job_queue_worker_process='redis-server')
    for user in ('oncall', 'nobody'):
        proc = run_playbook('playbooks/runbooks/job_queue_issues.yml', inventory=inventory,
                            extra_vars=dict(variables, oncall_redis_user=user))
        assert 'VERDICT' in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert PASSWORD not in proc.stdout + proc.stderr
        with open(os.path.join(reports, 'job_queue_issues-latest.json')) as f:
            found = dict((x['object'], x) for x in json.load(f)['findings'])
        if user == 'oncall':
            assert proc.returncode == 0, proc.stdout[-4000:]
            assert found['redis ping']['figure'] == 'PONG' and found['redis ping']['verdict'] == 'ok', found
            assert found['opt-b waiting']['figure'] == 3, found
        else:  # the default user is off: the run stops at its first Redis read, a critical finding
            assert proc.returncode != 0
            assert any('refused the credentials' in str(x['figure']) and x['verdict'] == 'critical'
                       for x in found.values()), found
