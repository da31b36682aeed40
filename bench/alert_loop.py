#!/usr/bin/env python
"""The closed loop, measured per alert (issue 18): fault -> firing -> dispatched -> remediation
done -> resolved, in a lab of its own (lab/lab.sh up on free ports, real Prometheus,
Alertmanager, ansible-rulebook, pm2, Redis).

  APIServiceDown  the sample app stopped with pm2; the catalog marks its restart safe, so the
                  rulebook runs api_down.yml --tags remediate, which restarts it
  QueueBacklog    100 jobs pushed onto the email queue's wait list (25 -> 125 waiting); not
                  marked safe, so the runbook diagnoses only, and the bench then drains the 100
                  jobs as a worker would (remediation done = the diagnosis report written)

The faults are AlertLoop.app_stopped() and AlertLoop.queue_backlog() (tests/helpers/alert_loop.py).
One loop at a time by default; --together injects them at once and follows them together
(AlertLoop.run_together, as tests/integration/test_alert_loop.py does): the queue metrics come
from the app's /metrics, so QueueBacklog then fires only after the app is restarted.

Stages, in seconds after the fault: firing (Prometheus /api/v1/alerts says firing), dispatched
(playbooks/alert_runbook.yml started, its report's `started`, 1 s resolution), remediation done
(the runbook's report written), resolved (Prometheus no longer has the alert and Alertmanager no
longer holds it). Lab intervals: scrape and rule evaluation 5 s, Alertmanager group_wait 5 s,
group_interval 10 s; the two alerts' `for:` set to --for seconds in the lab's copy of the rules
(shipped: 1m and 2m). A fresh ansible-rulebook per run (its 10-minute cooldown would swallow a
repeat). The anchor printed beside the figures: the wall time of a one-task ansible-playbook on
this machine in the same run (every stage after firing pays a few of those).

    .venv/bin/python bench/alert_loop.py [--repeat 3] [--for 10] [--alerts APIServiceDown,QueueBacklog] [--together]
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

from helpers.alert_loop import AlertLoop  # noqa: E402  pylint: disable=import-error
from helpers import Lab, _env, ansible_bin  # noqa: E402  pylint: disable=import-error

STAGES = ('firing', 'dispatched', 'remediation_done', 'resolved')


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


def one(lab, alertnames, for_seconds):
    """The loops of alertnames, injected together when there are several (run_together), in a
    fresh AlertLoop: {alertname: result}."""
    loop = AlertLoop(lab, for_seconds=for_seconds)
    faults = {'APIServiceDown': loop.app_stopped, 'QueueBacklog': lambda: loop.queue_backlog('email', 100)}
    loops = [faults[name]() for name in alertnames]
    try:
        return loop.run_together(loops, timeout=600)
    finally:
        loop.restart_app()
        for _name, _fault, heal in loops:
            if heal:
                heal()
        loop.stop()


def spread(values):
    return '%6.1f [%5.1f-%5.1f]' % (statistics.median(values), min(values), max(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--for', dest='for_seconds', type=int, default=10)
    parser.add_argument('--alerts', default='APIServiceDown,QueueBacklog')
    parser.add_argument('--together', action='store_true',
                        help='inject the alerts\' faults at once, as the CI test does (times after the first fault)')
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
            batches = [alerts] if args.together else [[a] for a in alerts]
            for batch in batches:
                before = load()
                got = one(lab, batch, args.for_seconds)
                for alertname in batch:
                    res = got[alertname]
                    res['load'] = '%s -> %s' % (before, load())
                    results[alertname].append(res)
                    print('run %d %-15s remediate=%-5s verdict=%-8s %s   load %s' % (
                        i + 1, alertname, res['remediate'], res['verdict'],
                        '  '.join('%s %.1f' % (s, res[s]) for s in STAGES), res['load']), flush=True)
    finally:
        lab.sh('down', '--purge')
        shutil.rmtree(lab.dir, ignore_errors=True)

    print()
    together = ', faults injected together' if args.together else ''
    print('Lab: scrape/eval 5s, group_wait 5s, group_interval 10s, for: %ds (looped alerts); %d runs each%s; '
          'seconds after the fault, median [min-max]' % (args.for_seconds, args.repeat, together))
    print('%-15s %-9s %-19s %-19s %-19s %-19s' % ('alert', 'remediate', 'firing', 'dispatched', 'remediation done',
                                                  'resolved'))
    for alertname, runs in results.items():
        print('%-15s %-9s %s' % (alertname, runs[0]['remediate'], '  '.join(spread([r[s] for r in runs]) for s in STAGES)))
    print('%-15s %-9s %s' % ('anchor', '', 'one-task ansible-playbook %s s (loads %s)' % (
        spread([a[0] for a in anchors]), '; '.join(a[1] for a in anchors))))


if __name__ == '__main__':
    main()
