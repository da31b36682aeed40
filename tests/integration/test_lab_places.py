# -*- coding: utf-8 -*-
"""The lab works from a checkout anywhere, including one whose parents only root may enter (a clone
in /root, or in a `mktemp -d` directory): as root, PostgreSQL runs as its own user, which cannot
enter such a directory, so the lab keeps the cluster under /var/lib/oncall-lab instead of asking
anyone to chmod their home directory."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile

import psycopg2
import pytest
import redis

from helpers import ROOT, free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason='only root runs the lab PostgreSQL as another user; as any other user '
    'the cluster belongs to the user running the lab, who can enter their own checkout')


def lab_sh(env, *args):
    return subprocess.run([os.path.join(ROOT, 'lab', 'lab.sh')] + list(args), env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_lab_under_a_root_only_directory_comes_up_and_purges_its_cluster():
    parent = tempfile.mkdtemp(prefix='oncall-rootonly-')  # 0700, like /root or `mktemp -d`
    assert stat.S_IMODE(os.stat(parent).st_mode) == 0o700
    env = dict(os.environ, LAB_DIR=os.path.join(parent, 'clone', '.lab'),
               LAB_REDIS_PORT=str(free_port()), LAB_PG_PORT=str(free_port()),
               LAB_APP_PORT=str(free_port()))
    try:
        up = lab_sh(env, 'up')
        assert up.returncode == 0, up.stdout + up.stderr
        with open(os.path.join(env['LAB_DIR'], 'pg.home')) as f:
            pg_home = f.read().strip()
        assert os.path.dirname(pg_home) == '/var/lib/oncall-lab'
        assert 'cannot enter %s: the lab\'s postgresql cluster lives in %s' % (env['LAB_DIR'], pg_home) in up.stdout
        # nobody's directory was opened up to make it work
        assert stat.S_IMODE(os.stat(parent).st_mode) == 0o700
        conn = psycopg2.connect(host='127.0.0.1', port=int(env['LAB_PG_PORT']), user='postgres',
                                dbname='payment_sandbox')
        with conn.cursor() as cur:
            cur.execute('SELECT count(*) FROM generated_cards')
            assert cur.fetchone()[0] > 0
        conn.close()
        assert redis.Redis(port=int(env['LAB_REDIS_PORT'])).ping()
        # a second `up` and `status` find the same cluster
        again = lab_sh(env, 'status')
        assert 'postgresql up on 127.0.0.1:%s' % env['LAB_PG_PORT'] in again.stdout, again.stdout

        down = lab_sh(env, 'down', '--purge')
        assert down.returncode == 0, down.stdout + down.stderr
        assert not os.path.exists(pg_home) and not os.path.exists(env['LAB_DIR'])
    finally:
        lab_sh(env, 'down', '--purge')
        shutil.rmtree(parent, ignore_errors=True)


def test_a_pg_home_naming_another_directory_is_refused_and_nothing_is_removed(tmp_path):
    """`down --purge` removes the recorded cluster directory: a pg.home that names anything but one of
    the lab's own directories is refused before any command runs."""
    lab_dir = tmp_path / 'lab'
    lab_dir.mkdir()
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'keep').write_text('data')
    (lab_dir / 'pg.home').write_text(str(victim) + '\n')
    env = dict(os.environ, LAB_DIR=str(lab_dir), LAB_REDIS_PORT=str(free_port()),
               LAB_PG_PORT=str(free_port()))
    res = lab_sh(env, 'down', '--purge')
    assert res.returncode == 1
    assert res.stderr.strip() == 'lab: %s/pg.home does not name a directory under /var/lib/oncall-lab' % lab_dir
    assert (victim / 'keep').read_text() == 'data' and (lab_dir / 'pg.home').exists()
