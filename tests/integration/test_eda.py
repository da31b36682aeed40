# -*- coding: utf-8 -*-
"""Alert-driven runbooks: the real ansible-rulebook (Drools on Java 17) runs
extensions/eda/rulebooks/alerts.yml with the collection's oncall.runbooks.alertmanager event
source; Alertmanager notifications are POSTed to it over HTTP, and the runbook the catalog maps
the alert to runs against the lab (real Redis and PostgreSQL on free ports)."""

from __future__ import annotations

import json

import pytest

from helpers.eda import Rulebook, notification, reports, wait_for


@pytest.fixture()
def rulebook(lab):
    rb = Rulebook(lab.env)
    yield rb
    rb.stop()


@pytest.fixture()
def rulebook_on_another_address(lab):
    """The rulebook with ONCALL_EDA_HOST=127.0.0.2 (a loopback address of its own)."""
    rb = Rulebook(lab.env, host='127.0.0.2')
    yield rb
    rb.stop()


def test_alert_runs_its_runbook_once_within_the_cooldown(lab, rulebook):
    # the lab is shared by the session: count only the reports this test makes
    old_dispatch = len(reports(lab.report_dir, 'alert_runbook'))
    old_runs = len(reports(lab.report_dir, 'queue_backlog'))

    def dispatches():
        return reports(lab.report_dir, 'alert_runbook')[old_dispatch:]

    def runs():
        return reports(lab.report_dir, 'queue_backlog')[old_runs:]
    # without ONCALL_EDA_HOST it listens on the loopback address only (the rulebook's default)
    assert listening_addresses(rulebook.port) == ['0100007F']
    # QueueBacklog maps to the queue backlog runbook (diagnosis only: not marked safe to remediate)
    assert rulebook.post(notification('QueueBacklog', queue='ai-analysis')) == (202, {'queued': 1})
    wait_for(lambda: len(dispatches()) == 1, 300, 'the QueueBacklog dispatch', rulebook)
    dispatch = dispatches()[0]
    row = dispatch['tables'][0]['rows'][0]
    assert (row['alertname'], row['playbook'], row['remediate']) == ('QueueBacklog', 'playbooks/runbooks/queue_backlog.yml', False)
    assert row['fingerprint'] == 'f0' and row['summary'] == 'QueueBacklog (test)'

    # the runbook's own report, written by queue_backlog.yml against the lab: the seeded
    # queues measured for real, and nothing remediated (the alert is not marked safe)
    ran = runs()
    assert len(ran) == 1
    # the dispatch report carries the runbook's own verdict and report (issue 14)
    with open(row['runbook_report']) as f:
        assert json.load(f) == ran[0]
    worst = max(ran[0]['summary']['findings'], key=['ok', 'unknown', 'warning', 'critical'].index)
    assert row['runbook_verdict'] == worst == dispatch['findings'][0]['verdict'], (row, ran[0]['summary'])
    assert 'verdict %s, report %s (rc ' % (worst, row['runbook_report']) in dispatch['findings'][0]['figure']
    objects = {f['object']: f for f in ran[0]['findings']}
    assert objects['ai-analysis waiting']['verdict'] in ('ok', 'warning', 'critical')
    assert isinstance(objects['ai-analysis waiting']['figure'], int), objects['ai-analysis waiting']
    assert ran[0]['mode'] == 'apply' and ran[0]['summary']['applied'] == 0, ran[0]['summary']

    # the same alert again within the cooldown, then a resolved one and an alert with no
    # runbook (the sentinel: actions run in arrival order, so once its dispatch is written
    # every earlier event has been handled)
    assert rulebook.post(notification('QueueBacklog', queue='ai-analysis', fingerprint='f1'))[0] == 202
    assert rulebook.post(notification('QueueBacklog', status='resolved'))[0] == 202
    assert rulebook.post(notification('OncallTestSentinel'))[0] == 202
    wait_for(lambda: any(r['tables'][0]['rows'][0]['alertname'] == 'OncallTestSentinel'
                         for r in dispatches()), 300, 'the sentinel dispatch', rulebook)

    dispatched = [r['tables'][0]['rows'][0]['alertname'] for r in dispatches()]
    assert dispatched == ['QueueBacklog', 'OncallTestSentinel']
    assert len(runs()) == 1
    sentinel = dispatches()[-1]
    assert sentinel['findings'][0]['figure'] == 'no runbook is mapped to this alert in awx/catalog.yml'
    assert 'resolved: QueueBacklog' in rulebook.output()


def listening_addresses(port):
    """The local addresses a TCP socket listens on at port (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                address, hexport = fields[1].split(':')
                if int(hexport, 16) == port and fields[3] == '0A':
                    found.append(address)
    return found


def test_source_refuses_wrong_token_and_non_alertmanager_bodies(lab, rulebook_on_another_address):
    rulebook = rulebook_on_another_address
    before = reports(lab.report_dir, 'alert_runbook')
    # it listens on the address ONCALL_EDA_HOST gives, and only there
    assert listening_addresses(rulebook.port) == ['0200007F']
    assert rulebook.post(notification('QueueBacklog'), token='wrong')[0] == 401
    assert rulebook.post(notification('QueueBacklog'), authorization='')[0] == 401
    assert rulebook.post(notification('QueueBacklog'), authorization='Bearer ' + rulebook.token + 'x')[0] == 401
    # a header compare_digest cannot take as str is refused, not a server error
    assert rulebook.post(notification('QueueBacklog'), authorization='Bearer \u00e9\u00e9')[0] == 401
    status, body = rulebook.post(None, raw=b'{"alert": "x"}')
    assert status == 400 and 'no "alerts" list' in body['error']
    status, body = rulebook.post(None, raw=b'not json')
    assert status == 400
    bad = notification('QueueBacklog')
    bad['alerts'][0]['labels']['queue'] = {'nested': 1}
    status, body = rulebook.post(bad)
    assert status == 400 and "labels is not an object of strings" in body['error'], body
    # the body is bounded (1 MiB by default): a larger one is refused before it is parsed
    big = notification('QueueBacklog', annotations={'summary': 'x' * (2 << 20)})
    status, body = rulebook.post(big)
    assert status == 413, (status, body)
    # nothing was queued: a sentinel with no runbook is the next and only dispatch
    assert rulebook.post(notification('OncallTestSentinel'))[0] == 202
    wait_for(lambda: len(reports(lab.report_dir, 'alert_runbook')) > len(before), 300, 'the sentinel dispatch', rulebook)
    new = reports(lab.report_dir, 'alert_runbook')[len(before):]
    assert [r['tables'][0]['rows'][0]['alertname'] for r in new] == ['OncallTestSentinel']
    assert new[0]['findings'][0]['verdict'] == 'warning'


@pytest.mark.parametrize('token', ['', '   '])
def test_source_refuses_to_start_without_a_token(token):
    with pytest.raises(RuntimeError) as exc:
        Rulebook({}, token=token).stop()
    assert 'option token is empty' in str(exc.value), str(exc.value)[-3000:]


def test_alert_runbook_playbook_by_hand_twice_and_in_check_mode(lab):
    """playbooks/alert_runbook.yml without the rulebook (as AWX's "Alert runbook" template runs it)."""
    from helpers import dump_keys
    from test_playbooks import pg_state, recap

    alert = {'oncall_alert': notification('DatabaseConnectionPoolExhausted')['alerts'][0]}
    r = lab.redis()
    before = dump_keys(r), pg_state(lab)
    check = lab.playbook('alert_runbook.yml', extra_vars=alert, check=True, inventory='extensions/eda/inventory.yml')
    assert 'failed=0' in check.stdout, check.stdout[-3000:]
    assert (dump_keys(r), pg_state(lab)) == before, 'check mode changed the lab'
    last = reports(lab.report_dir, 'alert_runbook-check')[-1]  # a dry run's reports are <name>-check-*
    assert last['mode'].startswith('check') and 'database_connections.yml: verdict ' in last['findings'][0]['figure']
    with open(last['tables'][0]['rows'][0]['runbook_report']) as f:
        assert json.load(f)['mode'].startswith('check')   # --check reached the runbook
    for attempt in (1, 2):
        run = lab.playbook('alert_runbook.yml', extra_vars=alert, inventory='extensions/eda/inventory.yml')
        assert "changed=0" in run.stdout and "failed=0" in run.stdout, (attempt, run.stdout[-3000:])
    last = reports(lab.report_dir, 'alert_runbook')[-1]
    row = last['tables'][0]['rows'][0]
    with open(row['runbook_report']) as f:
        child = json.load(f)
    assert child['mode'] == 'apply' and child['name'] == 'database_connections'
    worst = max(child['summary']['findings'], key=['ok', 'unknown', 'warning', 'critical'].index)
    assert last['findings'][0]['verdict'] == row['runbook_verdict'] == worst, (last['findings'], child['summary'])
    assert last['findings'][0]['figure'].endswith('(rc 0)')


SAFE_PROJECT_CATALOG = {
    'organization': 'Test', 'project': {'name': 'p'}, 'inventory': {'name': 'i'},
    'job_templates': [{'name': 'Fix', 'playbook': 'playbooks/fix.yml', 'remediation': 'writes the marker'}],
    'alerts': [{'alert': 'SafeAlert', 'job_template': 'Fix', 'remediate': True},
               {'alert': 'UnsafeAlert', 'job_template': 'Fix', 'remediate': False}],
}
FIX_PLAYBOOK = """---
- name: Fix
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Diagnose
      ansible.builtin.copy:
        dest: "{{ oncall_report_dir }}/diagnosed-{{ oncall_alert.labels.alertname }}"
        content: diagnosed
        mode: "0644"
      tags: [always]
    - name: Remediate
      ansible.builtin.copy:
        dest: "{{ oncall_report_dir }}/remediated-{{ oncall_alert.labels.alertname }}"
        content: remediated
        mode: "0644"
      tags: [never, remediate]
"""


def test_remediation_runs_only_for_alerts_marked_safe(tmp_path):
    """A project of its own (catalog + one playbook with a remediate tag) through
    playbooks/alert_runbook.yml: the safe alert runs --tags remediate, the other only the
    diagnosis; check mode passes --check down; a second run of the safe alert changes nothing."""
    import yaml
    from helpers import run_playbook

    (tmp_path / 'awx').mkdir()
    (tmp_path / 'playbooks').mkdir()
    (tmp_path / 'awx' / 'catalog.yml').write_text(yaml.safe_dump(SAFE_PROJECT_CATALOG))
    (tmp_path / 'playbooks' / 'fix.yml').write_text(FIX_PLAYBOOK)
    (tmp_path / 'ansible.cfg').write_text('[defaults]\nretry_files_enabled = false\n')
    reports_dir = tmp_path / 'reports'
    reports_dir.mkdir()

    def dispatch(alertname, check=False):
        ev = {'oncall_project_dir': str(tmp_path), 'oncall_report_dir': str(reports_dir),
              'oncall_alert': notification(alertname)['alerts'][0]}
        proc = run_playbook('playbooks/alert_runbook.yml', extra_vars=ev, check=check,
                            inventory='extensions/eda/inventory.yml')
        assert 'failed=0' in proc.stdout, proc.stdout[-3000:]
        return proc

    dispatch('SafeAlert', check=True)
    assert sorted(p.name for p in reports_dir.glob('*ed-*')) == []   # --check reached the runbook
    first = dispatch('SafeAlert')
    assert 'changed=1' in first.stdout
    assert (reports_dir / 'remediated-SafeAlert').read_text() == 'remediated'
    assert 'changed=0' in dispatch('SafeAlert').stdout
    dispatch('UnsafeAlert')
    assert (reports_dir / 'diagnosed-UnsafeAlert').is_file()
    assert not (reports_dir / 'remediated-UnsafeAlert').exists()
    last = reports(str(reports_dir), 'alert_runbook')[-1]
    assert last['tables'][0]['rows'][0]['remediate'] is False
    # fix.yml writes no report of its own: the dispatch says so, verdict unknown
    assert last['findings'][0]['figure'] == 'playbooks/fix.yml: rc 0, the runbook wrote no report'
    assert last['findings'][0]['verdict'] == 'unknown'
