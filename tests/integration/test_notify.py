# -*- coding: utf-8 -*-
"""oncall.runbooks.notify and the report role's notification (issue 18), against a recording
HTTP receiver on loopback (tests/helpers/receiver.py) standing in for Slack's incoming webhook
and PagerDuty's Events API v2: the exact JSON bodies, runbook 000's escalation (a remediation
that leaves the verdict not ok pages, a later ok run resolves with the same dedup key), check
mode sends nothing, a receiver that refuses, answers 500 or does not answer is a warning in the
output and the report is still written, and the webhook's secret path and the routing key never
appear in the output, also with -vvv."""

from __future__ import annotations

import glob
import importlib
import json
import os
import socket
import textwrap

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from helpers import recap, run_module, run_playbook
from helpers.receiver import Receiver

HOOK = '/services/T0000/B0000/XsecretHookPath42'
KEY = 'R0utingKeySecret0123456789abcdef'


@pytest.fixture(scope='module')
def receiver():
    server = Receiver()
    yield server
    server.stop()


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def args(receiver, **kw):
    base = {'runbook': 'api_down', 'verdict': 'critical', 'summary': 'app01 /health <!channel> & 502',
            'report': '/srv/reports/api_down-latest.md', 'target': ['app02', 'app01'], 'remediated': True,
            'slack_webhook_url': receiver.url + HOOK, 'pagerduty_routing_key': KEY,
            'pagerduty_url': receiver.url + '/v2/enqueue', 'timeout': 2}
    base.update(kw)
    return base


def test_trigger_exact_payloads_no_secret_in_output_even_vvv(receiver):
    receiver.clear()
    res = run_module('notify', args(receiver), verbosity=3)
    assert not res.failed and res['pagerduty_action'] == 'trigger' and res['escalation_level'] == 3, res.result
    assert res['dedup_key'] == 'oncall.runbooks/api_down/app01,app02'
    assert receiver.at(HOOK) == [{'text': ':red_circle: *api_down*: CRITICAL - app01 /health &lt;!channel&gt; &amp; 502\n'
                                          'Report: /srv/reports/api_down-latest.md\n'
                                          'escalation level 3 (PagerDuty trigger)'}]
    assert receiver.at('/v2/enqueue') == [{
        'routing_key': KEY, 'event_action': 'trigger', 'dedup_key': 'oncall.runbooks/api_down/app01,app02',
        'client': 'oncall.runbooks',
        'payload': {'summary': 'api_down on app01,app02: CRITICAL - app01 /health <!channel> & 502',
                    'source': 'app01,app02', 'severity': 'critical', 'component': 'api_down', 'group': 'app01,app02',
                    'class': 'oncall.runbooks runbook',
                    'custom_details': {'verdict': 'critical', 'summary': 'app01 /health <!channel> & 502',
                                       'report': '/srv/reports/api_down-latest.md', 'escalation_level': 3}}}]
    said = res.stdout + res.stderr
    assert 'XsecretHookPath42' not in said and KEY not in said, said[-3000:]
    assert [m['url'] for m in res['messages']] == [receiver.url + '/********', receiver.url + '/v2/enqueue']


class Exited(BaseException):
    pass


def in_process(receiver, check=False, **kw):
    """The module's main() in this process (cheap), against the same real receiver."""
    def exit_json(self, **kwargs):
        raise Exited(dict(kwargs, failed=False))

    def fail_json(self, msg, **kwargs):
        raise Exited(dict(kwargs, msg=msg, failed=True))

    mod = importlib.import_module('ansible_collections.oncall.runbooks.plugins.modules.notify')
    saved = basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json
    basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = exit_json, fail_json
    try:
        with patch_module_args(dict(args(receiver, **kw), _ansible_check_mode=check)):
            mod.main()
    except Exited as done:
        return done.args[0]
    finally:
        basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = saved
    raise AssertionError('main() returned without exit_json or fail_json')


def test_escalation_levels_check_mode_and_failing_receivers(receiver):
    receiver.clear()
    # level 1: a diagnosis that is not ok tells Slack, pages nobody (page_on remediation_failed)
    one = in_process(receiver, remediated=False)
    assert (one['escalation_level'], one['pagerduty_action']) == (1, 'none') and receiver.at('/v2/enqueue') == []
    assert receiver.at(HOOK)[0]['text'].endswith('escalation level 1')
    # ... unless page_on not_ok
    assert in_process(receiver, remediated=False, page_on='not_ok')['pagerduty_action'] == 'trigger'
    # a later run that is ok resolves the same incident; acknowledge on demand; page_on never: nothing
    ok = in_process(receiver, verdict='ok', summary='every check ok', remediated=True)
    assert (ok['escalation_level'], ok['pagerduty_action']) == (2, 'resolve')
    assert in_process(receiver, pagerduty_action='acknowledge', slack_on='never')['pagerduty_action'] == 'acknowledge'
    assert in_process(receiver, verdict='ok', page_on='never', slack_on='not_ok')['messages'] == []
    assert receiver.at('/v2/enqueue')[1:] == [
        {'routing_key': KEY, 'event_action': 'resolve', 'dedup_key': 'oncall.runbooks/api_down/app01,app02'},
        {'routing_key': KEY, 'event_action': 'acknowledge', 'dedup_key': 'oncall.runbooks/api_down/app01,app02'}]
    assert len(receiver.at(HOOK)) == 3
    # check mode: what it would send, nothing sent, the routing key hidden
    receiver.clear()
    dry = in_process(receiver, check=True)
    assert receiver.requests == [] and dry['msg'] == 'would send: slack, pagerduty trigger (dry run: nothing sent)'
    assert dry['messages'][1]['body']['routing_key'] == '********'
    assert dry['messages'][1]['body']['payload']['severity'] == 'critical'
    assert dry['messages'][0]['url'] == receiver.url + '/********'
    # bad options: one sentence naming the option, the URL not in it, nothing sent
    for option, value, said in (
            ('slack_webhook_url', 'file:///etc/XsecretHookPath42', 'must be an http:// or https:// URL with a host'),
            ('pagerduty_url', 'http://u:XsecretHookPath42@127.0.0.1/', 'must not carry a password (user:password@)'),
            ('pagerduty_routing_key', 'a b"c', 'must be a PagerDuty routing key'),
            ('timeout', 0, 'must be at least 1 second')):
        bad = in_process(receiver, **{option: value})
        assert bad['failed'] and bad['msg'].startswith(option + ' ' + said), bad
        assert 'XsecretHookPath42' not in bad['msg']
    assert receiver.requests == []
    # receivers that fail: a finding each, never a failure
    receiver.answers['/v2/enqueue'] = 500
    receiver.answers[HOOK] = ('sleep', 3)
    try:
        res = in_process(receiver, timeout=1)
    finally:
        receiver.answers.clear()
    refused = in_process(receiver, slack_webhook_url='http://127.0.0.1:%d%s' % (closed_port(), HOOK),
                         pagerduty_routing_key=None)
    assert not res['failed'] and not refused['failed']
    assert [(f['object'], f['figure'], f['verdict']) for f in res['findings']] == [
        ('notify slack', 'no answer within 1 seconds', 'warning'),
        ('notify pagerduty', 'the receiver answered HTTP 500', 'warning')]
    assert res['msg'] == ('sent: slack, pagerduty trigger; FAILED: slack (no answer within 1 seconds); '
                          'pagerduty (the receiver answered HTTP 500)')
    assert [(f['object'], f['figure']) for f in refused['findings']] == [
        ('notify slack', 'could not reach the receiver: connection refused')]


PLAYBOOK = textwrap.dedent('''\
    - name: A runbook's last play (the report role, with the notification)
      hosts: localhost
      connection: local
      gather_facts: false
      tasks:
        - name: Report, verdict line and exit status
          ansible.builtin.include_role:
            name: oncall.runbooks.report
            apply:
              tags: [always]
          vars:
            report_name: notify_demo
            report_findings:
              - {object: "app01 /health", figure: "{{ demo_figure }}", threshold: 200, verdict: "{{ demo_verdict }}"}
          tags: [always]
    ''')


def test_report_role_pages_after_a_failed_remediation_then_resolves(receiver, tmp_path):
    book = tmp_path / 'demo.yml'
    book.write_text(PLAYBOOK)
    reports = str(tmp_path / 'reports')
    secrets = {'oncall_report_dir': reports, 'oncall_notify_slack_webhook_url': receiver.url + HOOK,
               'oncall_notify_pagerduty_routing_key': KEY, 'oncall_notify_pagerduty_url': receiver.url + '/v2/enqueue',
               'oncall_notify_timeout': 2}
    receiver.clear()
    # level 2 ran and the verdict is still critical: level 3, PagerDuty trigger; Slack does not
    # answer: a warning line, and the report is written and printed all the same
    down = 'http://127.0.0.1:%d%s' % (closed_port(), HOOK)
    bad = run_playbook(str(book), tags='remediate', inventory='localhost,', env={'ANSIBLE_VERBOSITY': '3'},
                       extra_vars=dict(secrets, demo_verdict='critical', demo_figure='502',
                                       oncall_notify_slack_webhook_url=down))
    assert recap(bad, 'localhost')['verdict_failed'], bad.stdout[-3000:]
    events = receiver.at('/v2/enqueue')
    assert [(e['event_action'], e['dedup_key']) for e in events] == [('trigger', 'oncall.runbooks/notify_demo/localhost')]
    report_md = sorted(glob.glob(os.path.join(reports, 'notify_demo-2*.md')))[-1]
    assert events[0]['payload']['custom_details'] == {'verdict': 'critical', 'summary': 'app01 /health',
                                                      'report': report_md, 'escalation_level': 3}
    assert ('NOTIFY sent: slack, pagerduty trigger; FAILED: slack (could not reach the receiver: connection refused)'
            ' - escalation level 3, dedup key oncall.runbooks/notify_demo/localhost') in bad.stdout, bad.stdout[-3000:]
    assert 'WARNING could not reach the receiver: connection refused' in bad.stdout
    assert 'VERDICT CRITICAL' in bad.stdout and '# notify_demo' in bad.stdout
    with open(os.path.join(reports, 'notify_demo-latest.json')) as f:
        assert json.load(f)['verdict'] == 'critical'
    said = bad.stdout + bad.stderr
    assert 'XsecretHookPath42' not in said and KEY not in said

    # a later run that is ok: resolve, same dedup key
    good = run_playbook(str(book), inventory='localhost,', extra_vars=dict(secrets, demo_verdict='ok', demo_figure='200'))
    assert recap(good, 'localhost')['failed'] == 0, good.stdout[-3000:]
    assert [(e['event_action'], e['dedup_key']) for e in receiver.at('/v2/enqueue')][1:] == [
        ('resolve', 'oncall.runbooks/notify_demo/localhost')]
    assert receiver.at(HOOK)[-1]['text'].startswith(':large_green_circle: *notify_demo*: OK - nothing to act on')
