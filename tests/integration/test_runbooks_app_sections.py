# -*- coding: utf-8 -*-
"""The application-side sections of runbooks 003 and 004 (issue 19): logging, analytics,
authentication failures, AI model timeouts and the vector database, against the lab (the sample
app under real pm2, real Redis and PostgreSQL 15; tests/helpers/app.py) and, for CloudWatch
Logs and STS, moto in server mode (tests/helpers/aws.py). One lab for the whole file; each
playbook is driven once per scenario and several things are asserted on that run."""

from __future__ import annotations

import json
import os
import time

import pytest

from helpers.app import app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers.aws import MotoServer
from helpers import ROOT, recap, run_module
from helpers.k8s import Emulator, FakeController
from helpers.runbooks import report, verdicts

SECRETS = ('lab-oauth-Secret-42', 'lab-session-Secret-42')


@pytest.fixture(scope='module')
def app_lab(app_lab_session):  # pylint: disable=redefined-outer-name
    """The session's app lab, reset once for this file (each test leaves the app online)."""
    app_lab_session.reset()
    return app_lab_session


@pytest.fixture(scope='module')
def moto():
    server = MotoServer()
    yield server
    server.stop()


def out(proc):
    return proc.stdout[-5000:] + proc.stderr[-2000:]


def run(lab, name, extra=None, check=False, remediate=False, **more):
    extra = dict(extra or {}, **more)
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

    healthy = run(app_lab, 'logging', extra=aws)
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
    no_switch = run(app_lab, 'logging', remediate=True, extra=stale_vars)
    assert 'logging verdict critical' in no_switch.stdout, out(no_switch)
    assert 'restart the service with -e logging_restart=true' in no_switch.stdout
    assert recap(no_switch)['changed'] == 0 and restarts(app_lab) == before
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'logging')['findings'])
    assert found['log streams of %s fresh' % stale]['verdict'] == 'critical'
    assert found['log streams of %s fresh' % stale]['figure'].endswith('s ago in checkout-stream'), found
    pii = found['log search PII term cardNumber in %s' % stale]
    assert pii['verdict'] == 'critical' and pii['figure'] == '1 in checkout-stream'
    assert CARD not in everything(app_lab, no_switch)  # the stream is named, the value never shown

    check = run(app_lab, 'logging', check=True, remediate=True, logging_restart=True, extra=stale_vars)
    assert restarts(app_lab) == before, out(check)
    fixed = run(app_lab, 'logging', remediate=True, logging_restart=True, extra=stale_vars)
    assert recap(fixed)['changed'] > 0 and restarts(app_lab) != before, out(fixed)
    app_lab.wait_version('1.0.0')
    # the restarted service writes again (the lab app does not ship logs: the test writes its line)
    _log(logs, stale, 'app-stream', ['INFO reconnected'])
    after = restarts(app_lab)
    again = run(app_lab, 'logging', remediate=True, logging_restart=True, extra=stale_vars)
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
    from helpers import free_port
    dead = dict(args, endpoint_url='http://127.0.0.1:%d' % free_port(), retries=1,
                searches=[{'name': 'errors', 'filter_pattern': 'ERROR'}])
    nobody = run_module('cloudwatch_logs_search', dead)
    assert not nobody.failed, nobody.result
    assert [(f['object'], f['verdict']) for f in nobody['findings']] == [
        ('AWS caller identity', 'critical'), ('log group iamenu-ecosystem-logs', 'unknown')]
    assert 'sts get-caller-identity' in nobody['findings'][0]['figure']
    assert 'testing-secret' not in nobody.stdout + nobody.stderr


# ---- A loopback stand-in for the external providers (OAuth, AI) ---------------------------

class Provider(object):
    """An HTTP server on a free loopback port: /status answers self.status; /probe answers
    200 to "Authorization: Bearer <self.key>", 401 to any other, 429 when self.quota_left is 0."""

    def __init__(self):
        import http.server
        import threading
        provider = self
        self.status, self.key, self.quota_left, self.seen = 200, 'sk-lab-Secret-777', 100, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == '/status':
                    code = provider.status
                elif self.path == '/probe':
                    provider.seen.append(self.headers.get('Authorization'))
                    code = (401 if self.headers.get('Authorization') != 'Bearer %s' % provider.key
                            else 429 if provider.quota_left <= 0 else 200)
                else:
                    code = 404
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.end_headers()
                self.wfile.write(b'{"status": "%d"}' % code)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope='module')
def provider():
    p = Provider()
    yield p
    p.stop()


# ---- Authentication failures (runbook 003) -------------------------------------------------

def test_auth_failures_session_provider_settings_restart_and_sessions_cleared(app_lab, provider):
    provider.status = 200
    xv = {'auth_failures_provider_url': provider.url + '/status'}
    healthy = run(app_lab, 'auth_failures', extra=xv)
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'auth_failures')['findings'])
    assert 'auth verdict ok' in healthy.stdout, out(healthy)
    assert found['http auth session endpoint']['verdict'] == 'ok'
    assert found['http OAuth provider status']['verdict'] == 'ok'
    assert found['auth settings']['figure'] == '3 of 3 set'
    assert not any(s in everything(app_lab, healthy) for s in SECRETS)  # names only, never values

    # broken: the provider answers 503, the app (the auth service) is down, 25 sessions stored
    r = app_lab.redis()
    ids = ['sid-%02d-Zq8' % i for i in range(25)]
    for sid in ids:
        r.set('sess:' + sid, '{"user": 1}')
    r.set('session-config', 'kept')  # not a session key: never touched
    provider.status = 503
    app_lab.pm2('stop', 'app')
    before = restarts(app_lab)
    xv.update(auth_failures_clear_sessions=True)
    check = run(app_lab, 'auth_failures', check=True, remediate=True, extra=xv)
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'auth_failures-check')['findings'])
    assert found['http auth session endpoint']['verdict'] == 'critical'
    assert found['http OAuth provider status']['verdict'] == 'critical'
    assert found['http OAuth provider status']['threshold'] == 'status 503, expected 200'
    assert found['sessions sess:*']['figure'] == '25'
    assert '25 key(s) match sess:*' in check.stdout, out(check)
    assert not any(sid in everything(app_lab, check) for sid in ids)  # counted, never listed
    assert len(r.keys('sess:*')) == 25 and restarts(app_lab) == before
    assert [p['pm2_env']['status'] for p in app_lab.jlist()] == ['stopped']

    fixed = run(app_lab, 'auth_failures', remediate=True, extra=xv)
    assert recap(fixed)['changed'] >= 2, out(fixed)
    assert r.keys('sess:*') == [] and r.get('session-config') == 'kept'
    assert app_lab.get('/api/auth/session')[0] == 200
    # the provider is still down: the verdict stays critical and names it
    assert 'auth verdict after remediation critical (before: critical)' in fixed.stdout, out(fixed)
    after = restarts(app_lab)
    again = run(app_lab, 'auth_failures', remediate=True, extra=xv)
    assert recap(again)['changed'] == 0 and restarts(app_lab) == after, out(again)
    provider.status = 200


# ---- Vector database (runbook 003, ChromaDB stand-in) --------------------------------------

def test_vector_database_heartbeat_collections_memory_and_restart(app_lab, tmp_path):
    from helpers import free_port
    import urllib.request
    port = free_port()
    saved = dict(app_lab.env)
    app_lab.env.update(CHROMA_PORT=str(port), CHROMA_DATA=str(tmp_path))  # pm2 gives the new process this environment
    try:
        app_lab.pm2('start', os.path.join(ROOT, 'lab', 'app', 'chroma_standin.js'), '--name', 'chromadb')
    finally:
        app_lab.env.clear()
        app_lab.env.update(saved)
    try:
        url = 'http://127.0.0.1:%d' % port
        for _attempt in range(50):
            try:
                urllib.request.urlopen(url + '/api/v2/heartbeat', timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        xv = {'vector_database_url': url}
        req = urllib.request.Request(url + '/api/v2/tenants/default_tenant/databases/default_database/collections',
                                     data=b'{"name": "posts"}', method='POST')
        urllib.request.urlopen(req, timeout=5).read()
        healthy = run(app_lab, 'vector_database', extra=xv)
        found = dict((f['object'], f) for f in report(app_lab.report_dir, 'vector_database')['findings'])
        assert 'vector database verdict ok' in healthy.stdout, out(healthy)
        assert found['vector database heartbeat (%s)' % url]['figure'] == 'answers (version 1.5.9-lab-standin)'
        assert found['vector database collections (default_tenant/default_database)']['figure'] == '1'
        assert found['vector database memory (chromadb)']['verdict'] == 'ok'
        assert ' MB in 1 process(es)' in found['vector database memory (chromadb)']['figure']

        app_lab.pm2('stop', 'chromadb')
        stopped = [(p['name'], p['pm2_env']['status']) for p in app_lab.jlist()]
        check = run(app_lab, 'vector_database', check=True, remediate=True, extra=xv)
        found = dict((f['object'], f) for f in report(app_lab.report_dir, 'vector_database-check')['findings'])
        assert found['vector database heartbeat (%s)' % url]['verdict'] == 'critical'
        assert found['vector database collections (default_tenant/default_database)']['verdict'] == 'unknown'
        assert [(p['name'], p['pm2_env']['status']) for p in app_lab.jlist()] == stopped, out(check)
        fixed = run(app_lab, 'vector_database', remediate=True, extra=xv)
        assert recap(fixed)['changed'] == 1, out(fixed)
        assert 'vector database verdict after remediation ok' in fixed.stdout
        # the collections survived the restart
        assert urllib.request.urlopen(url + '/api/v2/tenants/default_tenant/databases/default_database/collections_count',
                                      timeout=5).read() == b'1'
        again = run(app_lab, 'vector_database', remediate=True, extra=xv)
        assert recap(again)['changed'] == 0, out(again)
    finally:
        app_lab.pm2('delete', 'chromadb')


# ---- Analytics (runbook 004 Story 3.7) -----------------------------------------------------

def test_analytics_stale_then_recalculated_once(app_lab):
    r = app_lab.redis()
    r.set('analytics:last_calculated_at', str(int(time.time() * 1000) - 3600 * 1000))  # an hour ago
    r.delete('bull:analytics:failed')
    r.zadd('bull:analytics:failed', {'7': 1})  # a failed ETL job (BullMQ keeps failed ids in a zset)
    r.hset('bull:analytics:meta', mapping={'opts.maxLenEvents': 10000})
    last_hour = 'SELECT count(*) FROM marketplace."Order" WHERE "createdAt" > now() - interval \'1 hour\''
    with app_lab.pg().cursor() as cur:
        cur.execute(last_hour)
        orders_before = cur.fetchone()[0]
    no_switch = run(app_lab, 'analytics', remediate=True)
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'analytics')['findings'])
    assert 'analytics verdict warning' in no_switch.stdout, out(no_switch)
    assert found['last analytics calculation']['verdict'] == 'warning'
    assert found['last analytics calculation']['figure'].startswith('36')  # 3600 s and a little
    assert found['analytics engine health']['verdict'] == 'ok'
    assert found['failed analytics jobs (analytics)']['figure'] == '1'
    assert found['failed analytics jobs (analytics)']['verdict'] == 'warning'
    # the seed has one order a minute going back in time, so the count moves while the run
    # runs (one order left the hour between the run's query and a later one, in a profiling
    # run): the run's figure lies between the counts taken just before and just after it
    with app_lab.pg().cursor() as cur:
        cur.execute(last_hour)
        orders_after = cur.fetchone()[0]
    orders = int(found['orders created in the last hour']['figure'])
    assert orders > 0 and min(orders_before, orders_after) <= orders <= max(orders_before, orders_after), \
        (orders, orders_before, orders_after)
    assert 'recalculate with -e analytics_recalculate=true' in no_switch.stdout and recap(no_switch)['changed'] == 0
    stamp = r.get('analytics:last_calculated_at')
    check = run(app_lab, 'analytics', check=True, remediate=True, analytics_recalculate=True)
    assert r.get('analytics:last_calculated_at') == stamp, out(check)
    fixed = run(app_lab, 'analytics', remediate=True, analytics_recalculate=True)
    assert recap(fixed)['changed'] == 1 and r.get('analytics:last_calculated_at') != stamp, out(fixed)
    assert 'analytics verdict after remediation warning (before: warning)' in fixed.stdout  # the failed job stays
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'analytics')['findings'])
    assert found['last analytics calculation']['verdict'] == 'ok'
    again = run(app_lab, 'analytics', remediate=True, analytics_recalculate=True)
    assert recap(again)['changed'] == 0, out(again)


# ---- AI model timeouts (runbook 003) ---------------------------------------------------------

def test_ai_model_timeouts_metric_provider_and_key_probe_never_shows_the_key(app_lab, provider):
    r = app_lab.redis()
    r.delete('ai:model_timeouts')
    provider.status, provider.quota_left = 200, 100
    xv = {'ai_model_provider_status_url': provider.url + '/status', 'ai_model_probe_url': provider.url + '/probe',
          'ai_model_api_key': provider.key}
    healthy = run(app_lab, 'ai_model_timeouts', extra=xv)
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'ai_model_timeouts')['findings'])
    assert 'AI verdict ok' in healthy.stdout, out(healthy)
    assert found['AI model timeouts (last 5 minutes)']['figure'] == '0'
    assert provider.seen[-1] == 'Bearer %s' % provider.key  # the probe sent the key
    assert provider.key not in everything(app_lab, healthy)

    now = int(time.time() * 1000)
    r.zadd('ai:model_timeouts', dict(('call-%d' % i, now - i) for i in range(7)))
    r.zadd('ai:model_timeouts', {'old': now - 3600 * 1000})  # outside the 5 minutes
    provider.status, provider.quota_left = 503, 0
    # the lab runs the app under pm2, whose environment comes from its ecosystem file: the
    # services role's env entry point refuses in one sentence, and the report says so
    broken = run(app_lab, 'ai_model_timeouts', remediate=True, ai_model_fallback=True, extra=xv)
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'ai_model_timeouts')['findings'])
    assert found['AI model timeouts (last 5 minutes)']['figure'] == '7'
    assert found['AI model timeouts (last 5 minutes)']['verdict'] == 'warning'
    assert found['http AI provider status page']['verdict'] == 'critical'
    assert found['AI API key and quota']['figure'] == '429 (quota or rate limit reached)'
    assert 'the pm2 backend does not set environment variables on app: set AI_TIMEOUT_MS' in broken.stdout, out(broken)
    assert recap(broken)['changed'] == 0
    # where the env entry point works (Kubernetes; kmock's emulated API, a test controller
    # completing the rollout), the fallback settings are applied once and only what differs
    emulator = Emulator()
    try:
        emulator.create_deployment('prod', 'app', image='app:2.0.0')
        controller = FakeController(emulator, 'prod', 'app')
        k8s = dict(xv, oncall_services_backend='kubernetes', services_k8s_namespace='prod',
                   oncall_k8s={'kubeconfig': emulator.kubeconfig}, services_k8s_poll=1, services_wait_timeout='20s')
        applied = run(app_lab, 'ai_model_timeouts', remediate=True, ai_model_fallback=True, extra=k8s)
        container = emulator.get('prod', 'app')['spec']['template']['spec']['containers'][0]
        assert container['env'] == [{'name': 'AI_TIMEOUT_MS', 'value': '30000'},
                                    {'name': 'AI_FALLBACK_MODEL', 'value': 'small'}], out(applied)
        assert container['image'] == 'app:2.0.0' and controller.rollouts == 1 and recap(applied)['changed'] >= 1
        again = run(app_lab, 'ai_model_timeouts', remediate=True, ai_model_fallback=True, extra=k8s)
        assert recap(again)['changed'] == 0 and controller.rollouts == 1, out(again)
        assert provider.key not in everything(app_lab, applied)
        controller.stop()
    finally:
        emulator.stop()
    wrong = run(app_lab, 'ai_model_timeouts', extra=dict(xv, ai_model_api_key='sk-wrong-Secret-1'))
    found = dict((f['object'], f) for f in report(app_lab.report_dir, 'ai_model_timeouts')['findings'])
    assert found['AI API key and quota']['figure'] == '401 (key refused)'
    assert provider.key not in everything(app_lab, broken) and 'sk-wrong-Secret-1' not in everything(app_lab, wrong)
    provider.status, provider.quota_left = 200, 100
    r.delete('ai:model_timeouts')
