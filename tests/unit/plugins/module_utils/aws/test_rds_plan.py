# -*- coding: utf-8 -*-
"""rds_recovery's plan from observed states (pure data; the API calls are tested against moto
server mode in tests/integration/test_aws.py)."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.aws import rds

P = dict(failover=True, start_stopped=True, reboot=False, reboot_instances=[], reboot_force_failover=False,
         target_db_instance_identifier=None)


def obs(writer_status, readers):
    inst = {'w': {'id': 'w', 'status': writer_status, 'role': 'writer', 'multi_az': False}}
    for name, status in readers:
        inst[name] = {'id': name, 'status': status, 'role': 'reader', 'multi_az': False}
    return {'cluster': {'id': 'c', 'writer': 'w', 'members': list(inst)}, 'instances': inst}


def test_available_writer_plans_nothing():
    items, skipped = rds.plan(obs('available', [('r1', 'available')]), P)
    assert items == [] and skipped == []
    assert set(f['verdict'] for f in rds.findings(obs('available', [('r1', 'available')]))) == {'ok'}


def test_failover_goes_to_the_first_available_reader_or_the_named_one():
    o = obs('failed', [('r2', 'available'), ('r1', 'stopped'), ('r3', 'available')])
    items, _skipped = rds.plan(o, P)
    assert [(i['operation'], i.get('target') or i['object']) for i in items] == [('failover', 'r2'), ('start', 'r1')]
    items, _skipped = rds.plan(o, dict(P, target_db_instance_identifier='r3'))
    assert items[0]['target'] == 'r3'
    items, skipped = rds.plan(o, dict(P, target_db_instance_identifier='r1'))
    assert [i['operation'] for i in items] == ['start'] and 'no r1 reader is available' in skipped[0]['why']


def test_switches_off_plan_nothing_and_reboot_only_an_available_instance():
    o = obs('stopped', [('r1', 'available')])
    items, _skipped = rds.plan(o, dict(P, failover=False, start_stopped=False))
    assert items == []
    items, skipped = rds.plan(o, dict(P, failover=False, start_stopped=False, reboot=True, reboot_instances=['r1', 'w']))
    assert [(i['operation'], i['object']) for i in items] == [('reboot', 'r1')]
    assert skipped[0]['object'] == 'w' and 'stopped' in skipped[0]['why']
