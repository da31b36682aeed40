# -*- coding: utf-8 -*-
"""Where reports and deploy records go: one rule (the report_dir filter) for the report role, the
deploy role's records and the app_health role that reads them, so that a runbook finds the deploy
that the deploy playbook recorded. Each case runs a real ansible-playbook from a directory other
than the checkout, with no inventory that sets oncall_report_dir, and the report role writes its
report where the rule says."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from helpers import ROOT, _env, ansible_bin

PLAY = """
- name: Where each role puts its reports
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The roles' own defaults
      ansible.builtin.include_vars:
        file: "{{ item }}"
      loop:
        - %(root)s/roles/report/defaults/main.yml
        - %(root)s/roles/deploy/defaults/main.yml
        - %(root)s/roles/app_health/defaults/main.yml

    - name: The directories
      ansible.builtin.debug:
        msg: "{{ {'report': report_dir, 'deploy': deploy_report_dir, 'app_health': app_health_report_dir,
                  'alert': oncall_report_dir | default('') | oncall.runbooks.report_dir('/srv/project')} | to_json }}"

    - name: A report, written where the rule says
      ansible.builtin.include_role:
        name: oncall.runbooks.report
      vars:
        report_name: where_probe
        report_findings:
          - {object: probe, figure: '1', threshold: '1', verdict: ok}
"""


def where(tmp_path, env=None, extra_vars=None):
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir(exist_ok=True)
    play = tmp_path / 'where.yml'
    play.write_text(PLAY % {'root': ROOT})
    run_env = _env()
    run_env.pop('ONCALL_REPORT_DIR', None)  # only what the case sets
    run_env.update(env or {})
    run_env['PWD'] = str(cwd)
    cmd = [ansible_bin('ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(play)]
    if extra_vars is not None:
        cmd += ['-e', json.dumps(extra_vars)]
    proc = subprocess.run(cmd, cwd=str(cwd), env=run_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    tasks = json.loads(proc.stdout)['plays'][0]['tasks']
    shown = [t for t in tasks if t['task']['name'] == 'The directories'][0]['hosts']['localhost']['msg']
    return json.loads(shown), cwd


def written(directory):
    return sorted(n for n in os.listdir(directory) if re.match(r'^where_probe-\d{8}T\d{6}Z\.md$', n))


@pytest.mark.parametrize('case', ['nothing set', 'environment', 'variable', 'empty variable'])
def test_every_role_uses_one_report_directory_and_the_report_lands_there(tmp_path, case):
    from_env, from_var = str(tmp_path / 'from-env'), str(tmp_path / 'from-var')
    env = {} if case == 'nothing set' else {'ONCALL_REPORT_DIR': from_env}
    extra = {'variable': {'oncall_report_dir': from_var}, 'empty variable': {'oncall_report_dir': ''}}.get(case)
    dirs, cwd = where(tmp_path, env=env, extra_vars=extra)
    expected = {'nothing set': str(cwd / 'reports'), 'environment': from_env,
                'variable': from_var, 'empty variable': from_env}[case]
    assert dirs['report'] == dirs['deploy'] == dirs['app_health'] == expected, dirs
    # the alert playbook's fallback is its project's reports/, not the current directory
    assert dirs['alert'] == ('/srv/project/reports' if case == 'nothing set' else expected), dirs
    assert len(written(expected)) == 1
    assert case == 'nothing set' or not os.path.exists(cwd / 'reports')
