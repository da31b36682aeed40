# -*- coding: utf-8 -*-
"""cert_renew and cert_info against real servers: pebble (Let's Encrypt's ACME test server, with
real http-01 validation through nginx's webroot or cert_renew's own responder, and dns-01 through
pebble-challtestsrv's DNS), and a real nginx serving the files (endpoint source, reload).
"""

from __future__ import annotations

import glob
import os
import stat
import sys

import pytest

from helpers.cert import Nginx, Pebble, digest, free_port, make_cert
from helpers import run_module

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509


def key_body(path):
    """The base64 body of a PEM key: what must never show up in any output."""
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln and not ln.startswith('-----')]
    return ''.join(lines)


def assert_no_key(run, *key_paths):
    text = run.stdout + run.stderr
    assert 'PRIVATE KEY' not in text
    for path in key_paths:
        body = key_body(path)
        assert body[:40] not in text.replace('\\n', '').replace('\n', '')


@pytest.fixture()
def nginx():
    server = Nginx(sans=['app.oncall.test'], days=10)
    yield server
    server.stop()


@pytest.fixture()
def pebble_for(request):
    started = []

    def start(http_port):
        server = Pebble(http_port=http_port)
        started.append(server)
        return server
    yield start
    for s in started:
        s.stop()


def acme_args(pebble, tmp_path, **acme):
    cfg = dict(directory=pebble.directory, ca_path=pebble.ca_path,
               account_key_path=str(tmp_path / 'account.pem'))
    cfg.update(acme)
    return cfg


def test_far_from_expiry_nothing_renewed(tmp_path):
    crt, key = make_cert(str(tmp_path), 'app', ['app.oncall.test'], 60)
    before = digest(crt, key)
    args = dict(source=dict(type='file', path=crt, key_path=key), provider='selfsigned', renew_before=30)
    run = run_module('cert_renew', args)
    assert not run.failed, run.result
    assert run['changed'] is False and run['renewed'] is False and run['plan'] == []
    assert 59 < run['before']['days_remaining'] <= 60
    assert digest(crt, key) == before
    assert not glob.glob(str(tmp_path / '*.bak'))


def test_selfsigned_check_mode_then_renew_then_nothing(tmp_path):
    crt, key = make_cert(str(tmp_path), 'app', ['app.oncall.test'], 5)
    before = digest(crt, key)
    args = dict(source=dict(type='file', path=crt, key_path=key),
                destination=dict(type='file', path=crt, key_path=key, mode='0640', key_mode='0600'),
                provider='selfsigned', renew_before=30, valid_days=90)
    check = run_module('cert_renew', args, check=True, diff=True)
    assert check['changed'] is True and check['renewed'] is False and check['would_renew'] is True
    assert 'days left < renew_before 30' in check['reason']
    assert digest(crt, key) == before, 'check mode wrote a file'
    assert not glob.glob(str(tmp_path / '*.bak'))

    run = run_module('cert_renew', args, diff=True, verbosity=3)
    assert run['renewed'] is True and run['changed'] is True
    assert run['after']['serial'] != run['before']['serial']
    assert 89 < run['after']['days_remaining'] <= 90
    assert run['after']['subject_alt_names'] == ['DNS:app.oncall.test']
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(crt).st_mode) == 0o640
    backups = sorted(glob.glob(str(tmp_path / '*.bak')))
    assert len(backups) == 2 and set(digest(*backups).values()) == set(before.values())
    assert_no_key(run, key, *[b for b in backups if '.key.' in b])
    assert 'tls.key' not in str(run.result.get('diff'))

    again = run_module('cert_renew', args)
    assert again['changed'] is False and again['renewed'] is False


def test_wanted_sans_and_key_type_trigger_renewal(tmp_path):
    crt, key = make_cert(str(tmp_path), 'app', ['app.oncall.test'], 80)
    args = dict(source=dict(type='file', path=crt, key_path=key), provider='selfsigned',
                subject_alt_names=['app.oncall.test', 'admin.oncall.test'], key_type='rsa2048')
    run = run_module('cert_renew', args)
    assert run['renewed'] is True
    assert 'subject_alt_names differ' in run['reason'] and 'key_type differs' in run['reason']
    assert run['after']['subject_alt_names'] == ['DNS:admin.oncall.test', 'DNS:app.oncall.test']
    assert run['after']['key_type'] == 'rsa2048'
    assert run_module('cert_renew', args)['changed'] is False


def test_ownca_chain_verifies(tmp_path):
    ca, ca_key = x509.make_ca('oncall internal CA')
    ca_crt, ca_keyf = str(tmp_path / 'ca.crt'), str(tmp_path / 'ca.key')
    with open(ca_crt, 'w') as f:
        f.write(x509.cert_pem(ca))
    with open(ca_keyf, 'wb') as f:
        f.write(x509.key_pem(ca_key))
    crt, key = str(tmp_path / 'svc.crt'), str(tmp_path / 'svc.key')
    args = dict(source=dict(type='file', path=crt, key_path=key), provider='ownca',
                subject_alt_names=['svc.internal', '10.0.0.5'], ownca=dict(cert_path=ca_crt, key_path=ca_keyf))
    run = run_module('cert_renew', args)
    assert run['renewed'] is True and run['reason'] == 'no certificate at the source'
    assert run['after']['issuer'] == 'CN=oncall internal CA'
    assert run['after']['subject_alt_names'] == ['DNS:svc.internal', 'IP:10.0.0.5']
    info = run_module('cert_info', dict(certificates=[dict(type='file', path=crt, key_path=key)], ca_path=ca_crt))
    item = info['certificates'][0]
    assert item['chain_verified'] is True and item['key_matches'] is True and item['verdict'] == 'ok'
    # without the CA as a trusted root, the chain does not verify
    info = run_module('cert_info', dict(certificates=[dict(type='file', path=crt)]))
    assert info['certificates'][0]['chain_verified'] is False
    assert info['certificates'][0]['verdict'] == 'critical'


def test_acme_http01_webroot_and_nginx_serves_the_new_certificate(nginx, pebble_for, tmp_path):
    pebble = pebble_for(nginx.http_port)  # pebble validates http-01 against nginx's webroot
    old_serial = nginx.served().serial_number
    args = dict(source=dict(type='endpoint', host='127.0.0.1', port=nginx.tls_port, server_name='app.oncall.test'),
                destination=dict(type='file', path=nginx.cert, key_path=nginx.key),
                provider='acme', acme=acme_args(pebble, tmp_path, webroot=nginx.webroot, email='oncall@oncall.test'))
    check = run_module('cert_renew', args, check=True)
    assert check['would_renew'] is True and not glob.glob(nginx.cert + '.*.bak')
    run = run_module('cert_renew', args, verbosity=3)
    assert not run.failed, run.result
    assert run['renewed'] is True and run['after']['issuer'].startswith('CN=Pebble Intermediate CA')
    assert_no_key(run, nginx.key)
    # challenge files are removed again
    assert os.listdir(os.path.join(nginx.webroot, '.well-known', 'acme-challenge')) == []
    # nginx still serves the old certificate until it is reloaded, then the new one
    assert nginx.served().serial_number == old_serial
    nginx.reload()
    served = nginx.served_after_reload(run['after']['serial'])
    assert served.serial_number != old_serial
    assert '%X' % served.serial_number == run['after']['serial']
    with open(nginx.cert) as f:
        assert x509.summarize(x509.load_chain(f.read(), 'x'))['serial'] == run['after']['serial']
    # the chain verifies against pebble's root; and the next run has nothing to do
    info = run_module('cert_info', dict(certificates=[
        dict(name='nginx', type='endpoint', host='127.0.0.1', port=nginx.tls_port, server_name='app.oncall.test'),
        dict(name='files', type='file', path=nginx.cert, key_path=nginx.key)], ca_path=pebble.roots_file()))
    assert [c['chain_verified'] for c in info['certificates']] == [True, True], info['certificates']
    assert [c['verdict'] for c in info['certificates']] == ['ok', 'ok']
    assert run_module('cert_renew', args)['changed'] is False


def test_acme_http01_standalone_responder(pebble_for, tmp_path):
    port = free_port()
    pebble = pebble_for(port)
    crt, key = str(tmp_path / 'a.crt'), str(tmp_path / 'a.key')
    args = dict(source=dict(type='file', path=crt, key_path=key), provider='acme',
                subject_alt_names=['a.oncall.test', 'b.oncall.test'],
                acme=acme_args(pebble, tmp_path, standalone_address='127.0.0.1', standalone_port=port))
    run = run_module('cert_renew', args)
    assert run['renewed'] is True, run.result
    assert run['after']['subject_alt_names'] == ['DNS:a.oncall.test', 'DNS:b.oncall.test']
    assert stat.S_IMODE(os.stat(str(tmp_path / 'account.pem')).st_mode) == 0o600


HOOK = '''#!{python}
import json, sys, urllib.request
action, domain, value = sys.argv[1:4]
path = '/set-txt' if action == 'add' else '/clear-txt'
body = {{'host': '_acme-challenge.%s.' % domain}}
if action == 'add':
    body['value'] = value
urllib.request.urlopen(urllib.request.Request('{url}' + path, data=json.dumps(body).encode()))
with open('{log}', 'a') as f:
    f.write('%s %s\\n' % (action, domain))
'''


def test_acme_dns01_through_a_hook(pebble_for, tmp_path):
    pebble = pebble_for(free_port())  # nothing answers http-01: only dns-01 can pass
    hook, log = str(tmp_path / 'hook.py'), str(tmp_path / 'hook.log')
    with open(hook, 'w') as f:
        f.write(HOOK.format(python=sys.executable, url=pebble.challtestsrv_url(''), log=log))
    os.chmod(hook, 0o755)
    crt, key = str(tmp_path / 'd.crt'), str(tmp_path / 'd.key')
    args = dict(source=dict(type='file', path=crt, key_path=key), provider='acme',
                subject_alt_names=['*.wild.oncall.test'],
                acme=acme_args(pebble, tmp_path, challenge='dns-01', dns_hook=hook))
    run = run_module('cert_renew', args)
    assert run['renewed'] is True, run.result
    assert run['after']['subject_alt_names'] == ['DNS:*.wild.oncall.test']
    with open(log) as f:
        assert f.read().split('\n')[:2] == ['add wild.oncall.test', 'remove wild.oncall.test']


def test_acme_failed_challenge_leaves_old_certificate_in_place_and_served(nginx, pebble_for, tmp_path):
    pebble = pebble_for(free_port())  # pebble validates http-01 on a port where nothing listens
    before = digest(nginx.cert, nginx.key)
    old_serial = nginx.served().serial_number
    args = dict(source=dict(type='file', path=nginx.cert, key_path=nginx.key), provider='acme',
                acme=acme_args(pebble, tmp_path, webroot=nginx.webroot, timeout=60))
    run = run_module('cert_renew', args)
    assert run.failed and run['renewed'] is False
    assert 'http-01 challenge failed' in run['msg'] and 'app.oncall.test' in run['msg']
    assert 'Traceback' not in run.stdout + run.stderr
    assert digest(nginx.cert, nginx.key) == before
    assert not glob.glob(nginx.cert + '.*.bak') and not glob.glob(nginx.key + '.*.bak')
    nginx.reload()
    assert nginx.served_after_reload('%X' % old_serial).serial_number == old_serial


def test_acme_refused_order_leaves_files(nginx, pebble_for, tmp_path):
    pebble = pebble_for(nginx.http_port)
    before = digest(nginx.cert, nginx.key)
    args = dict(source=dict(type='file', path=nginx.cert, key_path=nginx.key), provider='acme',
                subject_alt_names=['bad_name.oncall.test'], acme=acme_args(pebble, tmp_path, webroot=nginx.webroot))
    run = run_module('cert_renew', args)
    assert run.failed and 'refused the order' in run['msg'], run.result
    assert digest(nginx.cert, nginx.key) == before


def test_unreachable_acme_directory(tmp_path):
    crt, key = make_cert(str(tmp_path), 'app', ['app.oncall.test'], 1)
    args = dict(source=dict(type='file', path=crt, key_path=key), provider='acme',
                acme=dict(directory='https://127.0.0.1:%d/dir' % free_port(), account_key_path=str(tmp_path / 'acc.pem')))
    run = run_module('cert_renew', args)
    assert run.failed and 'cannot read the ACME directory' in run['msg']


def test_bad_inputs_are_one_clear_sentence(nginx, tmp_path):
    garbage = tmp_path / 'garbage.pem'
    garbage.write_text('hello\n')
    run = run_module('cert_renew', dict(source=dict(type='file', path=str(garbage)), provider='selfsigned'))
    assert run.failed and 'is not a PEM certificate' in run['msg']
    run = run_module('cert_renew', dict(source=dict(type='file', path=str(tmp_path)), provider='selfsigned'))
    assert run.failed and 'cannot read certificate file' in run['msg']
    # a key that does not match: cert_info says so, cert_renew renews (the pair is broken)
    crt, key = make_cert(str(tmp_path), 'one', ['one.oncall.test'], 60)
    crt2, key2 = make_cert(str(tmp_path), 'two', ['one.oncall.test'], 60)
    info = run_module('cert_info', dict(certificates=[
        dict(name='mismatch', type='file', path=crt, key_path=key2, verify_chain=False),
        dict(name='not tls', type='endpoint', host='127.0.0.1', port=nginx.http_port, timeout=5),
        dict(name='garbage', type='file', path=str(garbage))], fail_on_critical=True))
    assert info.failed and '3 of 3 certificate(s) critical' in info['msg']
    items = info['certificates']
    assert items[0]['key_matches'] is False and items[0]['verdict'] == 'critical'
    assert 'does not answer TLS' in items[1]['error']
    assert 'is not a PEM certificate' in items[2]['error']
    run = run_module('cert_renew', dict(source=dict(type='file', path=crt, key_path=key2), provider='selfsigned'))
    assert run['renewed'] is True and run['reason'] == 'the private key does not match the certificate'
    # an endpoint cannot be written to
    run = run_module('cert_renew', dict(source=dict(type='endpoint', host='127.0.0.1', port=nginx.tls_port),
                                        provider='selfsigned', force=True))
    assert run.failed and 'read-only' in run['msg']


def test_cert_info_thresholds(tmp_path):
    specs = []
    for name, days in (('ok', 60), ('warn', 20), ('crit', 3)):
        crt, dummy = make_cert(str(tmp_path), name, ['%s.oncall.test' % name], days)
        specs.append(dict(name=name, type='file', path=crt, verify_chain=False))
    info = run_module('cert_info', dict(certificates=specs, warn_days=30, critical_days=7))
    assert [c['verdict'] for c in info['certificates']] == ['ok', 'warning', 'critical']
    assert info['warning'] == ['warn'] and info['critical'] == ['crit']
    assert info['changed'] is False


def test_ownca_encrypted_key_passphrase_never_shown(tmp_path):
    from cryptography.hazmat.primitives import serialization
    ca, ca_key = x509.make_ca('oncall vaulted CA')
    ca_crt, ca_keyf = str(tmp_path / 'ca.crt'), str(tmp_path / 'ca.key')
    with open(ca_crt, 'w') as f:
        f.write(x509.cert_pem(ca))
    with open(ca_keyf, 'wb') as f:
        f.write(ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(b'Vault-Only-Passphrase-42')))
    crt, key = str(tmp_path / 'svc.crt'), str(tmp_path / 'svc.key')
    args = dict(source=dict(type='file', path=crt, key_path=key), provider='ownca', subject_alt_names=['svc.internal'],
                ownca=dict(cert_path=ca_crt, key_path=ca_keyf, key_passphrase='Wrong-Passphrase-17'))
    wrong = run_module('cert_renew', args, verbosity=3)
    assert wrong.failed and 'cannot be loaded as a private key (wrong format or passphrase)' in wrong['msg']
    assert 'Wrong-Passphrase-17' not in wrong.stdout + wrong.stderr
    args['ownca']['key_passphrase'] = 'Vault-Only-Passphrase-42'
    run = run_module('cert_renew', args, verbosity=3)
    assert run['renewed'] is True and run['after']['issuer'] == 'CN=oncall vaulted CA'
    assert 'Vault-Only-Passphrase-42' not in run.stdout + run.stderr
    assert_no_key(run, key)


def test_file_destination_with_chain_path_owner_and_group(tmp_path):
    import grp
    import pwd
    ca, ca_key = x509.make_ca('oncall chain CA')
    ca_crt, ca_keyf = str(tmp_path / 'ca.crt'), str(tmp_path / 'ca.key')
    with open(ca_crt, 'w') as f:
        f.write(x509.cert_pem(ca))
    with open(ca_keyf, 'wb') as f:
        f.write(x509.key_pem(ca_key))
    out = tmp_path / 'out'
    out.mkdir()
    dest = dict(type='file', path=str(out / 'cert.pem'), chain_path=str(out / 'chain.pem'),
                key_path=str(out / 'key.pem'), owner='nobody', group='nogroup', mode='0644', key_mode='0640')
    run = run_module('cert_renew', dict(source=dest, provider='ownca', subject_alt_names=['chain.internal'],
                                        ownca=dict(cert_path=ca_crt, key_path=ca_keyf)))
    assert run['renewed'] is True, run.result
    with open(dest['path']) as f:
        assert len(x509.split_pem(f.read())) == 1
    with open(dest['chain_path']) as f:
        assert x509.load_chain(f.read(), 'chain')[0].subject == ca.subject
    for path, mode in ((dest['path'], 0o644), (dest['chain_path'], 0o644), (dest['key_path'], 0o640)):
        st = os.stat(path)
        assert (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name) == ('nobody', 'nogroup')
        assert stat.S_IMODE(st.st_mode) == mode
    # read back as leaf + chain: verifies against the CA, and the next run has nothing to do
    info = run_module('cert_info', dict(certificates=[dict(type='file', path=dest['path'], chain_path=dest['chain_path'],
                                                           key_path=dest['key_path'])], ca_path=ca_crt))
    assert info['certificates'][0]['chain_length'] == 2 and info['certificates'][0]['chain_verified'] is True
    again = run_module('cert_renew', dict(source=dest, provider='ownca', subject_alt_names=['chain.internal'],
                                          ownca=dict(cert_path=ca_crt, key_path=ca_keyf)))
    assert again['changed'] is False
    kept = digest(dest['path'], dest['chain_path'], dest['key_path'])
    bad = run_module('cert_renew', dict(source=dict(dest, owner='no-such-user-xyz'), provider='ownca', force=True,
                                        ownca=dict(cert_path=ca_crt, key_path=ca_keyf)))
    assert bad.failed and 'unknown owner or group' in bad['msg']
    # nothing replaced, no temp file or backup left behind
    assert digest(dest['path'], dest['chain_path'], dest['key_path']) == kept
    assert sorted(os.listdir(str(out))) == ['cert.pem', 'chain.pem', 'key.pem']
