# -*- coding: utf-8 -*-
"""Every option of every module that looks like it holds a secret is no_log (issue 13 item 7).

Each module under plugins/modules is imported and its main() run until it constructs its
AnsibleModule: the argument spec is taken there, built exactly as the module builds it (shared
specs such as the PostgreSQL or AWS connection options included), and walked with its
suboptions. A new option named like a secret that is not no_log fails this test; a name that
only looks like one goes in ALLOWED, with the reason."""

from __future__ import annotations

import importlib
import os
import re

import pytest
from ansible.module_utils import basic

from helpers.paths import ROOT  # noqa: E402
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'plugins', 'modules'))
                 if f.endswith('.py') and not f.startswith('_'))

# Names that can hold a secret: passwords, passphrases, tokens, keys, secrets, credentials,
# nested libpq parameters (connect_params: password, sslpassword), URLs (user:password@host).
SECRET_NAME = re.compile(r'pass(word|wd|phrase)?|token|secret|credential|(^|_)key($|_)|api_?key|'
                         r'private|connect_params|(^|_)url$|dsn|conninfo|cookie|auth')

# Names that match SECRET_NAME but are not secrets: where a secret is, or what kind it is.
NOT_A_SECRET = re.compile(r'_(path|file|dir|type|size|id|column|prefix|name)$')

ALLOWED = {
    # AWS access key id: an identifier (amazon.aws logs it too); its secret is secret_key, no_log.
    ('cloudwatch_logs_search', 'access_key'),
    ('rds_recovery', 'access_key'),
    # payments_switch: the configuration row's key (e.g. payments_enabled), a name, not a secret.
    ('payments_switch', 'key'),
    # stripe_reconcile: the name of the PaymentIntent metadata field matched against orders.
    ('stripe_reconcile', 'match_metadata_key'),
    # ssl_key (community.postgresql's name): the path of the client key, which libpq reads; the
    # module never reads, logs or returns the key itself.
    ('payments_switch', 'ssl_key'),
    ('pg_backup', 'ssl_key'),
    ('pg_health_info', 'ssl_key'),
    ('pg_maintenance', 'ssl_key'),
    ('stripe_reconcile', 'ssl_key'),
    # Kubernetes client_key: the path of the client certificate's key file (type path, as in
    # kubernetes.core), not the key itself.
    ('cert_info', 'client_key'),
    ('cert_renew', 'client_key'),
    # Endpoints shown in findings and reports, which no_log would mask. The probes' URLs
    # (health_url, metrics_url) are refused when they carry user:password@ (common/urls.py,
    # tests/unit/plugins/module_utils/common/test_urls.py); the AWS endpoint_url is the operator's own moto/VPC endpoint.
    ('cloudwatch_logs_search', 'endpoint_url'),
    ('rds_recovery', 'endpoint_url'),
    ('pm2_process', 'health_url'),
    ('service_watch', 'health_url'),
    ('service_wait', 'health_url'),
    ('service_watch', 'metrics_url'),
    ('stripe_reconcile', 'status_url'),
    # notify: PagerDuty's public Events API endpoint (refused with user:password@; the routing key,
    # the secret, is no_log) and the dedup key, an incident's name (oncall.runbooks/<runbook>/<hosts>).
    ('notify', 'pagerduty_url'),
    ('notify', 'dedup_key'),
    ('vectordb_info', 'url'),
}


class Captured(Exception):
    pass


def _capture(self, *args, **kwargs):
    raise Captured(kwargs['argument_spec'] if 'argument_spec' in kwargs else args[0])


def argument_spec(name, monkeypatch):
    """The spec module `name` gives AnsibleModule, built by its own main()."""
    monkeypatch.setattr(basic.AnsibleModule, '__init__', _capture)
    module = importlib.import_module('ansible_collections.oncall.runbooks.plugins.modules.' + name)
    try:
        module.main()
    except Captured as spec:
        return spec.args[0]
    raise AssertionError('%s.main() never constructed an AnsibleModule' % name)


def walk(spec, prefix=''):
    """(option path, name or alias to judge, its spec) for every option and alias."""
    for option, desc in spec.items():
        yield prefix + option, option, desc
        for alias in desc.get('aliases') or []:
            yield prefix + option, alias, desc  # an alias is judged by its name, allowed by its option
        if desc.get('options'):
            yield from walk(desc['options'], prefix + option + '.')


def looks_secret(option):
    return bool(SECRET_NAME.search(option)) and not NOT_A_SECRET.search(option)


@pytest.mark.parametrize('name', MODULES)
def test_every_secret_looking_option_is_no_log(name, monkeypatch):
    spec = argument_spec(name, monkeypatch)
    assert spec, name
    leaks = sorted(set('%s (%s)' % (path, option) if option != path.rsplit('.', 1)[-1] else path
                       for path, option, desc in walk(spec)
                       if looks_secret(option) and not desc.get('no_log') and (name, path) not in ALLOWED))
    assert leaks == [], '%s: options that can hold a secret but are not no_log: %s' % (name, ', '.join(leaks))


def test_the_allow_list_names_real_options(monkeypatch):
    """An allowed name that no longer exists (renamed, or made no_log) leaves the list."""
    stale = []
    for name, path in sorted(ALLOWED):
        options = dict((p, d) for p, o, d in walk(argument_spec(name, monkeypatch)))
        if path not in options or options[path].get('no_log') or not looks_secret(path.rsplit('.', 1)[-1]):
            stale.append('%s %s' % (name, path))
    assert stale == []


@pytest.mark.parametrize('option,secret', [
    ('login_password', True), ('password', True), ('sasl_password', True), ('key_passphrase', True),
    ('api_key', True), ('apikey', True), ('secret_key', True), ('session_token', True), ('token', True),
    ('connect_params', True), ('url', True), ('redis_url', True), ('private_key', True), ('key', True),
    ('client_secret', True), ('credentials', True),
    ('key_type', False), ('key_size', False), ('key_path', False), ('account_key_path', False),
    ('key_column', False), ('key_prefix', False), ('ca_cert', False), ('login_user', False),
    ('keep', False), ('monkey', False), ('url_path', False),
])
def test_what_looks_like_a_secret(option, secret):
    assert looks_secret(option) is secret
