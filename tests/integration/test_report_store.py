# -*- coding: utf-8 -*-
"""The report store (roles/report, oncall_report_store) against moto in server mode
(tests/helpers/aws.py): boto3 and amazon.aws.s3_object speak the S3 API over HTTP exactly as to
AWS. One playbook run per scenario: the report role at the end of a small play."""

from __future__ import annotations

import json
import os
import re

import pytest

from helpers.aws import CREDENTIALS, MotoServer
from helpers import run_playbook

PLAY = """
- name: A run that ends with its report
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Report
      ansible.builtin.include_role:
        name: oncall.runbooks.report
      vars:
        report_name: store_probe
        report_findings:
          - {object: queue email, figure: 12 failed, threshold: 10, verdict: warning}
        report_fail_on: never
"""


@pytest.fixture(scope='module')
def moto():
    server = MotoServer().with_bucket('oncall-reports')
    yield server
    server.stop()


def run(tmp_path, store):
    play = tmp_path / 'play.yml'
    play.write_text(PLAY)
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text('all:\n  hosts:\n    localhost:\n      ansible_connection: local\n')
    reports = tmp_path / 'reports'
    proc = run_playbook(str(play), extra_vars={'oncall_report_store': store, 'oncall_report_dir': str(reports)},
                        inventory=str(inventory))
    return proc, reports


def store_args(moto, **kw):
    return dict(dict(type='s3', bucket='oncall-reports', region=CREDENTIALS['region'], endpoint_url=moto.url,
                     access_key=CREDENTIALS['access_key'], secret_key=CREDENTIALS['secret_key']), **kw)


def test_the_report_is_stored_in_the_bucket_with_the_local_copy(moto, tmp_path):
    proc, reports = run(tmp_path, store_args(moto, prefix='prod/eu'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    local = sorted(os.listdir(reports))
    md = [n for n in local if re.match(r'^store_probe-\d{8}T\d{6}Z\.md$', n)]
    assert len(md) == 1, local
    s3 = moto.client('s3')
    keys = sorted(o['Key'] for o in s3.list_objects_v2(Bucket='oncall-reports', Prefix='prod/eu/')['Contents'])
    assert keys == sorted('prod/eu/' + n for n in local), keys
    body = s3.get_object(Bucket='oncall-reports', Key='prod/eu/' + md[0])['Body'].read().decode()
    assert body == (reports / md[0]).read_text() and 'queue email' in body
    stored = json.loads(s3.get_object(Bucket='oncall-reports', Key='prod/eu/store_probe-latest.json')['Body'].read())
    assert stored['verdict'] == 'warning'
    assert 'stored in s3://oncall-reports/prod/eu' in proc.stdout
    assert CREDENTIALS['secret_key'] not in proc.stdout + proc.stderr


def test_a_store_that_fails_is_a_finding_and_the_local_report_is_still_written(moto, tmp_path):
    proc, reports = run(tmp_path, store_args(moto, bucket='no-such-bucket', retries=0))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    local = [n for n in os.listdir(reports) if n.endswith('.md') and 'latest' not in n]
    assert len(local) == 1
    line = [ln for ln in proc.stdout.splitlines() if 'VERDICT WARNING' in ln][-1]
    assert str(reports / local[0]) in line
    assert 'FINDING report store: cannot store store_probe-' in line and 's3://no-such-bucket' in line, line
    assert CREDENTIALS['secret_key'] not in proc.stdout + proc.stderr


def test_a_path_shaped_prefix_is_refused_in_one_sentence_and_nothing_is_stored(moto, tmp_path):
    proc, reports = run(tmp_path, store_args(moto, prefix='../../etc'))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'oncall_report_store.prefix must be names of letters, digits' in proc.stdout
    assert os.listdir(reports)
    listed = moto.client('s3').list_objects_v2(Bucket='oncall-reports', Prefix='..')
    assert listed.get('KeyCount', 0) == 0
