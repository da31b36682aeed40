#!/usr/bin/env python
"""Alertmanager -> ansible-rulebook -> runbook: startup, latency, and an alert storm.

Runs the real ansible-rulebook on extensions/eda/rulebooks/alerts.yml (the collection's
alertmanager source, Drools on Java 17) with ONCALL_PROJECT_DIR pointing at a throw-away
project whose catalog maps alert `Storm` to a one-task playbook, so the figures are those of
the rulebook and the dispatcher, not of a runbook. Printed:

  startup     seconds from launching ansible-rulebook to its webhook accepting connections
  dispatch    seconds from one POST to the dispatch report of its run (playbooks/alert_runbook.yml
              and the mapped playbook), --runs times; min / median / max
  storm       --storm POSTs of the same alert within the cooldown: seconds to accept them all,
              POSTs per second, and how many runs they caused (1 with the 10-minute cooldown)

    .venv/bin/python bench/eda_alerts.py [--runs 3] [--storm 500]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

import yaml  # noqa: E402

from helpers.eda import Rulebook, notification  # noqa: E402  pylint: disable=import-error

PLAYBOOK = """---
- name: Storm runbook
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Diagnose
      ansible.builtin.debug:
        msg: "{{ oncall_alert.labels.alertname }}"
"""


def dispatches(report_dir):
    return len(glob.glob(os.path.join(report_dir, 'alert_runbook-2*.json')))


def wait(predicate, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    raise SystemExit('timed out')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--storm', type=int, default=500)
    args = parser.parse_args()

    project = tempfile.mkdtemp(prefix='oncall-eda-bench-')
    report_dir = os.path.join(project, 'reports')
    os.makedirs(os.path.join(project, 'awx'))
    os.makedirs(os.path.join(project, 'playbooks'))
    os.makedirs(report_dir)
    alerts = [{'alert': 'Run%d' % i, 'job_template': 'Storm'} for i in range(args.runs)]
    catalog = {'organization': 'bench', 'project': {'name': 'p'}, 'inventory': {'name': 'i'},
               'job_templates': [{'name': 'Storm', 'playbook': 'playbooks/storm.yml'}],
               'alerts': alerts + [{'alert': 'Storm', 'job_template': 'Storm'}]}
    with open(os.path.join(project, 'awx', 'catalog.yml'), 'w') as f:
        yaml.safe_dump(catalog, f)
    with open(os.path.join(project, 'playbooks', 'storm.yml'), 'w') as f:
        f.write(PLAYBOOK)
    with open(os.path.join(project, 'ansible.cfg'), 'w') as f:
        f.write('[defaults]\nretry_files_enabled = false\n')

    t0 = time.time()
    rulebook = Rulebook({'ONCALL_REPORT_DIR': report_dir}, project_dir=project)
    startup = time.time() - t0
    try:
        latencies = []
        for i in range(args.runs):
            before = dispatches(report_dir)
            t = time.time()
            status, _body = rulebook.post(notification('Run%d' % i))
            assert status == 202
            wait(lambda: dispatches(report_dir) > before)
            latencies.append(time.time() - t)
        before = dispatches(report_dir)
        t = time.time()
        for i in range(args.storm):
            status, _body = rulebook.post(notification('Storm', fingerprint='s%d' % i))
            assert status == 202
        accepted = time.time() - t
        rulebook.post(notification('Sentinel'))
        wait(lambda: dispatches(report_dir) >= before + 2)
        storm_runs = dispatches(report_dir) - before - 1
    finally:
        rulebook.stop()
        shutil.rmtree(project, ignore_errors=True)
    print('startup    %.2f s' % startup)
    print('dispatch   min %.2f s, median %.2f s, max %.2f s (%d runs)'
          % (min(latencies), statistics.median(latencies), max(latencies), len(latencies)))
    print('storm      %d POSTs accepted in %.2f s (%.0f/s), %d run(s) launched'
          % (args.storm, accepted, args.storm / accepted, storm_runs))


if __name__ == '__main__':
    main()
