#!/usr/bin/env python
"""The closed loop, measured per alert (issue 18): fault -> firing -> dispatched -> remediation
done -> resolved, in a lab of its own (lab/lab.sh up on free ports, real Prometheus,
Alertmanager, ansible-rulebook, pm2, Redis).

  APIServiceDown  the sample app stopped with pm2; the catalog marks its restart safe, so the
                  rulebook runs api_down.yml --tags remediate, which restarts it
  QueueBacklog    100 jobs pushed onto the email queue's wait list (25 -> 125 waiting); not
                  marked safe, so the runbook diagnoses only, and the bench then drains the 100
                  jobs as a worker would (remediation done = the diagnosis report written)

Stages, in seconds after the fault: firing (Prometheus /api/v1/alerts says firing), dispatched
(playbooks/alert_runbook.yml started, its report's `started`, 1 s resolution), remediation done
(the runbook's report written), resolved (Prometheus no longer has the alert and Alertmanager no
longer holds it). Lab intervals: scrape and rule evaluation 5 s, Alertmanager group_wait 5 s,
group_interval 10 s; the two alerts' `for:` set to --for seconds in the lab's copy of the rules
(shipped: 1m and 2m). A fresh ansible-rulebook per run (its 10-minute cooldown would swallow a
repeat). The anchor printed beside the figures: the wall time of a one-task ansible-playbook on
this machine in the same run (every stage after firing pays a few of those).

    .venv/bin/python bench/alert_loop.py [--repeat 3] [--for 10] [--alerts APIServiceDown,QueueBacklog]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from alert_loop_harness import AlertLoop  # noqa: E402  pylint: disable=import-error
from conftest import Lab, _env, ansible_bin  # noqa: E402  pylint: disable=import-error

STAGES = ('firing', 'dispatched', 'remediation_done', 'resolved')
BACKLOG = ['oncall-bench-%d' % i for i in range(100)]


def load():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def anchor():
    """Wall seconds of a one-task ansible-playbook (localhost, debug)."""
    with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as f:
        f.write('- hosts: localhost\n  connection: local\n  gather_facts: false\n'
                '  tasks:\n    - ansible.builtin.debug: {msg: anchor}\n')
    try:
        started = time.time()
        subprocess.run([ansible_bin('ansible-playbook'), '-i', 'localhost,', f.name], cwd=ROOT, env=_env(),
                       capture_output=True, check=True, timeout=600)
        return time.time() - started
    finally:
        os.unlink(f.name)


def one(lab, alertname, for_seconds):
    loop = AlertLoop(lab, for_seconds=for_seconds)
    try:
        if alertname == 'APIServiceDown':
            try:
                return loop.run(alertname, lambda: loop.pm2('stop', 'app'), timeout=600)
            finally:
                if loop.app_status() != ['online']:
                    loop.pm2('restart', 'app')
        client = lab.redis()
        try:
            return loop.run(alertname, lambda: client.lpush('bull:email:wait', *BACKLOG),
                            heal=lambda: [client.lrem('bull:email:wait', 1, job) for job in BACKLOG], timeout=600)
        finally:
            for job in BACKLOG:
                client.lrem('bull:email:wait', 1, job)
            client.close()
    finally:
        loop.stop()


def spread(values):
    return '%6.1f [%5.1f-%5.1f]' % (statistics.median(values), min(values), max(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--for', dest='for_seconds', type=int, default=10)
    parser.add_argument('--alerts', default='APIServiceDown,QueueBacklog')
    args = parser.parse_args()
    alerts = [a for a in args.alerts.split(',') if a]

    lab = Lab()
    print('lab up (load %s) ...' % load(), flush=True)
    up = lab.sh('up')
    if up.returncode:
        raise SystemExit(up.stdout + up.stderr)
    results, anchors = {a: [] for a in alerts}, []
    try:
        for i in range(args.repeat):
            anchors.append((anchor(), load()))
            for alertname in alerts:
                before = load()
                res = one(lab, alertname, args.for_seconds)
                res['load'] = '%s -> %s' % (before, load())
                results[alertname].append(res)
                print('run %d %-15s remediate=%-5s verdict=%-8s %s   load %s' % (
                    i + 1, alertname, res['remediate'], res['verdict'],
                    '  '.join('%s %.1f' % (s, res[s]) for s in STAGES), res['load']), flush=True)
    finally:
        lab.sh('down', '--purge')
        shutil.rmtree(lab.dir, ignore_errors=True)

    print()
    print('Lab: scrape/eval 5s, group_wait 5s, group_interval 10s, for: %ds (looped alerts); %d runs each; '
          'seconds after the fault, median [min-max]' % (args.for_seconds, args.repeat))
    print('%-15s %-9s %-19s %-19s %-19s %-19s' % ('alert', 'remediate', 'firing', 'dispatched', 'remediation done',
                                                  'resolved'))
    for alertname, runs in results.items():
        print('%-15s %-9s %s' % (alertname, runs[0]['remediate'], '  '.join(spread([r[s] for r in runs]) for s in STAGES)))
    print('%-15s %-9s %s' % ('anchor', '', 'one-task ansible-playbook %s s (loads %s)' % (
        spread([a[0] for a in anchors]), '; '.join(a[1] for a in anchors))))


if __name__ == '__main__':
    main()
