# -*- coding: utf-8 -*-
"""The closed loop in the lab (issue 18), shared by tests/integration/test_alert_loop.py and
bench/alert_loop.py: the lab's real Prometheus and Alertmanager (lab/lab.sh up), the real
ansible-rulebook listening where the lab's Alertmanager delivers (LAB_DIR/eda.port, the bearer
token of LAB_DIR/eda.token), a fault injected for real, and the times of each stage:

  fault -> firing (Prometheus /api/v1/alerts) -> dispatched (playbooks/alert_runbook.yml started,
  its dispatch report's `started`) -> remediation done (the runbook's report written) ->
  resolved (Prometheus no longer has the alert, and Alertmanager no longer holds it)

Lab intervals: scrape and rule evaluation every 5 s, Alertmanager group_wait 5 s and
group_interval 10 s (lab/lab.sh). The loop shortens `for:` of the alerts it drives (LOOPED) in the lab's copy of
the rules (LAB_DIR/prometheus/rules/oncall.rules.yml, then POST /-/reload) to `for_seconds`, and
puts the shipped file back when it ends.
"""

from __future__ import annotations

import calendar
import glob
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import yaml

from conftest import ROOT
from eda_harness import Rulebook

PM2 = os.path.join(ROOT, 'lab', 'node', 'node_modules', '.bin', 'pm2')
# the alerts whose loop is driven here (their `for:` is shortened in the lab's copy)
LOOPED = ('APIServiceDown', 'QueueBacklog')
SHIPPED_RULES = os.path.join(ROOT, 'extensions', 'prometheus', 'rules', 'oncall.rules.yml')


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read().decode())


def post(url, body=b''):
    req = urllib.request.Request(url, data=body, method='POST')
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def iso_seconds(stamp):
    return calendar.timegm(time.strptime(stamp, '%Y-%m-%dT%H:%M:%SZ'))


class AlertLoop(object):
    def __init__(self, lab, for_seconds=10):
        self.lab = lab
        self.lab_dir = lab.env['LAB_DIR']
        self.rules = os.path.join(self.lab_dir, 'prometheus', 'rules', 'oncall.rules.yml')
        self.for_seconds = for_seconds
        with open(os.path.join(self.lab_dir, 'eda.port')) as f:
            port = int(f.read().strip())
        with open(os.path.join(self.lab_dir, 'eda.token')) as f:
            token = f.read().strip()
        self.shorten_for(for_seconds)
        self.rulebook = Rulebook(lab.env, token=token, port=port)

    # ---- the lab's rules ------------------------------------------------------------------
    def shorten_for(self, seconds):
        """The shipped rules with `for:` of the looped alerts (LOOPED) set to seconds; every
        other rule as shipped, so that nothing else fires sooner than it would."""
        with open(SHIPPED_RULES) as f:
            rules = yaml.safe_load(f)
        for group in rules['groups']:
            for rule in group['rules']:
                if rule.get('alert') in LOOPED:
                    rule['for'] = '%ds' % seconds
        with open(self.rules, 'w') as f:
            yaml.safe_dump(rules, f, sort_keys=False)
        self._reload(seconds)

    def _reload(self, seconds):
        assert post(self.lab.prom_url + '/-/reload') == 200
        deadline = time.time() + 60
        while time.time() < deadline:
            durations = {r['name']: r.get('duration') for g in get(self.lab.prom_url + '/api/v1/rules')['data']['groups']
                         for r in g['rules'] if r.get('type') == 'alerting'}
            if durations.get('APIServiceDown') == seconds:
                return
            time.sleep(0.5)
        raise AssertionError('Prometheus did not load the rules with for: %ds' % seconds)

    def stop(self):
        try:
            self.rulebook.stop()
        finally:
            shutil.copyfile(SHIPPED_RULES, self.rules)
            post(self.lab.prom_url + '/-/reload')

    # ---- faults ---------------------------------------------------------------------------
    def pm2(self, *args):
        proc = subprocess.run([PM2] + list(args), env=dict(self.lab.env, PM2_HOME=os.path.join(self.lab_dir, 'pm2')),
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def app_status(self):
        out = self.pm2('jlist')
        return [p['pm2_env']['status'] for p in json.loads(out[out.find('['):]) if p['name'] == 'app']

    # ---- what the servers say -------------------------------------------------------------
    def prom_state(self, alertname):
        states = [a['state'] for a in get(self.lab.prom_url + '/api/v1/alerts')['data']['alerts']
                  if a['labels'].get('alertname') == alertname]
        return 'firing' if 'firing' in states else (states[0] if states else None)

    def am_holds(self, alertname):
        return any(a['labels'].get('alertname') == alertname for a in get(self.lab.am_url + '/api/v2/alerts'))

    def reports(self, name):
        out = []
        for path in sorted(glob.glob(os.path.join(self.lab.report_dir, name + '-2*.json'))):
            with open(path) as f:
                out.append(dict(json.load(f), path=path, mtime=os.path.getmtime(path)))
        return out

    def dispatches(self, alertname):
        return [r for r in self.reports('alert_runbook') if r['tables'] and r['tables'][0]['rows']
                and r['tables'][0]['rows'][0].get('alertname') == alertname]

    def wait(self, what, predicate, timeout=300, step=0.5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return time.time(), value
            if self.rulebook.proc.poll() is not None:
                break
            time.sleep(step)
        raise AssertionError('%s did not happen within %ds; ansible-rulebook said:\n%s'
                             % (what, timeout, self.rulebook.output()[-4000:]))

    def run(self, alertname, fault, heal=None, timeout=300):
        """Inject fault(), then time each stage of alertname's loop. heal(): what stands in for
        the remediation when the alert's runbook is not marked safe (a worker draining the queue),
        called once the runbook reported. Returns the stage times (seconds after the fault) and
        the dispatch and runbook reports."""
        before = len(self.dispatches(alertname))
        t0 = time.time()
        fault()
        t_firing = self.wait(alertname + ' firing', lambda: self.prom_state(alertname) == 'firing', timeout)[0]
        dispatch = self.wait(alertname + ' dispatched and its runbook done',
                             lambda: self.dispatches(alertname)[before:], timeout)[1][0]
        row = dispatch['tables'][0]['rows'][0]
        with open(row['runbook_report']) as f:
            runbook = json.load(f)
        t_dispatched = iso_seconds(dispatch['started'])
        t_remediated = os.path.getmtime(row['runbook_report'])
        if heal:
            heal()
        t_resolved = self.wait(alertname + ' resolved', lambda: self.prom_state(alertname) is None
                               and not self.am_holds(alertname), timeout)[0]
        return {'alert': alertname, 'remediate': row['remediate'], 'verdict': runbook['verdict'],
                'firing': t_firing - t0, 'dispatched': max(t_dispatched - t0, 0.0),
                'remediation_done': t_remediated - t0, 'resolved': t_resolved - t0,
                'dispatch_report': dispatch, 'runbook_report': runbook}
