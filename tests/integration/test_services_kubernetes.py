# -*- coding: utf-8 -*-
"""The services role's kubernetes backend through kubernetes.core (k8s, k8s_info, k8s_scale)
against kmock's KubernetesEmulator, NOT a real cluster: an in-memory Kubernetes API served
over HTTP (tests/helpers/k8s.py). Nothing reconciles there, so a test controller
(FakeController) writes the generation and status a Deployment controller would."""

from __future__ import annotations

import pytest

from helpers import run_playbook
from helpers.k8s import Emulator, FakeController

PLAY = '''---
- name: services role, kubernetes backend
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the entry point
      ansible.builtin.include_role:
        name: oncall.runbooks.services
        tasks_from: "{{ entry }}"
'''


@pytest.fixture(scope='module')
def emulator():
    emu = Emulator()
    yield emu
    emu.stop()


@pytest.fixture()
def play(tmp_path, emulator):
    path = tmp_path / 'services.yml'
    path.write_text(PLAY)

    def run(entry, check=False, **extra):
        extra_vars = dict({'entry': entry, 'services_backend': 'kubernetes', 'services_name': 'api',
                           'services_k8s_namespace': 'prod', 'oncall_k8s': {'kubeconfig': emulator.kubeconfig},
                           'services_k8s_poll': 1, 'services_wait_timeout': '20s'}, **extra)
        return run_playbook(str(path), extra_vars=extra_vars, check=check, inventory='localhost,')
    return run


@pytest.fixture()
def deployment(emulator, request):
    emulator.create_deployment('prod', 'api', replicas=2) if not _exists(emulator) else None
    emulator.patch('prod', 'api', {'spec': {'replicas': 2}, 'metadata': {'generation': 1},
                                   'status': {'observedGeneration': 1, 'replicas': 2, 'updatedReplicas': 2,
                                              'availableReplicas': 2, 'readyReplicas': 2}})
    controllers = []

    def controller(stuck=False):
        c = FakeController(emulator, 'prod', 'api', stuck=stuck)
        controllers.append(c)
        return c
    yield controller
    for c in controllers:
        c.stop()


def _exists(emulator):
    try:
        emulator.get('prod', 'api')
        return True
    except Exception:  # pylint: disable=broad-except
        return False


def annotation(d):
    return (d['spec']['template']['metadata'].get('annotations') or {}).get('kubectl.kubernetes.io/restartedAt')


def test_rollout_restart_patches_restarted_at_and_waits_for_the_rollout(emulator, play, deployment):
    ctl = deployment()
    before = annotation(emulator.get('prod', 'api'))
    run = play('restart')
    assert run.returncode == 0, run.stdout[-3000:]
    d = emulator.get('prod', 'api')
    assert annotation(d) and annotation(d) != before
    assert ctl.rollouts == 1 and d['status']['observedGeneration'] == d['metadata']['generation'] == 2
    assert 'Wait until the rollout is complete' in run.stdout


def test_check_mode_restart_patches_nothing(emulator, play, deployment):
    deployment()
    before = emulator.get('prod', 'api')
    run = play('restart', check=True)
    assert run.returncode == 0, run.stdout[-3000:]
    after = emulator.get('prod', 'api')
    assert annotation(after) == annotation(before)
    assert after['metadata']['generation'] == before['metadata']['generation']
    assert 'would restart Deployment prod/api' in run.stdout and 'changed=1' in run.stdout
    scale = play('scale', check=True, services_instances=5)
    assert scale.returncode == 0 and 'changed=1' in scale.stdout, scale.stdout[-2000:]
    assert emulator.get('prod', 'api') == after


def test_scale_waits_until_every_replica_is_available(emulator, play, deployment):
    ctl = deployment()
    run = play('scale', services_instances=4)
    assert run.returncode == 0, run.stdout[-3000:]
    d = emulator.get('prod', 'api')
    assert d['spec']['replicas'] == 4 and d['status']['availableReplicas'] == 4 and ctl.rollouts == 1
    again = play('scale', services_instances=4)
    assert again.returncode == 0 and 'changed=0' in again.stdout, again.stdout[-2000:]


def test_a_rollout_that_never_completes_fails_clearly(emulator, play, deployment):
    deployment(stuck=True)
    run = play('restart', services_wait_timeout='4s')
    assert run.returncode != 0
    assert 'the rollout of Deployment prod/api did not complete within 4s: 1 of 2 replica(s) updated, 1 available' \
        in ' '.join(run.stdout.split()), run.stdout[-3000:]


def test_a_missing_deployment_is_one_clear_sentence(play, deployment):
    deployment()
    run = play('status', services_name='nope')
    assert run.returncode != 0
    assert 'Deployment prod/nope not found' in ' '.join(run.stdout.split()), run.stdout[-3000:]


def image(d):
    return d['spec']['template']['spec']['containers'][0]['image']


def test_rollback_goes_to_the_previous_revision_and_waits(emulator, play, deployment):
    """k8s_rollback reads the ReplicaSets' revisions (created here as the controller would) and
    sends a JSON patch, which the harness's emulator applies as a merge."""
    ctl = deployment()
    emulator.create_replicaset('prod', 'api', 'aaa', 1, 'api:1.0.0')
    emulator.create_replicaset('prod', 'api', 'bbb', 2, 'api:2.0.0')
    emulator.patch('prod', 'api', {'metadata': {'annotations': {'deployment.kubernetes.io/revision': '2'}},
                                   'spec': {'template': {'spec': {'containers': [{'name': 'api', 'image': 'api:2.0.0'}]}}}})
    ctl.stop()
    ctl = deployment()
    before = emulator.get('prod', 'api')
    check = play('rollback', check=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert emulator.get('prod', 'api') == before

    run = play('rollback')
    assert run.returncode == 0, run.stdout[-3000:]
    d = emulator.get('prod', 'api')
    assert image(d) == 'api:1.0.0' and d['metadata']['annotations']['deployment.kubernetes.io/revision'] == '1'
    assert ctl.rollouts == 1 and d['status']['availableReplicas'] == 2

    again = play('rollback')  # revision 1 has no predecessor
    assert again.returncode != 0
    assert 'Deployment prod/api has no previous revision to roll back to' in ' '.join(again.stdout.split())


def test_env_sets_only_what_differs_keeps_the_rest_and_waits_for_the_rollout(emulator, play, deployment):
    """The env entry point (runbook 002 Queue Backlog step 3, `kubectl set env`)."""
    secret_ref = {'secretKeyRef': {'name': 'db', 'key': 'password'}}
    emulator.patch('prod', 'api', {'spec': {'template': {'spec': {'containers': [
        {'name': 'api', 'image': 'api:2.0.0', 'env': [
            {'name': 'LOG_LEVEL', 'value': 'info'}, {'name': 'QUEUE_CRITICAL_WEIGHT', 'value': '1'},
            {'name': 'DB_PASSWORD', 'valueFrom': secret_ref}]},
        {'name': 'proxy', 'image': 'proxy:1.4', 'env': [{'name': 'QUEUE_CRITICAL_WEIGHT', 'value': '1'}]}]}}}})
    ctl = deployment()
    wanted = {'services_env': {'QUEUE_CRITICAL_WEIGHT': 10, 'QUEUE_LOW_WEIGHT': '1'}, 'services_k8s_container': 'api'}
    before = emulator.get('prod', 'api')

    check = play('env', check=True, **wanted)
    assert check.returncode == 0, check.stdout[-3000:]
    assert 'would set QUEUE_CRITICAL_WEIGHT=10 QUEUE_LOW_WEIGHT=1 on api of Deployment prod/api' \
        in ' '.join(check.stdout.split()), check.stdout[-3000:]
    assert 'changed=1' in check.stdout
    assert emulator.get('prod', 'api') == before and ctl.rollouts == 0

    run = play('env', **wanted)
    assert run.returncode == 0, run.stdout[-3000:]
    api, proxy = emulator.get('prod', 'api')['spec']['template']['spec']['containers']
    assert api['image'] == 'api:2.0.0' and api['env'] == [
        {'name': 'LOG_LEVEL', 'value': 'info'}, {'name': 'QUEUE_CRITICAL_WEIGHT', 'value': '10'},
        {'name': 'DB_PASSWORD', 'valueFrom': secret_ref}, {'name': 'QUEUE_LOW_WEIGHT', 'value': '1'}]
    assert proxy == {'name': 'proxy', 'image': 'proxy:1.4', 'env': [{'name': 'QUEUE_CRITICAL_WEIGHT', 'value': '1'}]}
    assert ctl.rollouts == 1 and 'Wait until the rollout is complete' in run.stdout

    again = play('env', **wanted)
    assert again.returncode == 0 and 'changed=0' in again.stdout, again.stdout[-2000:]
    assert 'already has QUEUE_CRITICAL_WEIGHT, QUEUE_LOW_WEIGHT as wanted' in ' '.join(again.stdout.split())
    assert ctl.rollouts == 1

    for backend in ('pm2', 'systemd', 'docker'):
        refused = play('env', services_backend=backend, **wanted)
        assert refused.returncode != 0
        assert 'backend does not set environment variables on api' in ' '.join(refused.stdout.split())


def test_oncall_k8s_takes_kubernetes_cores_option_names_only(play, deployment):
    """oncall_k8s is validated with the role's arguments: a key that is not one of kubernetes.core's
    options (a namespace belongs in services_k8s_namespace) fails before any API call."""
    run = play('status', oncall_k8s={'kubeconfig': '/nonexistent/kubeconfig', 'namespace': 'prod'})
    out = ' '.join(run.stdout.split())
    assert run.returncode != 0 and "oncall_k8s.namespace. Supported parameters include: api_key, ca_cert" in out, out[-2000:]
