# -*- coding: utf-8 -*-
"""The closed loop in the lab (issue 18), shared by tests/integration/test_alert_loop.py and
bench/alert_loop.py: the lab's real Prometheus and Alertmanager (lab/lab.sh up), the real
ansible-rulebook listening where the lab's Alertmanager delivers (LAB_DIR/eda.port, the bearer
token of LAB_DIR/eda.token), a fault injected for real, and the times of each stage:

  fault -> firing (Prometheus /api/v1/alerts) -> dispatched (playbooks/alert_runbook.yml started,
  its dispatch report's `started`) -> remediation done (the runbook's report written) ->
  resolved (Prometheus no longer has the alert, and Alertmanager no longer holds it)

run() drives one loop; run_together() injects several faults at once and follows all their loops
in the same polling rounds (the test drives APIServiceDown and QueueBacklog that way, so that CI
waits once). app_stopped() and queue_backlog() are the faults the test and the bench inject.

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

from helpers import ROOT
from helpers.eda import Rulebook

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


def wait_quiet(lab, alertnames=LOOPED, timeout=90):
    """Wait until Prometheus has none of alertnames, pending or firing, with the app scraped up:
    `lab/lab.sh seed` restarts the sample app, and a scrape in that moment makes APIServiceDown
    pending (with the shipped `for:` it never fires, and it goes once the app is scraped up)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        names = {a['labels'].get('alertname') for a in get(lab.prom_url + '/api/v1/alerts')['data']['alerts']}
        up = get(lab.prom_url + '/api/v1/query?' + urllib.parse.urlencode({'query': 'up{job="app"}'}))['data']['result']
        if not names.intersection(alertnames) and [r['value'][1] for r in up] == ['1']:
            return
        time.sleep(1)
    raise AssertionError('Prometheus still has %s or the app not up after %ds' % (sorted(names.intersection(alertnames)), timeout))


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

    def app_stopped(self):
        """APIServiceDown's loop for run()/run_together(): the sample app stopped under pm2; the
        catalog marks the restart safe, so the runbook heals it (no heal() here)."""
        return ('APIServiceDown', lambda: self.pm2('stop', 'app'), None)

    def restart_app(self):
        """Clean-up after app_stopped(): the app back online if a loop left it down."""
        if self.app_status() != ['online']:
            self.pm2('restart', 'app')

    def queue_backlog(self, queue='email', jobs=100):
        """QueueBacklog's loop for run()/run_together(): `jobs` job ids pushed onto the Bull
        queue's wait list. The catalog does not mark its remediation safe, so the runbook only
        diagnoses; heal() then removes those ids again, as the workers a person scales would
        drain them. heal() is idempotent: call it again as the clean-up."""
        key = 'bull:%s:wait' % queue
        ids = ['oncall-loop-%d' % i for i in range(jobs)]

        def push():
            client = self.lab.redis()
            try:
                client.lpush(key, *ids)
            finally:
                client.close()

        def drain():
            client = self.lab.redis()
            try:
                for job in ids:
                    client.lrem(key, 1, job)
            finally:
                client.close()
        return ('QueueBacklog', push, drain)

    # ---- what the servers say -------------------------------------------------------------
    def prom_states(self):
        """{alertname: 'firing' or 'pending'} of every alert Prometheus has (one request)."""
        states = {}
        for a in get(self.lab.prom_url + '/api/v1/alerts')['data']['alerts']:
            name = a['labels'].get('alertname')
            if states.get(name) != 'firing':
                states[name] = a['state']
        return states

    def prom_state(self, alertname):
        return self.prom_states().get(alertname)

    def am_alertnames(self):
        return {a['labels'].get('alertname') for a in get(self.lab.am_url + '/api/v2/alerts')}

    def am_holds(self, alertname):
        return alertname in self.am_alertnames()

    def reports(self, name):
        out = []
        for path in glob.glob(os.path.join(self.lab.report_dir, name + '-2*.json')):
            with open(path) as f:
                out.append(dict(json.load(f), path=path, mtime=os.path.getmtime(path)))
        # in the order they were written (a second report of the same second is <stamp>-2.json,
        # which sorts before <stamp>.json by name)
        return sorted(out, key=lambda r: (r['mtime'], r['path']))

    def dispatches(self, alertname, reports=None):
        return [r for r in (self.reports('alert_runbook') if reports is None else reports)
                if r['tables'] and r['tables'][0]['rows'] and r['tables'][0]['rows'][0].get('alertname') == alertname]

    def run(self, alertname, fault, heal=None, timeout=300):
        """Inject fault(), then time each stage of alertname's loop. heal(): what stands in for
        the remediation when the alert's runbook is not marked safe (a worker draining the queue),
        called once the runbook reported. Returns the stage times (seconds after the fault) and
        the dispatch and runbook reports."""
        return self.run_together([(alertname, fault, heal)], timeout=timeout)[alertname]

    def run_together(self, loops, timeout=300, step=0.5):
        """Several loops at once in this lab: loops is a list of (alertname, fault, heal) as
        run() takes them. Every fault is injected (in the list's order, the clock starting before
        the first), then all the loops are followed together, one round of requests to Prometheus,
        Alertmanager and the report directory every `step` seconds, each alert through its own
        stages (firing, dispatched with its runbook's report, heal() if any, resolved). Returns
        {alertname: the result run() returns}, every time in seconds after the first fault."""
        names = [name for name, _fault, _heal in loops]
        assert len(set(names)) == len(names), 'one loop per alert: %s' % names
        heals = {name: heal for name, _fault, heal in loops}
        before = {name: len(self.dispatches(name)) for name in names}
        seen = {name: {} for name in names}   # stage -> time, and the reports once dispatched
        t0 = time.time()
        for _name, fault, _heal in loops:
            fault()
        deadline = t0 + timeout
        while time.time() < deadline:
            states, held, reports = self.prom_states(), self.am_alertnames(), self.reports('alert_runbook')
            now = time.time()
            for name in names:
                s = seen[name]
                if 'firing' not in s and states.get(name) == 'firing':
                    s['firing'] = now
                if 'firing' in s and 'dispatch' not in s:
                    new = self.dispatches(name, reports)[before[name]:]
                    if new:
                        s['dispatch'] = new[0]
                        row = new[0]['tables'][0]['rows'][0]
                        with open(row['runbook_report']) as f:
                            s['runbook'] = json.load(f)
                        s['dispatched'] = iso_seconds(new[0]['started'])
                        s['remediation_done'] = os.path.getmtime(row['runbook_report'])
                        if heals[name]:
                            heals[name]()
                        continue   # resolved is judged on the next round, after heal()
                if 'dispatch' in s and 'resolved' not in s and name not in states and name not in held:
                    s['resolved'] = now
            if all('resolved' in seen[name] for name in names) or self.rulebook.proc.poll() is not None:
                break
            time.sleep(step)
        missing = ['%s (reached: %s)' % (name, ', '.join(k for k in ('firing', 'dispatched', 'resolved') if k in seen[name])
                                         or 'nothing')
                   for name in names if 'resolved' not in seen[name]]
        if missing:
            rc = self.rulebook.proc.poll()
            raise AssertionError('not every loop ended %s: %s; ansible-rulebook said:\n%s'
                                 % ('within %ds' % timeout if rc is None else 'before ansible-rulebook exited (rc %s)' % rc,
                                    '; '.join(missing), self.rulebook.output()[-4000:]))
        out = {}
        for name in names:
            s = seen[name]
            row = s['dispatch']['tables'][0]['rows'][0]
            out[name] = {'alert': name, 'remediate': row['remediate'], 'verdict': s['runbook']['verdict'],
                         'firing': s['firing'] - t0, 'dispatched': max(s['dispatched'] - t0, 0.0),
                         'remediation_done': s['remediation_done'] - t0, 'resolved': s['resolved'] - t0,
                         'dispatch_report': s['dispatch'], 'runbook_report': s['runbook']}
        return out
