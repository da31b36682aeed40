# -*- coding: utf-8 -*-
"""The one module runner (module_utils/common/runner.py) with a real AnsibleModule in-process:
an expected error is one sentence with the partial results, a bug is an internal error with its
traceback in ``exception``, a missing or old library is one sentence with the pip install."""

from __future__ import annotations

import json
import sys

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import (
    DependencyError, OncallError)


@pytest.fixture
def tracebacks(monkeypatch):
    """Ask for tracebacks on errors, as ANSIBLE_DISPLAY_TRACEBACK=error does for a real run."""
    from ansible.module_utils._internal import _traceback
    monkeypatch.setattr(_traceback, '_is_traceback_enabled', lambda event: True)


def outcome(capsys, body, args=None, **kwargs):
    """Run body through runner.run in a real AnsibleModule; returns (exit code, result)."""
    module_args = dict(args or {}, _ansible_module_name='oncall.runbooks.redis_queue')
    with patch_module_args(module_args):
        module = AnsibleModule(argument_spec=dict(name=dict(type='str'),
                                                  password=dict(type='str', no_log=True)),
                               supports_check_mode=True)
        with pytest.raises(SystemExit) as exc:
            runner.run(module, body, **kwargs)
    out = capsys.readouterr().out
    return exc.value.code, json.loads(out[out.index('{'):])


def one_sentence(msg):
    return msg and '\n' not in msg and '. ' not in msg.rstrip('.')


def test_a_result_is_returned_as_it_is(capsys):
    code, res = outcome(capsys, lambda m: dict(changed=True, plan=[{'object': 'q', 'action': 'pause'}]))
    assert code == 0 and res['changed'] is True and res['plan'] == [{'object': 'q', 'action': 'pause'}]
    assert 'failed' not in res


def test_an_expected_error_is_one_sentence_with_its_partial_results(capsys):
    def body(module):
        raise OncallError('pause q failed after 1 of 2 action(s): cannot reach Redis at h:1/0',
                          actions=[{'object': 'a', 'action': 'pause', 'count': 1}], changed=True)
    code, res = outcome(capsys, body)
    assert code == 1 and res['failed'] is True
    assert res['msg'] == 'pause q failed after 1 of 2 action(s): cannot reach Redis at h:1/0'
    assert res['actions'] == [{'object': 'a', 'action': 'pause', 'count': 1}] and res['changed'] is True
    assert 'internal error' not in res['msg']


def test_every_domain_error_is_an_oncall_error():
    from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues import QueueError
    from ansible_collections.oncall.runbooks.plugins.module_utils.redis.connection import RedisConnectionError
    from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.connection import PgConnectionError
    from ansible_collections.oncall.runbooks.plugins.module_utils.postgres.maintenance import MaintenanceError
    from ansible_collections.oncall.runbooks.plugins.module_utils.stripe.reconcile import ApplyFailed, ReconcileError
    from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError
    from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import DurationError
    from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import OptionError
    for cls in (QueueError, RedisConnectionError, PgConnectionError, MaintenanceError, ReconcileError, CertError,
                DurationError, OptionError):
        assert issubclass(cls, OncallError), cls
    # the ValueError ones stay ValueErrors for the callers that catch them as such
    assert issubclass(DurationError, ValueError) and issubclass(OptionError, ValueError)
    failed = ApplyFailed([{'object': 'pi_1', 'action': 'refund'}], 'refund pi_2 failed: card declined')
    assert isinstance(failed, OncallError) and failed.results == {'actions': [{'object': 'pi_1', 'action': 'refund'}]}


def test_a_domain_error_raised_deep_in_the_body_keeps_its_sentence(capsys):
    from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import parse_duration
    code, res = outcome(capsys, lambda m: parse_duration('ten minutes', 'older_than'))
    assert code == 1 and res['msg'] == "older_than must be a duration such as 30s, 10m, 24h or 7d, not 'ten minutes'"


def test_a_bug_is_an_internal_error_with_its_traceback(capsys, tracebacks):
    def body(module):
        plan = {}
        return plan['missing key']  # a bug in our code: never "Redis ... failed"
    code, res = outcome(capsys, body)
    assert code == 1 and res['failed'] is True
    assert res['msg'] == ("internal error in oncall.runbooks.redis_queue: KeyError: 'missing key'; "
                          "please report it")
    assert 'Traceback (most recent call last)' in res['exception'] and "plan['missing key']" in res['exception']
    assert 'Redis' not in res['msg']


def test_a_bug_never_shows_a_secret_option(capsys, tracebacks):
    def body(module):
        raise TypeError('cannot use %s here' % module.params['password'])
    code, res = outcome(capsys, body, args=dict(password='s3cr3t-pass'))
    assert code == 1 and res['msg'].startswith('internal error in oncall.runbooks.redis_queue: TypeError: ')
    assert 's3cr3t-pass' not in json.dumps(res)


def test_describe_phrases_the_servers_errors_and_nothing_else(capsys, tracebacks):
    class ServerSaidNo(Exception):
        pass

    def describe(exc):
        return 'PostgreSQL at h:5432/app failed: permission denied' if isinstance(exc, ServerSaidNo) else None

    def server(module):
        raise ServerSaidNo('42501')

    def bug(module):
        return 1 / 0

    code, res = outcome(capsys, server, describe=describe)
    assert code == 1 and res['msg'] == 'PostgreSQL at h:5432/app failed: permission denied'
    code, res = outcome(capsys, bug, describe=describe)
    assert res['msg'].startswith('internal error in oncall.runbooks.redis_queue: ZeroDivisionError: ')
    assert 'ZeroDivisionError' in res['exception']


def test_a_bug_in_describe_reports_the_original_error(capsys, tracebacks):
    def body(module):
        raise LookupError('no such queue state')
    code, res = outcome(capsys, body, describe=lambda exc: exc.no_such_attribute)
    assert res['msg'] == ('internal error in oncall.runbooks.redis_queue: LookupError: no such queue state; '
                          'please report it')


def test_a_missing_library_is_one_sentence_with_pip_install():
    with pytest.raises(DependencyError) as exc:
        runner.check_library('oncall_no_such_library', minimum='1.2', distribution='oncall-no-such-library',
                             name='oncall.runbooks.redis_queue')
    msg = str(exc.value)
    assert one_sentence(msg), msg
    assert msg.startswith('oncall.runbooks.redis_queue needs the Python library oncall-no-such-library 1.2 or newer')
    assert 'not installed for' in msg and sys.executable in msg
    assert "pip install 'oncall-no-such-library>=1.2'" in msg
    assert 'ModuleNotFoundError' in exc.value.results['exception']


def test_an_old_library_names_the_found_and_the_needed_version():
    import redis
    with pytest.raises(DependencyError) as exc:
        runner.check_library('redis', minimum='99.1', name='oncall.runbooks.redis_queue')
    msg = str(exc.value)
    assert one_sentence(msg), msg
    assert 'redis 99.1 or newer' in msg and ('has %s' % redis.__version__) in msg
    assert "pip install --upgrade 'redis>=99.1'" in msg


def test_the_installed_libraries_pass_the_check():
    for library in ('redis', 'psycopg2', 'stripe', 'boto3', 'kafka', 'cryptography', 'bullmq'):
        assert runner.check_library(library) is not None, library


def test_run_checks_the_libraries_first(capsys):
    called = []
    code, res = outcome(capsys, lambda m: called.append(1), requires=[('redis', '99.1')])
    assert code == 1 and not called
    assert res['msg'].startswith('oncall.runbooks.redis_queue needs the Python library redis 99.1 or newer, but ')
    assert one_sentence(res['msg'])


@pytest.mark.parametrize('text,expected', [('2.9.13 (dt dec pq3 ext lo64)', (2, 9, 13)), ('7.4.0', (7, 4, 0)),
                                           ('v1.44', (1, 44)), ('16.1.0rc1', (16, 1, 0)), ('unknown', ())])
def test_version_tuple(text, expected):
    assert runner.version_tuple(text) == expected
