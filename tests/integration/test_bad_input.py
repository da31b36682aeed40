# -*- coding: utf-8 -*-
"""Bad input, one sentence each, nothing changed (issue 14): a property test.

Every option of host_health_info, redis_cache, redis_cluster, cert_info, cert_renew,
kafka_consumer_lag_info, rds_recovery and cloudwatch_logs_search (and the fields of their
list and dict options) is fed, in turn, wrong types, empty, negative, huge, NaN/inf, unicode and
very long values. The modules run in-process (their main() under patch_module_args), from base
arguments with which a valid run would change something or go on the network:

- redis_cache flushes keys of a real redis-server, redis_cluster reads it: the keyspace is
  dumped before and after each case;
- cert_renew renews a certificate file that is due: the file is compared before and after;
- kafka_consumer_lag_info, rds_recovery, cloudwatch_logs_search and cert_info's endpoint entry
  talk to a loopback listener that records every connection: a refusal must come before any.

A case passes when the module fails with one line that names the option (no traceback, no
Python class other than AnsibleModule's own "argument 'x' is of type <class 'str'>" sentence)
and nothing changed, or when the value is legitimately acceptable (ACCEPTABLE, each with its
reason), runs without a crash and, if it fails, still says so in one line.
"""

from __future__ import annotations

import copy
import importlib
import os
import signal
import socket
import threading
import time

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from helpers.cert import digest, make_cert
from helpers import dump_keys

PREFIX = 'ansible_collections.oncall.runbooks.plugins.modules.'
LONG = 'x' * 100000

# (label, value): the property's generator, fed to every option
BAD_VALUES = [
    ('list', [1, 2]),
    ('dict', {'a': 1}),
    ('abc', 'abc'),
    ('empty string', ''),
    ('empty list', []),
    ('negative int', -1),
    ('negative float', -0.5),
    ('huge float', 1e308),
    ('huge int', 10 ** 20),
    ('"nan"', 'nan'),
    ('"inf"', 'inf'),
    ('nan', float('nan')),
    ('inf', float('inf')),
    ('infMB', 'infMB'),
    ('aleph', u'\u2135'),
    ('arabic digits', u'\u0661\u0662\u0663'),
    ('long', LONG),
]


class Recorder(object):
    """A loopback listener that counts connections and closes each at once."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self._stop = True
        self.sock.close()


class Exited(BaseException):
    """What exit_json and fail_json raise here: like their SystemExit, no Exception, so that the
    module runner does not take a module's own fail_json for a bug."""


class Hung(Exception):
    pass


def _hung(signum, frame):
    raise Hung('no answer within %d s' % CASE_SECONDS)


CASE_SECONDS = 30
SLOW_CASE = float(os.environ.get('BAD_INPUT_SLOW_CASE', 3))


def where0(module, option, label):
    return '%s %s=%s' % (module, option, label)


def run_in_process(module, args):
    """(result dict, crash text or None) of module's main() with args."""
    def exit_json(self, **kwargs):
        raise Exited(dict(kwargs, failed=False))

    def fail_json(self, msg, **kwargs):
        raise Exited(dict(kwargs, msg=msg, failed=True))

    mod = importlib.import_module(PREFIX + module)
    saved = basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json
    basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = exit_json, fail_json
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(CASE_SECONDS)
    try:
        with patch_module_args(copy.deepcopy(args)):
            mod.main()
    except Exited as done:
        return done.args[0], None
    except Exception as exc:  # the crash this test exists to find
        return {}, '%s: %s' % (exc.__class__.__name__, str(exc)[:200])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = saved
    return {}, 'main() returned without exit_json or fail_json'


def put(args, path, value):
    """args with value at path ('a', 'a.b', 'a[0].b')."""
    out = copy.deepcopy(args)
    node, parts = out, path.replace('[0]', '.0').split('.')
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


# Options (and fields of list/dict options the argument spec does not describe) fed per module.
OPTIONS = {
    'host_health_info': [
        'disks', 'disk_warning', 'disk_critical', 'memory_warning', 'memory_critical', 'processes',
        'process_memory', 'process_memory[0].name', 'process_memory[0].warning',
        'process_memory[0].critical', 'top_processes', 'logs', 'logs[0].path', 'logs[0].pattern',
        'logs[0].lines', 'logs[0].max'],
    'redis_cache': [
        'login_host', 'login_port', 'db', 'login_user', 'login_password', 'tls', 'ca_certs', 'validate_certs',
        'connect_timeout', 'socket_timeout', 'cluster_mode', 'state', 'patterns', 'flush_all',
        'confirm', 'scan_count', 'batch_size', 'ttl_sample', 'window', 'thresholds',
        'thresholds.hit_rate_warning', 'thresholds.hit_rate_critical', 'thresholds.memory_warning',
        'thresholds.memory_critical', 'thresholds.evictions_warning', 'thresholds.no_ttl_warning'],
    'redis_cluster': [
        'login_host', 'login_port', 'db', 'login_user', 'login_password', 'tls', 'ca_certs', 'validate_certs',
        'connect_timeout', 'socket_timeout', 'promote', 'failover_from', 'force', 'confirm',
        'timeout'],
    'cert_info': [
        'certificates', 'certificates[0].type', 'certificates[0].host', 'certificates[0].port',
        'certificates[0].server_name', 'certificates[0].timeout', 'certificates[0].renew_before',
        'certificates[0].verify_chain', 'certificates[0].trust_chain_root', 'warn_days',
        'critical_days', 'renew_before', 'ca_path', 'fail_on_critical', 'kubeconfig', 'context',
        'host', 'api_key', 'validate_certs', 'ca_cert', 'client_cert', 'client_key', 'proxy', 'no_proxy'],
    'cert_renew': [
        'name', 'source', 'source.type', 'source.path', 'source.key_path', 'destination',
        'renew_before', 'subject_alt_names', 'common_name', 'key_type', 'force', 'provider',
        'valid_days', 'kubeconfig', 'context', 'host', 'api_key', 'validate_certs', 'ca_cert', 'client_cert',
        'client_key', 'proxy', 'no_proxy'],
    'cert_renew acme': [
        'acme', 'acme.directory', 'acme.account_key_path', 'acme.email', 'acme.terms_agreed',
        'acme.challenge', 'acme.webroot', 'acme.standalone_address', 'acme.standalone_port',
        'acme.dns_hook', 'acme.ca_path', 'acme.validate_certs', 'acme.timeout'],
    'cert_renew ownca': ['ownca', 'ownca.cert_path', 'ownca.key_path', 'ownca.key_passphrase'],
    'cert_renew cert_manager': [
        'cert_manager', 'cert_manager.namespace', 'cert_manager.name', 'cert_manager.timeout',
        'cert_manager.poll_interval'],
    'kafka_consumer_lag_info': [
        'bootstrap_servers', 'groups', 'security_protocol', 'sasl_mechanism', 'sasl_username',
        'sasl_password', 'ca_cert', 'timeout', 'lag_warning', 'lag_critical'],
    'rds_recovery': [
        'access_key', 'secret_key', 'session_token', 'profile', 'region', 'endpoint_url',
        'validate_certs', 'retries', 'db_cluster_identifier', 'db_instance_identifier', 'failover',
        'target_db_instance_identifier', 'start_stopped', 'reboot', 'reboot_instances',
        'reboot_force_failover', 'wait', 'wait_timeout'],
    'cloudwatch_logs_search': [
        'access_key', 'secret_key', 'session_token', 'profile', 'region', 'endpoint_url',
        'validate_certs', 'retries', 'log_group_name', 'searches', 'searches[0].name',
        'searches[0].filter_pattern', 'searches[0].max', 'searches[0].severity',
        'searches[0].log_stream_names', 'since', 'max_events', 'streams'],
}

# Values a module may legitimately take for an option: (module, option) -> labels (or '*': any),
# each with why. Taken, the module runs without a crash; if it then fails, in one line.
TEXT = {'list', 'dict', 'abc', 'empty string', '"nan"', '"inf"', 'infMB', 'aleph',
        'arabic digits', 'long', 'negative int', 'negative float', 'huge float', 'huge int', 'nan',
        'inf'}
NAMES = {'abc', '"nan"', '"inf"', 'infMB', 'nan', 'inf', 'huge int'}
ACCEPTABLE = {
    # nothing to check is a legitimate (if empty) list: no disk, process, limit or log
    ('host_health_info', 'disks'): {'empty list'},
    ('host_health_info', 'logs'): {'empty list'},
    ('host_health_info', 'process_memory'): {'empty list'},
    # a process is looked for by any name or command line (read-only; AnsibleModule turns a
    # number into its text, as for any str option)
    ('host_health_info', 'processes'): {'*'},
    ('host_health_info', 'process_memory[0].name'): TEXT - {'long', 'empty string', 'list', 'dict'},
    # any regular expression that compiles ('abc', 'nan', an aleph, '') is a pattern
    ('host_health_info', 'logs[0].pattern'): TEXT - {'long', 'list', 'dict', 'negative int', 'negative float',
                                                     'huge float', 'huge int', 'nan', 'inf', 'empty list'},
    # Arabic-Indic digits are the number 123 to AnsibleModule's int and float (Python's int())
    ('host_health_info', 'top_processes'): {'arabic digits'},
    # a key pattern is any glob (AnsibleModule turns a number into its text); one that matches
    # no key deletes nothing
    ('redis_cache', 'patterns'): TEXT - {'long', 'empty string', 'dict'},
    ('redis_cache', 'thresholds'): {'empty list', 'empty string'},
    ('redis_cache', 'scan_count'): {'arabic digits'},
    ('redis_cache', 'batch_size'): {'arabic digits'},
    ('redis_cache', 'ttl_sample'): {'arabic digits'},
    ('redis_cache', 'thresholds.evictions_warning'): {'arabic digits'},
    # database 123 is a number the server refuses in its own words ("DB index is out of range")
    ('redis_cache', 'db'): {'arabic digits'},
    ('redis_cluster', 'db'): {'arabic digits'},
    # credentials are any text; the server judges them (no password set here: AUTH is refused)
    ('redis_cache', 'login_user'): {'*'},
    ('redis_cache', 'login_password'): {'*'},
    ('redis_cluster', 'login_user'): {'*'},
    ('redis_cluster', 'login_password'): {'*'},
    # the Kubernetes options only serve k8s_secret locations (none here): a well-formed value
    # (a path, a context name, a token) is judged by the kubernetes client when one is read;
    # module_utils/kube.py refuses malformed URLs before (tests/integration/test_kube_options.py)
    ('cert_info', 'kubeconfig'): {'*'}, ('cert_info', 'context'): {'*'}, ('cert_info', 'host'): {'*'},
    ('cert_info', 'api_key'): {'*'}, ('cert_info', 'ca_cert'): {'*'}, ('cert_info', 'validate_certs'): {'*'},
    ('cert_info', 'client_cert'): {'*'}, ('cert_info', 'client_key'): {'*'}, ('cert_info', 'proxy'): {'*'},
    ('cert_info', 'no_proxy'): {'*'},
    ('cert_renew', 'kubeconfig'): {'*'}, ('cert_renew', 'context'): {'*'}, ('cert_renew', 'host'): {'*'},
    ('cert_renew', 'api_key'): {'*'}, ('cert_renew', 'ca_cert'): {'*'}, ('cert_renew', 'validate_certs'): {'*'},
    ('cert_renew', 'client_cert'): {'*'}, ('cert_renew', 'client_key'): {'*'}, ('cert_renew', 'proxy'): {'*'},
    ('cert_renew', 'no_proxy'): {'*'},
    ('cert_info', 'certificates'): {'empty list'},
    # well-formed host names: the resolver (or the endpoint) answers, a critical finding
    ('cert_info', 'certificates[0].host'): {'abc', '"nan"', '"inf"', 'infMB', 'nan', 'inf', 'huge int'},
    ('cert_info', 'certificates[0].server_name'): {'abc', '"nan"', '"inf"', 'infMB', 'nan', 'inf', 'huge int',
                                                   'empty string'},
    # an empty timeout or renew_before is "not set" (the default), as the certificates role passes them
    ('cert_info', 'certificates[0].timeout'): {'empty string'},
    ('cert_info', 'certificates[0].renew_before'): {'empty string'},
    ('cert_info', 'renew_before'): {'arabic digits'},
    ('cert_info', 'warn_days'): {'arabic digits'},
    ('cert_info', 'critical_days'): {'arabic digits'},
    # a certificate's label, common name and SANs are text (a SAN 'abc' is a DNS name)
    ('cert_renew', 'name'): {'*'},
    ('cert_renew', 'common_name'): {'*'},
    ('cert_renew', 'subject_alt_names'): {'list', 'abc', '"nan"', '"inf"', 'infMB', 'nan', 'inf', 'huge int',
                                          'huge float', 'negative int', 'negative float', 'empty list'},
    ('cert_renew', 'renew_before'): {'arabic digits'},
    ('cert_renew', 'valid_days'): {'arabic digits'},
    ('cert_renew', 'ownca.key_passphrase'): {'*'},
    ('cert_renew', 'acme.standalone_port'): {'arabic digits'},
    ('cert_renew', 'cert_manager.name'): {'abc', '"nan"', '"inf"', 'nan', 'inf', 'huge int'},
    ('cert_renew', 'cert_manager.namespace'): {'abc', '"nan"', '"inf"', 'nan', 'inf', 'huge int'},
    # well-formed names, keys and free text go to the service, which judges them (here: the
    # loopback listener, which hangs up: a one-line failure)
    ('kafka_consumer_lag_info', 'groups'): {'*'},
    ('kafka_consumer_lag_info', 'sasl_username'): {'*'},
    ('kafka_consumer_lag_info', 'sasl_password'): {'*'},
    ('kafka_consumer_lag_info', 'lag_warning'): {'arabic digits'},
    ('kafka_consumer_lag_info', 'lag_critical'): {'arabic digits'},
    ('cloudwatch_logs_search', 'access_key'): NAMES,
    ('cloudwatch_logs_search', 'secret_key'): {'*'},
    ('cloudwatch_logs_search', 'session_token'): {'*'},
    ('cloudwatch_logs_search', 'log_group_name'): {'*'},
    ('cloudwatch_logs_search', 'searches[0].name'): {'*'},
    ('cloudwatch_logs_search', 'searches[0].filter_pattern'): {'*'},
    ('cloudwatch_logs_search', 'searches[0].log_stream_names'): {'*'},
    ('cloudwatch_logs_search', 'max_events'): {'arabic digits'},
    ('cloudwatch_logs_search', 'streams'): {'arabic digits'},
    ('cloudwatch_logs_search', 'retries'): {'arabic digits'},
    ('rds_recovery', 'access_key'): NAMES,
    ('rds_recovery', 'secret_key'): {'*'},
    ('rds_recovery', 'session_token'): {'*'},
    ('rds_recovery', 'db_cluster_identifier'): NAMES,
    ('rds_recovery', 'db_instance_identifier'): NAMES,
    ('rds_recovery', 'target_db_instance_identifier'): NAMES,
    ('rds_recovery', 'reboot_instances'): NAMES | {'list', 'empty list'},
    ('rds_recovery', 'retries'): {'arabic digits'},
}

# Values not fed to an option, with why. A Redis host that is a well-formed DNS name ('abc',
# 'nan', 'infMB', '100000000000000000000') is data for the resolver: the module tries it and
# fails with the connection's sentence ("cannot reach Redis at abc:6379/0: Name or service not
# known") after redis-py's retries (about 8 s each); test_redis_cache covers unreachable servers.
HOST_NAMES = {'abc', '"nan"', '"inf"', 'nan', 'inf', 'infMB', 'huge int'}
# Arabic-Indic digits are port 123 to AnsibleModule's int (Python's int()), where nothing
# listens: the same connection sentence after the same retries.
# User names and passwords are any text the server judges; each refusal costs redis-py's
# retries (AuthenticationError is a ConnectionError): only the empty value (no AUTH) is fed.
CREDENTIALS = set(label for label, _value in BAD_VALUES) - {'empty string'}
# A consumer group id or SASL credential is any text the broker judges; each one tried waits
# for the bootstrap timeout: only values the module may refuse (or crash on) are fed.
KAFKA_TEXT = set(label for label, _value in BAD_VALUES) - {'empty string', 'long', 'dict', 'empty list'}
NOT_FED = {('redis_cache', 'login_host'): HOST_NAMES, ('redis_cluster', 'login_host'): HOST_NAMES,
           ('redis_cache', 'login_port'): {'arabic digits'}, ('redis_cluster', 'login_port'): {'arabic digits'},
           ('redis_cache', 'login_user'): CREDENTIALS, ('redis_cache', 'login_password'): CREDENTIALS,
           ('redis_cluster', 'login_user'): CREDENTIALS, ('redis_cluster', 'login_password'): CREDENTIALS,
           ('kafka_consumer_lag_info', 'groups'): KAFKA_TEXT,
           ('kafka_consumer_lag_info', 'sasl_username'): KAFKA_TEXT,
           ('kafka_consumer_lag_info', 'sasl_password'): KAFKA_TEXT}


@pytest.fixture(scope='module')
def recorder():
    rec = Recorder()
    yield rec
    rec.close()


def base_args(module, redis_server, recorder, tmp):
    """Arguments with which a valid run changes something (or goes on the network)."""
    if module == 'host_health_info':
        log = os.path.join(tmp, 'app.log')
        with open(log, 'w') as f:
            f.write('ERROR one\nok\n')
        return dict(disks=['/'], processes=['init'], top_processes=1, logs=[dict(path=log, lines=10, max=5)],
                    process_memory=[dict(name='init', warning='1GB', critical='2GB')])
    if module == 'redis_cache':
        return dict(login_port=redis_server.port, state='flushed', patterns=['cache:*'], window='0s')
    if module == 'redis_cluster':
        return dict(login_port=redis_server.port)
    if module == 'cert_info':
        return dict(certificates=[dict(name='e', type='endpoint', host='127.0.0.1', port=recorder.port,
                                       timeout='2s')])
    if module.startswith('cert_renew'):
        crt, key = make_cert(tmp, 'due', ['localhost'], 3)
        args = dict(name='due', source=dict(type='file', path=crt, key_path=key), provider='selfsigned',
                    renew_before=30, valid_days=90)
        if module == 'cert_renew acme':
            args.update(provider='acme', acme=dict(directory='https://127.0.0.1:%d/dir' % recorder.port,
                                                   account_key_path=os.path.join(tmp, 'account.key'),
                                                   timeout='2s'))
        if module == 'cert_renew ownca':
            ca_crt, ca_key = make_cert(tmp, 'ca', ['ca'], 300)
            args.update(provider='ownca', ownca=dict(cert_path=ca_crt, key_path=ca_key))
        if module == 'cert_renew cert_manager':
            args.update(provider='cert_manager', host='http://127.0.0.1:%d' % recorder.port,
                        api_key='t', cert_manager=dict(name='c', namespace='n', timeout='2s'))
        return args
    if module == 'kafka_consumer_lag_info':
        return dict(bootstrap_servers=['127.0.0.1:%d' % recorder.port], groups=['g'], timeout='1s')
    aws = dict(access_key='AKIAEXAMPLEEXAMPLE12', secret_key='secret', region='eu-west-1',
               endpoint_url='http://127.0.0.1:%d' % recorder.port, retries=1)
    if module == 'rds_recovery':
        return dict(aws, db_instance_identifier='db-1', reboot=True, wait=False)
    return dict(aws, log_group_name='/app/api', searches=[dict(name='errors', filter_pattern='ERROR', max=0)],
                since='1h')


def option_named(msg, option):
    """Whether msg names option (a field also by its own name, as AnsibleModule does)."""
    leaf = option.split('.')[-1].replace('[0]', '')
    return option in msg or option.replace('[0]', '') in msg or \
        ("'%s'" % leaf) in msg or (' %s ' % leaf) in msg or msg.startswith(leaf + ' ') or \
        (leaf + ':') in msg or (leaf + '.') in msg or ('%s[0]' % leaf) in msg


def one_line(msg):
    """One line, no traceback, no Python class names but in AnsibleModule's own type sentence
    ("argument 'x' is of type <class 'str'> and we were unable to convert to int", which shows
    the whole value: not ours to shorten)."""
    ours = not msg.startswith(("argument '", 'value of ')) if isinstance(msg, str) else True
    named_class = "<class '" in msg and 'is of type' not in msg and 'unable to convert' not in msg
    return isinstance(msg, str) and msg and '\n' not in msg and 'Traceback' not in msg and \
        (len(msg) <= 400 or not ours) and not named_class


def state_of(module, redis_server, files):
    """The keyspace, or the files (and every file name under the run's directory, where a
    relative path would land: the cases run there)."""
    if module.startswith('redis'):
        client = redis_server.client()
        try:
            return dump_keys(client)
        finally:
            client.close()
    return (digest(*files) if files else None, sorted(os.listdir('.')))


def fill(redis_server):
    client = redis_server.client()
    client.flushall()
    client.mset(dict(('cache:%d' % i, 'v%d' % i) for i in range(50)))
    client.set('keep', 'me')
    client.close()


@pytest.mark.parametrize('module', sorted(OPTIONS))
def test_bad_input_is_one_sentence_naming_the_option_and_changes_nothing(
        module, redis_server, recorder, tmp_path, monkeypatch):
    name = module.split()[0]
    run_dir = tmp_path / 'cwd'
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    base = base_args(module, redis_server, recorder, str(tmp_path))
    files = [base['source']['path'], base['source']['key_path']] if name == 'cert_renew' else []
    if name == 'redis_cache':
        fill(redis_server)
    problems, accepted = [], []
    for option in OPTIONS[module]:
        for label, value in BAD_VALUES:
            if label in NOT_FED.get((name, option), ()):
                continue
            args = put(base, option, value)
            before = state_of(name, redis_server, files)
            seen = recorder.connections
            started = time.monotonic()
            res, crash = run_in_process(name, args)
            if time.monotonic() - started > SLOW_CASE:
                problems.append('%s: slow, %.1fs' % (where0(module, option, label), time.monotonic() - started))
            after = state_of(name, redis_server, files)
            where = '%s %s=%s' % (module, option, label)
            if crash:
                problems.append('%s: crashed: %s' % (where, crash))
                continue
            msg = res.get('msg') or ''
            allowed = ACCEPTABLE.get((name, option), ())
            if label in allowed or '*' in allowed:
                accepted.append(where)
                if res['failed'] and not one_line(msg):
                    problems.append('%s: not one line: %r' % (where, msg[:300]))
                if res.get('changed') or after != before:
                    if name == 'redis_cache':
                        fill(redis_server)
                    if name == 'cert_renew':
                        make_cert(str(tmp_path), 'due', ['localhost'], 3)
                continue
            if not res['failed']:
                problems.append('%s: accepted (changed=%s)' % (where, res.get('changed')))
            elif not one_line(msg):
                problems.append('%s: not one line: %r' % (where, msg[:300]))
            elif not option_named(msg, option):
                problems.append('%s: names no option: %r' % (where, msg[:300]))
            if after != before:
                problems.append('%s: changed the server or files' % where)
                if name == 'redis_cache':
                    fill(redis_server)
            if recorder.connections != seen:
                problems.append('%s: went on the network before refusing' % where)
    assert not problems, '%d problem(s):\n%s' % (len(problems), '\n'.join(problems))

    # the base arguments do change the world (or go on the network): the checks were not vacuous
    before, seen = state_of(name, redis_server, files), recorder.connections
    res, crash = run_in_process(name, base)
    assert crash is None, crash
    if name in ('redis_cache', 'cert_renew') and module == name:
        assert res.get('changed') and state_of(name, redis_server, files) != before, res
    elif name in ('kafka_consumer_lag_info', 'rds_recovery', 'cloudwatch_logs_search', 'cert_info'):
        assert recorder.connections > seen, res
