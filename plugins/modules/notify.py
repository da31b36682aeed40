#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: notify
short_description: Tell people what a runbook found - Slack incoming webhook and PagerDuty Events API v2
version_added: 0.1.0
description:
  - Sends the run's verdict, its one-line summary and the report's location to a Slack incoming
    webhook and/or PagerDuty (Events API v2), the escalation of runbook 000 "Escalation
    Procedures" - level 1 diagnose, level 2 the standard remediation, level 3 page the on-call
    engineer. The report role (roles/report) calls it after writing every report; see
    docs/notifications.md.
  - With O(pagerduty_action=auto) the event follows the verdict - C(trigger) when the verdict is
    not ok after a remediation (or at all, with O(page_on=not_ok)), C(resolve) when it is ok,
    nothing otherwise. Every event of a runbook on the same hosts carries the same C(dedup_key)
    (C(oncall.runbooks/<runbook>/<target>)), so a later run that is ok resolves the incident an
    earlier one triggered.
  - A receiver that fails (connection refused, an answer other than 2xx, no answer within
    O(timeout)) is a finding of verdict V(warning) in RV(findings), never a failure of the task.
  - The webhook URL and the routing key never appear in the output, also with C(-vvv); the
    summary is escaped for Slack (C(&), C(<), C(>)), so a name such as C(<!channel>) stays text.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Says what it would send (RV(messages), without secrets) and sends nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run sends its messages (PagerDuty deduplicates events with the same C(dedup_key)).
options:
  runbook:
    description: The runbook's short name (the report's name, such as C(api_down)); part of the dedup key.
    type: str
    required: true
  verdict:
    description: The run's verdict.
    type: str
    required: true
    choices: [ok, warning, critical, unknown]
  summary:
    description: One line saying what the run found.
    type: str
    required: true
  report:
    description: Where the report is (its path or URL).
    type: str
    default: ''
  target:
    description:
      - What the run looked at, part of the dedup key and PagerDuty's C(source) - by convention
        the play's hosts sorted and joined by commas (C(hosts-<sha256 prefix>) when longer than 64
        characters); a list is joined that way.
    type: raw
    default: localhost
  remediated:
    description: The run ran the runbook's remediation (level 2); with O(pagerduty_action=auto) a verdict still not ok then pages.
    type: bool
    default: false
  slack_webhook_url:
    description: The Slack incoming webhook (C(https://hooks.slack.com/services/...)); no Slack message without it.
    type: str
  pagerduty_routing_key:
    description: The PagerDuty integration's routing key (Events API v2); no PagerDuty event without it.
    type: str
  pagerduty_url:
    description: The Events API v2 endpoint (another one for tests or a proxy).
    type: str
    default: https://events.pagerduty.com/v2/enqueue
  pagerduty_action:
    description:
      - The PagerDuty event. V(auto) follows the verdict (see the description); V(acknowledge)
        tells PagerDuty someone works on it; V(none) sends none.
    type: str
    default: auto
    choices: [auto, trigger, acknowledge, resolve, none]
  page_on:
    description:
      - With O(pagerduty_action=auto), when a verdict that is not ok pages - V(remediation_failed)
        only after a remediation (runbook 000 level 3), V(not_ok) after any run, V(never) never
        (not even a resolve is sent then).
    type: str
    default: remediation_failed
    choices: [remediation_failed, not_ok, never]
  slack_on:
    description: When Slack is told - V(always), V(not_ok) (the verdict is not ok or the run paged or resolved), V(never).
    type: str
    default: always
    choices: [always, not_ok, never]
  dedup_key:
    description: The PagerDuty dedup key; default C(oncall.runbooks/<runbook>/<target>).
    type: str
  timeout:
    description: Seconds to wait for each receiver.
    type: int
    default: 10
  validate_certs:
    description: Verify the receivers' TLS certificates.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Tell Slack and PagerDuty what the runbook found (the report role does this)
  oncall.runbooks.notify:
    runbook: api_down
    verdict: "{{ report_result.verdict }}"
    summary: "API down: app01 /health (status 502)"
    report: "{{ report_result.markdown_path }}"
    target: "{{ ansible_play_hosts_all }}"
    remediated: "{{ 'remediate' in ansible_run_tags }}"
    slack_webhook_url: "{{ oncall_notify_slack_webhook_url }}"
    pagerduty_routing_key: "{{ oncall_notify_pagerduty_routing_key }}"
  delegate_to: localhost
  register: notified

- name: Someone is on it - acknowledge the incident of the same runbook and hosts
  oncall.runbooks.notify:
    runbook: api_down
    verdict: critical
    summary: acknowledged by the on-call engineer
    target: [app01, app02]
    pagerduty_routing_key: "{{ oncall_notify_pagerduty_routing_key }}"
    pagerduty_action: acknowledge
'''

RETURN = r'''
dedup_key:
  description: The PagerDuty dedup key of this runbook and target.
  returned: always
  type: str
  sample: oncall.runbooks/api_down/app01,app02
pagerduty_action:
  description: The PagerDuty event chosen (V(none) when none is sent or no routing key is set).
  returned: always
  type: str
  sample: trigger
escalation_level:
  description: Runbook 000's level the run reached - 1 diagnosed, 2 remediated, 3 paged.
  returned: always
  type: int
  sample: 3
messages:
  description:
    - What was sent (or, in check mode, would be) to each receiver - C(receiver), C(url) (the
      webhook's path hidden), C(body) (the routing key hidden), and once sent C(ok), C(status) and
      C(error).
  returned: always
  type: list
  elements: dict
  sample: [{receiver: slack, url: "https://hooks.slack.com/********", ok: true, status: 200, error: '',
            body: {text: ":red_circle: *api_down*: CRITICAL - ..."}}]
findings:
  description: A finding of verdict V(warning) for each receiver that failed.
  returned: always
  type: list
  elements: dict
  sample: [{object: notify pagerduty, figure: "could not reach the receiver: connection refused",
            threshold: the receiver accepts the event, verdict: warning}]
msg:
  description: One line saying what was sent (or would be) and what failed.
  returned: always
  type: str
'''

import copy
import re

from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import notify, runner


def _check_url(url, option):
    """One sentence naming the option for a URL that is not an http(s) URL with a host; the URL
    itself is never in it (its path may be the secret)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise notify.NotifyError('%s is not a valid URL' % option)
    if parts.scheme.lower() not in ('http', 'https') or not parts.hostname:
        raise notify.NotifyError('%s must be an http:// or https:// URL with a host' % option)
    if parts.password is not None:
        raise notify.NotifyError('%s must not carry a password (user:password@)' % option)
    if any(c in url for c in '\r\n\t\0 '):
        raise notify.NotifyError('%s must not contain spaces or control characters' % option)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            runbook=dict(type='str', required=True),
            verdict=dict(type='str', required=True, choices=list(notify.VERDICTS)),
            summary=dict(type='str', required=True),
            report=dict(type='str', default=''),
            target=dict(type='raw', default='localhost'),
            remediated=dict(type='bool', default=False),
            slack_webhook_url=dict(type='str', no_log=True),
            pagerduty_routing_key=dict(type='str', no_log=True),
            pagerduty_url=dict(type='str', default=notify.PAGERDUTY_URL),
            pagerduty_action=dict(type='str', default='auto',
                                  choices=['auto', 'trigger', 'acknowledge', 'resolve', 'none']),
            page_on=dict(type='str', default='remediation_failed', choices=['remediation_failed', 'not_ok', 'never']),
            slack_on=dict(type='str', default='always', choices=['always', 'not_ok', 'never']),
            dedup_key=dict(type='str', no_log=False),
            timeout=dict(type='int', default=10),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


def run(module):
    p = module.params
    webhook = (p['slack_webhook_url'] or '').strip()
    key = (p['pagerduty_routing_key'] or '').strip()
    pd_url = (p['pagerduty_url'] or '').strip()
    # the secret parts never reach the output, whole or in part (the webhook's path)
    for secret in (webhook, key, urlsplit(webhook).path if webhook else ''):
        if secret and len(secret) > 3 and secret != '/':
            module.no_log_values.add(secret)
    if webhook:
        _check_url(webhook, 'slack_webhook_url')
    if key:
        _check_url(pd_url, 'pagerduty_url')
        if not re.match(r'^[A-Za-z0-9_-]{1,64}$', key):
            raise notify.NotifyError('pagerduty_routing_key must be a PagerDuty routing key '
                                     '(letters, digits, - and _, at most 64 characters)')
    if p['timeout'] < 1:
        raise notify.NotifyError('timeout must be at least 1 second, not %d' % p['timeout'])

    target = notify.target_of(p['target'] if isinstance(p['target'], (list, tuple)) else str(p['target']))
    dedup = p['dedup_key'] or notify.dedup_key(p['runbook'], target)
    verdict = p['verdict']
    summary = ' '.join(str(p['summary']).split())[:1000] or '(no summary)'
    action = notify.pagerduty_action(p['pagerduty_action'], verdict, p['remediated'], p['page_on']) if key else 'none'
    level = notify.level_of(verdict, p['remediated'], action)

    messages = []
    tell_slack = webhook and (p['slack_on'] == 'always'
                              or (p['slack_on'] == 'not_ok' and (verdict != 'ok' or action in ('trigger', 'resolve'))))
    if tell_slack:
        messages.append({'receiver': 'slack', 'url': webhook, 'shown_url': notify.redact_url(webhook),
                         'body': notify.slack_message(p['runbook'], verdict, summary, p['report'], level, action)})
    if action != 'none':
        messages.append({'receiver': 'pagerduty', 'url': pd_url, 'shown_url': pd_url,
                         'body': notify.pagerduty_event(key, action, dedup, p['runbook'], verdict, summary,
                                                        p['report'], target, level)})

    shown, findings = [], []
    for m in messages:
        out = {'receiver': m['receiver'], 'url': m['shown_url'], 'body': copy.deepcopy(m['body'])}
        if 'routing_key' in out['body']:
            out['body']['routing_key'] = '********'
        if not module.check_mode:
            res = notify.post_json(m['url'], m['body'], p['timeout'], p['validate_certs'],
                                   'slack_webhook_url' if m['receiver'] == 'slack' else 'pagerduty_url')
            out.update(res)
            if not res['ok']:
                findings.append({'object': 'notify %s' % m['receiver'], 'figure': res['error'],
                                 'threshold': 'the receiver accepts the %s' % (
                                     'message' if m['receiver'] == 'slack' else 'event'),
                                 'verdict': 'warning',
                                 'note': 'nobody was told through %s: see the report' % m['receiver']})
        shown.append(out)

    what = ', '.join('%s%s' % (m['receiver'], ' %s' % action if m['receiver'] == 'pagerduty' else '') for m in shown)
    if not shown:
        msg = 'nothing to send (no receiver configured, or none called for by verdict %s)' % verdict
    elif module.check_mode:
        msg = 'would send: %s (dry run: nothing sent)' % what
    else:
        failed = [f['object'][len('notify '):] + ' (' + f['figure'] + ')' for f in findings]
        msg = 'sent: %s%s' % (what, ('; FAILED: ' + '; '.join(failed)) if failed else '')
    return dict(changed=bool(shown) and (module.check_mode or len(findings) < len(shown)),
                dedup_key=dedup, pagerduty_action=action, escalation_level=level,
                messages=shown, findings=findings, msg=msg)


if __name__ == '__main__':
    main()
