# -*- coding: utf-8 -*-
"""What the collection tarball ships must stand on its own: no shipped file points at
``../shared`` (the development workspace's design notes and source runbooks, which exist beside a
development checkout only).

The shipped files are the members of the tarball ``ansible-galaxy collection build`` really
makes from this checkout (galaxy.yml's build_ignore applied by ansible-galaxy itself, about one
second), not a re-implementation of its ignore rules.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile

import pytest

from helpers import ROOT, _env, ansible_bin

# ../shared/..., and the workspace's two names even when spelled without the ../
SHARED = re.compile(r'\.\./shared\b|\bshared/(?:runbook-sources|DESIGN\.md)')


def mentions_shared(text):
    """The lines (1-based numbers) of text that point at the workspace beside the checkout."""
    return [n for n, line in enumerate(text.splitlines(), 1) if SHARED.search(line)]


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp('build')
    proc = subprocess.run([ansible_bin('ansible-galaxy'), 'collection', 'build', '--force', '--output-path', str(out), ROOT],
                          env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob('oncall-runbooks-*.tar.gz')
    return path


def shipped(tarball):
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if member.isfile():
                yield member.name, tar.extractfile(member).read()


def test_no_shipped_file_mentions_the_workspace_beside_the_checkout(tarball):
    offenders = []
    for name, data in shipped(tarball):
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError:
            continue
        for line in mentions_shared(text):
            offenders.append('%s:%d' % (name, line))
    assert not offenders, 'shipped files that point at ../shared (the tarball has no such directory): ' + ', '.join(offenders)


def test_the_scan_sees_the_shipped_docs_and_not_the_test_tree(tarball):
    names = {name for name, _member in shipped(tarball)}
    # the files a user reads are shipped and therefore scanned
    for rel in ('README.md', 'docs/build.py', 'docs/runbook_sections.yml', 'docs/docsite/extra-docs.yml',
                'inventories/example/group_vars/all.yml'):
        assert rel in names, rel
    # this file mentions ../shared, exists in the checkout, and is not shipped (build_ignore: tests)
    here = os.path.relpath(__file__, ROOT)
    with open(__file__, encoding='utf-8') as f:
        assert mentions_shared(f.read())
    assert here not in names and not any(n.startswith('tests/') for n in names)


@pytest.mark.parametrize('text, found', [
    ('see ../shared/DESIGN.md', [1]),
    ('a\nsources in ../shared/runbook-sources/*.txt', [2]),
    ('ONCALL_RUNBOOK_SOURCES=/srv/shared/runbook-sources', [1]),
    ('docs/runbook_sections.yml is the source', []),
    ('../sharedfolder is another name', []),
])
def test_what_counts_as_pointing_at_the_workspace(text, found):
    assert mentions_shared(text) == found
