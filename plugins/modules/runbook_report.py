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
    dry run's plan) and says so in its header, under its own names
    C(<name>-check-<UTC timestamp>.json)/C(.md) and C(<name>-check-latest.json)/C(.md), so a dry
    run never replaces the C(-latest) report of a real run.
  - Files are confined to O(dest). O(name) is checked against a strict pattern before anything
    is written, each file is written to a new temporary file in O(dest) and then linked
    (timestamped files, never over an existing one, so a second report in the same second gets a
    C(-2) suffix) or renamed (the C(-latest) files) into place, so a symbolic link at any of
    those names is replaced or refused, never followed, and its target never written.
  - Secrets never reach the report, since results of modules with C(no_log) options do not contain them.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Writes the report of the dry run, marked as such, as C(<name>-check-*) files.
  diff_mode:
    support: N/A
    details: Report files are new on each run; there is nothing to diff.
  idempotent:
    support: N/A
    details: Writes a new, time-stamped report on each run and reports no change.
options:
  name:
    description:
      - Short name, used in file names (C(weekly_maintenance)).
      - 1 to 100 letters, digits, C(_) or C(-), starting with a letter or digit and not ending in
        C(-check) (the suffix of dry-run reports); anything else is refused before anything is written.
    type: str
    required: true
  title:
    description: Human title of the report.
    type: str
    required: true
  dest:
    description:
      - Directory for the reports; created when missing.
      - Resolved once (a link to a directory is followed there, and only there); every file is then
        written relative to that directory. A system directory (C(/etc), C(/usr), C(/proc), ...) is refused.
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
        (true for a remediation step, see O(diagnosis_only)).
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
      - When not given or empty, the time this module started, so C(Started:) is always filled.
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
  description: Path of the JSON report written (C(<name>-check-<timestamp>.json) in check mode).
  returned: always
  type: str
  sample: /srv/oncall/reports/weekly_maintenance-20261122T020000Z.json
markdown_path:
  description: Path of the Markdown report written (C(<name>-check-<timestamp>.md) in check mode).
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
latest_json_path:
  description: Path of the C(-latest) JSON copy replaced by this run (C(<name>-check-latest.json) in check mode).
  returned: always
  type: str
  sample: /srv/oncall/reports/weekly_maintenance-latest.json
latest_markdown_path:
  description: Path of the C(-latest) Markdown copy replaced by this run (C(<name>-check-latest.md) in check mode).
  returned: always
  type: str
  sample: /srv/oncall/reports/weekly_maintenance-latest.md
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
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError
from ansible_collections.oncall.runbooks.plugins.module_utils.common.artifacts import (
    ArtifactError, exists, open_dest, write_new, write_replace)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.report import (
    build_report, render_markdown)

NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$')


class ReportError(OncallError):
    """A refusal, already phrased for the operator."""


def check_name(name):
    if not NAME.match(name) or name.endswith('-check'):
        raise ReportError("name must be 1 to 100 letters, digits, '_' or '-', starting with a letter or "
                          "digit and not ending in -check, not %r" % name)


def write_report(dest, name, stamp, check_mode, report_json, markdown):
    """Write <name>[-check]-<stamp>[-N].json/.md (never over an existing file) and replace
    <name>[-check]-latest.json/.md; returns the four paths."""
    prefix = '%s-check' % name if check_mode else name
    real, dir_fd = open_dest(dest)
    try:
        for n in range(1, 1000):
            base = '%s-%s%s' % (prefix, stamp, '' if n == 1 else '-%d' % n)
            if exists(dir_fd, base + '.md') or not write_new(dir_fd, base + '.json', report_json):
                continue
            if not write_new(dir_fd, base + '.md', markdown):
                os.unlink(base + '.json', dir_fd=dir_fd)
                continue
            break
        else:
            raise OSError('no free report name for %s-%s' % (prefix, stamp))
        write_replace(dir_fd, '%s-latest.json' % prefix, report_json)
        write_replace(dir_fd, '%s-latest.md' % prefix, markdown)
    finally:
        os.close(dir_fd)
    return dict(json_path=os.path.join(real, base + '.json'), markdown_path=os.path.join(real, base + '.md'),
                latest_json_path=os.path.join(real, prefix + '-latest.json'),
                latest_markdown_path=os.path.join(real, prefix + '-latest.md'))


def main():
    module_started = datetime.datetime.now(datetime.timezone.utc)
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
    runner.run(module, lambda m: run(m, module_started))


def run(module, module_started):
    p = module.params
    check_mode = p['check_mode_run'] or module.check_mode
    try:
        check_name(p['name'])
    except ReportError as exc:
        module.fail_json(msg=str(exc))
    started = (p['started'] or '').strip() or module_started.strftime('%Y-%m-%dT%H:%M:%SZ')
    now = datetime.datetime.now(datetime.timezone.utc)
    report = build_report(p['name'], p['title'], p['steps'], p['findings'], p['incident'],
                          check_mode=check_mode, started=started, finished=now.strftime('%Y-%m-%dT%H:%M:%SZ'),
                          tables=p['tables'], failures=p['failures'], diagnosis_only=p['diagnosis_only'])
    markdown = render_markdown(report)
    try:
        paths = write_report(p['dest'], p['name'], now.strftime('%Y%m%dT%H%M%SZ'), check_mode,
                             json.dumps(report, indent=2, sort_keys=True, default=str) + '\n', markdown)
    except ArtifactError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg='cannot write the report in %s: %s' % (p['dest'], exc.strerror or exc))
    return dict(changed=False, summary=report['summary'], markdown=markdown, verdict=report['verdict'], **paths)


if __name__ == '__main__':
    main()
