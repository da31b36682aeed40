# -*- coding: utf-8 -*-
"""cert_renew and cert_info with Kubernetes TLS secrets, against kmock's KubernetesEmulator.

No real Kubernetes API server can run on this machine: kmock's emulator serves the Kubernetes
HTTP API from memory (the official kubernetes client talks to it as to a real server); nothing
reconciles there.
"""

from __future__ import annotations

import base64

import pytest

from helpers.cert import KubeEmulator, make_cert
from helpers import run_module

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


class CertManager(object):
    """Plays cert-manager's issuing controller (nothing reconciles in the emulator): when a
    Certificate gets the Issuing condition, it issues a new certificate into spec.secretName,
    then sets Ready=True and drops Issuing, as cert-manager does."""

    def __init__(self, kube, tmp_path, fail=False):
        import threading
        self.kube, self.tmp_path, self.fail = kube, tmp_path, fail
        self.issued = 0
        self.stopped = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        import time
        from kubernetes import client
        api = client.CustomObjectsApi(self.kube.api())
        core = client.CoreV1Api(self.kube.api())
        while not self.stopped:
            for cert in api.list_namespaced_custom_object('cert-manager.io', 'v1', 'festivals', 'certificates')['items']:
                conds = (cert.get('status') or {}).get('conditions') or []
                if not any(c['type'] == 'Issuing' and c['status'] == 'True' for c in conds):
                    continue
                name = cert['metadata']['name']
                if self.fail:
                    new = [c for c in conds if c['type'] != 'Issuing'] + [
                        {'type': 'Issuing', 'status': 'False', 'reason': 'Failed', 'message': 'ACME order failed'}]
                else:
                    crt, key = make_cert(str(self.tmp_path), 'issued%d' % self.issued, cert['spec']['dnsNames'], 90)
                    self.issued += 1
                    core.patch_namespaced_secret(cert['spec']['secretName'], 'festivals', {'data': {
                        'tls.crt': base64.b64encode(open(crt, 'rb').read()).decode(),
                        'tls.key': base64.b64encode(open(key, 'rb').read()).decode()}})
                    new = [c for c in conds if c['type'] not in ('Issuing', 'Ready')] + [
                        {'type': 'Ready', 'status': 'True', 'reason': 'Ready', 'message': 'up to date'}]
                api.patch_namespaced_custom_object_status('cert-manager.io', 'v1', 'festivals', 'certificates',
                                                          name, {'status': {'conditions': new}})
            time.sleep(0.1)

    def stop(self):
        self.stopped = True
        self.thread.join(5)


def make_certificate(kube, name, secret):
    from kubernetes import client
    client.CustomObjectsApi(kube.api()).create_namespaced_custom_object(
        'cert-manager.io', 'v1', 'festivals', 'certificates', {
            'apiVersion': 'cert-manager.io/v1', 'kind': 'Certificate',
            'metadata': {'name': name, 'namespace': 'festivals'},
            'spec': {'secretName': secret, 'dnsNames': ['api.festivals.app'],
                     'issuerRef': {'name': 'letsencrypt', 'kind': 'ClusterIssuer'}},
            'status': {'conditions': [{'type': 'Ready', 'status': 'True', 'reason': 'Ready'}]}})


def test_cert_manager_renewal_like_cmctl_renew(kube, tmp_path):
    put_secret(kube, tmp_path, 'festivals-tls', 5)
    make_certificate(kube, 'festivals-tls', 'festivals-tls')
    args = dict(source=dict(type='k8s_secret', namespace='festivals', name='festivals-tls'),
                provider='cert_manager', host=kube.url,
                cert_manager=dict(namespace='festivals', name='festivals-tls', timeout='1m', poll_interval='200ms'))
    check = run_module('cert_renew', args, check=True)
    assert check['would_renew'] is True
    from kubernetes import client
    cm_api = client.CustomObjectsApi(kube.api())
    cert = cm_api.get_namespaced_custom_object('cert-manager.io', 'v1', 'festivals', 'certificates', 'festivals-tls')
    assert [c['type'] for c in cert['status']['conditions']] == ['Ready'], 'check mode touched the Certificate'
    manager = CertManager(kube, tmp_path)
    try:
        run = run_module('cert_renew', args)
    finally:
        manager.stop()
    assert run['renewed'] is True, run.result
    assert manager.issued == 1
    assert run['after']['subject_alt_names'] == ['DNS:api.festivals.app']
    assert run['after']['serial'] != run['before']['serial'] and run['after']['days_remaining'] > 89
    # the Certificate was not deleted: still there, Ready, no Issuing condition left
    cert = cm_api.get_namespaced_custom_object('cert-manager.io', 'v1', 'festivals', 'certificates', 'festivals-tls')
    assert [(c['type'], c['status']) for c in cert['status']['conditions']] == [('Ready', 'True')]
    assert run_module('cert_renew', args)['changed'] is False


def test_cert_manager_failed_issuance_is_reported(kube, tmp_path):
    original = put_secret(kube, tmp_path, 'festivals-tls', 5)
    make_certificate(kube, 'festivals-tls', 'festivals-tls')
    manager = CertManager(kube, tmp_path, fail=True)
    try:
        run = run_module('cert_renew', dict(
            source=dict(type='k8s_secret', namespace='festivals', name='festivals-tls'), provider='cert_manager',
            host=kube.url, cert_manager=dict(namespace='festivals', name='festivals-tls', timeout='1m', poll_interval='200ms')))
    finally:
        manager.stop()
    assert run.failed and 'cert-manager failed to issue Certificate festivals/festivals-tls: ACME order failed' in run['msg']
    assert read_secret(kube, 'festivals-tls') == original


INVENTORY = '''all:
  children:
    app_servers:
      hosts:
        certhost:
  hosts:
    certhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
'''


def test_runbook_renews_the_secret_and_restarts_the_ingress_controller(kube, tmp_path):
    """The SSL-expiry runbook on a TLS secret with notify=ingress: renewal, then a rollout restart
    of the ingress controller through kubernetes.core (the restartedAt annotation); run twice."""
    import json
    import re
    from kubernetes import client
    from helpers import recap as conftest_recap, run_playbook
    original = put_secret(kube, tmp_path, 'festivals-tls', 5)
    apps = client.AppsV1Api(kube.api())
    apps.create_namespaced_deployment('ingress-nginx', {
        'apiVersion': 'apps/v1', 'kind': 'Deployment',
        'metadata': {'name': 'ingress-nginx-controller', 'namespace': 'ingress-nginx'},
        'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': 'ingress'}},
                 'template': {'metadata': {'labels': {'app': 'ingress'}},
                              'spec': {'containers': [{'name': 'c', 'image': 'ingress-nginx'}]}}}})
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(INVENTORY)
    extra = {'oncall_report_dir': str(tmp_path / 'reports'), 'oncall_k8s': {'host': kube.url, 'api_key': 'kmock-accepts-any-token'},
             'oncall_certificates': [{
                 'name': 'festivals-tls', 'provider': 'selfsigned', 'verify_chain': False, 'notify': 'ingress',
                 'source': {'type': 'k8s_secret', 'namespace': 'festivals', 'name': 'festivals-tls'}}]}

    def annotations():
        dep = apps.read_namespaced_deployment('ingress-nginx-controller', 'ingress-nginx')
        return dep.spec.template.metadata.annotations or {}

    def changed(proc, verdict_failed=False):
        # no broken task; the job fails on its verdict only while the certificate is critical
        run = conftest_recap(proc, host='certhost')
        assert run['failed'] == 0 and run['verdict_failed'] is verdict_failed, proc.stdout[-3000:] + proc.stderr[-2000:]
        return run['changed']

    check = run_playbook(PLAYBOOK, extra_vars=extra, inventory=str(inventory), tags='remediate', check=True)
    changed(check, verdict_failed=True)
    assert read_secret(kube, 'festivals-tls') == original and annotations() == {}

    first = run_playbook(PLAYBOOK, extra_vars=extra, inventory=str(inventory), tags='remediate')
    assert changed(first) == 2  # the renewal and the restart
    assert 'kmock-accepts-any-token' not in first.stdout + first.stderr
    assert read_secret(kube, 'festivals-tls') != original
    restarted = annotations().get('kubectl.kubernetes.io/restartedAt')
    assert restarted and re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', restarted)
    with open(tmp_path / 'reports' / 'ssl_certificate_expiry-latest.json') as f:
        assert json.load(f)['incident']['fix_applied'] == 'renewed: festivals-tls'

    second = run_playbook(PLAYBOOK, extra_vars=extra, inventory=str(inventory), tags='remediate')
    assert changed(second) == 0
    assert annotations().get('kubectl.kubernetes.io/restartedAt') == restarted


PLAYBOOK = 'playbooks/runbooks/ssl_certificate_expiry.yml'


def test_cert_manager_timeout_and_poll_interval_are_durations(kube, tmp_path):
    """Nothing issues here (no controller): the wait ends after cert_manager.timeout, a duration."""
    import time
    original = put_secret(kube, tmp_path, 'festivals-tls', 5)
    make_certificate(kube, 'festivals-tls', 'festivals-tls')
    started = time.monotonic()
    run = run_module('cert_renew', dict(
        source=dict(type='k8s_secret', namespace='festivals', name='festivals-tls'), provider='cert_manager',
        host=kube.url, cert_manager=dict(namespace='festivals', name='festivals-tls', timeout='3s', poll_interval='500ms')))
    assert run.failed and 'Certificate festivals/festivals-tls was not Ready with a new certificate within 3s' in run['msg']
    assert time.monotonic() - started >= 3
    assert read_secret(kube, 'festivals-tls') == original
    bad = run_module('cert_renew', dict(
        source=dict(type='k8s_secret', namespace='festivals', name='festivals-tls'), provider='cert_manager',
        host=kube.url, cert_manager=dict(name='festivals-tls', poll_interval='soon')))
    assert bad.failed and bad['msg'] == ("certificate festivals-tls: cert_manager.poll_interval must be a duration "
                                         "such as 30s, 10m, 24h or 7d, not 'soon'")


def test_daily_health_check_reads_a_k8s_secret_with_oncall_k8s(kube, tmp_path):
    """The daily check reads a k8s_secret certificate from the cluster of oncall_k8s (kubeconfig
    and context, through module_defaults group/oncall.runbooks.k8s), not from ~/.kube/config."""
    import json
    from helpers import run_playbook
    put_secret(kube, tmp_path, 'festivals-tls', 20)
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text(json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'elsewhere',
        'clusters': [{'name': 'closed', 'cluster': {'server': 'http://127.0.0.1:1'}},
                     {'name': 'kmock', 'cluster': {'server': kube.url}}],
        'users': [{'name': 'u', 'user': {'token': 'kmock-accepts-any-token'}}],
        'contexts': [{'name': 'elsewhere', 'context': {'cluster': 'closed', 'user': 'u'}},
                     {'name': 'production', 'context': {'cluster': 'kmock', 'user': 'u'}}]}))
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(INVENTORY)
    home = tmp_path / 'home'
    home.mkdir()

    def daily(**extra):
        reports = tmp_path / ('reports-%d' % len(extra))
        run = run_playbook('playbooks/daily_health_check.yml', inventory=str(inventory), env={'HOME': str(home)},
                           extra_vars=dict({'oncall_report_dir': str(reports), 'oncall_disks': [],
                                            'oncall_certificates': [{
                                                'name': 'festivals-tls', 'verify_chain': False,
                                                'source': {'type': 'k8s_secret', 'namespace': 'festivals',
                                                           'name': 'festivals-tls'}}]}, **extra))
        with open(reports / 'daily_health_check-latest.json') as f:
            findings = json.load(f)['findings']
        return run, [f for f in findings if f['object'] == 'certificate festivals-tls']

    run, found = daily(oncall_k8s={'kubeconfig': str(kubeconfig), 'context': 'production'})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert len(found) == 1 and found[0]['verdict'] == 'warning', found  # 20 days < warn_days 30
    # without oncall_k8s the default kubeconfig (none in this HOME) is all there is: critical
    run, found = daily()
    assert run.returncode != 0 and len(found) == 1 and found[0]['verdict'] == 'critical', found
    assert 'cannot load the kubeconfig ~/.kube/config' in json.dumps(found[0])
