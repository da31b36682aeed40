#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: service_watch
short_description: Watch a service for a period after a deploy and fail if health or the error rate degrades
version_added: 0.1.0
description:
  - Runbook 001 8.2 step 8 ("Monitor for 15 minutes") as a task. Polls O(health_url) every
    O(interval) for O(period), and reads the request and error counters of O(metrics_url)
    (Prometheus text) at the start and at the end.
  - Fails when more than O(max_failed_checks) health checks fail (it stops watching at once), when
    the error rate over the period is above O(max_error_rate), or when the counters went back
    (the process restarted during the watch).
  - Read-only; it runs the same in check mode (a playbook usually skips it there).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes
options:
  health_url:
    description:
      - The URL that must keep answering 2xx.
      - Only C(http://) and C(https://) (anything else is refused before the watch starts); redirects are not followed.
    type: str
    required: true
  metrics_url:
    description:
      - The Prometheus text endpoint with the request and error counters; without it only health is watched.
      - Only C(http://) and C(https://), as O(health_url).
    type: str
  requests_metric:
    description: Counter of requests served.
    type: str
    default: app_requests_total
  errors_metric:
    description: Counter of requests that failed (5xx).
    type: str
    default: app_errors_total
  period:
    description: How long to watch (C(15m), C(30s) or seconds).
    type: str
    default: 15m
  interval:
    description: Time between two health checks.
    type: str
    default: 30s
  max_error_rate:
    description: Highest acceptable share of failed requests over the period (V(0.01) is 1%).
    type: float
    default: 0.01
  max_failed_checks:
    description: How many failed health checks are tolerated.
    type: int
    default: 0
  timeout:
    description: Timeout of each request.
    type: str
    default: 5s
'''

EXAMPLES = r'''
- name: Watch the new release for 15 minutes
  oncall.runbooks.service_watch:
    health_url: http://127.0.0.1:3001/health
    metrics_url: http://127.0.0.1:3001/metrics
    period: 15m
    interval: 30s
    max_error_rate: 0.01
'''

RETURN = r'''
watch:
  description: What the watch saw.
  returned: always
  type: dict
  contains:
    seconds:
      description: How long it watched.
      type: float
    health_checks:
      description: Health checks made.
      type: int
    failed_checks:
      description: The failed health checks (seconds into the watch, why).
      type: list
      elements: dict
    requests:
      description: Requests counted over the period (null without O(metrics_url)).
      type: int
    errors:
      description: Errors counted over the period.
      type: int
    error_rate:
      description: Errors divided by requests.
      type: float
    degraded:
      description: Whether the service degraded.
      type: bool
    why:
      description: Why it counts as degraded, empty otherwise.
      type: str
  sample: {seconds: 900.2, health_checks: 31, failed_checks: [], requests: 5012, errors: 3,
           error_rate: 0.0006, degraded: false, why: ''}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.deploy import watch as dw


def main():
    module = AnsibleModule(
        argument_spec=dict(
            health_url=dict(type='str', required=True),
            metrics_url=dict(type='str'),
            requests_metric=dict(type='str', default='app_requests_total'),
            errors_metric=dict(type='str', default='app_errors_total'),
            period=dict(type='str', default='15m'),
            interval=dict(type='str', default='30s'),
            max_error_rate=dict(type='float', default=0.01),
            max_failed_checks=dict(type='int', default=0),
            timeout=dict(type='str', default='5s'),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


def run(module):
    params = dict(module.params)
    try:
        for opt in ('period', 'interval', 'timeout'):
            params[opt] = parse_duration(params[opt], opt)
        result = dw.watch(params)
    except (DurationError, dw.WatchError) as exc:
        module.fail_json(msg=str(exc))
    if result['degraded']:
        module.fail_json(msg='the service degraded during the %ds watch: %s' % (params['period'], result['why']),
                         watch=result)
    return dict(changed=False, watch=result)


if __name__ == '__main__':
    main()
