# -*- coding: utf-8 -*-
"""Real servers for the certificate tests: pebble (+ pebble-challtestsrv as its DNS) and nginx.

* ``Pebble``: Let's Encrypt's ACME test server (Debian package ``pebble``) on free loopback
  ports, with its own TLS certificate signed by a throw-away CA made here (trusted through
  ``acme.ca_path``), validating http-01 on ``http_port`` (nginx's plain-HTTP webroot server or
  cert_renew's standalone responder) and resolving every name to 127.0.0.1 through
  ``pebble-challtestsrv``'s DNS, whose management API also publishes dns-01 TXT records.
* ``Nginx``: a real nginx serving a certificate file over TLS and a webroot over HTTP.

Each server lives in a temp dir and is stopped (and the dir removed) by ``stop()``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

from helpers import free_port  # noqa: F401  (tests import it from here too)
from helpers.servers import stop_process

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509


def digest(*paths):
    """sha256 of each file, to compare before and after."""
    import hashlib
    out = {}
    for p in paths:
        with open(p, 'rb') as f:
            out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


def wait_port(port, proc=None, timeout=20, what='server'):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError('%s exited: %s' % (what, proc.stderr.read() if proc.stderr else ''))
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('%s did not listen on %d' % (what, port))


def write_pair(directory, stem, chain, key):
    """Write <stem>.crt (chain) and <stem>.key; returns their paths."""
    crt = os.path.join(directory, stem + '.crt')
    keyf = os.path.join(directory, stem + '.key')
    with open(crt, 'w') as f:
        f.write(''.join(x509.cert_pem(c) for c in chain))
    with open(keyf, 'wb') as f:
        f.write(x509.key_pem(key))
    os.chmod(keyf, 0o600)
    return crt, keyf


def make_cert(directory, stem, sans, days, ca=None):
    """A certificate valid *days* more days (self-signed, or signed by ca=(cert, key))."""
    import datetime
    key = x509.new_key('ec256')
    norm = x509.normalize_sans(sans)
    if ca:
        leaf = x509.sign(key, norm, None, 1, ca[0], ca[1])
    else:
        leaf = x509.sign(key, norm, None, 1)
    # re-sign with the wanted end date (days may be fractional or < 1)
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes
    now = x509.utcnow()
    builder = (cx.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.issuer)
               .public_key(key.public_key()).serial_number(cx.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=days)))
    for ext in leaf.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    leaf = builder.sign(ca[1] if ca else key, hashes.SHA256())
    return write_pair(directory, stem, [leaf] + ([ca[0]] if ca else []), key)


class Pebble(object):
    def __init__(self, http_port=None):
        self.dir = tempfile.mkdtemp(prefix='oncall-pebble-')
        self.port, self.mgmt_port = free_port(), free_port()
        self.http_port = http_port or free_port()
        self.dns_port, self.cts_port = free_port(), free_port()
        ca, ca_key = x509.make_ca('oncall test CA for pebble')
        self.ca_path = os.path.join(self.dir, 'test-ca.pem')
        with open(self.ca_path, 'w') as f:
            f.write(x509.cert_pem(ca))
        key = x509.new_key('ec256')
        leaf = x509.sign(key, ['DNS:localhost', 'IP:127.0.0.1'], 'localhost', 30, ca, ca_key)
        cert_path, key_path = write_pair(self.dir, 'pebble', [leaf], key)
        config = {'pebble': {
            'listenAddress': '127.0.0.1:%d' % self.port,
            'managementListenAddress': '127.0.0.1:%d' % self.mgmt_port,
            'certificate': cert_path, 'privateKey': key_path,
            'httpPort': self.http_port, 'tlsPort': free_port(),
            'ocspResponderURL': '', 'externalAccountBindingRequired': False}}
        cfg_path = os.path.join(self.dir, 'pebble.json')
        with open(cfg_path, 'w') as f:
            json.dump(config, f)
        self.challtestsrv = subprocess.Popen(
            ['pebble-challtestsrv', '-dns01', '127.0.0.1:%d' % self.dns_port, '-http01', '',
             '-https01', '', '-tlsalpn01', '', '-management', '127.0.0.1:%d' % self.cts_port,
             '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_port(self.cts_port, self.challtestsrv, what='pebble-challtestsrv')
        env = dict(os.environ, PEBBLE_VA_NOSLEEP='1', PEBBLE_WFE_NONCEREJECT='0', PEBBLE_AUTHZREUSE='0')
        self.log = open(os.path.join(self.dir, 'pebble.log'), 'w')
        self.proc = subprocess.Popen(['pebble', '-config', cfg_path, '-dnsserver', '127.0.0.1:%d' % self.dns_port],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, what='pebble')
        self.directory = 'https://127.0.0.1:%d/dir' % self.port

    def roots(self):
        """pebble's issuing root (regenerated at every start), as PEM."""
        ctx = ssl.create_default_context(cafile=self.ca_path)
        with urllib.request.urlopen('https://127.0.0.1:%d/roots/0' % self.mgmt_port, context=ctx) as resp:
            return resp.read().decode('ascii')

    def roots_file(self):
        path = os.path.join(self.dir, 'pebble-roots.pem')
        with open(path, 'w') as f:
            f.write(self.roots())
        return path

    def challtestsrv_url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.cts_port, path)

    def stop(self):
        for proc in (self.proc, self.challtestsrv):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


NGINX_CONF = '''
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
user {user};
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{http_port};
        root {webroot};
    }}
}}
'''


class Nginx(object):
    """A real nginx: TLS with the certificate files in ``tls_dir``, and a plain-HTTP webroot."""

    def __init__(self, http_port=None, sans=('localhost',), days=10):
        self.dir = tempfile.mkdtemp(prefix='oncall-nginx-')
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, 'tmp'))
        self.tls_dir = os.path.join(self.dir, 'tls')
        self.webroot = os.path.join(self.dir, 'www')
        os.makedirs(self.tls_dir)
        os.makedirs(self.webroot)
        os.chmod(self.webroot, 0o755)
        self.cert, self.key = make_cert(self.tls_dir, 'server', list(sans), days)
        self.tls_port = free_port()
        self.http_port = http_port or free_port()
        self.conf = os.path.join(self.dir, 'nginx.conf')
        import pwd
        with open(self.conf, 'w') as f:
            f.write(NGINX_CONF.format(dir=self.dir, tls_port=self.tls_port, http_port=self.http_port,
                                      cert=self.cert, key=self.key, webroot=self.webroot,
                                      user=pwd.getpwuid(os.getuid()).pw_name))
        self.proc = subprocess.Popen(['nginx', '-p', self.dir, '-c', self.conf, '-g', 'daemon off;'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_port(self.tls_port, self.proc, what='nginx')
        wait_port(self.http_port, self.proc, what='nginx')

    @property
    def reload_command(self):
        return 'nginx -p %s -c %s -s reload' % (self.dir, self.conf)

    def reload(self):
        subprocess.run(self.reload_command.split(), check=True, capture_output=True)

    def served_after_reload(self, serial_hex, timeout=15):
        """The leaf served once nginx's new workers answer with serial *serial_hex* (a reload
        is asynchronous: old workers answer until the new ones are up), or the last one seen."""
        deadline = time.time() + timeout
        while True:
            cert = self.served()
            if '%X' % cert.serial_number == serial_hex or time.time() > deadline:
                return cert
            time.sleep(0.1)

    def served(self, server_name='localhost'):
        """The leaf certificate nginx serves now (DER -> cryptography)."""
        from cryptography import x509 as cx
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(('127.0.0.1', self.tls_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                return cx.load_der_x509_certificate(tls.getpeercert(binary_form=True))

    def stop(self):
        stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class KubeEmulator(object):
    """kmock's KubernetesEmulator (an in-memory Kubernetes API over HTTP) on a free loopback
    port, in a thread. No real API server can run here; nothing reconciles in it, so a test
    plays cert-manager's part itself. Resources are declared with their discovery info."""

    RESOURCES = {
        'v1/secrets': dict(kind='Secret', singular='secret', namespaced=True),
        'apps/v1/deployments': dict(kind='Deployment', singular='deployment', namespaced=True,
                                    subresources={'status', 'scale'}),
        'cert-manager.io/v1/certificates': dict(kind='Certificate', singular='certificate', namespaced=True,
                                                subresources={'status'}),
    }

    def __init__(self):
        import asyncio
        import threading
        import kmock
        self.state = {}

        def run():
            async def main():
                emu = kmock.KubernetesEmulator()
                for key, info in self.RESOURCES.items():
                    emu.resources[key] = kmock.ResourceInfo(
                        verbs={'get', 'list', 'create', 'patch', 'update', 'delete', 'watch'}, **info)
                async with emu, kmock.Server(emu, host='127.0.0.1') as srv:
                    self.state['url'] = str(srv.url).rstrip('/')
                    while not self.state.get('stop'):
                        await asyncio.sleep(0.05)
            asyncio.run(main())
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while 'url' not in self.state:
            if time.time() > deadline:
                raise RuntimeError('kmock did not start')
            time.sleep(0.05)
        self.url = self.state['url']

    def api(self):
        from kubernetes import client
        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)

    def stop(self):
        self.state['stop'] = True
        self.thread.join(10)
