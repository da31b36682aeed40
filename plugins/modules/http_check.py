#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: http_check
short_description: Check HTTP endpoints for status, body and latency (health checks and smoke tests)
version_added: 0.1.0
description:
  - Read-only. Requests each URL once and compares the answer with what is expected - status
    code, a string in the body, a latency limit - like runbook 001's
    C(curl http://localhost:3001/health) ("Status 200, response time < 100ms").
  - Every check becomes a finding (V(ok) or V(critical)); the module itself fails only with
    O(fail_on_error=true), so a playbook can report every failing endpoint at once.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes
options:
  checks:
    description:
      - One entry per endpoint, with C(url) (required), C(name), C(method) (C(GET)), C(status)
        (expected code or list of codes, default V(200)), C(body_contains), C(max_latency)
        (C(100ms), C(2s)), C(timeout) (default C(10s)), C(headers) and C(body) (sent as is, or as
        JSON when a dict; the method then defaults to C(POST)).
      - The values of headers whose name says they carry a credential (C(Authorization), C(Cookie),
        names with C(token), C(key), C(secret), C(auth), C(session), C(signature) or C(passw)) are
        treated as secrets and never shown in the output.
      - Redirects are not followed, so a redirect to a login page does not pass for healthy.
      - Only C(http://) and C(https://) URLs with a host; any other (C(file://), C(ftp://), C(data:))
        is refused with one sentence before any URL is requested. A password in the URL
        (C(user:password@)) is shown as C(********) in the results.
    type: list
    elements: dict
    required: true
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  fail_on_error:
    description: Fail the task when any check fails (after running all of them).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: API health, as the daily health check expects it
  oncall.runbooks.http_check:
    checks:
      - name: api health
        url: http://localhost:3001/health
        body_contains: '"status":"ok"'
        max_latency: 100ms
  register: api_health
'''

RETURN = r'''
checks:
  description: Each check with C(status), C(latency_ms), C(ok) and C(why) when not ok (C(url) without its password).
  returned: always
  type: list
  elements: dict
  sample: [{name: api health, url: "http://localhost:3001/health", status: 200, latency_ms: 3.2, ok: true, why: ''}]
findings:
  description: Each check as a finding with a verdict.
  returned: always
  type: list
  elements: dict
failed_checks:
  description: Names of the checks that failed.
  returned: always
  type: list
  elements: str
'''

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import DurationError
from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import UrlError, check_http_url
from ansible_collections.oncall.runbooks.plugins.module_utils.host import http

# header names whose values are credentials
SECRET_HEADER = re.compile(r'auth|cookie|token|key|secret|passw|session|signature', re.I)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type='list', elements='dict', required=True),
            validate_certs=dict(type='bool', default=True),
            fail_on_error=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


def run(module):
    for i, check in enumerate(module.params['checks']):
        # credentials sent as headers never reach the output, -vvv or a report
        for name, value in (check.get('headers') or {}).items():
            if value and SECRET_HEADER.search(str(name)):
                module.no_log_values.add(str(value))
        if not check.get('url'):
            module.fail_json(msg='checks[%d] needs a url' % i)
        try:
            check_http_url(check['url'], 'checks[%d].url' % i)
        except UrlError as exc:
            module.fail_json(msg=str(exc))
    results = []
    for i, check in enumerate(module.params['checks']):
        try:
            results.append(http.probe(check, module.params['validate_certs'], 'checks[%d].url' % i))
        except DurationError as exc:
            module.fail_json(msg='checks[%d]: %s' % (i, exc))
    findings = [{'object': 'http %s' % r['name'], 'figure': '%s in %.0f ms' % (r['status'], r['latency_ms']),
                 'threshold': r['why'] or 'as expected', 'verdict': 'ok' if r['ok'] else 'critical'}
                for r in results]
    failed = [r['name'] for r in results if not r['ok']]
    if failed and module.params['fail_on_error']:
        module.fail_json(msg='%d of %d HTTP check(s) failed: %s' % (len(failed), len(results), ', '.join(
            '%s (%s)' % (r['name'], r['why']) for r in results if not r['ok'])),
            checks=results, findings=findings, failed_checks=failed)
    return dict(changed=False, checks=results, findings=findings, failed_checks=failed)


if __name__ == '__main__':
    main()
