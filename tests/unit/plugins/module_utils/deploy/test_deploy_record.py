# -*- coding: utf-8 -*-
"""The deploy and rollback records (module_utils/deploy/record.py, the deploy_record module): the
outcome of every kind of run, the phases' seconds, the paused time, and how the files are
written. The deploy role writes them through the module in tests/integration/test_deploy*.py."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.deploy import record as dr


@pytest.mark.parametrize('recover,needed,dry_run,error,rolled_back,rollback_error,expected', [
    (True, False, False, '', False, '', 'recovered'),
    (True, False, False, 'pre-checks: Redis is down', False, '', 'recovery failed'),
    (False, False, False, '', False, '', 'unchanged'),
    (False, False, True, '', False, '', 'unchanged'),  # a dry run of a release already live
    (False, True, True, '', False, '', 'planned'),
    (False, True, False, '', False, '', 'deployed'),
    (False, True, False, 'smoke: 500', True, '', 'rolled back'),
    (False, True, False, 'smoke: 500', False, 'restart: timeout', 'rollback failed'),
    (False, True, False, 'pre-checks: disk over 90%', False, '', 'failed'),
    (False, False, False, 'pre-checks: another deploy is running', False, '', 'failed'),  # refused: not "unchanged"
])
def test_outcome(recover, needed, dry_run, error, rolled_back, rollback_error, expected):
    assert dr.outcome(recover, needed, dry_run, error, rolled_back, rollback_error) == expected


def test_deploy_record_phases_total_and_paused_time():
    marks = [{'phase': 'pre-checks', 'at': '100.0'}, {'phase': 'pause', 'at': 101.5}, {'phase': 'restart', 'at': 104.25}]
    rec = dr.deploy({'version': '2.0.0', 'error': '', 'queues': {'paused_by_run': ['emails']}}, marks, now=110.0,
                    paused_at='101.6', resumed_at='108.0', finished='2026-11-27T17:00:00Z')
    assert rec['phases'] == [{'phase': 'pre-checks', 'seconds': 1.5}, {'phase': 'pause', 'seconds': 2.75},
                             {'phase': 'restart', 'seconds': 5.75}]
    assert rec['total_seconds'] == 10.0
    assert rec['queues'] == {'paused_by_run': ['emails'], 'paused_seconds': 6.4}
    assert (rec['outcome'], rec['mode'], rec['finished']) == ('deployed', 'apply', '2026-11-27T17:00:00Z')
    # queues paused and never resumed: paused until the end of the run
    assert dr.deploy({}, marks, now=110.0, paused_at=101.0)['queues']['paused_seconds'] == 9.0
    assert dr.deploy({}, marks, now=110.0)['queues']['paused_seconds'] == 0


@pytest.mark.parametrize('host,owner,stamp,words', [
    ('../../etc/cron.d/x', 'a1b2c3d4', '20261127T171839.123456Z', 'host must be an inventory name'),
    ('.hidden', 'a1b2c3d4', '20261127T171839.123456Z', 'host must be an inventory name'),
    ('web1', 'a/b/c/d', '20261127T171839.123456Z', 'owner must be the run token'),
    ('web1', 'a1b2c3d4', '2026-11-27 17:18', 'stamp must be a UTC time'),
])
def test_names_that_cannot_be_file_names_are_refused(host, owner, stamp, words):
    with pytest.raises(dr.RecordError, match=words):
        dr.check(host, owner, stamp)


def test_file_names():
    assert dr.file_names('deploy', 'web1', '20261127T171839.123456Z', 'a1b2c3d4e5', False) == (
        'deploy-web1-20261127T171839.123456Z-a1b2c3.json', 'deploy-web1-latest.json')
    assert dr.file_names('rollback', 'web1', '20261127T171839.123456Z', 'a1b2c3d4e5', True)[0] == \
        'rollback-web1-20261127T171839.123456Z-a1b2c3-check.json'


def test_write_never_over_a_record_and_latest_replaces_a_planted_link(tmp_path):
    target = tmp_path / 'elsewhere.txt'
    target.write_text('keep me')
    reports = tmp_path / 'reports'
    reports.mkdir()
    (reports / 'deploy-web1-latest.json').symlink_to(target)
    path, latest = dr.write(str(reports), 'deploy-web1-s-a1b2c3.json', 'deploy-web1-latest.json', {'outcome': 'deployed'})
    assert json.loads(open(path).read()) == {'outcome': 'deployed'}
    assert not os.path.islink(latest) and json.loads(open(latest).read()) == {'outcome': 'deployed'}
    assert target.read_text() == 'keep me'
    with pytest.raises(dr.RecordError, match='already exists'):
        dr.write(str(reports), 'deploy-web1-s-a1b2c3.json', '', {'outcome': 'failed'})
    assert json.loads(open(path).read()) == {'outcome': 'deployed'}


def test_a_system_directory_is_refused():
    with pytest.raises(dr.ArtifactError, match='is a system directory'):
        dr.write('/etc/oncall', 'deploy-web1-s-a1b2c3.json', '', {})
