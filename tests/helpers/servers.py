# -*- coding: utf-8 -*-
"""Throw-away servers on free loopback ports: redis-server and a PostgreSQL 15 cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import redis

from helpers.paths import PG_BIN
from helpers.redis_cluster import answered_by, free_port


def stop_process(proc, timeout=10):
    """Stop a process the tests started: SIGTERM, then SIGKILL if it is still there after
    `timeout` seconds; reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class RedisServer(object):
    """A throw-away redis-server on a free loopback port. A port found free can be taken by
    another pytest worker's server before this one binds it: the server is started again on
    another port until the process answering the port is the one started here."""

    def __init__(self, password=None):
        self.password = password
        self.dir = tempfile.mkdtemp(prefix='oncall-redis-')
        for _attempt in range(5):
            self.port = free_port()
            args = ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                    '--appendonly', 'no', '--dir', self.dir, '--daemonize', 'no']
            if password:
                args += ['--requirepass', password]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if answered_by(self.proc, self.port, password):
                return
            self.proc.terminate()
            self.proc.wait(10)
        raise RuntimeError('redis-server did not start on a port of its own (5 tries)')

    def client(self):
        return redis.Redis(port=self.port, password=self.password, decode_responses=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer(object):
    """A throw-away PostgreSQL 15 cluster on a free loopback port.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
    system user (created by Debian's package). Role ``postgres`` is a trusted superuser;
    every other role must give its password.
    """

    def __init__(self):
        import pwd
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix='oncall-pg-')
        self.data = os.path.join(self.dir, 'data')
        self.as_user = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam('postgres')
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ['runuser', '-u', 'postgres', '--']
        self._run([PG_BIN + '/initdb', '-D', self.data, '-U', 'postgres', '--auth-local=trust',
                   '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync'])
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as hba:
            hba.write('local all all trust\n'
                      'host all postgres 127.0.0.1/32 trust\n'
                      'host all all 127.0.0.1/32 scram-sha-256\n')
        self._run([PG_BIN + '/pg_ctl', '-D', self.data, '-w', '-l', os.path.join(self.dir, 'log'),
                   '-o', '-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off '
                   '-c shared_preload_libraries=pg_stat_statements -c autovacuum_naptime=1h'
                   % (self.port, self.dir), 'start'])

    def _run(self, cmd):
        subprocess.run(self.as_user + cmd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def connect(self, db='postgres', user='postgres', password=None, **kw):
        import psycopg2
        conn = psycopg2.connect(host='127.0.0.1', port=self.port, dbname=db, user=user,
                                password=password, **kw)
        conn.autocommit = True
        return conn

    def stop(self):
        subprocess.run(self.as_user + [PG_BIN + '/pg_ctl', '-D', self.data, '-m', 'immediate',
                                       'stop'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
