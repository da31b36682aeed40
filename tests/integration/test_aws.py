# -*- coding: utf-8 -*-
"""RDS recovery and CloudWatch Logs search against moto in server mode (tests/helpers/aws.py):
a real HTTP server speaking the AWS APIs, called by boto3 through the real ansible CLI."""

from __future__ import annotations

import time

import pytest

from helpers.aws import MotoServer, aurora_cluster


@pytest.fixture(scope='module')
def moto():
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture()
def aws(moto):
    moto.reset()
    return moto


def test_rds_recovery_fails_over_a_stopped_writer_then_starts_it(aws, module):
    rds = aws.client('rds')
    aurora_cluster(rds)
    args = aws.module_args(db_cluster_identifier='festivals-cluster', failover=True, start_stopped=True)

    healthy = module('rds_recovery', args)
    assert not healthy.failed, healthy.result
    assert healthy['changed'] is False and healthy['cluster']['writer'] == 'festivals-1'
    assert set(f['verdict'] for f in healthy['findings']) == {'ok'}

    rds.stop_db_instance(DBInstanceIdentifier='festivals-1')  # the writer is down
    check = module('rds_recovery', args, check=True, diff=True)
    assert check['changed'] is True and check['done'] == []
    assert [(i['operation'], i['object']) for i in check['plan']] == [('failover', 'festivals-cluster'),
                                                                      ('start', 'festivals-1')]
    assert check['plan'][0]['target'] == 'festivals-2'
    finding = [f for f in check['findings'] if f['object'] == 'cluster festivals-cluster writer'][0]
    assert finding['verdict'] == 'critical' and finding['figure'] == 'festivals-1 stopped'
    cluster = rds.describe_db_clusters(DBClusterIdentifier='festivals-cluster')['DBClusters'][0]
    assert [m['DBInstanceIdentifier'] for m in cluster['DBClusterMembers'] if m['IsClusterWriter']] == ['festivals-1']

    fix = module('rds_recovery', args, diff=True)
    assert fix['changed'] is True and len(fix['done']) == 2, fix.result
    assert fix['cluster']['writer'] == 'festivals-2'
    statuses = dict((i['id'], i['status']) for i in fix['instances'])
    assert statuses == {'festivals-1': 'available', 'festivals-2': 'available'}

    again = module('rds_recovery', args)
    assert again['changed'] is False and again['plan'] == []


def test_rds_recovery_without_an_available_reader_plans_nothing_and_says_why(aws, module):
    rds = aws.client('rds')
    aurora_cluster(rds, members=('festivals-1',))
    rds.stop_db_instance(DBInstanceIdentifier='festivals-1')
    run = module('rds_recovery', aws.module_args(db_cluster_identifier='festivals-cluster', failover=True))
    assert run['changed'] is False and run['plan'] == []
    assert 'no other reader is available' in run['skipped_items'][0]['why']


def test_rds_recovery_errors_are_one_sentence_and_secrets_never_shown(aws, module):
    run = module('rds_recovery', aws.module_args(db_instance_identifier='nope'), verbosity=3)
    assert run.failed and 'describe DB instance nope' in run['msg'] and 'Traceback' not in run['msg']
    assert 'testing-secret' not in run.stdout + run.stderr


# The aliases amazon.aws 10.0.0 removed (its changelog, "Removed Features": ec2_access_key,
# ec2_secret_key, security_token, aws_security_token, ec2_region, ec2_url, s3_url) are refused.
REMOVED_ALIASES = {'ec2_access_key': 'testing', 'ec2_secret_key': 'testing-secret', 'security_token': 'tok',
                   'aws_security_token': 'tok', 'ec2_region': 'eu-west-1', 'ec2_url': None, 's3_url': None}


@pytest.mark.parametrize('alias', sorted(REMOVED_ALIASES))
def test_an_alias_amazon_aws_removed_is_refused_in_one_sentence_and_nothing_is_done(aws, module, alias):
    rds = aws.client('rds')
    aurora_cluster(rds)
    rds.stop_db_instance(DBInstanceIdentifier='festivals-1')  # a failover would be planned and done
    args = aws.module_args(db_cluster_identifier='festivals-cluster', failover=True)
    args[alias] = REMOVED_ALIASES[alias] or args['endpoint_url']
    run = module('rds_recovery', args)
    assert run.failed and '\n' not in run['msg'] and 'Traceback' not in run['msg']
    assert run['msg'].startswith('Unsupported parameters for (oncall.runbooks.rds_recovery) module: %s. ' % alias)
    cluster = rds.describe_db_clusters(DBClusterIdentifier='festivals-cluster')['DBClusters'][0]
    assert [m['DBInstanceIdentifier'] for m in cluster['DBClusterMembers'] if m['IsClusterWriter']] == ['festivals-1']


def test_the_aliases_amazon_aws_10_keeps_still_work(aws, module):
    rds = aws.client('rds')
    aurora_cluster(rds)
    run = module('rds_recovery', dict(aws_access_key_id='testing', aws_secret_access_key='testing-secret',
                                      aws_session_token='testing-token', aws_region='eu-west-1',
                                      aws_endpoint_url=aws.url, db_cluster_identifier='festivals-cluster'))
    assert not run.failed and run['cluster']['writer'] == 'festivals-1', run.result
    run = module('rds_recovery', dict(aws_access_key='testing', aws_secret_key='testing-secret',
                                      region='eu-west-1', endpoint_url=aws.url, db_cluster_identifier='festivals-cluster'))
    assert not run.failed and run['cluster']['writer'] == 'festivals-1', run.result


def test_rds_recovery_wait_timeout_is_a_duration(aws, module):
    rds = aws.client('rds')
    aurora_cluster(rds)
    rds.stop_db_instance(DBInstanceIdentifier='festivals-1')
    args = aws.module_args(db_cluster_identifier='festivals-cluster', start_stopped=True)
    for bad, msg in (('7h', "wait_timeout must be a duration from 1s to 21600s, not '7h'"),
                     ('an hour', "wait_timeout must be a duration such as 30s, 10m, 24h or 7d, not 'an hour'")):
        run = module('rds_recovery', dict(args, wait_timeout=bad))
        assert run.failed and run['msg'] == msg
    assert dict((i['DBInstanceIdentifier'], i['DBInstanceStatus']) for i in rds.describe_db_instances()['DBInstances'])[
        'festivals-1'] == 'stopped'
    run = module('rds_recovery', dict(args, wait_timeout='2m'))
    assert not run.failed and [d['operation'] for d in run['done']] == ['start'], run.result


def test_cloudwatch_logs_search_counts_matches_against_their_maximum(aws, module):
    logs = aws.client('logs')
    logs.create_log_group(logGroupName='/aws/lambda/iamenu-logs')
    logs.create_log_stream(logGroupName='/aws/lambda/iamenu-logs', logStreamName='app-stream')
    now = int(time.time() * 1000)
    lines = ['INFO request served'] * 5 + ['ERROR upstream timeout', 'ERROR payment declined',
                                           'notification_error smtp refused']
    logs.put_log_events(logGroupName='/aws/lambda/iamenu-logs', logStreamName='app-stream',
                        logEvents=[{'timestamp': now - 60000 + i, 'message': m} for i, m in enumerate(lines)])
    logs.put_log_events(logGroupName='/aws/lambda/iamenu-logs', logStreamName='app-stream',
                        logEvents=[{'timestamp': now - 3 * 3600 * 1000, 'message': 'ERROR old, outside the hour'}])
    args = aws.module_args(log_group_name='/aws/lambda/iamenu-logs', since='1h', max_events=1,
                           searches=[{'name': 'errors', 'filter_pattern': 'ERROR', 'max': 1},
                                     {'name': 'notification errors', 'filter_pattern': 'notification_error',
                                      'max': 5}])
    run = module('cloudwatch_logs_search', args, check=True)
    assert not run.failed, run.result
    errors, notif = run['searches']
    assert errors['count'] == 2 and [e['message'] for e in errors['events']] == ['ERROR payment declined']
    assert notif['count'] == 1
    assert [f['verdict'] for f in run['findings']] == ['warning', 'ok']
    assert run['log_streams'][0]['name'] == 'app-stream'


def test_rds_failure_playbook_fails_over_once_and_check_mode_changes_nothing(aws, tmp_path):
    from helpers import free_port, run_playbook
    from helpers.runbooks import ok_run, report, verdicts, worst
    rds = aws.client('rds')
    aurora_cluster(rds)
    logs = aws.client('logs')
    logs.create_log_group(logGroupName='festivals-db')
    logs.create_log_stream(logGroupName='festivals-db', logStreamName='postgresql')
    logs.put_log_events(logGroupName='festivals-db', logStreamName='postgresql',
                        logEvents=[{'timestamp': int(time.time() * 1000) - 1000,
                                    'message': 'ERROR: terminating connection due to administrator command'}])
    reports = str(tmp_path / 'reports')
    # the shared AWS connection (oncall_aws_*), given to both modules of the group
    # oncall.runbooks.aws through the play's module_defaults
    xv = {'rds_failure_cluster': 'festivals-cluster', 'oncall_aws_region': 'eu-west-1',
          'oncall_aws_endpoint_url': aws.url, 'oncall_aws_access_key': 'testing',
          'oncall_aws_secret_key': 'testing-secret', 'oncall_aws_session_token': 'testing-session-token',
          'rds_failure_log_group': 'festivals-db',
          'rds_failure_log_searches': [{'name': 'errors', 'filter_pattern': 'ERROR', 'max': 5}]}
    rb = 'playbooks/runbooks/rds_failure.yml'

    def run(**kw):
        return run_playbook(rb, env={'ONCALL_REPORT_DIR': reports}, **kw)

    healthy = run(extra_vars=xv)
    ok_run(healthy, 'localhost')
    assert worst(report(reports, 'rds_failure')) == 'ok', healthy.stdout[-3000:]
    assert 'testing-session-token' not in healthy.stdout + healthy.stderr

    rds.stop_db_instance(DBInstanceIdentifier='festivals-1')
    broken = run(extra_vars=xv)
    ok_run(broken, 'localhost')
    rep = report(reports, 'rds_failure')
    assert verdicts(rep)['cluster festivals-cluster writer'] == 'critical'
    assert rep['tables'][1]['rows'][0]['message'].startswith('ERROR: terminating')

    def state():
        c = rds.describe_db_clusters(DBClusterIdentifier='festivals-cluster')['DBClusters'][0]
        insts = rds.describe_db_instances()['DBInstances']
        return ([m['DBInstanceIdentifier'] for m in c['DBClusterMembers'] if m['IsClusterWriter']],
                sorted((i['DBInstanceIdentifier'], i['DBInstanceStatus']) for i in insts))

    switches = dict(xv, rds_failure_failover=True, rds_failure_start_stopped=True)
    before = state()
    check = run(extra_vars=switches, tags='remediate', check=True)
    ok_run(check, 'localhost')
    assert state() == before

    fix = run(extra_vars=switches, tags='remediate')
    assert ok_run(fix, 'localhost')['changed'] == 1, fix.stdout[-4000:]
    assert state() == (['festivals-2'], [('festivals-1', 'available'), ('festivals-2', 'available')])
    assert worst(report(reports, 'rds_failure'), when='after remediation') == 'ok'

    again = run(extra_vars=switches, tags='remediate')
    assert ok_run(again, 'localhost')['changed'] == 0
    assert state() == (['festivals-2'], [('festivals-1', 'available'), ('festivals-2', 'available')])

    # the API says available but the database does not answer (nothing listens on its port):
    # the reboot switch reboots the instance (moto accepts the call; its state does not change)
    rds.create_db_instance(DBInstanceIdentifier='festivals-production', Engine='postgres',
                           DBInstanceClass='db.t3.micro', AllocatedStorage=20)
    single = {'rds_failure_instance': 'festivals-production', 'oncall_aws_region': 'eu-west-1',
              'oncall_aws_endpoint_url': aws.url, 'oncall_aws_access_key': 'testing',
              'oncall_aws_secret_key': 'testing-secret',
              'rds_failure_db_check': {'login_host': '127.0.0.1', 'login_port': free_port(), 'db': 'postgres'}}
    down = run(extra_vars=single)
    ok_run(down, 'localhost')
    assert worst(report(reports, 'rds_failure')) == 'critical'
    off = run(extra_vars=single, tags='remediate')
    assert ok_run(off, 'localhost')['changed'] == 0
    reboot = run(extra_vars=dict(single, rds_failure_reboot=True), tags='remediate')
    assert ok_run(reboot, 'localhost')['changed'] == 1
    applied = report(reports, 'rds_failure')['steps'][0]['results'][0]['applied']
    assert [(a['operation'], a['object']) for a in applied] == [('reboot', 'festivals-production')]


def test_kafka_consumer_lag_info_unreachable_broker_is_one_sentence(module):
    """No Kafka broker is available here: the lag computation is tested against recorded admin
    API answers (tests/unit/plugins/module_utils/kafka/test_kafka_lag.py); this runs the real kafka-python client against a
    loopback port where nothing listens, through the ansible CLI."""
    from helpers import free_port
    port = free_port()
    run = module('kafka_consumer_lag_info', {'bootstrap_servers': ['127.0.0.1:%d' % port], 'groups': ['holdwall-worker'],
                                             'timeout': '3s', 'sasl_password': 'kafka-Secret-9'}, verbosity=3)
    assert run.failed and run['msg'].startswith('cannot reach Kafka at 127.0.0.1:%d' % port), run.result
    assert 'Traceback' not in run['msg'] and 'kafka-Secret-9' not in run.stdout + run.stderr


def test_log_search_playbook_reports_the_counts_and_changes_nothing(aws, tmp_path):
    from helpers import run_playbook
    from helpers.runbooks import ok_run, report, verdicts
    logs = aws.client('logs')
    logs.create_log_group(logGroupName='/aws/lambda/iamenu-logs')
    logs.create_log_stream(logGroupName='/aws/lambda/iamenu-logs', logStreamName='app-stream')
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName='/aws/lambda/iamenu-logs', logStreamName='app-stream',
                        logEvents=[{'timestamp': now - 5000 + i, 'message': m} for i, m in
                                   enumerate(['ERROR db timeout'] * 3 + ['INFO ok', 'notification_error smtp'])])
    reports = str(tmp_path / 'reports')
    xv = {'log_search_group': '/aws/lambda/iamenu-logs', 'oncall_aws_region': 'eu-west-1',
          'oncall_aws_endpoint_url': aws.url, 'oncall_aws_access_key': 'testing',
          'oncall_aws_secret_key': 'testing-secret',
          'log_search_searches': [{'name': 'errors', 'filter_pattern': 'ERROR', 'max': 2},
                                  {'name': 'notification errors', 'filter_pattern': 'notification_error', 'max': 1}]}

    def events():
        return logs.filter_log_events(logGroupName='/aws/lambda/iamenu-logs')['events']
    before = events()
    for check in (True, False, False):
        run = run_playbook('playbooks/runbooks/log_search.yml', extra_vars=xv, check=check,
                           env={'ONCALL_REPORT_DIR': reports})
        assert ok_run(run, 'localhost')['changed'] == 0
    v = verdicts(report(reports, 'log_search'))
    assert v['log search errors in /aws/lambda/iamenu-logs'] == 'warning'
    assert v['log search notification errors in /aws/lambda/iamenu-logs'] == 'ok'
    assert events() == before
