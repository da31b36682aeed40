# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place AWS clients are made (options as amazon.aws names them) and their errors phrased.

Every call goes through botocore's ``standard`` retry mode: throttling and transient errors
are retried with exponential backoff and jitter, up to ``retries`` attempts.
"""

from __future__ import annotations

import re
import traceback

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

from urllib.parse import urlsplit

BOTO3_IMP_ERR = None
try:
    import boto3
    import botocore.config
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_BOTO3 = False
    BOTO3_IMP_ERR = traceback.format_exc()


class AwsError(OncallError):
    """An AWS failure, phrased for the operator."""


def aws_argument_spec():
    """The connection options with amazon.aws 10's names and aliases (it removed ec2_access_key,
    ec2_secret_key, security_token, aws_security_token, ec2_region, ec2_url and s3_url)."""
    return dict(
        access_key=dict(type='str', aliases=['aws_access_key_id', 'aws_access_key'], no_log=False),
        secret_key=dict(type='str', aliases=['aws_secret_access_key', 'aws_secret_key'], no_log=True),
        session_token=dict(type='str', aliases=['aws_session_token'], no_log=True),
        profile=dict(type='str', aliases=['aws_profile']),
        region=dict(type='str', aliases=['aws_region']),
        endpoint_url=dict(type='str', aliases=['aws_endpoint_url']),
        validate_certs=dict(type='bool', default=True),
        retries=dict(type='int', default=5),
    )


ACCESS_KEY = re.compile(r'[A-Za-z0-9]{1,128}', re.ASCII)
PRINTABLE = re.compile(r'[!-~]+', re.ASCII)  # visible ASCII, no spaces
PROFILE = re.compile(r'[A-Za-z0-9_.@+=,:/-]{1,128}', re.ASCII)
REGION = re.compile(r'[a-z]{2}(-[a-z]+)+-[0-9]{1,2}', re.ASCII)
IDENTIFIER = re.compile(r'[A-Za-z][A-Za-z0-9-]{0,62}', re.ASCII)  # RDS instance and cluster identifiers


def validate(params):
    """The connection options, before any call (one sentence naming the option)."""
    try:
        if params.get('access_key') is not None:
            opt.text('access_key', params['access_key'], max_length=128, pattern=ACCESS_KEY,
                     what='an AWS access key id (letters and digits)')
        if params.get('secret_key') is not None:
            opt.text('secret_key', params['secret_key'], max_length=128, pattern=PRINTABLE,
                     what='an AWS secret access key')
        if params.get('session_token') is not None:
            opt.text('session_token', params['session_token'], max_length=8192, pattern=PRINTABLE,
                     what='an AWS session token')
        if params.get('profile') is not None:
            opt.text('profile', params['profile'], max_length=128, pattern=PROFILE, what='a profile name of ~/.aws/config')
        if params.get('region') is not None:
            opt.text('region', params['region'], max_length=32, pattern=REGION, what='an AWS region such as eu-west-1')
        if params.get('endpoint_url') is not None:
            url = opt.text('endpoint_url', params['endpoint_url'], max_length=2048, pattern=PRINTABLE,
                           what='a URL such as https://rds.eu-west-1.amazonaws.com')
            try:
                parts = urlsplit(url)
                port = parts.port
            except ValueError:
                port = parts = None
            if parts is None or parts.scheme not in ('http', 'https') or not parts.hostname or \
                    (port is not None and not 0 < port < 65536):
                raise opt.OptionError('endpoint_url must be an http:// or https:// URL with a host, such as '
                                      'https://rds.eu-west-1.amazonaws.com')
        opt.number('retries', params.get('retries'), low=1, high=20, integer=True)
    except opt.OptionError as exc:
        raise AwsError(str(exc))


def identifier(option, value):
    """An RDS instance or cluster identifier (1 to 63 letters, digits and hyphens, a letter first)."""
    try:
        return opt.text(option, value, max_length=63, pattern=IDENTIFIER,
                        what='an RDS identifier (letters, digits and hyphens, a letter first)')
    except opt.OptionError as exc:
        raise AwsError(str(exc))


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
