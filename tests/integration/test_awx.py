# -*- coding: utf-8 -*-
"""AWX as code: playbooks/awx_configure.yml applies awx/catalog.yml with the real awx.awx
modules against tests/helpers/awx.py FakeAWX, an in-memory stand-in for the AWX REST API (no AWX
server can run here). The modules' own argument specs, lookups and change detection are
exercised; the fake only stores what they send and answers their lookups."""

from __future__ import annotations

import copy
import functools
import json

import pytest
import yaml

from helpers.awx import FakeAWX
from helpers import recap as conftest_recap, ROOT, run_playbook

SECRETS = {'oncall_awx_redis_password': 'R3dis-pa55-w0rd', 'oncall_awx_stripe_api_key': 'sk_test_Str1peSecret',
           'oncall_awx_db_password': 'Db-Pa55-w0rd-9'}


def catalog():
    with open(f'{ROOT}/awx/catalog.yml') as f:
        return yaml.safe_load(f)


def recap(proc):
    return conftest_recap(proc, 'localhost')


@pytest.fixture()
def awx():
    fake = FakeAWX()
    yield fake
    fake.stop()


def configure(awx, check=False, **extra):
    ev = dict(SECRETS, oncall_awx_host=awx.url, oncall_awx_token=awx.token, oncall_awx_validate_certs=False, **extra)
    return run_playbook('playbooks/awx_configure.yml', extra_vars=ev, inventory='localhost,', check=check)


# The check-mode tests use a part of the catalog: the maintenance windows and the nightly
# reconciliation (their templates carry the three schedules) and one runbook with a remediation
# (template, twin and survey). Every kind of object is there; the full catalog (61 job templates,
# about a minute of CPU per run) is applied by the first test, twice.
SMALL = ('Weekly maintenance', 'Monthly maintenance', 'Reconcile payments', 'Runbook - API down')


@pytest.fixture()
def small_catalog(tmp_path):
    cat = catalog()
    cat['job_templates'] = [e for e in cat['job_templates'] if e['name'] in SMALL]
    cat['alerts'] = [a for a in cat.get('alerts') or [] if a['job_template'] in SMALL]
    path = tmp_path / 'catalog.yml'
    path.write_text(yaml.safe_dump(cat))
    return str(path)


def test_configure_creates_every_template_survey_schedule_and_credential_then_changes_nothing(awx):
    first = configure(awx)
    assert recap(first)['failed'] == 0, first.stdout[-3000:]
    assert recap(first)['changed'] == 9

    cat = catalog()
    org = awx.named('organizations', cat['organization'])
    project = awx.named('projects', cat['project']['name'])
    inventory = awx.named('inventories', cat['inventory']['name'])
    assert project['scm_url'] == cat['project']['scm_url'] and project['organization'] == org['id']
    source = awx.named('inventory_sources', cat['inventory']['source']['name'])
    assert source['source_project'] == project['id'] and source['source_path'] == 'inventories/example/hosts.yml'

    # custom credential types: injected as extra vars / environment, no file injectors
    for ct in cat['credential_types']:
        made = awx.named('credential_types', ct['name'])
        assert made['kind'] == 'cloud' and made['injectors'] == ct['injectors']
        assert set(made['injectors']) <= {'extra_vars', 'env'}
    db_cred = awx.named('credentials', cat['credentials']['database']['name'])
    assert db_cred['inputs']['password'] == SECRETS['oncall_awx_db_password']
    assert db_cred['credential_type'] == awx.named('credential_types', 'oncall database')['id']
    # ... and no secret is printed by the playbook
    for secret in SECRETS.values():
        assert secret not in first.stdout + first.stderr

    templates = {e['name']: e for e in cat['job_templates'] if e.get('awx') is not False}
    for name, entry in templates.items():
        jt = awx.named('job_templates', name)
        assert jt, name
        assert jt['playbook'] == entry['playbook'] and jt['project'] == project['id']
        assert jt['inventory'] == inventory['id'] and jt['job_tags'] == ''
        creds = sorted(c['name'] for c in awx.associated('job_templates', jt['id'], 'credentials'))
        assert creds == sorted(cat['credentials'][k]['name'] for k in entry.get('credentials', []))
        if entry.get('remediation'):
            twin = awx.named('job_templates', name + ' - remediate')
            assert twin['job_tags'] == 'remediate' and twin['playbook'] == entry['playbook']
            # the twin asks for the per-step switches; a remediation with none (the vector
            # database's restart, like api_down's) has nothing to ask
            assert twin['survey_enabled'] is bool(entry.get('switches'))
            spec = (awx.surveys.get(twin['id']) or {}).get('spec') or []
            assert [q['variable'] for q in spec] == [s['variable'] for s in entry.get('switches') or []]
            assert awx.surveys.get(jt['id']) in (None, {})
    migrate = awx.named('job_templates', 'Database migration')
    assert {q['variable']: q['required'] for q in awx.surveys[migrate['id']]['spec']} == {
        'postgres_migrate_command': True, 'postgres_migrate_rollback_command': False}
    assert awx.named('job_templates', 'Configure AWX') is None

    # schedules: weekly and monthly maintenance, nightly reconciliation
    sched = {s['name']: s for s in awx.objects['schedules'].values()}
    weekly = sched['Weekly maintenance (Sunday 02:00 UTC)']
    assert 'FREQ=WEEKLY' in weekly['rrule'] and 'BYDAY=SU' in weekly['rrule']
    assert weekly['unified_job_template'] == awx.named('job_templates', 'Weekly maintenance')['id']
    assert 'FREQ=MONTHLY' in sched['Monthly maintenance (first Sunday 03:00 UTC)']['rrule']
    nightly = sched['Nightly reconciliation (01:30 UTC)']
    assert nightly['unified_job_template'] == awx.named('job_templates', 'Reconcile payments')['id']

    writes = len(awx.writes())
    second = configure(awx)
    assert recap(second) == dict(recap(second), changed=0, failed=0), second.stdout[-3000:]
    assert len(awx.writes()) == writes, awx.writes()[writes:]


def test_check_mode_reports_drift_and_writes_nothing(awx, small_catalog):
    apply = functools.partial(configure, awx, oncall_awx_catalog=small_catalog)
    assert recap(apply())['failed'] == 0
    # someone edits AWX by hand: a template points at another playbook, a schedule is removed
    jt = awx.named('job_templates', 'Weekly maintenance')
    jt['playbook'] = 'playbooks/something_else.yml'
    monthly = [s for s in awx.objects['schedules'].values() if s['name'].startswith('Monthly')][0]
    del awx.objects['schedules'][monthly['id']]
    state = copy.deepcopy((awx.objects, awx.assoc, awx.surveys))
    writes = len(awx.writes())

    check = apply(check=True)
    assert recap(check)['failed'] == 0, check.stdout[-3000:]
    assert recap(check)['changed'] == 2
    assert (awx.objects, awx.assoc, awx.surveys) == state
    assert len(awx.writes()) == writes

    fixed = apply()
    assert recap(fixed)['changed'] == 2
    assert awx.named('job_templates', 'Weekly maintenance')['playbook'] == 'playbooks/weekly_maintenance.yml'


def test_missing_secret_variable_is_one_clear_sentence(awx):
    ev = dict(SECRETS, oncall_awx_host=awx.url, oncall_awx_token=awx.token)
    del ev['oncall_awx_stripe_api_key']
    proc = run_playbook('playbooks/awx_configure.yml', extra_vars=ev, inventory='localhost,')
    assert proc.returncode != 0
    assert 'define oncall_awx_stripe_api_key (from a vault)' in proc.stdout
    assert awx.writes() == []


def test_wrong_token_fails_with_the_controllers_401(awx):
    ev = dict(SECRETS, oncall_awx_host=awx.url, oncall_awx_token='not-the-token')
    proc = run_playbook('playbooks/awx_configure.yml', extra_vars=ev, inventory='localhost,')
    assert proc.returncode != 0 and 'HTTP 401' in proc.stdout
    assert json.dumps(awx.objects) == '{}'


def test_check_mode_on_a_fresh_awx_reports_everything_and_writes_nothing(awx, small_catalog):
    check = configure(awx, check=True, oncall_awx_catalog=small_catalog)
    rc = recap(check)
    assert rc['failed'] == 0, check.stdout[-3000:]
    assert rc['changed'] == 9            # every task would create something
    assert awx.writes() == [] and awx.objects == {}
    for secret in SECRETS.values():
        assert secret not in check.stdout + check.stderr
