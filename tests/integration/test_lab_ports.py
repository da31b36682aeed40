# -*- coding: utf-8 -*-
"""The lab remembers its ports: after `lab/lab.sh up`, a shell without LAB_REDIS_PORT and
LAB_PG_PORT (only LAB_DIR, or the checkout's .lab) finds this lab's Redis and PostgreSQL, and so
does the lab inventory, instead of the default ports, where another lab may be listening."""

from __future__ import annotations

import os
import subprocess

import psycopg2
import redis

from helpers import ROOT, _env, ansible_bin


def fresh_shell(lab):
    """The lab's environment as a new shell has it: LAB_DIR, no port variables."""
    env = dict(lab.env)
    for name in ('LAB_REDIS_PORT', 'LAB_PG_PORT'):
        env.pop(name, None)
    return env


def lab_sh(env, *args):
    return subprocess.run([os.path.join(ROOT, 'lab', 'lab.sh')] + list(args), env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_up_remembers_the_ports_and_a_new_shell_finds_this_lab(lab_session):
    lab = lab_session
    lab_dir = lab.env['LAB_DIR']
    # the fixture's free ports are not the defaults, so the defaults would find another lab (or none)
    assert lab.redis_port != 16379 and lab.pg_port != 15432
    with open(os.path.join(lab_dir, 'redis.port')) as f:
        assert f.read().strip() == str(lab.redis_port)
    with open(os.path.join(lab_dir, 'pg.port')) as f:
        assert f.read().strip() == str(lab.pg_port)

    env = fresh_shell(lab)
    status = lab_sh(env, 'status')
    assert status.returncode == 0, status.stdout + status.stderr
    assert 'redis up on 127.0.0.1:%d' % lab.redis_port in status.stdout
    assert 'postgresql up on 127.0.0.1:%d' % lab.pg_port in status.stdout
    exports = lab_sh(env, 'env')
    assert exports.returncode == 0, exports.stderr
    assert 'LAB_REDIS_PORT=%d LAB_PG_PORT=%d ' % (lab.redis_port, lab.pg_port) in exports.stdout

    # `up` in that shell is harmless: both servers are found up where they are, nothing else starts
    up = lab_sh(env, 'up')
    assert up.returncode == 0, up.stdout + up.stderr
    assert 'redis already up on 127.0.0.1:%d' % lab.redis_port in up.stdout
    assert 'postgresql already up on 127.0.0.1:%d' % lab.pg_port in up.stdout
    assert redis.Redis(port=lab.redis_port).ping()
    psycopg2.connect(host='127.0.0.1', port=lab.pg_port, user='postgres', dbname='payment_sandbox').close()


def test_the_lab_inventory_reads_the_remembered_ports(lab_session):
    lab = lab_session
    env = dict(_env(), **{k: v for k, v in fresh_shell(lab).items() if k.startswith(('LAB_', 'ONCALL_'))})
    env.pop('LAB_REDIS_PORT', None)
    env.pop('LAB_PG_PORT', None)
    env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.minimal'
    proc = subprocess.run([ansible_bin('ansible'), 'lab', '-i', os.path.join(ROOT, 'inventories', 'lab'),
                           '-m', 'ansible.builtin.debug', '-a', 'msg=ports:{{ oncall_redis_port }}:{{ oncall_pg_port }}'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'ports:%d:%d' % (lab.redis_port, lab.pg_port) in proc.stdout, proc.stdout
    # and the environment still wins over what the lab remembered
    env.update(LAB_REDIS_PORT='1', LAB_PG_PORT='2')
    proc = subprocess.run([ansible_bin('ansible'), 'lab', '-i', os.path.join(ROOT, 'inventories', 'lab'),
                           '-m', 'ansible.builtin.debug', '-a', 'msg=ports:{{ oncall_redis_port }}:{{ oncall_pg_port }}'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert 'ports:1:2' in proc.stdout, proc.stdout
