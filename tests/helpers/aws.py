# -*- coding: utf-8 -*-
"""moto in server mode on a free loopback port: the AWS APIs (RDS, CloudWatch Logs) for the
rds_failure runbook and the log search, spoken over HTTP by boto3 exactly as to AWS."""

from __future__ import annotations

import os

from helpers import free_port

REGION = 'eu-west-1'
CREDENTIALS = {'access_key': 'testing', 'secret_key': 'testing-secret', 'region': REGION}


class MotoServer(object):
    def __init__(self):
        from moto.server import ThreadedMotoServer
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address='127.0.0.1', port=self.port, verbose=False)
        self.server.start()
        self.url = 'http://127.0.0.1:%d' % self.port

    def client(self, service):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=CREDENTIALS['access_key'],
                            aws_secret_access_key=CREDENTIALS['secret_key'])

    def reset(self):
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(self.url + '/moto-api/reset', method='POST')).read()

    def with_bucket(self, bucket):
        """Create an S3 bucket in this server's region; returns the server."""
        self.client('s3').create_bucket(Bucket=bucket, CreateBucketConfiguration={'LocationConstraint': REGION})
        return self

    def module_args(self, **kw):
        return dict(CREDENTIALS, endpoint_url=self.url, **kw)

    def stop(self):
        self.server.stop()


def aurora_cluster(rds, cluster='festivals-cluster', members=('festivals-1', 'festivals-2')):
    """An Aurora PostgreSQL cluster whose first member is the writer."""
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine='aurora-postgresql', MasterUsername='festivals',
                          MasterUserPassword='not-a-real-password-1')
    for name in members:
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier=cluster, Engine='aurora-postgresql',
                               DBInstanceClass='db.r6g.large')
    return cluster


def env_for_playbooks():
    # the modules read credentials from their options; keep the environment's out of the way
    return dict((k, '') for k in ('AWS_PROFILE',) if k in os.environ)
