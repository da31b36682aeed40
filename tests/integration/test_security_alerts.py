# -*- coding: utf-8 -*-
"""Alert payloads are data (issue 13, item 1): Jinja in an Alertmanager alert's labels,
annotations or name is never rendered, neither by playbooks/alert_runbook.yml nor by the runbook
it starts; alerts whose name, status or labels do not fit are refused with one sentence and
nothing runs. Tried for real through plain `ansible-playbook -e` and through the real
ansible-rulebook with the collection's event source (HTTP POSTs)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from helpers import run_playbook
from helpers.eda import Rulebook, make_project, notification, reports, wait_for

CATALOG = {
    'organization': 'Test', 'project': {'name': 'p'}, 'inventory': {'name': 'i'},
    'job_templates': [{'name': 'Probe', 'playbook': 'playbooks/probe.yml'}],
    'alerts': [{'alert': name, 'job_template': 'Probe', 'remediate': False}
               for name in ('HostileText', 'HostileLabel', 'DashLabel', 'BadStatus', 'LongLabel')],
}
# the runbook the alerts start: uses the alert as runbooks do (in a path, in content) and
# writes its own report with a verdict the dispatch report must carry
PROBE = """---
- name: Probe runbook
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Write what the runbook sees of the alert
      ansible.builtin.copy:
        dest: "{{ oncall_report_dir }}/seen-{{ oncall_alert.labels.alertname }}.json"
        content: >-
          {{ {'summary': oncall_alert.annotations.summary | default(''),
              'description': oncall_alert.annotations.description | default(''),
              'labels': oncall_alert.labels} | to_json }}
        mode: "0644"
      check_mode: false
    - name: Write the runbook's report
      oncall.runbooks.runbook_report:
        name: probe
        title: Probe {{ oncall_alert.labels.alertname }}
        dest: "{{ oncall_report_dir }}"
        check_mode_run: "{{ ansible_check_mode }}"
        findings:
          - {object: probe, figure: 1, threshold: 0, verdict: warning}
      check_mode: false
"""


class Attack(object):
    """Template payloads whose rendering would be visible: two commands that create marker
    files (an expression and a statement) and an arithmetic expression."""

    def __init__(self, root):
        self.root = str(root)
        self.markers = [os.path.join(self.root, 'PWNED-%s' % uuid.uuid4().hex) for _index in range(3)]
        self.pipe = "{{ lookup('pipe', 'touch %s') }}" % self.markers[0]
        self.statement = "{%% set _x = lookup('pipe', 'touch %s') %%}stated" % self.markers[1]
        self.calc = '{{ 7*7 }} {{ query("pipe", "touch %s") }}' % self.markers[2]

    def assert_not_run(self):
        made = [m for m in self.markers if os.path.exists(m)]
        assert not made, 'alert content was executed: %s' % made


@pytest.fixture()
def project(tmp_path):
    report_dir = make_project(str(tmp_path / 'project'), CATALOG, {'probe.yml': PROBE})
    return str(tmp_path / 'project'), report_dir


def cases(attack):
    """alertname -> (the alert, what the dispatch must say): dispatched, or refused naming why."""
    return {
        'HostileText': (notification('HostileText', queue='ai-analysis', instance='10.0.0.5:9100',
                                     annotations={'summary': attack.pipe,
                                                  'description': attack.statement + ' ' + attack.calc}),
                        None),
        'HostileLabel': (notification('HostileLabel', queue=attack.pipe), 'label queue'),
        'DashLabel': (notification('DashLabel', instance='--extra-vars=@/etc/passwd'), 'label instance'),
        'LongLabel': (notification('LongLabel', job='j' * 300), 'label job'),
        attack.pipe: (notification(attack.pipe), 'alertname'),
    }


def check_dispatch(report_dir, alertname, alert, refused, attack):
    """The dispatch report of one alert: verbatim text, and the refusal or the runbook's verdict."""
    attack.assert_not_run()
    dispatch = [r for r in reports(report_dir, 'alert_runbook') if r['tables'][0]['rows'][0]['alertname'] == alertname]
    assert len(dispatch) == 1, (alertname, [r['tables'][0]['rows'][0]['alertname'] for r in reports(report_dir, 'alert_runbook')])
    report = dispatch[0]
    row, finding = report['tables'][0]['rows'][0], report['findings'][0]
    labels = dict(alert['commonLabels'], **alert['alerts'][0]['labels'])
    assert json.loads(row['labels']) == labels
    summary = alert['alerts'][0]['annotations'].get('summary', alert['commonAnnotations']['summary'])
    assert row['summary'] == summary
    seen = os.path.join(report_dir, 'seen-%s.json' % alertname)
    if refused:
        assert finding['verdict'] == 'critical', finding
        assert refused in finding['figure'] and 'nothing was run' in finding['figure'], finding
        assert '\n' not in finding['figure'], finding
        assert not os.path.exists(seen), 'a refused alert started its runbook'
        assert row['runbook_report'] == ''
        return
    # dispatched: the runbook saw the alert verbatim, and its verdict and report are carried
    with open(seen) as f:
        got = json.load(f)
    assert got['summary'] == attack.pipe
    assert got['description'] == attack.statement + ' ' + attack.calc
    assert got['labels'] == labels
    probe = reports(report_dir, 'probe')
    assert row['runbook_report'] and os.path.isfile(row['runbook_report'])
    with open(row['runbook_report']) as f:
        assert json.load(f) in probe
    assert row['runbook_verdict'] == 'warning' and finding['verdict'] == 'warning', (row, finding)
    assert 'verdict warning' in finding['figure'] and row['runbook_report'] in finding['figure'], finding


def test_template_payloads_through_plain_extra_vars(project, tmp_path):
    """`ansible-playbook playbooks/alert_runbook.yml -e '{"oncall_alert": ...}'`, as an operator
    pasting an alert (or a pipeline) would run it."""
    project_dir, report_dir = project
    attack = Attack(tmp_path)
    for alertname, (alert, refused) in cases(attack).items():
        ev = {'oncall_project_dir': project_dir, 'oncall_report_dir': report_dir,
              'oncall_alert': dict(alert['alerts'][0], labels=dict(alert['commonLabels'], **alert['alerts'][0]['labels']),
                                   annotations=dict(alert['commonAnnotations'], **alert['alerts'][0]['annotations']))}
        proc = run_playbook('playbooks/alert_runbook.yml', extra_vars=ev, inventory='extensions/eda/inventory.yml')
        attack.assert_not_run()
        assert 'failed=0' in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
        check_dispatch(report_dir, alertname, alert, refused, attack)


@pytest.mark.parametrize('status', ['bogus', 'firing -e x=1'])
def test_status_outside_firing_resolved_is_refused(project, tmp_path, status):
    project_dir, report_dir = project
    alert = notification('BadStatus', status=status)['alerts'][0]
    proc = run_playbook('playbooks/alert_runbook.yml', inventory='extensions/eda/inventory.yml',
                        extra_vars={'oncall_project_dir': project_dir, 'oncall_report_dir': report_dir,
                                    'oncall_alert': alert})
    assert 'failed=0' in proc.stdout, proc.stdout[-3000:]
    finding = reports(report_dir, 'alert_runbook')[-1]['findings'][0]
    assert finding['verdict'] == 'critical' and 'status' in finding['figure'], finding
    assert not os.path.exists(os.path.join(report_dir, 'seen-BadStatus.json'))


@pytest.mark.parametrize('alert', [
    '{{ lookup("pipe", "touch MARKER") }}',                       # a string, not an alert
    ['{{ lookup("pipe", "touch MARKER") }}'],
    {'labels': '{{ lookup("pipe", "touch MARKER") }}'},
    {'labels': {'alertname': 'HostileText'}, 'annotations': {'summary': ['{{ lookup("pipe", "touch MARKER") }}']}},
    {'labels': {'alertname': 'HostileText', 'x-y': '1'}},         # not a label name
], ids=['string', 'list', 'labels-string', 'annotation-list', 'label-name'])
def test_alerts_that_are_not_alerts_are_refused(project, tmp_path, alert):
    project_dir, report_dir = project
    marker = os.path.join(str(tmp_path), 'PWNED-%s' % uuid.uuid4().hex)
    alert = json.loads(json.dumps(alert).replace('MARKER', marker))
    proc = run_playbook('playbooks/alert_runbook.yml', inventory='extensions/eda/inventory.yml',
                        extra_vars={'oncall_project_dir': project_dir, 'oncall_report_dir': report_dir,
                                    'oncall_alert': alert})
    assert not os.path.exists(marker), 'alert content was executed'
    assert 'failed=0' in proc.stdout, proc.stdout[-3000:]
    finding = reports(report_dir, 'alert_runbook')[-1]['findings'][0]
    assert finding['verdict'] == 'critical' and 'nothing was run' in finding['figure'], finding
    assert not os.path.exists(os.path.join(report_dir, 'seen-HostileText.json'))


def test_template_payloads_through_ansible_rulebook(project, tmp_path):
    """The real ansible-rulebook with the collection's event source: the same alerts POSTed as
    Alertmanager sends them, plus a resolved one whose name is a template (the rulebook's own
    debug action prints it)."""
    project_dir, report_dir = project
    attack = Attack(tmp_path)
    rulebook = Rulebook({'ONCALL_REPORT_DIR': report_dir}, project_dir=project_dir)
    try:
        all_cases = cases(attack)
        for alert, _refused in all_cases.values():
            assert rulebook.post(alert) == (202, {'queued': 1})
        assert rulebook.post(notification(attack.calc, status='resolved'))[0] == 202
        assert rulebook.post(notification('OncallTestSentinel'))[0] == 202
        wait_for(lambda: any(r['tables'][0]['rows'][0]['alertname'] == 'OncallTestSentinel'
                             for r in reports(report_dir, 'alert_runbook')), 600, 'the sentinel dispatch', rulebook)
        attack.assert_not_run()
        for alertname, (alert, refused) in all_cases.items():
            check_dispatch(report_dir, alertname, alert, refused, attack)
        assert 'resolved: ' + attack.calc in rulebook.output()
        assert len(reports(report_dir, 'probe')) == 1
    finally:
        rulebook.stop()
    attack.assert_not_run()
