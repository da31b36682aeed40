# -*- coding: utf-8 -*-
"""The execution environment: `ansible-builder create` on awx/execution-environment.yml
produces a build context with the collection, the pinned ansible-core and runner, the exact pins
of constraints.txt as its Python requirements, and the introspection step that reads
meta/execution-environment.yml; running that step's own script (as the image build would) on the
installed collection yields its Python requirements (the collection's ranges, the image's pins)
and its system requirements."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from helpers import ROOT, _env, ansible_bin


def run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, '%s: %s %s' % (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


def pins(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith(('#', '-'))]


@pytest.fixture(scope='module')
def context(tmp_path_factory):
    """The checkout's layout: awx/ with the definition and the tarball, constraints.txt beside it."""
    work = tmp_path_factory.mktemp('ee')
    (work / 'awx').mkdir()
    for name in ('execution-environment.yml', 'ee-requirements.yml'):
        shutil.copy(os.path.join(ROOT, 'awx', name), work / 'awx')
    shutil.copy(os.path.join(ROOT, 'constraints.txt'), work)
    run([ansible_bin('ansible-galaxy'), 'collection', 'build', '--force', '--output-path', str(work / 'awx'), ROOT], ROOT)
    run([ansible_bin('ansible-builder'), 'create', '-f', 'awx/execution-environment.yml', '--context', 'context',
         '--output-filename', 'Containerfile'], str(work))
    return work


def test_create_writes_a_containerfile_with_the_pinned_ansible_and_the_collection(context):
    ctx = context / 'context'
    containerfile = (ctx / 'Containerfile').read_text()
    core = [p for p in pins(os.path.join(ROOT, 'constraints.txt')) if p.startswith('ansible-core==')][0]
    assert 'ARG ANSIBLE_INSTALL_REFS="%s ansible-runner==2.4.3"' % core in containerfile
    assert 'ARG EE_BASE_IMAGE="quay.io/fedora/python-311:20250801"' in containerfile
    assert re.search(r'ansible-galaxy collection install .*-r requirements.yml', containerfile)
    # the collections galaxy.yml depends on come from the pinned ansible package, not from Galaxy
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--no-deps"' in containerfile
    assert 'introspect.py introspect --user-pip=requirements.txt' in containerfile
    assert 'install-from-bindep' in containerfile
    reqs = yaml.safe_load((ctx / '_build' / 'requirements.yml').read_text())
    assert reqs['collections'] == [{'name': 'collections/oncall-runbooks-0.1.0.tar.gz', 'type': 'file'}]
    assert (ctx / '_build' / 'collections' / 'oncall-runbooks-0.1.0.tar.gz').is_file()
    # the image's user requirements are the exact pins of constraints.txt
    assert pins(str(ctx / '_build' / 'requirements.txt')) == pins(os.path.join(ROOT, 'constraints.txt'))
    assert 'ansible==12.3.0' in pins(str(ctx / '_build' / 'requirements.txt'))
    assert os.access(ctx / '_build' / 'scripts' / 'assemble', os.X_OK)


def test_introspection_of_the_built_collection_lists_its_python_and_system_requirements(context):
    ctx = context / 'context'
    coll = context / 'collections'
    run([ansible_bin('ansible-galaxy'), 'collection', 'install', '--offline', '--no-deps', '--force', '-p', str(coll),
         str(context / 'awx' / 'oncall-runbooks-0.1.0.tar.gz')], str(context))
    installed = coll / 'ansible_collections' / 'oncall' / 'runbooks'
    assert (installed / 'meta' / 'execution-environment.yml').is_file()
    run([_env()['PATH'].split(os.pathsep)[0] + '/python', str(ctx / '_build' / 'scripts' / 'introspect.py'),
         'introspect', str(coll), '--user-pip', str(ctx / '_build' / 'requirements.txt'),
         '--write-pip', str(context / 'pip.txt'), '--write-bindep', str(context / 'bindep.txt')], str(context))
    pip = (context / 'pip.txt').read_text()
    # the collection asks for ranges; the image's own requirements pin each of them exactly
    for req in pins(os.path.join(ROOT, 'requirements.txt')):
        name = re.split(r'[<>=~!]', req)[0]
        if name in ('ansible-core', 'ansible'):
            continue        # the builder installs these itself (ANSIBLE_INSTALL_REFS, user requirements)
        assert '==' not in req, req
        assert re.search(r'^%s\s*# from collection oncall\.runbooks' % re.escape(req), pip, re.M), (req, pip)
    for pin in pins(os.path.join(ROOT, 'constraints.txt')):
        assert re.search(r'^%s\s*# from collection user' % re.escape(pin), pip, re.M), (pin, pip)
    assert re.search(r'^ansible==12\.3\.0\s*# from collection user', pip, re.M), pip
    bindep = (context / 'bindep.txt').read_text()
    assert re.search(r'^postgresql-client-15 \[platform:dpkg\]\s*# from collection oncall\.runbooks', bindep, re.M), bindep
    assert 'postgresql15 [platform:rpm]' in bindep
