# -*- coding: utf-8 -*-
"""The Kubernetes options (kubernetes.core's names, plugins/module_utils/kube.py) reach the
kubernetes client: cert_info reads a kubernetes.io/tls secret from a loopback API server started
here that records every request - its path, Authorization header and TLS client certificate -
or through a loopback HTTP proxy that records the absolute URL it was asked for.

No real Kubernetes API server runs on this machine; the server here answers the one call a
k8s_secret location makes (GET /api/v1/namespaces/<ns>/secrets/<name>) as the API server does,
over real HTTP and TLS (the client verifies its certificate, or presents its own).
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import ssl
import threading

import pytest

from helpers.cert import free_port, make_cert
from helpers import run_module

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509


def _client_cert(directory, ca):
    """A TLS client certificate (extendedKeyUsage clientAuth) signed by ca, CN oncall-client."""
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    key = x509.new_key('ec256')
    now = x509.utcnow()
    cert = (cx.CertificateBuilder()
            .subject_name(cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, 'oncall-client')]))
            .issuer_name(ca[0].subject).public_key(key.public_key())
            .serial_number(cx.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(cx.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(cx.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca[1], hashes.SHA256()))
    crt, keyf = os.path.join(directory, 'client.crt'), os.path.join(directory, 'client.key')
    with open(crt, 'w') as f:
        f.write(x509.cert_pem(cert))
    with open(keyf, 'wb') as f:
        f.write(x509.key_pem(key))
    return crt, keyf


class RecordingApi(object):
    """A loopback server answering GET /api/v1/namespaces/<ns>/secrets/<name> with a TLS secret
    (the certificate of `secret_pem`), recording each request. tls: serve HTTPS with a
    certificate for 127.0.0.1 signed by `ca`, asking for (not requiring) a client certificate."""

    def __init__(self, secret_pem, ca=None, directory=None):
        self.requests = []
        crt_b64 = base64.b64encode(secret_pem).decode('ascii')
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                peer = None
                if isinstance(self.connection, ssl.SSLSocket):
                    cert = self.connection.getpeercert()
                    if cert:
                        peer = dict(x[0] for x in cert['subject'])['commonName']
                outer.requests.append({'path': self.path, 'authorization': self.headers.get('Authorization'),
                                       'client_cn': peer})
                parts = self.path.split('?')[0].rstrip('/').split('/')
                if len(parts) < 6 or parts[-2] != 'secrets':
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps({'apiVersion': 'v1', 'kind': 'Secret', 'type': 'kubernetes.io/tls',
                                   'metadata': {'name': parts[-1], 'namespace': parts[-3]},
                                   'data': {'tls.crt': crt_b64}}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.scheme = 'http'
        if ca is not None:
            crt, key = make_cert(directory, 'api-server', ['IP:127.0.0.1'], 1, ca=ca)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(crt, key)
            ca_file = os.path.join(directory, 'ca.pem')
            with open(ca_file, 'w') as f:
                f.write(x509.cert_pem(ca[0]))
            ctx.load_verify_locations(ca_file)
            ctx.verify_mode = ssl.CERT_OPTIONAL
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = 'https'
        self.url = '%s://127.0.0.1:%d' % (self.scheme, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


SECRET = dict(type='k8s_secret', namespace='festivals', name='festivals-tls', verify_chain=False)
PATH = '/api/v1/namespaces/festivals/secrets/festivals-tls'


@pytest.fixture()
def pki(tmp_path):
    ca = x509.make_ca('oncall test Kubernetes CA')
    ca_file = str(tmp_path / 'ca.pem')
    with open(ca_file, 'w') as f:
        f.write(x509.cert_pem(ca[0]))
    leaf_crt, dummy = make_cert(str(tmp_path), 'festivals', ['festivals.oncall.test'], 20)
    with open(leaf_crt, 'rb') as f:
        pem = f.read()
    return {'ca': ca, 'ca_file': ca_file, 'secret_pem': pem, 'dir': str(tmp_path)}


@pytest.fixture()
def https_api(pki):
    api = RecordingApi(pki['secret_pem'], ca=pki['ca'], directory=pki['dir'])
    yield api
    api.stop()


@pytest.fixture()
def http_api(pki):
    api = RecordingApi(pki['secret_pem'])
    yield api
    api.stop()


def read(**options):
    return run_module('cert_info', dict(certificates=[SECRET], **options))


def read_ok(run):
    assert not run.failed, run.result
    item = run['certificates'][0]
    assert 'error' not in item and item['subject_alt_names'] == ['DNS:festivals.oncall.test'], item
    assert 19 <= item['days_remaining'] <= 20 and item['verdict'] == 'warning'
    return item


def test_host_api_key_and_ca_cert_reach_the_client(https_api, pki):
    run = read(host=https_api.url, api_key='tok-123', ca_cert=pki['ca_file'])
    read_ok(run)
    assert https_api.requests == [{'path': PATH, 'authorization': 'Bearer tok-123', 'client_cn': None}]
    assert 'tok-123' not in run.stdout + run.stderr  # api_key is no_log


def test_the_api_servers_certificate_is_verified_unless_validate_certs_is_false(https_api, pki):
    # no ca_cert: the API server's certificate is signed by an unknown CA, refused before any request
    refused = read(host=https_api.url, api_key='tok')
    item = refused['certificates'][0]
    assert item['verdict'] == 'critical' and 'CERTIFICATE_VERIFY_FAILED' in item['error'], item
    assert https_api.requests == []
    read_ok(read(host=https_api.url, api_key='tok', validate_certs=False))
    # kubernetes.core's aliases are taken too
    read_ok(read(host=https_api.url, api_key='tok', verify_ssl=True, ssl_ca_cert=pki['ca_file']))
    assert [r['authorization'] for r in https_api.requests] == ['Bearer tok', 'Bearer tok']


def test_client_cert_and_client_key_authenticate(https_api, pki):
    crt, key = _client_cert(pki['dir'], pki['ca'])
    read_ok(read(host=https_api.url, client_cert=crt, client_key=key, ca_cert=pki['ca_file']))
    assert https_api.requests == [{'path': PATH, 'authorization': None, 'client_cn': 'oncall-client'}]
    alone = read(host=https_api.url, client_cert=crt, ca_cert=pki['ca_file'])
    assert alone.failed and alone['msg'] == 'client_cert and client_key go together: give both or neither'
    assert len(https_api.requests) == 1


def test_kubeconfig_and_context_choose_the_cluster_and_its_user(http_api, tmp_path):
    closed = 'http://127.0.0.1:%d' % free_port()
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text(json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'elsewhere',
        'clusters': [{'name': 'elsewhere', 'cluster': {'server': closed}},
                     {'name': 'recording', 'cluster': {'server': http_api.url}}],
        'users': [{'name': 'u', 'user': {'token': 'ctx-token'}}],
        'contexts': [{'name': 'elsewhere', 'context': {'cluster': 'elsewhere', 'user': 'u'}},
                     {'name': 'production', 'context': {'cluster': 'recording', 'user': 'u'}}]}))
    read_ok(read(kubeconfig=str(kubeconfig), context='production'))
    assert http_api.requests == [{'path': PATH, 'authorization': 'Bearer ctx-token', 'client_cn': None}]
    # the current context (a closed port) without context: a critical finding naming the API call
    current = read(kubeconfig=str(kubeconfig))['certificates'][0]
    assert current['verdict'] == 'critical' and 'cannot reach the Kubernetes API' in current['error']
    unknown = read(kubeconfig=str(kubeconfig), context='nope')['certificates'][0]
    assert unknown['verdict'] == 'critical' and 'cannot load the kubeconfig %s (context nope)' % kubeconfig in unknown['error']
    assert len(http_api.requests) == 1


def test_proxy_carries_the_requests_and_no_proxy_bypasses_it(http_api, pki):
    proxy = RecordingApi(pki['secret_pem'])
    try:
        # the API host does not resolve: only the proxy can answer for it
        read_ok(read(host='http://kubernetes.invalid:6443', api_key='tok', proxy=proxy.url))
        assert proxy.requests == [{'path': 'http://kubernetes.invalid:6443' + PATH,
                                   'authorization': 'Bearer tok', 'client_cn': None}]
        assert http_api.requests == []
        read_ok(read(host=http_api.url, proxy='http://127.0.0.1:%d' % free_port(), no_proxy='127.0.0.1'))
        assert len(http_api.requests) == 1 and len(proxy.requests) == 1
    finally:
        proxy.stop()


def test_k8s_auth_environment_variables_are_read_as_kubernetes_core_reads_them(http_api, monkeypatch):
    monkeypatch.setenv('K8S_AUTH_HOST', http_api.url)
    monkeypatch.setenv('K8S_AUTH_API_KEY', 'env-token')
    read_ok(read())
    assert http_api.requests == [{'path': PATH, 'authorization': 'Bearer env-token', 'client_cn': None}]


@pytest.mark.parametrize('options,msg', [
    ({'host': 'ftp://kubernetes.example.com'},
     'host must be an http:// or https:// URL with a host, such as https://kubernetes.example.com:6443, '
     "not 'ftp://kubernetes.example.com'"),
    ({'host': 'https://admin:secret@kubernetes.example.com'},
     'host must not carry user:password@ (use api_key or a client certificate)'),
    ({'proxy': 'kubernetes proxy'},
     "proxy must be a URL such as http://proxy.example.com:3128, not 'kubernetes proxy'"),
])
def test_a_bad_option_is_one_sentence_before_any_request(http_api, options, msg):
    run = read(**dict({'host': http_api.url}, **options))
    assert run.failed and run['msg'] == msg
    assert http_api.requests == []
