# -*- coding: utf-8 -*-
"""The lab (lab/lab.sh) on free ports in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import redis

from helpers.cli import run_playbook
from helpers.paths import ROOT
from helpers.redis_cluster import free_port


class Lab(object):
    """The lab (lab/lab.sh) on free ports in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='oncall-lab-')
        self.env = dict(os.environ, LAB_DIR=os.path.join(self.dir, 'lab'),
                        LAB_REDIS_PORT=str(free_port()), LAB_PG_PORT=str(free_port()),
                        LAB_PROM_PORT=str(free_port()), LAB_AM_PORT=str(free_port()),
                        ONCALL_REPORT_DIR=os.path.join(self.dir, 'reports'))
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o755)

    @property
    def redis_port(self):
        return int(self.env['LAB_REDIS_PORT'])

    @property
    def pg_port(self):
        return int(self.env['LAB_PG_PORT'])

    @property
    def prom_url(self):
        return 'http://127.0.0.1:%s' % self.env['LAB_PROM_PORT']

    @property
    def am_url(self):
        return 'http://127.0.0.1:%s' % self.env['LAB_AM_PORT']

    @property
    def report_dir(self):
        return self.env['ONCALL_REPORT_DIR']

    def sh(self, *args):
        return subprocess.run([os.path.join(ROOT, 'lab', 'lab.sh')] + list(args), env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)

    def redis(self):
        return redis.Redis(port=self.redis_port, decode_responses=True)

    def pg(self, db='payment_sandbox'):
        import psycopg2
        conn = psycopg2.connect(host='127.0.0.1', port=self.pg_port, user='postgres', dbname=db)
        conn.autocommit = True
        return conn

    def playbook(self, name, **kw):
        return run_playbook(os.path.join('playbooks', name), env=self.env, **kw)


def running(lab):
    """The body of a session fixture for a lab: start it (lab.sh up), yield it, then stop it and
    remove its directory."""
    up = lab.sh('up')
    assert up.returncode == 0, up.stdout + up.stderr
    yield lab
    lab.sh('down', '--purge')
    shutil.rmtree(lab.dir, ignore_errors=True)
