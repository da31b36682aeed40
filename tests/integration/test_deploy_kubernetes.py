# -*- coding: utf-8 -*-
"""playbooks/deploy.yml with deploy_target=kubernetes: the release is an image tag set on a
Deployment through the services role's kubernetes backend. The Kubernetes API is kmock's
KubernetesEmulator, NOT a real cluster (tests/helpers/k8s.py); a test controller writes the
generation and status a Deployment controller would. Redis (queues, the lock) and PostgreSQL
(the backup) are the lab's real servers."""

from __future__ import annotations

import pytest

from helpers.app import LOCK_KEY, app_lab, app_lab_session  # noqa: F401  pylint: disable=unused-import
from helpers.k8s import Emulator, FakeController


@pytest.fixture(scope='module')
def emulator():
    emu = Emulator()
    emu.create_deployment('prod', 'api', replicas=2, image='registry.local/api:1.0.0')
    yield emu
    emu.stop()


def k8s_vars(emulator, **extra):
    return dict({'deploy_target': 'kubernetes', 'oncall_app_image': 'registry.local/api',
                 'oncall_app_name': 'api', 'services_backend': 'kubernetes', 'services_name': 'api',
                 'services_k8s_namespace': 'prod', 'oncall_k8s': {'kubeconfig': emulator.kubeconfig},
                 'services_k8s_poll': 1, 'deploy_restart_timeout': '15s', 'oncall_deploy_health_checks': [],
                 'deploy_smoke_tests': [], 'deploy_watch_health_url': '', 'deploy_migrate_command': ''}, **extra)


def image(emulator):
    return emulator.get('prod', 'api')['spec']['template']['spec']['containers'][0]['image']


def test_image_deploy_waits_for_the_rollout_and_a_stuck_rollout_is_rolled_back(app_lab, emulator):
    app_lab.pause('email', 'bull')
    before = app_lab.paused()
    emulator.patch('prod', 'api', {'spec': {'template': {'spec': {'containers': [
        {'name': 'api', 'image': 'registry.local/api:1.0.0'}]}}}})
    ctl = FakeController(emulator, 'prod', 'api', stuck_image='registry.local/api:2.1.0')
    try:
        check = app_lab.deploy('2.0.0', check=True, **k8s_vars(emulator))
        assert check.returncode == 0, check.stdout[-3000:]
        assert 'would set api' in check.stdout and image(emulator) == 'registry.local/api:1.0.0'

        good = app_lab.deploy('2.0.0', **k8s_vars(emulator))
        assert good.returncode == 0, good.stdout[-3000:]
        assert image(emulator) == 'registry.local/api:2.0.0' and ctl.rollouts == 1
        d = emulator.get('prod', 'api')
        assert d['status']['availableReplicas'] == 2 and d['status']['observedGeneration'] == d['metadata']['generation']
        assert app_lab.paused() == before
        record = app_lab.records()[-1]
        assert record['outcome'] == 'deployed' and record['previous_version'] == '1.0.0'

        again = app_lab.deploy('2.0.0', **k8s_vars(emulator))
        assert again.returncode == 0 and 'already live' in again.stdout

        # rollback.yml on its own, from the record: check mode touches nothing, then 1.0.0 is set
        # back (one rollout), then a second run has nothing to do
        gen = emulator.get('prod', 'api')['metadata']['generation']
        plan = app_lab.deploy(None, check=True, playbook='rollback.yml', **k8s_vars(emulator))
        assert plan.returncode == 0, plan.stdout[-3000:]
        assert 'roll back 2.0.0 -> 1.0.0' in ' '.join(plan.stdout.split())
        assert image(emulator) == 'registry.local/api:2.0.0' and ctl.rollouts == 1
        assert emulator.get('prod', 'api')['metadata']['generation'] == gen
        back = app_lab.deploy(None, playbook='rollback.yml', **k8s_vars(emulator))
        assert back.returncode == 0, back.stdout[-3000:]
        assert image(emulator) == 'registry.local/api:1.0.0' and ctl.rollouts == 2
        assert app_lab.records('rollback')[-1]['to'] == '1.0.0'
        noop = app_lab.deploy(None, playbook='rollback.yml', **k8s_vars(emulator))
        assert noop.returncode == 0 and 'nothing to roll back' in noop.stdout
        assert 'changed=0' in noop.stdout and ctl.rollouts == 2

        # deploy 2.0.0 again, so that the stuck 2.1.0 below rolls back to it
        assert app_lab.deploy('2.0.0', **k8s_vars(emulator)).returncode == 0 and ctl.rollouts == 3

        stuck = app_lab.deploy('2.1.0', **k8s_vars(emulator, deploy_restart_timeout='4s'))
        assert stuck.returncode != 0
        flat = ' '.join(stuck.stdout.split())
        assert 'the rollout of Deployment prod/api did not complete within 4s' in flat, stuck.stdout[-3000:]
        assert 'rolled back to 2.0.0' in flat
        assert image(emulator) == 'registry.local/api:2.0.0' and ctl.rollouts == 5
        assert app_lab.paused() == before
        assert app_lab.redis().exists(LOCK_KEY) == 0
    finally:
        ctl.stop()
