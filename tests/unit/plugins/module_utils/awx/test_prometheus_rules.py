# -*- coding: utf-8 -*-
"""The collection's alert rules (extensions/prometheus/rules/oncall.rules.yml) with the real
promtool: `promtool check rules` and the unit tests of tests/prometheus/*.test.yml pass; every
alert the catalog maps has a rule whose `runbook` annotation names the catalog's playbook and the
job template the rulebook dispatches it to; every alert is unit-tested firing and silent; and the
tests really check each rule's `for:` (a copy of the rules without it fails them)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from helpers.paths import ROOT  # noqa: E402  (and the checkout's .collections on sys.path)

from ansible_collections.oncall.runbooks.plugins.module_utils.awx import catalog as cat_mod  # noqa: E402

RULES = os.path.join(ROOT, 'extensions', 'prometheus', 'rules', 'oncall.rules.yml')
TESTS = sorted(glob.glob(os.path.join(ROOT, 'tests', 'prometheus', '*.test.yml')))
# The alerts the runbooks name (issue 18; runbook 002's "Alert:" lines).
NAMED = {'APIServiceDown', 'HighErrorRate', 'HighLatencyP99', 'DatabaseConnectionPoolExhausted',
         'HighPaymentFailureRate', 'QueueBacklog', 'HighCPUUsage', 'SSLCertificateExpiringSoon'}


def promtool():
    path = shutil.which('promtool')
    assert path, 'promtool not found: scripts/setup installs Debian\'s prometheus package'
    return path


def rules():
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return [r for g in doc['groups'] for r in g['rules'] if 'alert' in r]


def catalog_alerts():
    with open(os.path.join(ROOT, 'awx', 'catalog.yml')) as f:
        return cat_mod.alerts(yaml.safe_load(f))


def test_promtool_check_rules():
    proc = subprocess.run([promtool(), 'check', 'rules', RULES], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'SUCCESS: %d rules found' % len(rules()) in proc.stdout


def test_promtool_unit_tests_pass():
    assert TESTS
    proc = subprocess.run([promtool(), 'test', 'rules'] + TESTS, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'SUCCESS' in proc.stdout


def test_every_catalog_alert_has_a_rule_naming_its_runbook():
    mapping = catalog_alerts()
    by_name = {}
    for r in rules():
        by_name.setdefault(r['alert'], []).append(r)
    assert NAMED <= set(by_name)
    # every alert the rulebook can dispatch has a rule, and every rule an entry in the catalog
    assert set(by_name) == set(mapping)
    for name, rs in by_name.items():
        target = mapping[name]
        template = target['job_template']
        for r in rs:
            assert r['annotations']['runbook'] == '%s (catalog: %s)' % (target['playbook'], template), name
            assert os.path.isfile(os.path.join(ROOT, target['playbook']))
            assert r['labels']['severity'] in ('warning', 'critical'), name
            # the Alertmanager route to the rulebook (roles/monitoring) matches this label
            assert r['labels']['oncall'] == 'runbooks', name
            assert r['annotations']['summary'] and r['annotations']['description']
            assert re.fullmatch(r'\d+[smh]', r['for']), name


def test_the_runbook_thresholds_are_the_ones_of_runbook_001():
    """Runbook 001 7.3 (queue length 100/500, error rate 2%/5%, P95 500/1000 ms) and 7.1
    (failure ratio 5%): the numbers in the expressions, per severity."""
    want = {('QueueBacklog', 'warning'): ['>= 100', '< 500'], ('QueueBacklog', 'critical'): ['>= 500'],
            ('HighErrorRate', 'warning'): ['>= 0.02 < 0.05'], ('HighErrorRate', 'critical'): ['>= 0.05'],
            ('HighLatencyP99', 'warning'): ['histogram_quantile(0.99', '>= 0.5'],
            ('HighLatencyP99', 'critical'): ['histogram_quantile(0.95', '>= 1'],
            ('QueueJobFailureRate', 'warning'): ['>= 0.05']}
    seen = set()
    for r in rules():
        key = (r['alert'], r['labels']['severity'])
        for part in want.get(key, []):
            assert part in ' '.join(r['expr'].split()), (key, part)
        seen.add(key)
    assert set(want) <= seen


def test_every_alert_is_tested_firing_and_silent():
    fired, silent = set(), set()
    for path in TESTS:
        with open(path) as f:
            doc = yaml.safe_load(f)
        for t in doc['tests']:
            for a in t.get('alert_rule_test') or []:
                if a.get('exp_alerts'):
                    fired.update((a['alertname'], e['exp_labels']['severity']) for e in a['exp_alerts'])
                else:
                    silent.add(a['alertname'])
    every = {(r['alert'], r['labels']['severity']) for r in rules()}
    assert every <= fired, sorted(every - fired)
    assert {r['alert'] for r in rules()} <= silent


@pytest.mark.parametrize('index', range(len(rules())))
def test_the_unit_tests_fail_without_a_rules_for(tmp_path, index):
    """A copy of the rules with one rule's `for:` removed fails the unit tests: they check it."""
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    alerting = [r for g in doc['groups'] for r in g['rules'] if 'alert' in r]
    del alerting[index]['for']
    os.makedirs(tmp_path / 'extensions' / 'prometheus' / 'rules')
    os.makedirs(tmp_path / 'tests' / 'prometheus')
    with open(tmp_path / 'extensions' / 'prometheus' / 'rules' / 'oncall.rules.yml', 'w') as f:
        yaml.safe_dump(doc, f)
    copies = []
    for path in TESTS:
        copies.append(str(tmp_path / 'tests' / 'prometheus' / os.path.basename(path)))
        shutil.copy(path, copies[-1])
    proc = subprocess.run([promtool(), 'test', 'rules'] + copies, capture_output=True, text=True, check=False)
    assert proc.returncode != 0, 'the unit tests pass without the for: of %s' % alerting[index]['alert']
    assert 'alertname: %s,' % alerting[index]['alert'] in proc.stdout + proc.stderr
