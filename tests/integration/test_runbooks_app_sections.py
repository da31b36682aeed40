# -*- coding: utf-8 -*-
"""The application-side sections of runbooks 003 and 004 (issue 19): logging, analytics,
authentication failures, AI model timeouts and the vector database, against the lab (the sample
app under real pm2, real Redis and PostgreSQL 15; tests/app_harness.py) and, for CloudWatch
Logs and STS, moto in server mode (tests/aws_harness.py). One lab for the whole file; each
playbook is driven once per scenario and several things are asserted on that run."""

from __future__ import annotations

import json
import os
import time

import pytest

from app_harness import app_lab, app_lab_session  # noqa: F401  pylint: disable=unused-import
from aws_harness import MotoServer
from conftest import recap, run_module
from runbooks_harness import report, verdicts

SECRETS = ('lab-oauth-Secret-42', 'lab-session-Secret-42')


@pytest.fixture(scope='module')
def moto():
    server = MotoServer()
    yield server
    server.stop()


def out(proc):
    return proc.stdout[-5000:] + proc.stderr[-2000:]


def run(lab, name, check=False, remediate=False, **extra):
    proc = lab.playbook('runbooks/%s.yml' % name, extra_vars=extra or None, check=check,
                        tags='remediate' if remediate else None)
    counts = recap(proc)
    # a critical verdict fails the job on purpose, after the report; nothing else fails
    assert counts['failed'] == 0 and (proc.returncode == 0) != counts['verdict_failed'], out(proc)
    return proc


def everything(lab, proc):
    """All a run showed: its output and every report file it wrote."""
    text = proc.stdout + proc.stderr
    for name in os.listdir(lab.report_dir):
        with open(os.path.join(lab.report_dir, name), errors='replace') as fh:
            text += fh.read()
    return text


def restarts(lab):
    return [(p['pm_id'], p['pm2_env']['restart_time']) for p in lab.jlist()]


# ---- Logging (runbook 004 Story 3.8) -------------------------------------------------------

CARD = '4111111111111111'


def _log(logs, group, stream, lines, age_s=1):
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000) - int(age_s * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{'timestamp': now + i, 'message': json.dumps(m) if isinstance(m, dict) else m}
                                   for i, m in enumerate(lines)])


def test_logging_fresh_pii_settings_identity_searches_and_restart(app_lab, moto):
    moto.reset()
    logs = moto.client('logs')
    group = 'iamenu-ecosystem-logs'
    logs.create_log_group(logGroupName=group)
    _log(logs, group, 'app-stream', [
        {'level': 'INFO', 'service': 'community', 'userId': 'user_12345', 'msg': 'post created'},
        {'level': 'ERROR', 'service': 'community', 'userId': 'user_12345', 'msg': 'feed timeout'},
        {'level': 'ERROR', 'service': 'payments', 'userId': 'user_777', 'msg': 'card declined'},
        {'level': 'INFO', 'service': 'community', 'userId': 'user_777', 'msg': 'post read'}])
    aws = {'oncall_aws_region': 'eu-west-1', 'oncall_aws_endpoint_url': moto.url, 'oncall_aws_access_key': 'testing',
           'oncall_aws_secret_key': 'testing-secret', 'logging_group': group, 'logging_service': 'community',
           'logging_user': 'user_12345',
           # the runbook's 10 s is the default; a playbook run on this shared machine takes longer
           'logging_fresh_within': '3m'}

    healthy = run(app_lab, 'logging', **aws)
    rep = report(app_lab.report_dir, 'logging')
    v = verdicts(rep)
    assert 'logging verdict ok' in healthy.stdout, out(healthy)
    assert v['CloudWatch logging settings'] == 'ok' and v['AWS caller identity'] == 'ok'
    assert v['log streams of %s fresh' % group] == 'ok'
    assert all(v['log search PII term %s in %s' % (t, group)] == 'ok' for t in ('password', 'creditCard', 'ssn', 'cardNumber'))
    figures = dict((f['object'], f['figure']) for f in rep['findings'])
    assert figures['CloudWatch logging settings'] == '3 of 3 set'
    assert figures['AWS caller identity'].startswith('arn:aws:')
    # by service and level: the community service's one error; by user: two events
    assert figures['log search errors of service community in %s' % group] == '1'
    assert figures['log search activity of user user_12345 in %s' % group] == '2'
    assert figures['service log (%s/logs/app-*.log)' % app_lab.pm2_home].endswith('lines read')
    assert 'iamenu-ecosystem-logs' not in figures['CloudWatch logging settings']  # names, not values

    # broken: the logs stopped 10 minutes ago, and the last line written carried a card number
    stale = 'iamenu-stale-logs'
    logs.create_log_group(logGroupName=stale)
    _log(logs, stale, 'app-stream', ['INFO last words'], age_s=600)
    _log(logs, stale, 'checkout-stream', ['payment for cardNumber=%s accepted' % CARD], age_s=600)
    stale_vars = dict(aws, logging_group=stale)
    before = restarts(app_lab)
    no_switch = run(app_lab, 'logging', remediate=True, **stale_vars)
    assert 'logging verdict critical' in no_switch.stdout, out(no_switch)
    assert 'restart the service with -e logging_restart=true' in no_switch.stdout
    assert recap(no_switch)['changed'] == 0 and restarts(app_lab) == before
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'logging')['findings'])
    assert found['log streams of %s fresh' % stale]['verdict'] == 'critical'
    assert found['log streams of %s fresh' % stale]['figure'].endswith('s ago in checkout-stream'), found
    pii = found['log search PII term cardNumber in %s' % stale]
    assert pii['verdict'] == 'critical' and pii['figure'] == '1 in checkout-stream'
    assert CARD not in everything(app_lab, no_switch)  # the stream is named, the value never shown

    check = run(app_lab, 'logging', check=True, remediate=True, logging_restart=True, **stale_vars)
    assert restarts(app_lab) == before, out(check)
    fixed = run(app_lab, 'logging', remediate=True, logging_restart=True, **stale_vars)
    assert recap(fixed)['changed'] > 0 and restarts(app_lab) != before, out(fixed)
    app_lab.wait_version('1.0.0')
    # the restarted service writes again (the lab app does not ship logs: the test writes its line)
    _log(logs, stale, 'app-stream', ['INFO reconnected'])
    after = restarts(app_lab)
    again = run(app_lab, 'logging', remediate=True, logging_restart=True, **stale_vars)
    assert recap(again)['changed'] == 0 and restarts(app_lab) == after, out(again)
    assert verdicts(report(app_lab.report_dir, 'logging'))['log streams of %s fresh' % stale] == 'ok'
    assert CARD not in everything(app_lab, again)


def test_logging_bad_credentials_and_hostile_search_values_are_findings(moto):
    moto.reset()
    logs = moto.client('logs')
    logs.create_log_group(logGroupName='iamenu-ecosystem-logs')
    args = moto.module_args(log_group_name='iamenu-ecosystem-logs', caller_identity=True,
                            searches=[{'name': 'user', 'fields': {'userId': 'x") || ($.level = *'}}])
    hostile = run_module('cloudwatch_logs_search', args)
    assert hostile.failed and hostile['msg'] == ("searches[0].fields.userId must be a field value (letters, digits "
                                                 "and _ . : @ / + -), not 'x\") || ($.level = *'"), hostile.result
    # no endpoint answers: the identity is a critical finding with its sentence, the group unknown
    from conftest import free_port
    dead = dict(args, endpoint_url='http://127.0.0.1:%d' % free_port(), retries=1,
                searches=[{'name': 'errors', 'filter_pattern': 'ERROR'}])
    nobody = run_module('cloudwatch_logs_search', dead)
    assert not nobody.failed, nobody.result
    assert [(f['object'], f['verdict']) for f in nobody['findings']] == [
        ('AWS caller identity', 'critical'), ('log group iamenu-ecosystem-logs', 'unknown')]
    assert 'sts get-caller-identity' in nobody['findings'][0]['figure']
    assert 'testing-secret' not in nobody.stdout + nobody.stderr
