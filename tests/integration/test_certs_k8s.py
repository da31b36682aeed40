# -*- coding: utf-8 -*-
"""cert_renew and cert_info with Kubernetes TLS secrets, against kmock's KubernetesEmulator.

No real Kubernetes API server can run on this machine: kmock's emulator serves the Kubernetes
HTTP API from memory (the official kubernetes client talks to it as to a real server); nothing
reconciles there.
"""

from __future__ import annotations

import base64

import pytest

from cert_harness import KubeEmulator, make_cert
from conftest import run_module

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509


@pytest.fixture()
def kube():
    emu = KubeEmulator()
    yield emu
    emu.stop()


def put_secret(kube, tmp_path, name, days, type_='kubernetes.io/tls'):
    from kubernetes import client
    crt, key = make_cert(str(tmp_path), name, ['%s.oncall.test' % name], days)
    data = {'tls.crt': base64.b64encode(open(crt, 'rb').read()).decode(),
            'tls.key': base64.b64encode(open(key, 'rb').read()).decode()}
    client.CoreV1Api(kube.api()).create_namespaced_secret('festivals', {
        'apiVersion': 'v1', 'kind': 'Secret', 'type': type_,
        'metadata': {'name': name, 'namespace': 'festivals'}, 'data': data})
    return data


def read_secret(kube, name):
    from kubernetes import client
    return client.CoreV1Api(kube.api()).read_namespaced_secret(name, 'festivals').data


def test_k8s_secret_renewed_in_place_then_nothing(kube, tmp_path):
    original = put_secret(kube, tmp_path, 'festivals-tls', 5)
    args = dict(source=dict(type='k8s_secret', namespace='festivals', name='festivals-tls'),
                provider='selfsigned', host=kube.url)
    check = run_module('cert_renew', args, check=True)
    assert check['would_renew'] is True and read_secret(kube, 'festivals-tls') == original
    run = run_module('cert_renew', args, verbosity=3)
    assert run['renewed'] is True, run.result
    data = read_secret(kube, 'festivals-tls')
    assert data != original
    assert 'PRIVATE KEY' not in run.stdout + run.stderr
    assert data['tls.key'][:40] not in run.stdout + run.stderr
    chain = x509.load_chain(base64.b64decode(data['tls.crt']), 'secret')
    assert x509.summarize(chain)['serial'] == run['after']['serial']
    assert x509.key_matches(chain[0], x509.load_key(base64.b64decode(data['tls.key']), 'key'))
    assert run_module('cert_renew', args)['changed'] is False
    info = run_module('cert_info', dict(host=kube.url, certificates=[
        dict(type='k8s_secret', namespace='festivals', name='festivals-tls', verify_chain=False)]))
    assert info['certificates'][0]['verdict'] == 'ok' and info['certificates'][0]['key_matches'] is True


def test_k8s_secret_of_the_wrong_type(kube, tmp_path):
    put_secret(kube, tmp_path, 'opaque', 5, type_='Opaque')
    run = run_module('cert_renew', dict(source=dict(type='k8s_secret', namespace='festivals', name='opaque'),
                                        provider='selfsigned', host=kube.url))
    assert run.failed and 'is of type Opaque, not kubernetes.io/tls' in run['msg']
