# -*- coding: utf-8 -*-
"""Packaging: the tarball `ansible-galaxy collection build` makes ships the collection and
nothing of the development tree, with a README.md for every role whose variable tables name only
variables the role's argument spec has; scripts/setup's apt waits for a package lock another run
holds, and gives up with one sentence (apt-get run against a private apt directory, -o Dir=...,
so the machine's own locks and lists are never touched)."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import tarfile
import time

import pytest
import yaml

from helpers import ROOT, _env, ansible_bin

ROLES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, 'roles', '*', 'tasks')))


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp('build')
    proc = subprocess.run([ansible_bin('ansible-galaxy'), 'collection', 'build', '--output-path', str(out), ROOT],
                          cwd=str(out), env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(glob.glob(str(out / 'oncall-runbooks-*.tar.gz'))[0]) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_the_tarball_ships_no_development_tree_and_no_local_state(tarball):
    top = set(name.split('/')[0] for name in tarball)
    for gone in ('tests', 'molecule', 'bench', 'lab', 'scripts', '.ci', '.venv', '.venv-importer', '.lab',
                 '.collections', '.ansible', '.pytest_cache', 'reports', 'CHANGELOG.md', 'ansible.cfg'):
        assert gone not in top, gone
    assert not [n for n in tarball if n.startswith(('docs/_build', 'inventories/lab'))]
    assert not [n for n in tarball if '__pycache__' in n or n.endswith(('.pyc', '.tar.gz'))]
    assert not [n for n in tarball if 'node_modules' in n]
    # what a user needs is there
    for kept in ('MANIFEST.json', 'FILES.json', 'README.md', 'LICENSE', 'CHANGELOG.rst', 'changelogs/changelog.yaml',
                 'meta/runtime.yml', 'meta/execution-environment.yml', 'requirements.txt', 'constraints.txt',
                 'bindep.txt', 'plugins/modules/redis_queue.py', 'playbooks/weekly_maintenance.yml',
                 'inventories/example', 'docs/postgres.md'):
        assert kept in tarball, kept


def test_every_role_has_a_readme_in_the_tarball(tarball):
    assert len(ROLES) >= 10
    for role in ROLES:
        assert 'roles/%s/README.md' % role in tarball, role
        assert tarball['roles/%s/README.md' % role].size > 500, role


@pytest.mark.parametrize('role', ROLES)
def test_a_role_readme_names_its_entry_points_and_only_variables_it_has(role):
    with open(os.path.join(ROOT, 'roles', role, 'README.md')) as f:
        text = f.read()
    assert text.startswith('# Role oncall.runbooks.%s\n' % role)
    with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as f:
        specs = yaml.safe_load(f)['argument_specs']
    options = set(o for spec in specs.values() for o in (spec.get('options') or {}))
    for entry_point in specs:
        assert re.search(r'`(tasks_from: )?%s`' % entry_point, text), (role, entry_point)
    # the first column of the variable tables: every name there is an option of the role
    named = set()
    for section in re.findall(r'^## (?:Main variables|Variables)\n(.*?)(?=^## |\Z)', text, re.M | re.S):
        for line in section.splitlines():
            if line.startswith('| `'):
                named |= set(re.findall(r'`([a-z0-9_]+)`', line.split('|')[1]))
    if role != 'report':
        assert named, role
    assert not named - options, (role, sorted(named - options))


def test_galaxy_yml_declares_every_collection_the_roles_and_playbooks_call():
    with open(os.path.join(ROOT, 'galaxy.yml')) as f:
        galaxy = yaml.safe_load(f)
    used = set()
    for path in glob.glob(os.path.join(ROOT, 'roles', '**', '*.yml'), recursive=True) + \
            glob.glob(os.path.join(ROOT, 'playbooks', '**', '*.yml'), recursive=True):
        with open(path) as f:
            text = f.read()
        # modules (task keys), filters and tests (after | or is), lookups
        fqcn = r'((?:[a-z_]+)\.[a-z_]+)\.[a-z_0-9]+'
        used |= set(re.findall(r'^\s*(?:- )?%s:' % fqcn, text, re.M))
        used |= set(re.findall(r'(?:\||\bis)\s*%s\b' % fqcn, text))
        used |= set(re.findall(r'(?:lookup|query)\(\s*[\'"]%s' % fqcn, text))
    used -= {'ansible.builtin', 'oncall.runbooks'}
    assert used, 'no collection found'
    assert used <= set(galaxy['dependencies']), sorted(used - set(galaxy['dependencies']))
    for name, spec in galaxy['dependencies'].items():
        assert re.match(r'^>=\d+\.\d+\.\d+,<\d+\.0\.0$', spec), (name, spec)


def test_requirements_are_ranges_and_constraints_pin_each_of_them_exactly():
    def lines(name):
        with open(os.path.join(ROOT, name)) as f:
            return [ln.strip() for ln in f if ln.strip() and not ln.startswith(('#', '-'))]
    ranges = dict((re.split(r'[<>=~!]', ln)[0], ln) for ln in lines('requirements.txt'))
    pins = dict(ln.split('==') for ln in lines('constraints.txt'))
    assert set(ranges) == set(pins)
    for name, req in ranges.items():
        assert '==' not in req and '<' in req and '>=' in req, req
        low = req.split('>=')[1].split(',')[0]
        assert tuple(int(x) for x in pins[name].split('.')) >= tuple(int(x) for x in low.split('.')), (req, pins[name])
    with open(os.path.join(ROOT, 'requirements-dev.txt')) as f:
        dev = f.read()
    assert '-c constraints.txt' in dev and 'antsibull-changelog==' in dev


# --- scripts/setup: apt and another run's package lock -----------------------------------------

@pytest.fixture()
def apt_dir(tmp_path):
    for d in ('etc/apt/sources.list.d', 'etc/apt/preferences.d', 'var/lib/apt/lists/partial',
              'var/cache/apt/archives/partial', 'var/lib/dpkg', 'var/log/apt'):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / 'etc/apt/sources.list').write_text('')
    (tmp_path / 'var/lib/dpkg/status').write_text('')
    return tmp_path


def apt_get(apt_dir, timeout, *args):
    env = dict(os.environ, APT_LOCK_TIMEOUT=str(timeout))
    script = 'source scripts/lib.sh; apt_get -o Dir="$1" "${@:2}"'
    return subprocess.run(['bash', '-c', script, 'setup', str(apt_dir)] + list(args), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


class Held(object):
    """A package lock held the way apt and dpkg hold it (fcntl), by a child process, for a while."""

    def __init__(self, path, seconds):
        self.proc = subprocess.Popen(
            ['python3', '-c', 'import fcntl, os, sys, time\n'
             'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n'
             'fcntl.lockf(fd, fcntl.LOCK_EX)\nprint("held", flush=True)\ntime.sleep(float(sys.argv[2]))',
             str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == 'held'

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


@pytest.mark.parametrize('lock,args', [('var/lib/apt/lists/lock', ['update', '-qq']),
                                       ('var/lib/dpkg/lock-frontend', ['install', '-y', '-qq'])])
def test_apt_waits_for_a_lock_another_run_holds_and_then_goes_on(apt_dir, lock, args):
    with Held(apt_dir / lock, 3) as held:
        start = time.time()
        proc = apt_get(apt_dir, 60, *args)
        took = time.time() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'waiting up to 60s for the package lock held by python3, pid %d' % held.proc.pid in proc.stdout
    assert 2 <= took < 30, took
    assert 'Could not get lock' not in proc.stderr and 'E: ' not in proc.stderr


@pytest.mark.parametrize('lock,args', [('var/lib/apt/lists/lock', ['update', '-qq']),
                                       ('var/lib/dpkg/lock-frontend', ['install', '-y', '-qq'])])
def test_apt_gives_up_after_the_bound_with_one_sentence(apt_dir, lock, args):
    with Held(apt_dir / lock, 30) as held:
        start = time.time()
        proc = apt_get(apt_dir, 2, *args)
        took = time.time() - start
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 2 <= took < 15, took
    assert proc.stderr.strip().splitlines() == [
        'setup: error: another apt or dpkg run (python3, pid %d) held the package lock for all of 2s: let it '
        'finish, then run scripts/setup again (APT_LOCK_TIMEOUT=<seconds> waits longer)' % held.proc.pid]


def test_apt_errors_that_are_not_a_lock_are_apt_s_own(apt_dir):
    proc = apt_get(apt_dir, 60, 'install', '-y', '-qq', 'no-such-package-oncall')
    assert proc.returncode == 100, proc.stdout + proc.stderr
    assert 'Unable to locate package no-such-package-oncall' in proc.stderr
    assert 'waiting' not in proc.stdout
