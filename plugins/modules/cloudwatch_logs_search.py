#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cloudwatch_logs_search
short_description: Search a CloudWatch Logs group (filter-log-events) and count the matches against a maximum
version_added: 0.1.0
description:
  - Read-only. Runbook 004's log queries (C(aws logs filter-log-events --log-group-name ...
    --filter-pattern "ERROR" --start-time ...), C(aws logs describe-log-streams --order-by
    LastEventTime)) as data - each search's matching events (newest O(max_events)), their count
    and a finding against each search's C(max).
  - Follows C(nextToken) through every page of the window.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.aws
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes.action_group_aws
  - oncall.runbooks.attributes
options:
  log_group_name:
    description: The log group (C(/aws/lambda/iamenu-logs)).
    type: str
    required: true
  searches:
    description:
      - Named searches, each with C(name), C(filter_pattern) (CloudWatch Logs filter pattern
        syntax, such as C(ERROR) or C([service = "community"]); empty matches every event),
        C(max) (matches allowed, default 0), C(severity) of a count over it (default V(warning))
        and C(log_stream_names) (optional).
      - 'Instead of C(filter_pattern), C(fields) searches JSON log lines by field, as runbook 004''s
        searches by service, level and user (C({service: community, level: ERROR}) becomes
        C({ ($.level = "ERROR") && ($.service = "community") })); names are letters, digits and
        C(_), values letters, digits and C(_ . : @ / + -), and each returned event is checked
        against the fields again.'
      - C(redact=true) (a PII scan) returns no message text, only the count of matches per
        stream, and the finding names the streams.
    type: list
    elements: dict
    required: true
  since:
    description: Start of the window, as a duration back from now (C(1h), C(30m)); above 0, at most ten years.
    type: str
    default: 1h
  max_events:
    description: Newest events kept per search, 0 to 10000 (the count covers every match, up to 10000).
    type: int
    default: 50
  streams:
    description: How many of the most recently written log streams to list, up to 50 (0 for none).
    type: int
    default: 5
  fresh_within:
    description:
      - When set, a finding compares the newest event of the group (the most recently written
        stream's last event) with this duration (runbook 004 - C(10s)); older, or no event, is V(critical).
      - Needs O(streams) above 0.
    type: str
  caller_identity:
    description:
      - Call C(sts get-caller-identity) first and report the account and ARN. When it fails,
        that is a V(critical) finding and the log group is not searched (V(unknown)).
    type: bool
    default: false
requirements:
  - boto3 (Python library)
'''

EXAMPLES = r'''
- name: Errors of the last hour, and the community service's notification errors
  oncall.runbooks.cloudwatch_logs_search:
    region: eu-west-1
    log_group_name: /aws/lambda/iamenu-logs
    since: 1h
    searches:
      - {name: errors, filter_pattern: ERROR, max: 10}
      - {name: notification errors, filter_pattern: notification_error}
      - {name: PII in logs, filter_pattern: "?password ?creditCard ?ssn ?cardNumber", severity: critical}
  register: cloudwatch

- name: Logs arriving, who we are, errors of the community service, PII without printing it
  oncall.runbooks.cloudwatch_logs_search:
    region: eu-west-1
    log_group_name: iamenu-ecosystem-logs
    fresh_within: 10s
    caller_identity: true
    searches:
      - {name: community errors, fields: {service: community, level: ERROR}, max: 10}
      - {name: PII password, filter_pattern: password, redact: true, severity: critical}
'''

RETURN = r'''
searches:
  description:
    - Each search with C(name), C(filter_pattern), C(count), C(truncated) and C(events) (C(timestamp), C(stream), C(message)).
    - A search with C(redact) has C(streams) (C(stream), C(count)) and no C(events).
  returned: always
  type: list
  elements: dict
  sample: [{name: errors, filter_pattern: ERROR, count: 2, truncated: false,
            events: [{timestamp: "2026-11-25T00:10:00.00Z", stream: app-stream, message: ERROR upstream timeout}]}]
log_streams:
  description: The most recently written streams, C(name), C(last_event) and C(last_event_ms).
  returned: always
  type: list
  elements: dict
findings:
  description: Each search's count against its maximum, with a verdict.
  returned: always
  type: list
  elements: dict
window:
  description: C(start) and C(end) of the searched window (UTC).
  returned: always
  type: dict
caller_identity:
  description: C(account), C(arn) and C(user_id) of C(sts get-caller-identity), empty when not asked or when it failed.
  returned: always
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.aws import common as aws
from ansible_collections.oncall.runbooks.plugins.module_utils.aws import logs as cwl
from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import OptionError, ansible_module


def main():
    argument_spec = aws.aws_argument_spec()
    argument_spec.update(
        log_group_name=dict(type='str', required=True),
        searches=dict(type='list', elements='dict', required=True),
        since=dict(type='str', default='1h'),
        max_events=dict(type='int', default=50),
        streams=dict(type='int', default=5),
        fresh_within=dict(type='str'),
        caller_identity=dict(type='bool', default=False),
    )
    module = ansible_module(AnsibleModule, argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, requires=['boto3'])


def run(module):
    p = module.params
    try:
        aws.validate(p)
        since, searches, fresh = cwl.validate(p)
        if fresh is not None and p['streams'] < 1:
            raise OptionError('fresh_within needs streams above 0')
    except (aws.AwsError, OptionError) as exc:
        module.fail_json(msg=str(exc))
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - int(since * 1000)
    out, findings, identity = [], [], {}
    group = p['log_group_name']
    window = {'start': cwl._iso(start_ms), 'end': cwl._iso(end_ms)}
    if p['caller_identity']:
        try:
            identity = cwl.caller_identity(aws.client(p, 'sts'))
            findings.append({'object': 'AWS caller identity', 'figure': identity['arn'] or '',
                             'threshold': 'an identity, not an error', 'verdict': 'ok'})
        except aws.AwsError as exc:
            findings.append({'object': 'AWS caller identity', 'figure': str(exc),
                             'threshold': 'an identity, not an error', 'verdict': 'critical'})
            findings.append({'object': 'log group %s' % group, 'figure': 'not searched: no working credentials',
                             'threshold': '', 'verdict': 'unknown'})
            return dict(changed=False, searches=[], log_streams=[], findings=findings, window=window,
                        caller_identity={})
    try:
        logs = aws.client(p, 'logs')
        for s in searches:
            pattern = cwl.fields_pattern(s['fields']) if s['fields'] else (s.get('filter_pattern') or '')
            events, truncated = cwl.search(logs, group, pattern, start_ms, end_ms, s.get('log_stream_names') or [])
            if s['fields']:
                events = [e for e in events if cwl.fields_match(e['message'], s['fields'])]
            count = len(events)
            maximum = s['max']
            entry = {'name': s['name'], 'filter_pattern': pattern, 'count': count, 'truncated': truncated}
            figure = '%d%s' % (count, '+' if truncated else '')
            if s['redact']:
                entry['streams'] = cwl.redacted(events)
                if count:
                    figure += ' in %s' % ', '.join(x['stream'] for x in entry['streams'])
            else:
                entry['events'] = events[-p['max_events']:] if p['max_events'] else []
            out.append(entry)
            findings.append({'object': 'log search %s in %s' % (s['name'], group),
                             'figure': figure, 'threshold': '<= %d' % maximum,
                             'verdict': 'ok' if count <= maximum and not truncated else s.get('severity', 'warning')})
        log_streams = cwl.streams(logs, group, p['streams']) if p['streams'] > 0 else []
        if fresh is not None:
            findings.append(cwl.freshness(log_streams, fresh, int(time.time() * 1000), group))
    except aws.AwsError as exc:
        module.fail_json(msg=str(exc))
    return dict(changed=False, searches=out, log_streams=log_streams, findings=findings, window=window,
                caller_identity=identity)


if __name__ == '__main__':
    main()
