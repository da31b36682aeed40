# -*- coding: utf-8 -*-
"""cert_info's chain and hostname verdicts put beside OpenSSL's on the same files (issue 15).

Every certificate here is made with the real ``openssl`` CLI in a temp dir. For each case the
expected answer is computed by running OpenSSL on the same files, never written by hand:

* files: ``openssl verify -purpose sslserver -auth_level 2 -CAfile root -untrusted chain leaf``
  (``-auth_level 2``: the security level Debian's TLS clients use, ``SECLEVEL=2`` in
  /etc/ssl/openssl.cnf; without it ``openssl verify`` applies no level at all and still accepts
  a SHA-1 signature that every TLS client on this host refuses);
* endpoints: a real ``openssl s_server`` on a free loopback port serving the leaf and its chain,
  and ``openssl s_client -verify_hostname NAME`` (``-verify_ip`` for an address)
  ``-verify_return_error``, which checks purpose sslserver, the chain and the name.

The reason the module gives must match OpenSSL's error (its number and depth), and the SANs it
returns must be the ones ``openssl x509 -ext subjectAltName`` prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from helpers.cert import free_port, wait_port
from helpers import ROOT, ModuleRun, _env, ansible_bin, run_module, stop_process

LEAF_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n'

# case -> (the leaf's issuer path from the root down, the leaf's extensions, digest)
# Intermediates: inter (a proper CA), notca (CA:FALSE yet keyCertSign), p0 (pathlen:0) and
# p0sub (a CA below it), nokcs (CA:TRUE without keyCertSign).
CASES = {
    'good_chain': (['inter'], LEAF_EXT + 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:good.oncall.test\n', 'sha256'),
    'non_ca_issuer': (['notca'], LEAF_EXT + 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:good.oncall.test\n', 'sha256'),
    'pathlen0_violated': (['p0', 'p0sub'], LEAF_EXT + 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:good.oncall.test\n', 'sha256'),
    'no_keycertsign': (['nokcs'], LEAF_EXT + 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:good.oncall.test\n', 'sha256'),
    'clientauth_only': (['inter'], LEAF_EXT + 'extendedKeyUsage=clientAuth\nsubjectAltName=DNS:good.oncall.test\n', 'sha256'),
    'uri_email_sans': (['inter'], LEAF_EXT + 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:good.oncall.test,'
                       'URI:spiffe://oncall.test/ns/api,email:oncall@oncall.test,IP:127.0.0.1\n', 'sha256'),
    'sha1_signed': (['inter'], LEAF_EXT + 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:good.oncall.test\n', 'sha1'),
    'ip_san_only': (['inter'], LEAF_EXT + 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n', 'sha256'),
}

# What each of OpenSSL's verification errors must be called in the module's one sentence
# (X509_V_ERR_* numbers as `openssl verify` prints them; the depth tells leaf from issuer).
# (79 "invalid CA certificate" is what OpenSSL's strict checks say first of an issuer that is
# not a CA or lacks keyCertSign: either sentence names the fault.)
REASONS = {
    (79, 'issuer'): ('not a CA', 'keyCertSign'),  # X509_V_ERR_INVALID_CA
    (26, 'issuer'): ('not a CA',),                # unsuitable purpose of an issuer (CA:FALSE)
    (25, 'issuer'): ('pathlen',),                 # path length constraint exceeded
    (32, 'issuer'): ('keyCertSign',),             # key usage does not include certificate signing
    (26, 'leaf'): ('lacks serverAuth',),          # unsuitable certificate purpose (clientAuth only)
    (68, 'leaf'): ('(SHA-1)',),                   # CA signature digest algorithm too weak
    (62, 'leaf'): ('hostname mismatch',),         # hostname mismatch
    (64, 'leaf'): ('hostname mismatch',),         # IP address mismatch
}


def openssl(*args, **kw):
    return subprocess.run(['openssl'] + list(args), capture_output=True, text=True, timeout=60, check=False, **kw)


class Pki(object):
    """A root, the intermediates of CASES and one leaf per case, all made by the openssl CLI."""

    def __init__(self, directory):
        self.dir = str(directory)
        cnf = self.path('req.cnf')
        with open(cnf, 'w') as f:
            f.write('[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n' + CA_EXT)
        self.root = self.path('root.crt')
        self._run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                  '-keyout', self.path('root.key'), '-out', self.root, '-days', '60', '-subj', '/CN=oncall openssl root',
                  '-config', cnf, '-extensions', 'v3_ca')
        self.issue('inter', 'root', CA_EXT)
        self.issue('notca', 'root', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyCertSign\n')
        self.issue('p0', 'root', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n')
        self.issue('p0sub', 'p0', CA_EXT)
        self.issue('nokcs', 'root', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,cRLSign\n')
        self.cases = {}
        for case, (issuers, ext, md) in CASES.items():
            self.issue(case, issuers[-1], ext, md)
            chain = self.path(case + '.chain.pem')
            with open(chain, 'w') as out:
                for name in reversed(issuers):  # nearest issuer first, as a server sends them
                    with open(self.path(name + '.crt')) as f:
                        out.write(f.read())
            self.cases[case] = dict(leaf=self.path(case + '.crt'), key=self.path(case + '.key'), chain=chain)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _run(self, *args):
        proc = openssl(*args)
        assert proc.returncode == 0, proc.stderr

    def issue(self, name, issuer, ext, md='sha256'):
        with open(self.path(name + '.ext'), 'w') as f:
            f.write(ext)
        self._run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                  '-keyout', self.path(name + '.key'), '-out', self.path(name + '.csr'), '-subj', '/CN=' + name)
        self._run('x509', '-req', '-in', self.path(name + '.csr'), '-CA', self.path(issuer + '.crt'),
                  '-CAkey', self.path(issuer + '.key'), '-CAcreateserial', '-out', self.path(name + '.crt'),
                  '-days', '40', '-extfile', self.path(name + '.ext'), '-' + md)

    def verify(self, case):
        """(ok, errors) from `openssl verify` on the case's files."""
        c = self.cases[case]
        proc = openssl('verify', '-purpose', 'sslserver', '-auth_level', '2', '-CAfile', self.root,
                       '-untrusted', c['chain'], c['leaf'])
        return parse_openssl(proc, c['leaf'])


def parse_openssl(proc, leaf=None):
    """(ok, errors): errors are (number, depth) of every verification error OpenSSL printed
    (with strict checks it may print several for one certificate)."""
    text = proc.stdout + proc.stderr
    errors = [(int(n), int(d)) for n, d in re.findall(r'error (\d+) at (\d+) depth', text)]
    errors += [(int(n), int(d)) for d, n in re.findall(r'depth=(\d+) [^\n]*\nverify error:num=(\d+)', text)]
    if proc.returncode == 0 and not errors:
        return True, []
    assert errors, text
    return False, errors


def reasons_for(errors):
    """The module's wording for OpenSSL's errors (at least one of them must be known here)."""
    known = [r for n, d in errors for r in REASONS.get((n, 'leaf' if not d else 'issuer'), ())]
    assert known, 'OpenSSL errors %s have no expected wording here' % (errors,)
    return known


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp('openssl-pki'))


@pytest.fixture(scope='module')
def file_results(pki):
    """cert_info once over every case's files (leaf + chain_path), the root as the only anchor."""
    run = run_module('cert_info', dict(
        certificates=[dict(name=case, type='file', path=c['leaf'], chain_path=c['chain'])
                      for case, c in pki.cases.items()],
        ca_path=pki.root, warn_days=1, critical_days=0))
    assert not run.failed, run.result
    return dict((item['name'], item) for item in run['certificates'])


@pytest.mark.parametrize('case', sorted(CASES))
def test_file_chain_verdict_equals_openssl_verify(pki, file_results, case):
    ok, errors = pki.verify(case)
    item = file_results[case]
    assert item['chain_verified'] is ok, (case, item['chain_error'], errors)
    assert item['verdict'] == ('ok' if ok else 'critical'), item
    if ok:
        assert item['chain_error'] == '' and item['why'] == ''
    else:
        assert any(r in item['chain_error'] for r in reasons_for(errors)), (errors, item['chain_error'])
        assert 'not issued by the next certificate' not in item['chain_error']
        assert len(item['chain_error'].split('. ')) == 1  # one sentence


class SServer(object):
    """`openssl s_server` on a free loopback port serving a leaf and its chain. Its own security
    level is lowered only so that it agrees to serve a SHA-1 certificate; the client decides."""

    def __init__(self, case):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ['openssl', 's_server', '-accept', '127.0.0.1:%d' % self.port, '-cert', case['leaf'],
             '-key', case['key'], '-cert_chain', case['chain'], '-www', '-cipher', 'DEFAULT:@SECLEVEL=0'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_port(self.port, self.proc, what='openssl s_server')

    def stop(self):
        stop_process(self.proc)


def s_client(pki, port, name):
    """(ok, errors) from `openssl s_client` asking for *name*."""
    import ipaddress
    try:
        ipaddress.ip_address(name)
        check = ['-verify_ip', name]
    except ValueError:
        check = ['-verify_hostname', name, '-servername', name]
    proc = openssl('s_client', '-connect', '127.0.0.1:%d' % port, '-CAfile', pki.root, '-verify_return_error',
                   *check, stdin=subprocess.DEVNULL)
    return parse_openssl(proc)


# (case served, the name asked for): each case under its own name, and names it is not for
ENDPOINTS = [(case, '127.0.0.1' if case == 'ip_san_only' else 'good.oncall.test') for case in sorted(CASES)] + [
    ('good_chain', 'wrong.oncall.test'),
    ('good_chain', '127.0.0.1'),
    ('uri_email_sans', '127.0.0.1'),
    ('ip_san_only', '127.0.0.2'),
]


@pytest.fixture(scope='module')
def endpoint_results(pki):
    """One s_server per case, cert_info once over every (case, name), s_client on each."""
    servers = dict((case, SServer(pki.cases[case])) for case in CASES)
    try:
        specs = [dict(name='%s@%s' % (case, name), type='endpoint', host='127.0.0.1', port=servers[case].port,
                      server_name=name, timeout=10) for case, name in ENDPOINTS]
        run = run_module('cert_info', dict(certificates=specs, ca_path=pki.root, warn_days=1, critical_days=0))
        assert not run.failed, run.result
        items = dict((item['name'], item) for item in run['certificates'])
        reference = dict(('%s@%s' % (case, name), s_client(pki, servers[case].port, name)) for case, name in ENDPOINTS)
    finally:
        for server in servers.values():
            server.stop()
    return items, reference


@pytest.mark.parametrize('case,name', ENDPOINTS)
def test_endpoint_verdict_equals_openssl_s_client(endpoint_results, case, name):
    items, reference = endpoint_results
    key = '%s@%s' % (case, name)
    ok, errors = reference[key]
    item = items[key]
    assert item.get('error') is None, item
    module_ok = item['chain_verified'] and item['hostname_matches']
    assert module_ok is ok, (key, item['why'], errors)
    assert item['verdict'] == ('ok' if ok else 'critical'), item
    assert item['hostname'] == name
    if not ok:
        assert any(r in item['why'] for r in reasons_for(errors)), (errors, item['why'])
    if [n for n, d in errors if n in (62, 64)]:  # OpenSSL: name mismatch -> so says the module
        assert item['hostname_matches'] is False and 'hostname mismatch' in item['why']


def test_every_san_type_returned_as_openssl_prints_them(pki, file_results):
    proc = openssl('x509', '-in', pki.cases['uri_email_sans']['leaf'], '-noout', '-ext', 'subjectAltName')
    printed = [n.strip() for n in proc.stdout.splitlines()[1].split(',')]
    item = file_results['uri_email_sans']
    # OpenSSL prints "IP Address:" where the module (as before) says "IP:"
    assert item['all_subject_alt_names'] == [n.replace('IP Address:', 'IP:') for n in printed]
    assert any(n.startswith('URI:spiffe://') for n in item['all_subject_alt_names'])
    assert any(n.startswith('email:') for n in item['all_subject_alt_names'])
    # the existing key keeps its meaning: DNS and IP names, sorted
    assert item['subject_alt_names'] == ['DNS:good.oncall.test', 'IP:127.0.0.1']


def test_known_divergence_a_leaf_without_subject_alt_name(pki, tmp_path):
    """OpenSSL's `verify -purpose sslserver` accepts a leaf with no subjectAltName (it checks no
    name); cryptography's server policy (the CA/B rule every browser follows) refuses it. The
    module follows cryptography: critical, with that reason. Both sides are run here, so the
    documented divergence is checked, not assumed."""
    pki.issue('nosan', 'inter', LEAF_EXT + 'extendedKeyUsage=serverAuth\n')
    proc = openssl('verify', '-purpose', 'sslserver', '-auth_level', '2', '-CAfile', pki.root,
                   '-untrusted', pki.path('inter.crt'), pki.path('nosan.crt'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = run_module('cert_info', dict(certificates=[dict(name='nosan', type='file', path=pki.path('nosan.crt'),
                                                          chain_path=pki.path('inter.crt'))],
                                       ca_path=pki.root, warn_days=1, critical_days=0))
    item = run['certificates'][0]
    assert item['verdict'] == 'critical' and item['chain_verified'] is False
    assert item['chain_error'] == 'CN=nosan has no DNS or IP subjectAltName, which TLS clients require of a server certificate'


def test_trust_chain_root_makes_the_chains_own_root_an_anchor(pki, tmp_path):
    """Without ca_path the system bundle does not know the test root: not verified, as OpenSSL
    says with -CAfile of the system bundle; trust_chain_root=true makes the root shipped at the
    end of the chain an anchor, as openssl verify -CAfile <that root> says."""
    case = pki.cases['good_chain']
    full = str(tmp_path / 'full.pem')
    with open(full, 'w') as out:
        for path in (case['leaf'], case['chain'], pki.root):
            with open(path) as f:
                out.write(f.read())
    system = openssl('verify', '-purpose', 'sslserver', '-CAfile', '/etc/ssl/certs/ca-certificates.crt',
                     '-untrusted', case['chain'], case['leaf'])
    anchored = openssl('verify', '-purpose', 'sslserver', '-CAfile', pki.root, '-untrusted', case['chain'], case['leaf'])
    run = run_module('cert_info', dict(certificates=[
        dict(name='plain', type='file', path=full),
        dict(name='anchored', type='file', path=full, trust_chain_root=True)], warn_days=1, critical_days=0))
    plain, with_root = run['certificates']
    assert plain['chain_verified'] is (system.returncode == 0) is False
    assert plain['chain_error'] == 'self-signed certificate CN=oncall openssl root is not a trusted root'
    assert with_root['chain_verified'] is (anchored.returncode == 0) is True and with_root['verdict'] == 'ok'


def test_old_cryptography_is_one_sentence_not_a_crash(pki):
    """Debian's own python3-cryptography (38 on bookworm, no x509.verification): run both
    modules with /usr/bin/python3 for real. cert_info reports every certificate unknown with one
    sentence naming the version found and the one needed (the run goes on); cert_renew refuses
    with that sentence. Never an AttributeError or a traceback."""
    found = subprocess.run(['/usr/bin/python3', '-c', 'import cryptography; print(cryptography.__version__)'],
                           capture_output=True, text=True, check=False).stdout.strip()
    assert found and int(found.split('.')[0]) < 42, 'this test needs the distribution\'s old cryptography: %r' % found
    from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509

    def run_old(module, args):
        cmd = [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local', '-e',
               'ansible_python_interpreter=/usr/bin/python3', '-m', 'oncall.runbooks.' + module, '-a', json.dumps(args)]
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300, check=False)
        return proc, ModuleRun(proc).result

    case = pki.cases['good_chain']
    proc, info = run_old('cert_info', dict(certificates=[dict(name='good', type='file', path=case['leaf'])],
                                           ca_path=pki.root))
    text = proc.stdout + proc.stderr
    assert 'Traceback' not in text and 'AttributeError' not in text
    sentence = ('cryptography %s is installed for /usr/bin/python3 but %s or newer is needed (its x509.verification API)'
                % (found, x509.CRYPTOGRAPHY_NEEDED))
    assert info.get('failed') is not True and info['msg'].startswith(sentence), info
    assert [c['verdict'] for c in info['certificates']] == ['unknown'] and info['unknown'] == ['good']
    assert info['findings'][0]['verdict'] == 'unknown' and info['findings'][0]['figure'].startswith(sentence)

    proc, renew = run_old('cert_renew', dict(source=dict(type='file', path=case['leaf'], key_path=case['key']),
                                             provider='selfsigned'))
    text = proc.stdout + proc.stderr
    assert 'Traceback' not in text and 'AttributeError' not in text
    assert renew['failed'] is True and renew['msg'].startswith(sentence) and renew['renewed'] is False
