#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: runbook_report
short_description: Write the JSON and Markdown report a runbook or maintenance window leaves behind
version_added: 0.1.0
description:
  - Every playbook of the collection ends with this module. It takes the registered results of
    the plan-then-apply modules (anything returning C(plan) and C(actions), or C(plan), C(done)
    and C(skipped_items)) plus findings, and writes C(<name>-<UTC timestamp>.json) and C(.md)
    in O(dest), and C(<name>-latest.json) and C(<name>-latest.md) copies.
  - The report is an artifact on the machine that runs it, not a change to a managed system, so
    the module always reports C(changed=false). It writes in check mode too (that report is the
    dry run's plan) and says so in its header.
  - Secrets never reach the report, since results of modules with C(no_log) options do not contain them.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
attributes:
  check_mode:
    support: full
    description: Writes the report of the dry run, marked as such.
  diff_mode:
    support: none
    description: Report files are new on each run; there is nothing to diff.
options:
  name:
    description: Short name, used in file names (C(weekly_maintenance)).
    type: str
    required: true
  title:
    description: Human title of the report.
    type: str
    required: true
  dest:
    description: Directory for the reports; created when missing.
    type: path
    required: true
  check_mode_run:
    description: Whether the playbook ran in check mode (pass C({{ ansible_check_mode }})).
    type: bool
    default: false
  steps:
    description:
      - One entry per step of the run, in order, each with C(name) (the step) and C(result)
        (the registered result of the module it ran; loops are expanded), and C(remediation)
        (true for a remediation step: see O(diagnosis_only)).
    type: list
    elements: dict
    default: []
  findings:
    description:
      - Diagnosis facts as data, each a dict with at least C(object) and C(verdict)
        (V(ok), V(warning), V(critical), V(unknown)), and usually C(figure) and C(threshold).
    type: list
    elements: dict
    default: []
  incident:
    description:
      - Fields of the incident log template (runbook 004) to fill in, such as C(impact),
        C(root_cause), C(prevention). Missing fields are left as placeholders for a human.
    type: dict
  started:
    description:
      - When the run started (ISO 8601); the report's timeline begins there.
      - When empty, the time this module ran, so the report never says C(n/a).
    type: str
  failures:
    description:
      - Parts of the run that failed before the report (what a play's C(rescue) caught), each a
        dict with C(part) (the play or step), C(task) (the task that failed) and C(msg).
      - Each becomes a C(critical) finding, so the report says what did not complete while
        the steps still show what was done before the failure.
    type: list
    elements: dict
    default: []
  diagnosis_only:
    description:
      - The run was a diagnosis (without C(--tags remediate)). Steps marked C(remediation=true)
        that have no result are then shown as C(not run (diagnosis only)), never as
        C(nothing to do).
    type: bool
    default: false
  tables:
    description:
      - Further data to show as tables, each a dict with C(title) and C(rows) (a list of flat
        dicts, such as pg_health_info's slowest statements or unused indexes).
    type: list
    elements: dict
    default: []
'''

EXAMPLES = r'''
- name: Write the maintenance report
  oncall.runbooks.runbook_report:
    name: weekly_maintenance
    title: Weekly maintenance window
    dest: "{{ playbook_dir }}/../reports"
    check_mode_run: "{{ ansible_check_mode }}"
    steps:
      - name: Clean old queue jobs
        result: "{{ queues_clean_results }}"
  delegate_to: localhost
  run_once: true
  check_mode: false
'''

RETURN = r'''
json_path:
  description: Path of the JSON report written.
  returned: always
  type: str
  sample: /srv/oncall/reports/weekly_maintenance-20261122T020000Z.json
markdown_path:
  description: Path of the Markdown report written.
  returned: always
  type: str
  sample: /srv/oncall/reports/weekly_maintenance-20261122T020000Z.md
verdict:
  description:
    - The run's verdict, the worst of its findings (critical, warning, unknown, ok in that
      order); C(critical) when a step or a part of the run failed.
  returned: always
  type: str
  sample: warning
summary:
  description: Counts of planned and applied actions, and findings by verdict.
  returned: always
  type: dict
  sample: {planned: 4, applied: 4, failed_steps: 0, findings: {ok: 3, warning: 1}}
markdown:
  description: The Markdown text of the report.
  returned: always
  type: str
'''

import datetime
import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common.report import (
    build_report, render_markdown)


def write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.report-')
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            title=dict(type='str', required=True),
            dest=dict(type='path', required=True),
            check_mode_run=dict(type='bool', default=False),
            steps=dict(type='list', elements='dict', default=[]),
            findings=dict(type='list', elements='dict', default=[]),
            incident=dict(type='dict'),
            started=dict(type='str'),
            tables=dict(type='list', elements='dict', default=[]),
            failures=dict(type='list', elements='dict', default=[]),
            diagnosis_only=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    now = datetime.datetime.now(datetime.timezone.utc)
    report = build_report(p['name'], p['title'], p['steps'], p['findings'], p['incident'],
                          check_mode=p['check_mode_run'] or module.check_mode,
                          started=p['started'] or now.strftime('%Y-%m-%dT%H:%M:%SZ'),
                          finished=now.strftime('%Y-%m-%dT%H:%M:%SZ'),
                          tables=p['tables'], failures=p['failures'],
                          diagnosis_only=p['diagnosis_only'])
    markdown = render_markdown(report)
    stamp = now.strftime('%Y%m%dT%H%M%SZ')
    try:
        os.makedirs(p['dest'], exist_ok=True)
        base = os.path.join(p['dest'], '%s-%s' % (p['name'], stamp))
        write_atomic(base + '.json', json.dumps(report, indent=2, sort_keys=True, default=str) + '\n')
        write_atomic(base + '.md', markdown)
        for ext in ('.json', '.md'):
            shutil.copyfile(base + ext, os.path.join(p['dest'], '%s-latest%s' % (p['name'], ext)))
    except OSError as exc:
        module.fail_json(msg='cannot write the report in %s: %s' % (p['dest'], exc.strerror or exc))
    module.exit_json(changed=False, json_path=base + '.json', markdown_path=base + '.md',
                     summary=report['summary'], markdown=markdown, verdict=report['verdict'])


if __name__ == '__main__':
    main()
