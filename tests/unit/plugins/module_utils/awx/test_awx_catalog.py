# -*- coding: utf-8 -*-
"""awx/catalog.yml: every playbook has a job template, every template a playbook, and the
derived objects (templates, surveys, alert mapping) are consistent."""

from __future__ import annotations

import glob
import os
import re

import pytest
import yaml

from helpers.paths import ROOT  # noqa: E402  (and the checkout's .collections on sys.path)

from ansible_collections.oncall.runbooks.plugins.module_utils.awx import catalog as cat_mod  # noqa: E402

# Alerts the runbooks name (runbook 002's "Alert:" lines and the issue's list).
RUNBOOK_ALERTS = {'APIServiceDown', 'HighErrorRate', 'DatabaseConnectionPoolExhausted', 'DatabaseDown',
                  'HighPaymentFailureRate', 'HighLatencyP99', 'HighCPUUsage', 'HighMemoryUsage',
                  'QueueBacklog', 'SSLCertificateExpiringSoon'}


def load():
    with open(os.path.join(ROOT, 'awx', 'catalog.yml')) as f:
        return yaml.safe_load(f)


def playbooks_on_disk():
    found = glob.glob(os.path.join(ROOT, 'playbooks', '**', '*.yml'), recursive=True)
    return sorted(os.path.relpath(p, ROOT) for p in found
                  if not any(d in p for d in ('/tasks/', '/vars/', '/templates/', '/files/')))


def test_every_playbook_has_a_catalog_entry_and_every_entry_a_playbook():
    entries = [e['playbook'] for e in load()['job_templates']]
    assert len(entries) == len(set(entries)), 'a playbook is listed twice'
    missing_entry = sorted(set(playbooks_on_disk()) - set(entries))
    assert not missing_entry, 'add a job_templates entry to awx/catalog.yml for: %s' % missing_entry
    missing_file = sorted(p for p in entries if not os.path.isfile(os.path.join(ROOT, p)))
    assert not missing_file, 'awx/catalog.yml names playbooks that do not exist: %s' % missing_file


def test_remediation_entries_are_playbooks_with_a_remediate_tag():
    for e in load()['job_templates']:
        with open(os.path.join(ROOT, e['playbook'])) as f:
            has_tag = re.search(r'tags:\s*\[[^\]]*\bremediate\b', f.read()) is not None
        assert bool(e.get('remediation')) == has_tag, e['name']


def test_every_runbook_alert_is_mapped_and_the_mapping_names_real_templates():
    mapping = cat_mod.alerts(load())
    assert RUNBOOK_ALERTS <= set(mapping)
    names = {t['name'] for t in cat_mod.job_templates(load())}
    for alert, target in mapping.items():
        assert target['job_template'] in names, alert
        assert os.path.isfile(os.path.join(ROOT, target['playbook']))


def test_remediate_twin_and_bool_switch_survey():
    c = load()
    c['job_templates'].append({'name': 'X', 'playbook': 'playbooks/x.yml', 'remediation': 'fix it',
                               'switches': [{'variable': 'confirm', 'type': 'bool', 'question': 'Really?'}]})
    jts = {t['name']: t for t in cat_mod.job_templates(c)}
    assert jts['X']['job_tags'] == '' and jts['X']['survey_enabled'] is False
    twin = jts['X - remediate']
    assert twin['job_tags'] == 'remediate' and twin['survey_enabled'] is True
    q = twin['survey_spec']['spec'][0]
    assert (q['variable'], q['type'], q['choices'], q['default']) == ('confirm', 'multiplechoice', ['false', 'true'], 'false')


@pytest.mark.parametrize('mutate, message', [
    (lambda c: c['job_templates'][0].update(credentials=['vault']), "credential 'vault' is not defined"),
    (lambda c: c['alerts'].append({'alert': 'Foo', 'job_template': 'Nope'}), "job template 'Nope' is not in"),
    (lambda c: c['alerts'].append({'alert': 'Foo', 'job_template': 'Daily health check', 'remediate': True}),
     'has no remediation'),
    (lambda c: c['job_templates'][0].update(switches=[{'variable': 'v', 'type': 'json'}]), "has type 'json'"),
])
def test_inconsistent_catalog_is_one_clear_error(mutate, message):
    c = load()
    mutate(c)
    with pytest.raises(cat_mod.CatalogError, match=message):
        cat_mod.expand(c)


def test_missing_secret_names_its_variable():
    with pytest.raises(cat_mod.CatalogError, match='needs the variable oncall_awx_db_password'):
        cat_mod.credentials(load(), {})


def test_rulebook_cooldown_is_the_catalogs():
    with open(os.path.join(ROOT, 'extensions', 'eda', 'rulebooks', 'alerts.yml')) as f:
        rulebook = yaml.safe_load(f)
    throttles = [r['throttle'] for r in rulebook[0]['rules'] if 'throttle' in r]
    assert throttles == [{'once_within': load()['alert_cooldown'],
                          'group_by_attributes': ['event.alert.labels.alertname']}]
