# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place AWS clients are made (options as amazon.aws names them) and their errors phrased.

Every call goes through botocore's ``standard`` retry mode: throttling and transient errors
are retried with exponential backoff and jitter, up to ``retries`` attempts.
"""

from __future__ import annotations

import traceback

BOTO3_IMP_ERR = None
try:
    import boto3
    import botocore.config
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_BOTO3 = False
    BOTO3_IMP_ERR = traceback.format_exc()


class AwsError(Exception):
    """An AWS failure, phrased for the operator."""


def aws_argument_spec():
    return dict(
        access_key=dict(type='str', aliases=['aws_access_key_id', 'aws_access_key', 'ec2_access_key'], no_log=False),
        secret_key=dict(type='str', aliases=['aws_secret_access_key', 'aws_secret_key', 'ec2_secret_key'], no_log=True),
        session_token=dict(type='str', aliases=['aws_session_token', 'security_token', 'aws_security_token'],
                           no_log=True),
        profile=dict(type='str', aliases=['aws_profile']),
        region=dict(type='str', aliases=['aws_region', 'ec2_region']),
        endpoint_url=dict(type='str', aliases=['aws_endpoint_url', 'ec2_url', 's3_url']),
        validate_certs=dict(type='bool', default=True),
        retries=dict(type='int', default=5),
    )


def client(params, service):
    try:
        session = boto3.session.Session(
            aws_access_key_id=params.get('access_key'), aws_secret_access_key=params.get('secret_key'),
            aws_session_token=params.get('session_token'), profile_name=params.get('profile'),
            region_name=params.get('region'))
        config = botocore.config.Config(retries={'mode': 'standard', 'max_attempts': max(1, params.get('retries') or 1)},
                                        connect_timeout=10, read_timeout=30)
        return session.client(service, endpoint_url=params.get('endpoint_url') or None,
                              verify=params.get('validate_certs', True), config=config)
    except botocore.exceptions.ProfileNotFound:
        raise AwsError('AWS profile %s is not configured: name one of ~/.aws/config' % params.get('profile'))
    except botocore.exceptions.NoRegionError:
        raise AwsError('no AWS region: set region (or AWS_REGION)')


def describe_error(exc, what):
    """One sentence naming the object and what went wrong."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get('Error', {})
        return '%s: %s (%s)' % (what, err.get('Message') or 'no message', err.get('Code') or 'error')
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return '%s: no AWS credentials (set access_key and secret_key, a profile, or an instance role)' % what
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return '%s: cannot reach the AWS endpoint %s' % (what, getattr(exc, 'kwargs', {}).get('endpoint_url', ''))
    return '%s: %s' % (what, exc)


def call(what, fn, **kwargs):
    try:
        return fn(**kwargs)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise AwsError(describe_error(exc, what))
