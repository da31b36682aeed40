# -*- coding: utf-8 -*-
"""Where rollback.yml finds the release (issue 21): an explicit -e rollback_version (checked as a
release name that exists under releases/), and, with no report directory on the controller (a
fresh execution environment), the record in the report store (S3 on moto, tests/helpers/aws.py).
The rollback from the host's own record is run through ansible-runner in test_awx_runner.py.
Against the lab: real Redis, PostgreSQL 15, pm2 and the sample app."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from helpers.app import app_lab, app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers.aws import CREDENTIALS, MotoServer
from helpers import dump_keys, recap


def out(proc):
    return proc.stdout[-4000:] + proc.stderr[-2000:]


def test_rollback_version_is_checked_then_made_live(app_lab):
    assert app_lab.deploy('2.0.0').returncode == 0
    assert app_lab.live_release() == '2.0.0'
    r = app_lab.redis()
    keys, db, restarts = dump_keys(r), app_lab.db_state(), app_lab.restarts()

    for bad, sentence in (('../../../tmp', 'rollback_version must be a release name'),
                          ('9.9.9', 'rollback_version 9.9.9 is not a release directory in')):
        refused = app_lab.deploy(None, playbook='rollback.yml', rollback_version=bad)
        assert refused.returncode != 0, out(refused)
        assert sentence in refused.stdout and 'nothing was changed' in refused.stdout, out(refused)
        assert app_lab.live_release() == '2.0.0' and app_lab.restarts() == restarts
        assert dump_keys(r) == keys and app_lab.db_state() == db

    run = app_lab.deploy(None, playbook='rollback.yml', rollback_version='1.0.0')
    assert run.returncode == 0, out(run)
    assert 'roll back 2.0.0 -> 1.0.0 (given as rollback_version)' in run.stdout
    assert app_lab.live_release() == '1.0.0' and app_lab.version() == '1.0.0'
    record = app_lab.records('rollback')[-1]
    assert record['to'] == '1.0.0' and record['record_source'] == 'rollback_version'
    assert app_lab.db_state() == db  # an explicit release rolls no migration back (none is recorded)


@pytest.fixture(scope='module')
def moto():
    server = MotoServer().with_bucket('oncall-records')
    yield server
    server.stop()


def test_rollback_reads_the_record_from_s3_when_the_report_directory_is_gone(app_lab, moto):
    store = dict(type='s3', bucket='oncall-records', prefix='lab', region=CREDENTIALS['region'],
                 endpoint_url=moto.url, access_key=CREDENTIALS['access_key'], secret_key=CREDENTIALS['secret_key'])
    deploy = app_lab.deploy('2.0.0', oncall_report_store=store)
    assert deploy.returncode == 0, out(deploy)
    s3 = moto.client('s3')
    keys = [o['Key'] for o in s3.list_objects_v2(Bucket='oncall-records', Prefix='lab/')['Contents']]
    assert 'lab/deploy-app-latest.json' in keys or any(k.endswith('-latest.json') for k in keys), keys
    latest = [k for k in keys if k.startswith('lab/deploy-') and k.endswith('-latest.json')][0]
    stored = json.loads(s3.get_object(Bucket='oncall-records', Key=latest)['Body'].read())
    assert stored['version'] == '2.0.0' and stored['previous_version'] == '1.0.0'

    shutil.rmtree(app_lab.report_dir)  # a fresh execution environment
    os.remove(os.path.join(app_lab.app_dir, '.oncall-deploy-latest.json'))  # only S3 has it
    run = app_lab.deploy(None, playbook='rollback.yml', oncall_report_store=store)
    assert run.returncode == 0, out(run)
    assert 'record from s3://oncall-records/lab' in run.stdout, out(run)
    assert app_lab.live_release() == '1.0.0' and app_lab.version() == '1.0.0'
    migrations, notes = app_lab.db_state()
    assert '20261124000000' not in migrations and not notes  # this inventory's migration rollback ran
    assert CREDENTIALS['secret_key'] not in run.stdout + run.stderr + deploy.stdout + deploy.stderr

    again = app_lab.deploy(None, playbook='rollback.yml', oncall_report_store=store)
    assert recap(again)['changed'] == 0 and recap(again)['failed'] == 0, out(again)
