# -*- coding: utf-8 -*-
"""Issue 13 items 3 (command lines, outside PostgreSQL), 4 (paths) and 5 (URLs): each attack is
tried for real - on the real file system, against a real HTTP server, with the real pm2 - and
must fail with one sentence and nothing changed."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from conftest import run_module

OLD = time.time() - 90 * 86400


def tree(root):
    """{relative path: (kind, sha256 or link target)} of everything under root, links unfollowed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ('link', os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ('dir', '')
            else:
                with open(path, 'rb') as fh:
                    out[rel] = ('file', hashlib.sha256(fh.read()).hexdigest())
    return out


def old_file(path, text='old log line\n'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as fh:
        fh.write(text)
    os.utime(path, (OLD, OLD))


def one_sentence(msg):
    assert msg and '\n' not in msg and 'Traceback' not in msg, msg
    return msg


# ---- file_retention ------------------------------------------------------------------------

@pytest.fixture()
def victim(tmp_path):
    """A directory the attacker wants emptied: old *.log files that must survive."""
    d = tmp_path / 'victim'
    for name in ('precious.log', 'sub/also.log'):
        old_file(str(d / name))
    return d


def test_file_retention_refuses_a_root_that_is_a_link_and_removes_nothing(tmp_path, victim):
    link = tmp_path / 'logs'
    os.symlink(str(victim), str(link))
    before = tree(str(tmp_path))
    for check in (True, False):
        res = run_module('file_retention', {'paths': [str(link)], 'older_than': '30d'}, check=check)
        assert res.failed, res.result
        msg = one_sentence(res['msg'])
        assert msg == 'refusing to clean %s: it is a symbolic link (to %s); name the directory itself' % (link, victim)
        assert tree(str(tmp_path)) == before


@pytest.mark.parametrize('path', ['relative/logs', '{tmp}/logs/../victim', '/etc', '/var/log/..', '/tmp'])
def test_file_retention_refuses_relative_dotdot_and_system_roots(tmp_path, victim, path):
    os.makedirs(str(tmp_path / 'logs'))
    before = tree(str(tmp_path))
    res = run_module('file_retention', {'paths': [path.format(tmp=tmp_path)]})
    assert res.failed and one_sentence(res['msg']).startswith('refusing to clean '), res.result
    assert tree(str(tmp_path)) == before


def test_file_retention_never_follows_links_inside_its_root(tmp_path, victim):
    logs = tmp_path / 'logs'
    old_file(str(logs / 'app.log'))
    os.symlink(str(victim), str(logs / 'linked-dir'))             # a directory link
    os.symlink(str(victim / 'precious.log'), str(logs / 'x.log'))  # a file link matching *.log
    res = run_module('file_retention', {'paths': [str(logs)]})
    assert not res.failed, res.result
    assert res['removed'] == [str(logs / 'app.log')]
    assert sorted(os.listdir(str(logs))) == ['linked-dir', 'x.log']
    assert sorted(tree(str(victim))) == ['precious.log', 'sub', 'sub/also.log']


def test_file_retention_a_directory_swapped_for_a_link_after_the_plan_is_not_followed(tmp_path, victim):
    """The race find -delete loses: between the listing and the removal, a subdirectory of the
    root is replaced by a link to another directory holding files of the same names."""
    from ansible_collections.oncall.runbooks.plugins.module_utils.host import files
    logs = tmp_path / 'logs'
    old_file(str(logs / 'sub' / 'also.log'))
    old_file(str(logs / 'top.log'))
    plan = files.candidates([str(logs)], ['*.log'], [], 30 * 86400)
    assert sorted(f['path'] for f in plan) == [str(logs / 'sub' / 'also.log'), str(logs / 'top.log')]
    os.rename(str(logs / 'sub'), str(tmp_path / 'moved-away'))
    os.symlink(str(victim / 'sub'), str(logs / 'sub'))
    removed, _freed, kept = files.remove(plan, 30 * 86400)
    assert removed == [str(logs / 'top.log')]
    assert [k['path'] for k in kept] == [str(logs / 'sub' / 'also.log')]
    assert os.path.exists(str(victim / 'sub' / 'also.log'))
    assert os.path.exists(str(tmp_path / 'moved-away' / 'also.log'))
