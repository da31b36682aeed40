# -*- coding: utf-8 -*-
"""The PostgreSQL connection options of issue 16 against real servers.

- ssl_cert / ssl_key: a throw-away PostgreSQL with ssl=on, certificates made by openssl, and a
  ``hostssl ... cert`` line in pg_hba.conf: the role can only get in with a client certificate
  signed by the server's CA.
- login_db (db an alias), ca_cert (ssl_rootcert an alias), connect_timeout and
  pg_health_info's thresholds.long_query_after (long_query_seconds an alias) as durations.
- module_defaults: group/oncall.runbooks.postgres reaches every member of the group.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2
import pytest

from helpers import PG_BIN, ROOT, free_port, run_module, run_playbook

CERT_ROLE = 'oncall_cert'


def openssl(*args, cwd):
    subprocess.run(['openssl'] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_ca(d, name):
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
            '-keyout', name + '.key', '-out', name + '.crt', '-days', '2', '-subj', '/CN=' + name, cwd=d)


def make_cert(d, name, cn, ca, san=None):
    """<name>.key and <name>.crt, CN cn, signed by <ca>.crt/<ca>.key."""
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
            '-keyout', name + '.key', '-out', name + '.csr', '-subj', '/CN=' + cn, cwd=d)
    ext = os.path.join(d, name + '.ext')
    with open(ext, 'w') as f:
        f.write('subjectAltName=%s\n' % san if san else 'basicConstraints=CA:FALSE\n')
    openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.crt', '-CAkey', ca + '.key',
            '-CAcreateserial', '-out', name + '.crt', '-days', '2', '-extfile', ext, cwd=d)
    os.chmod(os.path.join(d, name + '.key'), 0o600)


class SslPostgres(object):
    """PostgreSQL 15 with ssl=on on a free loopback port; role oncall_cert may only log in over
    SSL with a client certificate its CA signed (pg_hba.conf: hostssl ... cert)."""

    def __init__(self, certs):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix='oncall-pgssl-')
        self.data = os.path.join(self.dir, 'data')
        self.as_user = []
        server_files = os.path.join(self.dir, 'tls')
        os.mkdir(server_files)
        for name in ('server.crt', 'server.key', 'ca.crt'):
            shutil.copy(os.path.join(certs, name), server_files)
        os.chmod(os.path.join(server_files, 'server.key'), 0o600)
        if os.geteuid() == 0:
            owner = pwd.getpwnam('postgres')
            for path in (self.dir, server_files) + tuple(os.path.join(server_files, n) for n in os.listdir(server_files)):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self.as_user = ['runuser', '-u', 'postgres', '--']
        self._run([PG_BIN + '/initdb', '-D', self.data, '-U', 'postgres', '--auth-local=trust',
                   '--auth-host=reject', '-E', 'UTF8', '--no-sync'])
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as hba:
            hba.write('local all all trust\n'
                      'host all postgres 127.0.0.1/32 trust\n'
                      'hostssl all %s 127.0.0.1/32 cert\n' % CERT_ROLE)
        self._run([PG_BIN + '/pg_ctl', '-D', self.data, '-w', '-l', os.path.join(self.dir, 'log'),
                   '-o', '-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on '
                   '-c ssl_cert_file=%s/server.crt -c ssl_key_file=%s/server.key -c ssl_ca_file=%s/ca.crt'
                   % (self.port, self.dir, server_files, server_files, server_files), 'start'])

    def _run(self, cmd):
        subprocess.run(self.as_user + cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def sql(self, statement, db='postgres'):
        import psycopg2
        conn = psycopg2.connect(host='127.0.0.1', port=self.port, dbname=db, user='postgres', sslmode='disable')
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def stop(self):
        subprocess.run(self.as_user + [PG_BIN + '/pg_ctl', '-D', self.data, '-m', 'immediate', 'stop'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope='module')
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('pgcerts'))
    make_ca(d, 'ca')
    make_cert(d, 'server', '127.0.0.1', 'ca', san='IP:127.0.0.1')
    make_cert(d, 'client', CERT_ROLE, 'ca')
    make_ca(d, 'rogue-ca')  # a CA the server does not trust, signing a certificate with the right CN
    make_cert(d, 'rogue', CERT_ROLE, 'rogue-ca')
    return d


@pytest.fixture(scope='module')
def ssl_server(certs):
    server = SslPostgres(certs)
    server.sql('CREATE ROLE %s LOGIN' % CERT_ROLE)
    server.sql('CREATE DATABASE certdb OWNER %s' % CERT_ROLE)
    server.sql('CREATE TABLE t (id int)', db='certdb')
    server.sql('ALTER TABLE t OWNER TO %s' % CERT_ROLE, db='certdb')
    yield server
    server.stop()


def cert_args(server, certs, **extra):
    args = dict(login_host='127.0.0.1', login_port=server.port, login_user=CERT_ROLE, login_db='certdb',
                ssl_mode='verify-full', ca_cert=os.path.join(certs, 'ca.crt'),
                ssl_cert=os.path.join(certs, 'client.crt'), ssl_key=os.path.join(certs, 'client.key'))
    args.update(extra)
    return args


def test_client_certificate_gets_in_and_nothing_else_does(ssl_server, certs, tmp_path):
    # in: the session is SSL with our client certificate (pg_stat_ssl shows its CN)
    res = run_module('pg_health_info', cert_args(ssl_server, certs, sections=['checks'], checks=[
        {'name': 'my session uses the client certificate', 'max': 0,
         'sql': "SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() "
                "AND NOT (ssl AND client_dn = %s)", 'params': ['/CN=' + CERT_ROLE]}]), verbosity=3)
    assert not res.failed, res.result
    assert res['findings'][0]['figure'] == 0 and res['findings'][0]['verdict'] == 'ok', res['findings']
    key_body = open(os.path.join(certs, 'client.key')).read().split('\n')[1]
    assert key_body and key_body not in res.stdout + res.stderr  # the path is passed on, never the key

    # pg_dump gets the same certificate (sslcert/sslkey in its conninfo)
    dest = tmp_path / 'backups'
    backup = run_module('pg_backup', cert_args(ssl_server, certs, dest=str(dest), max_age='1h', keep=1))
    assert not backup.failed, backup.result
    assert backup['changed'] and backup['backup']['path'].startswith(str(dest))

    # out: no certificate, a certificate of another CA, a key that is not there
    sessions_before = ssl_server.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'" % CERT_ROLE)
    no_cert = dict(cert_args(ssl_server, certs, sections=['connections']))
    del no_cert['ssl_cert'], no_cert['ssl_key']
    res = run_module('pg_health_info', no_cert)
    assert res.failed and 'check ssl_cert and ssl_key (none given)' in res['msg'], res['msg']
    assert '\n' not in res['msg']

    rogue = cert_args(ssl_server, certs, sections=['connections'], ssl_cert=os.path.join(certs, 'rogue.crt'),
                      ssl_key=os.path.join(certs, 'rogue.key'))
    res = run_module('pg_health_info', rogue)
    assert res.failed and '\n' not in res['msg'], res['msg']
    assert 'ssl' in res['msg'].lower() or 'certificate' in res['msg'], res['msg']

    missing = cert_args(ssl_server, certs, sections=['connections'], ssl_key=str(tmp_path / 'nope.key'))
    res = run_module('pg_health_info', missing)
    assert res.failed and res['msg'] == 'ssl_key %s is not a file this user can read' % (tmp_path / 'nope.key')

    res = run_module('pg_health_info', dict(cert_args(ssl_server, certs), ssl_cert=None))
    assert res.failed and 'ssl_key needs ssl_cert' in res['msg'], res['msg']
    assert ssl_server.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'" % CERT_ROLE) == sessions_before


def test_old_names_stay_aliases(ssl_server, certs, pgdb):
    # ssl_rootcert (community.postgresql's alias of ca_cert) and db (of login_db)
    args = cert_args(ssl_server, certs, sections=['connections'])
    args['ssl_rootcert'] = args.pop('ca_cert')
    args['db'] = args.pop('login_db')
    res = run_module('pg_health_info', args)
    assert not res.failed, res.result
    # verify-full really checked the server against the CA given through the alias
    args['ssl_rootcert'] = os.path.join(certs, 'rogue-ca.crt')
    res = run_module('pg_health_info', args)
    assert res.failed and 'certificate verify failed' in res['msg'], res['msg']

    server, db, _conn = pgdb
    for name, value in (('connect_timeout', 5), ('connect_timeout', '5'), ('connect_timeout', '1m')):
        res = run_module('pg_maintenance', {'login_host': '127.0.0.1', 'login_port': server.port, 'db': db,
                                            name: value, 'operations': {'analyze': {}}})
        assert not res.failed, (value, res.result)
        assert res['database']['name'] == db


def test_durations_are_parsed_and_named(pgdb):
    server, db, conn = pgdb
    base = dict(login_host='127.0.0.1', login_port=server.port, login_user='postgres', login_db=db)
    for value, needle in (('soon', "connect_timeout must be a duration such as 30s"),
                          ('2h', 'connect_timeout must be at most 1h')):
        for module, extra in (('pg_health_info', {'sections': ['connections']}),
                              ('pg_maintenance', {'operations': {'analyze': {}}}),
                              ('payments_switch', {}),
                              ('pg_backup', {'dest': '/nonexistent/never', 'max_age': '1h'})):
            res = run_module(module, dict(base, connect_timeout=value, **extra))
            assert res.failed and needle in res['msg'] and '\n' not in res['msg'], (module, value, res['msg'])
    assert not os.path.exists('/nonexistent/never')

    # a query running for seconds: over long_query_after 1s (and the alias, in seconds), under 1m
    busy = server.connect(db=db)

    def sleeper():
        try:
            busy.cursor().execute('SELECT pg_sleep(120)')
        except psycopg2.errors.QueryCanceled:
            pass  # cancelled below, once the module has run
    worker = threading.Thread(target=sleeper)
    worker.start()
    time.sleep(2)
    try:
        figures = {}
        for thresholds in ({'long_query_after': '1s'}, {'long_query_seconds': 1}, {'long_query_after': '1m'}):
            res = run_module('pg_health_info', dict(base, sections=['long_queries'], thresholds=thresholds))
            assert not res.failed, res.result
            (finding,) = [f for f in res['findings'] if f['object'].startswith('queries running longer than')]
            figures[json.dumps(thresholds)] = (finding['object'], finding['figure'], finding['verdict'])
    finally:
        conn.cursor().execute('SELECT pg_cancel_backend(%s)', (busy.get_backend_pid(),))
        worker.join()
        busy.close()
    assert figures == {'{"long_query_after": "1s"}': ('queries running longer than 1s', 1, 'warning'),
                       '{"long_query_seconds": 1}': ('queries running longer than 1s', 1, 'warning'),
                       '{"long_query_after": "1m"}': ('queries running longer than 1m', 0, 'ok')}, figures
    res = run_module('pg_health_info', dict(base, sections=['long_queries'], thresholds={'long_query_after': 'later'}))
    assert res.failed and res['msg'].startswith('thresholds.long_query_after must be a duration'), res['msg']


GROUP_PLAY = r'''
- name: Every member of group/oncall.runbooks.postgres gets its connection from module_defaults
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/oncall.runbooks.postgres:
      login_host: "{{ oncall_pg_host }}"
      login_port: "{{ oncall_pg_port }}"
      login_user: "{{ oncall_pg_user }}"
      login_password: "{{ oncall_pg_password | default(omit) }}"
      login_db: "{{ oncall_pg_db }}"
      ssl_cert: "{{ oncall_pg_ssl_cert | default(omit) }}"
      ssl_key: "{{ oncall_pg_ssl_key | default(omit) }}"
      connect_timeout: 5s
  tasks:
    - name: pg_health_info
      oncall.runbooks.pg_health_info:
        sections: [checks]
        checks:
          - name: which database
            sql: SELECT count(*) FROM pg_database WHERE datname = current_database() AND datname <> %s
            params: ["{{ oncall_pg_db }}"]
      register: r_health
    - name: pg_maintenance
      oncall.runbooks.pg_maintenance:
        operations: {analyze: {}}
      check_mode: true
      register: r_maint
    - name: pg_backup
      oncall.runbooks.pg_backup:
        dest: "{{ backup_dest }}"
        max_age: 1h
        keep: 1
      register: r_backup
    - name: payments_switch
      oncall.runbooks.payments_switch: {}
      register: r_switch
    - name: stripe_reconcile
      oncall.runbooks.stripe_reconcile:
        api_key: sk_test_oncall_group
        api_base: "{{ stripe_url }}"
        since: 1h
        max_network_retries: 0
      register: r_stripe
    - name: Results
      ansible.builtin.copy:
        content: "{{ {'health': r_health.findings, 'maint': r_maint.database, 'backup': r_backup.database,
                      'switch': r_switch.enabled, 'stripe': r_stripe.database} | to_json }}"
        dest: "{{ results_file }}"
        mode: '0600'
'''


@pytest.fixture()
def stripe_url():
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'helpers', 'stripe_api.py'), '--port', str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()  # {"ready": port}
    yield 'http://127.0.0.1:%d' % port
    proc.kill()
    proc.wait(10)


def test_module_defaults_reach_every_member_of_the_group(pgdb, tmp_path, stripe_url):
    server, db, conn = pgdb
    with conn.cursor() as cur:
        cur.execute('CREATE SCHEMA marketplace')
        cur.execute('CREATE TABLE marketplace.configuration (key text PRIMARY KEY, payments_enabled boolean NOT NULL)')
        cur.execute("INSERT INTO marketplace.configuration VALUES ('PAYMENTS_ENABLED', true)")
        cur.execute('CREATE TABLE orders (id text PRIMARY KEY, stripe_payment_intent_id text, amount int, '
                    'currency text, status text, created_at timestamptz DEFAULT now())')
    play = tmp_path / 'group.yml'
    play.write_text(GROUP_PLAY)
    # oncall_pg_password, oncall_pg_ssl_cert and oncall_pg_ssl_key are undefined: default(omit)
    # must leave the option out (a placeholder string would be refused as ssl_cert's file)
    proc = run_playbook(str(play), inventory='localhost,', extra_vars={
        'oncall_pg_host': '127.0.0.1', 'oncall_pg_port': server.port, 'oncall_pg_user': 'postgres',
        'oncall_pg_db': db, 'backup_dest': str(tmp_path / 'b'), 'stripe_url': stripe_url,
        'results_file': str(tmp_path / 'results.json')})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = json.loads((tmp_path / 'results.json').read_text())
    assert out['health'][0]['figure'] == 0, out
    assert out['maint'] == {'name': db, 'server': '127.0.0.1:%d/%s' % (server.port, db)}
    assert out['backup']['name'] == db and os.listdir(str(tmp_path / 'b'))
    assert out['switch'] is True
    assert out['stripe']['ok'] is True and not out['stripe']['error'], out
