# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """AWS connection options shared by the AWS modules (names and aliases as amazon.aws 10 has them)."""

    DOCUMENTATION = r'''
options:
  access_key:
    description:
      - AWS access key ID. When unset, boto3's own chain applies (environment, profile, instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description: AWS secret access key. Never logged, never returned.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description: AWS session token, for temporary credentials. Never logged, never returned.
    type: str
    aliases: [aws_session_token]
  profile:
    description: Named profile of the AWS configuration files.
    type: str
    aliases: [aws_profile]
  region:
    description: AWS region (C(eu-west-1)); boto3's configured region when unset.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - URL of the service endpoint, for an AWS-compatible API such as moto or a VPC endpoint.
    type: str
    aliases: [aws_endpoint_url]
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  retries:
    description:
      - Attempts of each API call on throttling and transient errors, with exponential backoff
        and jitter (botocore's C(standard) retry mode).
    type: int
    default: 5
requirements:
  - boto3 (Python library)
'''
