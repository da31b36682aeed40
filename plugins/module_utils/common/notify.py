# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a runbook tells people (oncall.runbooks.notify): the Slack incoming-webhook message and
the PagerDuty Events API v2 event, built from the run's verdict, its one-line summary and the
report's location; and the delivery of each, where a receiver that fails is an answer (a
finding), never an exception.

The texts are data: a summary built from alert labels or finding names may hold ``<!channel>``
or ``<https://evil|click>``; Slack's control characters (&, <, >) are escaped so it stays text.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

PAGERDUTY_URL = 'https://events.pagerduty.com/v2/enqueue'
VERDICTS = ('ok', 'warning', 'critical', 'unknown')
# PagerDuty's payload.severity for each verdict (ok only ever resolves)
SEVERITY = {'critical': 'critical', 'warning': 'warning', 'unknown': 'error', 'ok': 'info'}
EMOJI = {'ok': ':large_green_circle:', 'warning': ':large_yellow_circle:', 'critical': ':red_circle:',
         'unknown': ':white_circle:'}
TARGET_MAX = 64


class NotifyError(OncallError, ValueError):
    """A refused option (one sentence naming it)."""


def target_of(hosts):
    """The stable name of what a run looked at: the hosts sorted and joined by commas, or, when
    that is longer than 64 characters, ``hosts-`` and the first 12 hex digits of its SHA-256."""
    if isinstance(hosts, str):
        hosts = hosts.split(',')
    names = sorted(set(str(h).strip() for h in hosts or [] if str(h).strip()))
    joined = ','.join(names) or 'localhost'
    if len(joined) <= TARGET_MAX:
        return joined
    return 'hosts-' + hashlib.sha256(joined.encode('utf-8')).hexdigest()[:12]


def dedup_key(runbook, target):
    """oncall.runbooks/<runbook>/<target>: the same for every run of a runbook on the same
    hosts, so a later run resolves the incident an earlier one triggered (at most 255 characters,
    PagerDuty's limit)."""
    return ('oncall.runbooks/%s/%s' % (runbook, target))[:255]


def slack_escape(text):
    """Slack mrkdwn's three control characters as entities: text stays text (no mention, no link)."""
    return str(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def slack_message(runbook, verdict, summary, report, level, action):
    """The Slack incoming-webhook body."""
    line = '%s *%s*: %s - %s' % (EMOJI.get(verdict, ''), slack_escape(runbook), verdict.upper(),
                                 slack_escape(summary))
    escalation = 'escalation level %d' % level
    if action in ('trigger', 'acknowledge', 'resolve'):
        escalation += ' (PagerDuty %s)' % action
    return {'text': '%s\nReport: %s\n%s' % (line.strip(), slack_escape(report or '(none)'), escalation)}


def pagerduty_event(routing_key, action, key, runbook, verdict, summary, report, target, level):
    """The PagerDuty Events API v2 body: a trigger carries the payload, acknowledge and resolve
    only the dedup key."""
    event = {'routing_key': routing_key, 'event_action': action, 'dedup_key': key}
    if action == 'trigger':
        event['payload'] = {
            'summary': ('%s on %s: %s - %s' % (runbook, target, verdict.upper(), summary))[:1024],
            'source': target,
            'severity': SEVERITY.get(verdict, 'error'),
            'component': runbook,
            'group': target,
            'class': 'oncall.runbooks runbook',
            'custom_details': {'verdict': verdict, 'summary': summary, 'report': report,
                               'escalation_level': level},
        }
        event['client'] = 'oncall.runbooks'
    return event


def pagerduty_action(requested, verdict, remediated, page_on):
    """The event to send: the one asked for, or with ``auto`` the escalation of runbook 000 -
    trigger (level 3) when the verdict is not ok after a remediation (page_on
    remediation_failed) or at all (page_on not_ok), resolve when it is ok, else none."""
    if requested != 'auto':
        return requested
    if page_on == 'never':
        return 'none'
    if verdict == 'ok':
        return 'resolve'
    if remediated or page_on == 'not_ok':
        return 'trigger'
    return 'none'


def level_of(verdict, remediated, action):
    """Runbook 000's escalation level the run reached: 1 diagnosed, 2 remediated, 3 paged."""
    if action == 'trigger':
        return 3
    return 2 if remediated else 1


def redact_url(url):
    """A webhook URL with everything after its host hidden (the path is the secret)."""
    m = re.match(r'^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)', url or '')
    return (m.group(1) + '/********') if m else '********'


def post_json(url, body, timeout, validate_certs, option):
    """POST body as JSON; {'ok', 'status', 'error'}. Never raises for a receiver that fails:
    refused, timed out, or any answer but 2xx is ok=False with one sentence (no URL in it)."""
    from urllib.error import HTTPError, URLError
    from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import open_http
    data = json.dumps(body).encode('utf-8')
    try:
        resp = open_http(url, option, data=data, method='POST', timeout=timeout, validate_certs=validate_certs,
                         headers={'Content-Type': 'application/json'}, http_agent='oncall.runbooks notify')
        status = resp.getcode()
        resp.read()
    except HTTPError as exc:
        return {'ok': False, 'status': exc.code, 'error': 'the receiver answered HTTP %s' % exc.code}
    except (socket.timeout, TimeoutError):
        return {'ok': False, 'status': -1, 'error': 'no answer within %s seconds' % timeout}
    except URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return {'ok': False, 'status': -1, 'error': 'no answer within %s seconds' % timeout}
        if isinstance(reason, OSError) and reason.strerror:
            why = reason.strerror.lower()
        else:
            why = str(reason)
        return {'ok': False, 'status': -1, 'error': 'could not reach the receiver: %s' % why}
    except (OSError, ValueError) as exc:
        if isinstance(exc, OncallError):
            raise
        return {'ok': False, 'status': -1, 'error': 'could not reach the receiver: %s' % type(exc).__name__}
    if 200 <= status < 300:
        return {'ok': True, 'status': status, 'error': ''}
    return {'ok': False, 'status': status, 'error': 'the receiver answered HTTP %s' % status}
