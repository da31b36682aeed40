# -*- coding: utf-8 -*-
"""Monitoring in the lab (issue 18) against the real Prometheus and Alertmanager that
`lab/lab.sh up` starts: every target is scraped, the sample app's /metrics carries the queue
counts the collection reads, and roles/monitoring (playbooks/monitoring_install.yml) installs the
rules and the route into servers that have neither: --check changes nothing, the run reloads both
servers and Prometheus then runs the rules, a second run changes nothing, and an Alertmanager
configuration that is not one is refused with one sentence and left as it was."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import yaml

from helpers import recap

BASE_AM = """route:
  receiver: team-pager
  routes:
    - receiver: team-pager
      matchers: ['severity="critical"']
receivers:
  - name: team-pager
"""


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())


def post(url):
    req = urllib.request.Request(url, data=b'', method='POST')
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def wait_for(what, predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('gave up waiting for ' + what)
        time.sleep(0.5)


def rule_files(lab):
    return {g['file'] for g in get(lab.prom_url + '/api/v1/rules')['data']['groups']}


def paths(lab):
    d = lab.env['LAB_DIR']
    return os.path.join(d, 'prometheus', 'rules', 'oncall.rules.yml'), os.path.join(d, 'alertmanager', 'alertmanager.yml')


def test_prometheus_scrapes_every_lab_target_and_the_queue_counts(lab):
    def all_up():
        targets = get(lab.prom_url + '/api/v1/targets')['data']['activeTargets']
        jobs = {t['labels']['job']: t['health'] for t in targets}
        return jobs if set(jobs) == {'prometheus', 'alertmanager', 'app', 'node', 'redis', 'postgres'} \
            and set(jobs.values()) == {'up'} else None
    wait_for('every target up', all_up)

    # the seeded queue email: 25 waiting (bull), as lab/node/seed.js made it and redis_queue_info reads it.
    # The lab is the worker's, reseeded for this test: a sample scraped before the reseed (after
    # an earlier test emptied the queue) can still be the latest, so wait for the next scrape.
    seen = []

    def waiting():
        q = urllib.request.quote('queue_jobs_waiting{job="app",queue="email"}')
        res = get(lab.prom_url + '/api/v1/query?query=' + q)['data']['result']
        seen.append(res[0]['value'][1] if res else None)
        return seen[-1] == '25'
    try:
        wait_for('queue_jobs_waiting of email to be 25', waiting)
    except AssertionError:
        raise AssertionError('queue_jobs_waiting of email stayed %s, not 25' % seen[-1])
    for name in ('pg_up', 'redis_up'):
        res = get(lab.prom_url + '/api/v1/query?query=' + name)['data']['result']
        assert [r['value'][1] for r in res] == ['1'], name


def test_the_role_installs_rules_and_route_idempotently_and_check_mode_changes_nothing(lab):
    rules_path, am_path = paths(lab)
    # servers without the collection's rules or route (what lab.sh installed is taken away)
    os.remove(rules_path)
    with open(am_path, 'w') as f:
        f.write(BASE_AM)
    assert post(lab.prom_url + '/-/reload') == 200
    assert post(lab.am_url + '/-/reload') == 200
    assert rules_path not in rule_files(lab)

    check = lab.playbook('monitoring_install.yml', check=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert recap(check)['changed'] >= 2, check.stdout
    assert not os.path.exists(rules_path)
    with open(am_path) as f:
        assert f.read() == BASE_AM
    assert rules_path not in rule_files(lab)
    assert 'oncall-runbooks' not in get(lab.am_url + '/api/v2/status')['config']['original']

    run = lab.playbook('monitoring_install.yml')
    assert run.returncode == 0, run.stdout + run.stderr
    assert recap(run)['changed'] == 4, run.stdout  # two files, two reloads
    groups = [g for g in get(lab.prom_url + '/api/v1/rules')['data']['groups'] if g['file'] == rules_path]
    alerts = {r['name'] for g in groups for r in g['rules']}
    assert {'APIServiceDown', 'HighErrorRate', 'HighLatencyP99', 'DatabaseConnectionPoolExhausted',
            'HighPaymentFailureRate', 'QueueBacklog', 'HighCPUUsage', 'SSLCertificateExpiringSoon'} <= alerts
    assert all(r['health'] != 'err' for g in groups for r in g['rules'])
    running = yaml.safe_load(get(lab.am_url + '/api/v2/status')['config']['original'])
    first = running['route']['routes'][0]
    assert first['receiver'] == 'oncall-runbooks' and first['matchers'] == ['oncall="runbooks"'] and first['continue']
    # the operator's own route and receiver are kept, after the collection's
    assert running['route']['receiver'] == 'team-pager'
    assert running['route']['routes'][1]['receiver'] == 'team-pager'
    hook = [r for r in running['receivers'] if r['name'] == 'oncall-runbooks'][0]['webhook_configs'][0]
    assert hook['url'] == 'http://127.0.0.1:%s/alerts' % open(os.path.join(lab.env['LAB_DIR'], 'eda.port')).read().strip()
    assert hook['http_config']['authorization']['credentials_file'] == os.path.join(lab.env['LAB_DIR'], 'eda.token')
    # the token itself is in no output (the role only names its file)
    token = open(os.path.join(lab.env['LAB_DIR'], 'eda.token')).read().strip()
    assert len(token) == 64 and token not in run.stdout + run.stderr

    again = lab.playbook('monitoring_install.yml')
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again)['changed'] == 0, again.stdout
    check = lab.playbook('monitoring_install.yml', check=True)
    assert check.returncode == 0 and recap(check)['changed'] == 0, check.stdout


def test_an_alertmanager_file_that_is_not_a_configuration_is_refused_and_kept(lab):
    am_path = paths(lab)[1]
    for text in ('just a string\n', 'receivers: []\n', 'route: {receiver: nobody}\nreceivers: []\n'):
        with open(am_path, 'w') as f:
            f.write(text)
        run = lab.playbook('monitoring_install.yml')
        assert run.returncode != 0, run.stdout
        with open(am_path) as f:
            assert f.read() == text
        # one sentence: the option or the validator that refused it
        assert ('has no top-level route mapping' in run.stdout) or ('failed to validate' in run.stdout), run.stdout
    # a later run on a valid file works again (the lab is left as the role makes it)
    with open(am_path, 'w') as f:
        f.write(BASE_AM)
    run = lab.playbook('monitoring_install.yml')
    assert run.returncode == 0, run.stdout + run.stderr
