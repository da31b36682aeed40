# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certificates scenario's servers and their state, inside the app container.

Run by the scenario (prepare.yml, tasks/tls_state.yml) with the image's virtualenv Python, which
has ``cryptography``. First argument: ``up`` or ``state``; second: a JSON object with ``dir``,
``ports`` {acme, acme_mgmt, dns, dns_mgmt, http, https}, ``name`` (the served name), ``days``
(days left on the served certificate), ``far_days``.

``up`` (once; it writes ``<dir>/up`` last):
  - a throw-away test CA; with it, pebble's own TLS certificate (127.0.0.1), nginx's certificate
    for ``name`` with ``days`` left (inside the renewal threshold) and a ``far`` certificate with
    ``far_days`` left that nothing may touch;
  - ``pebble-challtestsrv`` as the DNS that resolves every name to 127.0.0.1, then ``pebble``
    (Let's Encrypt's ACME test server) validating http-01 on ``ports.http``;
  - ``nginx`` serving the certificate over TLS on ``ports.https`` and ``<dir>/www`` over plain
    HTTP on ``ports.http`` (the ACME webroot);
  - ``<dir>/trust.pem``: the test CA and pebble's issuing root (pebble makes a new one at each
    start), what a client trusts.

``state`` prints, as JSON, what the runbook may change: the digests of the certificate and key
files (and whether the ACME account key exists), the backups next to them, the webroot's
challenge directory, and the certificate nginx serves (serial, not_after, issuer, sha256), read
with a TLS handshake that verifies the chain and the name against ``trust.pem``.
"""

import datetime
import glob
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NGINX_CONF = '''worker_processes 1;
pid {dir}/nginx/nginx.pid;
error_log {dir}/nginx/error.log warn;
user www-data;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/nginx/tmp;
    server {{
        listen 127.0.0.1:{https} ssl;
        server_name {name};
        ssl_certificate {dir}/tls/{name}.crt;
        ssl_certificate_key {dir}/tls/{name}.key;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{http};
        root {dir}/www;
    }}
}}
'''


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def name_of(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca():
    key = new_key()
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(name_of('oncall molecule test CA'))
            .issuer_name(name_of('oncall molecule test CA')).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca, cn, sans, days):
    """A leaf signed by the test CA, valid *days* more days (backdated by one day)."""
    key = new_key()
    now = utcnow()
    alt = [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s) for s in sans]
    cert = (x509.CertificateBuilder().subject_name(name_of(cn)).issuer_name(ca[0].subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            # RFC 5280 4.2.1.1: a CA-issued certificate names its issuer's key (cryptography's
            # verifier, like browsers, refuses a chain without it)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False)
            .sign(ca[1], hashes.SHA256()))
    return cert, key


def write_pair(directory, stem, cert, key, chain=()):
    crt_path, key_path = os.path.join(directory, stem + '.crt'), os.path.join(directory, stem + '.key')
    with open(crt_path, 'wb') as f:
        for c in (cert,) + tuple(chain):
            f.write(c.public_bytes(serialization.Encoding.PEM))
    with open(key_path, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return crt_path, key_path


def wait_port(port, proc, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit('%s exited with %s (see its log)' % (what, proc.returncode))
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit('%s did not listen on 127.0.0.1:%d within %ds' % (what, port, timeout))


def start(argv, log, env=None):
    """A daemon that outlives this script (and the `docker exec` that runs it)."""
    with open(log, 'ab') as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def up(conf):
    d, ports, name = conf['dir'], conf['ports'], conf['name']
    if os.path.exists(os.path.join(d, 'up')):
        print(json.dumps({'changed': False}))
        return
    for sub in ('ca', 'tls', 'www', 'nginx/tmp', 'pebble', 'acme'):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.chmod(os.path.join(d, 'www'), 0o755)

    ca = make_ca()
    with open(os.path.join(d, 'ca', 'test-ca.pem'), 'wb') as f:
        f.write(ca[0].public_bytes(serialization.Encoding.PEM))
    pebble_crt, pebble_key = write_pair(os.path.join(d, 'pebble'), 'tls',
                                        *make_leaf(ca, 'localhost', ['localhost', '127.0.0.1'], 30))
    write_pair(os.path.join(d, 'tls'), name, *make_leaf(ca, name, [name], conf['days']), chain=(ca[0],))
    write_pair(os.path.join(d, 'tls'), 'far', *make_leaf(ca, 'far.oncall.test', ['far.oncall.test'],
                                                         conf['far_days']), chain=(ca[0],))

    pebble_conf = os.path.join(d, 'pebble', 'pebble.json')
    with open(pebble_conf, 'w') as f:
        json.dump({'pebble': {
            'listenAddress': '127.0.0.1:%d' % ports['acme'],
            'managementListenAddress': '127.0.0.1:%d' % ports['acme_mgmt'],
            'certificate': pebble_crt, 'privateKey': pebble_key,
            'httpPort': ports['http'], 'tlsPort': ports['https'],
            'ocspResponderURL': '', 'externalAccountBindingRequired': False}}, f)
    challtestsrv = start(['pebble-challtestsrv', '-dns01', '127.0.0.1:%d' % ports['dns'], '-http01', '',
                          '-https01', '', '-tlsalpn01', '', '-management', '127.0.0.1:%d' % ports['dns_mgmt'],
                          '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
                         os.path.join(d, 'pebble', 'challtestsrv.log'))
    wait_port(ports['dns_mgmt'], challtestsrv, 'pebble-challtestsrv')
    pebble = start(['pebble', '-config', pebble_conf, '-dnsserver', '127.0.0.1:%d' % ports['dns']],
                   os.path.join(d, 'pebble', 'pebble.log'),
                   env=dict(os.environ, PEBBLE_VA_NOSLEEP='1', PEBBLE_WFE_NONCEREJECT='0', PEBBLE_AUTHZREUSE='0'))
    wait_port(ports['acme'], pebble, 'pebble')
    wait_port(ports['acme_mgmt'], pebble, 'pebble (management)')

    nginx_conf = os.path.join(d, 'nginx', 'nginx.conf')
    with open(nginx_conf, 'w') as f:
        f.write(NGINX_CONF.format(dir=d, name=name, https=ports['https'], http=ports['http']))
    # nginx daemonizes itself: the master's pid is in nginx/nginx.pid.
    subprocess.run(['nginx', '-p', os.path.join(d, 'nginx'), '-c', nginx_conf], check=True)

    ctx = ssl.create_default_context(cafile=os.path.join(d, 'ca', 'test-ca.pem'))
    with urllib.request.urlopen('https://127.0.0.1:%d/roots/0' % ports['acme_mgmt'], context=ctx) as resp:
        pebble_root = resp.read()
    with open(os.path.join(d, 'trust.pem'), 'wb') as f:
        with open(os.path.join(d, 'ca', 'test-ca.pem'), 'rb') as ca_pem:
            f.write(ca_pem.read())
        f.write(pebble_root)
    deadline = time.time() + 30
    while True:
        try:
            served(conf)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    with open(os.path.join(d, 'up'), 'w') as f:
        f.write('%s\n' % utcnow().isoformat())
    print(json.dumps({'changed': True}))


def served(conf):
    """The certificate nginx serves, read with a verifying handshake (chain and name)."""
    ctx = ssl.create_default_context(cafile=os.path.join(conf['dir'], 'trust.pem'))
    with socket.create_connection(('127.0.0.1', conf['ports']['https']), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=conf['name']) as tls:
            der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    return {
        'serial': '%X' % cert.serial_number,
        'not_after': cert.not_valid_after_utc.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'days_remaining': round((cert.not_valid_after_utc - utcnow()).total_seconds() / 86400, 3),
        'issuer': cert.issuer.rfc4514_string(),
        'sha256': hashlib.sha256(der).hexdigest(),
    }


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def leaf_serial(path):
    with open(path, 'rb') as f:
        return '%X' % x509.load_pem_x509_certificates(f.read())[0].serial_number


def state(conf):
    d = conf['dir']
    tls = os.path.join(d, 'tls')
    files = sorted(p for p in glob.glob(os.path.join(tls, '*')) if not p.endswith('.bak'))
    challenges = os.path.join(d, 'www', '.well-known', 'acme-challenge')
    print(json.dumps({
        'files': dict((os.path.basename(p), digest(p)) for p in files),
        'serials': dict((os.path.basename(p), leaf_serial(p)) for p in files if p.endswith('.crt')),
        'backups': dict((os.path.basename(p), digest(p)) for p in sorted(glob.glob(os.path.join(tls, '*.bak')))),
        'account_key': os.path.exists(os.path.join(d, 'acme', 'account.pem')),
        'challenges': sorted(os.listdir(challenges)) if os.path.isdir(challenges) else [],
        'served': served(conf),
    }, sort_keys=True))


def main():
    action, conf = sys.argv[1], json.loads(sys.argv[2])
    {'up': up, 'state': state}[action](conf)


if __name__ == '__main__':
    main()
