# -*- coding: utf-8 -*-
"""The real ansible-rulebook running extensions/eda/rulebooks/alerts.yml, and Alertmanager
notifications POSTed to it over HTTP."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from helpers import ROOT, _env, ansible_bin, free_port, stop_process


def notification(alertname, status='firing', fingerprint='f0', annotations=None, **labels):
    """An Alertmanager webhook body (version 4) with one alert."""
    return {
        'version': '4', 'groupKey': '{}:{alertname="%s"}' % alertname, 'status': status,
        'receiver': 'oncall-runbooks', 'externalURL': 'http://alertmanager.invalid',
        'groupLabels': {'alertname': alertname},
        'commonLabels': {'alertname': alertname, 'severity': 'critical'},
        'commonAnnotations': {'summary': '%s (test)' % alertname},
        'alerts': [{'status': status, 'labels': dict(labels, alertname=alertname),
                    'annotations': dict(annotations or {}), 'startsAt': '2026-11-25T00:00:00Z', 'endsAt': '0001-01-01T00:00:00Z',
                    'generatorURL': 'http://prometheus.invalid/graph', 'fingerprint': fingerprint}],
    }


class Rulebook(object):
    def __init__(self, env, token='eda-test-token', project_dir=ROOT, port=None, host=None):
        self.port = port or free_port()
        self.host = host or '127.0.0.1'
        self.token = token
        self.log = tempfile.NamedTemporaryFile(prefix='oncall-eda-', suffix='.log', delete=False)
        self.env = dict(_env(), **env)
        self.env['PATH'] = _env()['PATH']   # the virtualenv's bin first: ansible-galaxy, ansible-playbook
        self.env.update(ONCALL_EDA_PORT=str(self.port), ONCALL_EDA_TOKEN=token, ONCALL_PROJECT_DIR=project_dir,
                        ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
        self.env.pop('ANSIBLE_STDOUT_CALLBACK', None)
        env_vars = 'ONCALL_EDA_PORT,ONCALL_EDA_TOKEN'
        if host:  # else the rulebook's default, 127.0.0.1
            self.env['ONCALL_EDA_HOST'] = host
            env_vars += ',ONCALL_EDA_HOST'
        self.proc = subprocess.Popen(
            [ansible_bin('ansible-rulebook'),
             '-r', 'extensions/eda/rulebooks/alerts.yml', '-i', 'extensions/eda/inventory.yml',
             '--env-vars', env_vars, '-v'],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                said = self.output()
                os.unlink(self.log.name)
                raise RuntimeError('ansible-rulebook exited (rc %s): %s' % (self.proc.returncode, said))
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError('ansible-rulebook did not listen on %d: %s' % (self.port, self.output()))

    def output(self):
        with open(self.log.name) as f:
            return f.read()

    def post(self, body, token=None, raw=None, authorization=None):
        """POST a notification (or raw bytes); (status, JSON answer or the text of a non-JSON one)."""
        data = raw if raw is not None else json.dumps(body).encode()
        auth = authorization if authorization is not None else 'Bearer ' + (token or self.token)
        req = urllib.request.Request('http://%s:%d/alerts' % (self.host, self.port), data=data, method='POST',
                                     headers={'Content-Type': 'application/json', 'Authorization': auth})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, text.decode('utf-8', 'replace')

    def stop(self):
        stop_process(self.proc, 20)
        os.unlink(self.log.name)


def make_project(root, catalog, playbooks):
    """A project of its own for playbooks/alert_runbook.yml (ONCALL_PROJECT_DIR): awx/catalog.yml,
    the given playbooks, an ansible.cfg that finds oncall.runbooks in this checkout, and reports/."""
    import yaml
    for sub in ('awx', 'playbooks', 'reports'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, 'awx', 'catalog.yml'), 'w') as f:
        yaml.safe_dump(catalog, f)
    for name, text in playbooks.items():
        with open(os.path.join(root, 'playbooks', name), 'w') as f:
            f.write(text)
    with open(os.path.join(root, 'ansible.cfg'), 'w') as f:
        f.write('[defaults]\nretry_files_enabled = false\ncollections_path = %s\n'
                % os.path.join(ROOT, '.collections'))
    return os.path.join(root, 'reports')


def reports(report_dir, name):
    """The JSON reports <name>-<stamp>.json in report_dir, oldest first."""
    out = []
    for path in sorted(glob.glob(os.path.join(report_dir, name + '-2*.json'))):
        with open(path) as f:
            out.append(json.load(f))
    return out


def wait_for(predicate, timeout, what, rulebook):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if rulebook.proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError('%s did not happen; ansible-rulebook said:\n%s' % (what, rulebook.output()[-6000:]))
