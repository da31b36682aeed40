# -*- coding: utf-8 -*-
"""Unit tests of the certificate logic: plan reasons, verdicts, SAN normalization, chain
verification and atomic writes (no server involved)."""
from __future__ import annotations

import datetime
import os
import stat

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import info, locations, renew, x509


def leaf(sans=('app.example.test',), days=60, key_type='ec256', issuer=None):
    key = x509.new_key(key_type)
    cert = x509.sign(key, x509.normalize_sans(sans), None, days,
                     issuer[0] if issuer else None, issuer[1] if issuer else None)
    return cert, key


PARAMS = dict(renew_before=30, subject_alt_names=None, key_type=None, force=False)


def test_plan_nothing_when_far_from_expiry():
    cert, key = leaf(days=60)
    assert renew.plan([cert], key, PARAMS) == []


def test_plan_reasons():
    cert, key = leaf(days=10)
    other = x509.new_key('ec256')
    wanted = dict(PARAMS, force=True, subject_alt_names=['DNS:b.example.test'], key_type='rsa2048')
    reasons = renew.plan([cert], other, wanted)
    assert reasons[0] == 'force is set'
    assert reasons[1].endswith(' days left < renew_before 30') and float(reasons[1].split()[0]) < 10.01
    assert reasons[2] == 'subject_alt_names differ: has DNS:app.example.test, wants DNS:b.example.test'
    assert reasons[3] == 'key_type differs: has ec256, wants rsa2048'
    assert reasons[4] == 'the private key does not match the certificate'
    assert renew.plan(None, None, PARAMS) == ['no certificate at the source']


def test_plan_ignores_san_order_and_prefix():
    cert, key = leaf(sans=('b.example.test', 'a.example.test', '10.0.0.1'))
    assert renew.plan([cert], key, dict(PARAMS, subject_alt_names=['IP:10.0.0.1', 'A.example.test', 'DNS:b.example.test'])) == []


@pytest.mark.parametrize('days,verdict', [(40, 'ok'), (30, 'ok'), (29.9, 'warning'), (7, 'warning'), (6.5, 'critical'), (-1, 'critical')])
def test_verdict_for(days, verdict):
    assert info.verdict_for(days, 30, 7) == verdict


@pytest.mark.parametrize('days,verdict', [(50, 'ok'), (45, 'ok'), (44.9, 'warning'), (10, 'warning'), (2, 'critical'),
                                          (-0.1, 'critical')])
def test_inside_the_renewal_threshold_is_never_ok(days, verdict):
    """Issue 14 item 7: warn 7 / critical 3 (the lab's alert thresholds) with renew_before 45: a
    certificate due for renewal is a warning, never ok; the same rule (fewer than, not as many)
    as findings.verdict_below and cert_renew's plan."""
    assert info.verdict_for(days, 7, 3, renew_before=45) == verdict
    cert, key = leaf(days=days if days > 0 else 1)
    due = renew.plan([cert], key, dict(PARAMS, renew_before=45)) != []
    assert due == (days < 45)


def test_renewal_due_finding_says_what_to_run(tmp_path):
    ca = x509.make_ca('Unit CA')
    cert, key = leaf(days=20, issuer=ca)
    path = tmp_path / 'c.pem'
    path.write_text(x509.cert_pem(cert) + x509.cert_pem(ca[0]))
    item = info.inspect(dict(name='c', type='file', path=str(path)), {}, [ca[0]], 7, 3, renew_before=30)
    assert item['verdict'] == 'warning' and item['next'] == info.RENEW_COMMAND, item
    found = info.finding(item, 7, 3, 30)
    assert 'inside the renewal threshold: run ' + info.RENEW_COMMAND in found['figure']
    assert found['threshold'] == 'warn < 7 d, critical < 3 d, renew < 30 d' and found['verdict'] == 'warning'
    far = info.inspect(dict(name='c', type='file', path=str(path), renew_before=10), {}, [ca[0]], 7, 3, renew_before=30)
    assert far['verdict'] == 'ok' and far['next'] == '' and far['why'] == ''
    # without a renewal threshold: the alert thresholds alone, and renewal is what to run
    bare = info.inspect(dict(name='c', type='file', path=str(path)), {}, [ca[0]], 30, 7)
    assert bare['verdict'] == 'warning' and bare['why'] == '20.0 days left' and bare['next'] == info.RENEW_COMMAND


def test_verify_chain():
    ca = x509.make_ca('Unit CA')
    cert, dummy = leaf(issuer=ca)
    assert x509.verify_chain([cert, ca[0]], [ca[0]]) == (True, '')
    assert x509.verify_chain([cert], [ca[0]]) == (True, '')
    other = x509.make_ca('Other CA')
    ok, why = x509.verify_chain([cert, ca[0]], [other[0]])
    assert not ok and why == 'self-signed certificate CN=Unit CA is not a trusted root'
    ok, why = x509.verify_chain([cert], [other[0]])
    assert not ok and why == 'no trusted root issued CN=app.example.test (issuer CN=Unit CA)'
    selfsigned, dummy = leaf()
    ok, why = x509.verify_chain([selfsigned], [other[0]])
    assert not ok and why == 'self-signed certificate CN=app.example.test is not a trusted root'
    ok, why = x509.verify_chain([selfsigned], [])
    assert not ok and why.startswith('there is no trust anchor')
    # a self-signed leaf that is itself an anchor (openssl verify -CAfile self.pem self.pem)
    assert x509.verify_chain([selfsigned], [selfsigned]) == (True, '')
    future = x509.utcnow() + datetime.timedelta(days=400)
    ok, why = x509.verify_chain([cert, ca[0]], [ca[0]], now=future)
    assert not ok and why.startswith('CN=app.example.test expired on ')
    # the name asked for (an endpoint): cryptography's name check, whatever the chain
    assert x509.check_name([cert], 'app.example.test') == (True, '')
    assert x509.check_name([cert], 'APP.example.test') == (True, '')
    assert x509.check_name([cert], 'other.example.test') == (
        False, 'hostname mismatch: the certificate is for DNS:app.example.test, not other.example.test')
    assert x509.check_name([cert], 'app.example.test', now=future) == (True, '')  # expiry is not a name problem
    ok, why = x509.verify_chain([cert, ca[0]], [ca[0]], name='other.example.test')
    assert not ok and why.startswith('hostname mismatch')
    wild, dummy = leaf(sans=('*.example.test', '10.0.0.1'), issuer=ca)
    assert x509.verify_chain([wild], [ca[0]]) == (True, '')
    assert x509.check_name([wild], 'api.example.test') == (True, '')
    assert x509.check_name([wild], 'a.b.example.test')[0] is False
    assert x509.check_name([wild], '10.0.0.1') == (True, '') and x509.check_name([wild], '10.0.0.2')[0] is False


def test_cryptography_version_is_checked():
    assert x509.cryptography_problem() is None  # the pinned 50.0.2
    assert x509._version_tuple('38.0.4') < x509._version_tuple(x509.CRYPTOGRAPHY_NEEDED) <= x509._version_tuple('50.0.2')


def test_summary_has_no_key_material():
    cert, key = leaf()
    summary = x509.summarize([cert])
    text = repr(summary)
    assert 'PRIVATE' not in text and x509.key_pem(key).decode()[40:80] not in text
    assert summary['subject_alt_names'] == ['DNS:app.example.test'] and summary['key_type'] == 'ec256'


def test_bad_pem_is_one_sentence():
    with pytest.raises(x509.CertError, match='is not a PEM certificate'):
        x509.load_chain('hello', 'file x')
    with pytest.raises(x509.CertError, match='is not a PEM private key'):
        x509.load_key(b'hello', 'key x')


def test_atomic_write_mode_and_backup(tmp_path):
    path = str(tmp_path / 'k.pem')
    assert locations.atomic_write(path, b'one', 0o600) is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    backup = locations.atomic_write(path, b'two', 0o600)
    assert open(backup, 'rb').read() == b'one' and open(path, 'rb').read() == b'two'
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert sorted(os.listdir(str(tmp_path))) == sorted(['k.pem', os.path.basename(backup)])
    with pytest.raises(x509.CertError, match='does not exist'):
        locations.atomic_write(str(tmp_path / 'no' / 'x.pem'), b'x', 0o644)


def test_trust_bundle(tmp_path):
    assert len(x509.load_trust(None)) > 0  # the system bundle, old roots skipped not fatal
    bad = tmp_path / 'bad.pem'
    bad.write_text('not a bundle')
    with pytest.raises(x509.CertError, match='cannot be read as a PEM bundle'):
        x509.load_trust(str(bad))
    with pytest.raises(x509.CertError, match='cannot be read as a PEM bundle'):
        x509.load_trust(str(tmp_path / 'missing.pem'))
