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
    ok, why = x509.verify_chain([selfsigned], [])
    assert not ok and 'self-signed certificate' in why
    future = x509.utcnow() + datetime.timedelta(days=400)
    ok, why = x509.verify_chain([cert, ca[0]], [ca[0]], now=future)
    assert not ok and 'expired' in why


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
