# -*- coding: utf-8 -*-
"""playbooks/runbooks/ssl_certificate_expiry.yml against a real nginx serving certificate files:
--check changes nothing, diagnosis alone changes nothing, remediation renews what is inside the
threshold and reloads nginx (which then serves the new certificate), and a second run changes
nothing.
"""

from __future__ import annotations

import glob
import json
import os
import re

import pytest

from helpers.cert import Nginx, digest, make_cert
from helpers import recap as conftest_recap, run_playbook

PLAYBOOK = 'playbooks/runbooks/ssl_certificate_expiry.yml'

INVENTORY = '''all:
  children:
    app_servers:
      hosts:
        certhost:
  hosts:
    certhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
'''


def recap(proc):
    """The play recap for certhost (conftest's: a job failed by its verdict is verdict_failed,
    not counted in failed)."""
    return conftest_recap(proc, host='certhost')


@pytest.fixture()
def setup(tmp_path):
    nginx = Nginx(sans=['app.oncall.test'], days=5)
    far_crt, far_key = make_cert(str(tmp_path), 'far', ['far.oncall.test'], 200)
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(INVENTORY)
    extra = {
        'oncall_report_dir': str(tmp_path / 'reports'),
        'oncall_nginx_reload_command': nginx.reload_command,
        'oncall_certificates': [
            {'name': 'nginx', 'source': {'type': 'file', 'path': nginx.cert, 'key_path': nginx.key},
             'provider': 'selfsigned', 'verify_chain': False, 'notify': 'nginx',
             'endpoint': {'host': '127.0.0.1', 'port': nginx.tls_port, 'server_name': 'app.oncall.test'}},
            {'name': 'far', 'source': {'type': 'file', 'path': far_crt, 'key_path': far_key},
             'provider': 'selfsigned', 'verify_chain': False, 'notify': 'nginx'},
        ],
    }
    yield nginx, str(inventory), extra, (far_crt, far_key)
    nginx.stop()


def state(nginx, far):
    return digest(nginx.cert, nginx.key, *far), sorted(glob.glob(os.path.dirname(nginx.cert) + '/*.bak')), \
        nginx.served().serial_number


def test_ssl_expiry_runbook_check_diagnose_remediate_twice(setup, tmp_path):
    nginx, inventory, extra, far = setup
    before = state(nginx, far)

    # the nginx certificate is critical (5 days left): --check and diagnosis write their report,
    # then fail the job on that verdict (oncall_fail_on critical); no task is broken
    check = run_playbook(PLAYBOOK, extra_vars=extra, inventory=inventory, tags='remediate', check=True, diff=True)
    assert check.returncode != 0 and recap(check)['verdict_failed'] and recap(check)['failed'] == 0, check.stdout[-3000:]
    assert state(nginx, far) == before, '--check changed files or what nginx serves'
    assert 'PRIVATE KEY' not in check.stdout + check.stderr

    diagnose = run_playbook(PLAYBOOK, extra_vars=extra, inventory=inventory)
    assert diagnose.returncode != 0 and recap(diagnose)['verdict_failed'] and recap(diagnose)['failed'] == 0
    assert recap(diagnose)['changed'] == 0
    assert state(nginx, far) == before
    with open(os.path.join(extra['oncall_report_dir'], 'ssl_certificate_expiry-latest.json')) as f:
        report = json.load(f)
    verdicts = dict((f['object'], f['verdict']) for f in report['findings'])
    assert verdicts == {'certificate nginx': 'critical', 'certificate far': 'ok'}

    # remediation renews, reloads and checks again: the report's verdict is what is there now
    first = run_playbook(PLAYBOOK, extra_vars=extra, inventory=inventory, tags='remediate')
    assert first.returncode == 0, first.stdout[-3000:]
    assert recap(first)['changed'] == 2  # one renewal, one nginx reload
    assert 'Check that nginx now serves each renewed certificate' in first.stdout
    assert re.search(r'ok: \[certhost\] => \(item=nginx\)', first.stdout), first.stdout[-3000:]
    after = state(nginx, far)
    assert after[0][far[0]] == before[0][far[0]] and after[0][far[1]] == before[0][far[1]], 'far cert touched'
    assert after[0][nginx.cert] != before[0][nginx.cert]
    with open(os.path.join(extra['oncall_report_dir'], 'ssl_certificate_expiry-latest.json')) as f:
        report = json.load(f)
    renewed = [e for s in report['steps'] for e in s['results'] if e['applied']]
    assert [e['target'] for e in renewed] == ['nginx']
    assert dict((f['object'], f['verdict']) for f in report['findings']) == {
        'certificate nginx': 'ok', 'certificate far': 'ok'}
    assert report['incident']['fix_applied'] == 'renewed: nginx'
    # nginx was reloaded by the role and serves the new certificate
    from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509
    with open(nginx.cert) as f:
        new_serial = x509.summarize(x509.load_chain(f.read(), 'x'))['serial']
    assert '%X' % nginx.served_after_reload(new_serial).serial_number == new_serial

    second = run_playbook(PLAYBOOK, extra_vars=extra, inventory=inventory, tags='remediate')
    assert second.returncode == 0 and recap(second)['changed'] == 0, second.stdout[-3000:]
    assert state(nginx, far)[0] == after[0]


def test_ssl_expiry_runbook_on_the_lab(lab):
    """The lab inventory's oncall_certificates: the seeded 10-day self-signed certificate is
    renewed by remediation (not by diagnosis or --check), and a second run changes nothing."""
    certs = os.path.join(lab.env['LAB_DIR'], 'certs')
    files = [os.path.join(certs, 'lab.crt'), os.path.join(certs, 'lab.key')]
    before = digest(*files)
    check = lab.playbook('runbooks/ssl_certificate_expiry.yml', tags='remediate', check=True)
    assert check.returncode == 0 and digest(*files) == before, check.stdout[-3000:]
    diagnose = lab.playbook('runbooks/ssl_certificate_expiry.yml')
    assert diagnose.returncode == 0 and digest(*files) == before
    with open(os.path.join(lab.report_dir, 'ssl_certificate_expiry-latest.json')) as f:
        report = json.load(f)
    # 10 days left: above the lab's alert thresholds (7/3 days) but inside renew_before 30, so
    # not "ok, nothing to do" (issue 14 item 7): a warning whose finding says what to run
    [finding] = report['findings']
    assert (finding['object'], finding['verdict']) == ('certificate lab-tls', 'warning'), finding
    assert ('; inside the renewal threshold: run ansible-playbook playbooks/runbooks/ssl_certificate_expiry.yml'
            ' --tags remediate' in finding['figure']), finding
    assert finding['threshold'] == 'warn < 7 d, critical < 3 d, renew < 30 d'
    assert report['incident']['root_cause'] == 'certificate(s) inside the renewal threshold: lab-tls'
    daily = lab.playbook('daily_health_check.yml')
    with open(os.path.join(lab.report_dir, 'daily_health_check-latest.json')) as f:
        objects = dict((f['object'], f) for f in json.load(f)['findings'])
    assert objects['certificate lab-tls']['verdict'] == 'warning', daily.stdout[-2000:]
    assert 'inside the renewal threshold: run ' in objects['certificate lab-tls']['figure']
    first = lab.playbook('runbooks/ssl_certificate_expiry.yml', tags='remediate')
    assert first.returncode == 0 and re.search(r'lab\s*:\s*ok=\d+\s+changed=1\s', first.stdout), first.stdout[-3000:]
    assert digest(*files) != before
    with open(os.path.join(lab.report_dir, 'ssl_certificate_expiry-latest.json')) as f:
        assert json.load(f)['incident']['fix_applied'] == 'renewed: lab-tls'
    second = lab.playbook('runbooks/ssl_certificate_expiry.yml', tags='remediate')
    assert second.returncode == 0 and re.search(r'lab\s*:\s*ok=\d+\s+changed=0\s', second.stdout), second.stdout[-3000:]
    # the daily health check reads the certificate too (the lab's alert thresholds: 7/3 days)
    daily = lab.playbook('daily_health_check.yml')
    with open(os.path.join(lab.report_dir, 'daily_health_check-latest.json')) as f:
        objects = dict((f['object'], f['verdict']) for f in json.load(f)['findings'])
    assert objects.get('certificate lab-tls') == 'ok', daily.stdout[-2000:]


def test_a_reload_that_does_not_take_fails_then_the_next_run_reloads(setup):
    """If nginx keeps serving the old certificate (here: a reload command that does nothing),
    the role's served-certificate check fails the run instead of reporting success; the next
    run has nothing to renew but sees the deployed certificate is not served, and reloads."""
    nginx, inventory, extra, dummy = setup
    old_serial = nginx.served().serial_number
    broken = run_playbook(PLAYBOOK, extra_vars=dict(extra, oncall_nginx_reload_command='true'),
                          inventory=inventory, tags='remediate')
    assert broken.returncode != 0
    assert re.search(r'FAILED - RETRYING: .*Check that nginx now serves', broken.stdout), broken.stdout[-3000:]
    assert nginx.served().serial_number == old_serial

    check = run_playbook(PLAYBOOK, extra_vars=extra, inventory=inventory, tags='remediate', check=True)
    assert check.returncode == 0 and nginx.served().serial_number == old_serial, check.stdout[-3000:]

    fixed = run_playbook(PLAYBOOK, extra_vars=extra, inventory=inventory, tags='remediate')
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert recap(fixed)['changed'] == 1  # no renewal, only the reload
    from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509
    with open(nginx.cert) as f:
        deployed = x509.summarize(x509.load_chain(f.read(), 'x'))['serial']
    assert '%X' % nginx.served_after_reload(deployed).serial_number == deployed != '%X' % old_serial
    again = run_playbook(PLAYBOOK, extra_vars=extra, inventory=inventory, tags='remediate')
    assert again.returncode == 0 and recap(again)['changed'] == 0
