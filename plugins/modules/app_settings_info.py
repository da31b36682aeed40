#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: app_settings_info
short_description: Say which of a service's configuration variables are set, by name only
version_added: 0.1.0
description:
  - Read-only. Runbook 003's "Verify environment variables (OAuth secrets)" and runbook 004's
    "Check CloudWatch configuration" (C(echo $CLOUDWATCH_LOG_GROUP)) without printing a value -
    each name is reported as set, empty or missing.
  - Reads a dotenv file (O(env_file)) or the environment of a running process (O(pid),
    C(/proc/PID/environ), such as the pid pm2 reports). The values are only compared with the
    empty string; they are never returned, warned about or logged.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes
options:
  names:
    description: The variable names that must be set (letters, digits and C(_)).
    type: list
    elements: str
    required: true
  env_file:
    description: A dotenv file (C(NAME=value) lines). One of O(env_file) and O(pid) is needed.
    type: path
  pid:
    description: A running process whose environment is read (C(/proc/PID/environ), Linux).
    type: int
  severity:
    description: Verdict when a name is missing or empty.
    type: str
    choices: [warning, critical]
    default: critical
  label:
    description: What the settings belong to, in the finding (C(auth service)).
    type: str
    default: service
'''

EXAMPLES = r'''
- name: The OAuth settings of the running app (pid from pm2)
  oncall.runbooks.app_settings_info:
    pid: "{{ services_status.processes[0].pid }}"
    names: [OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, SESSION_SECRET]
    label: auth
  register: auth_settings
'''

RETURN = r'''
present:
  description: Names set to a non-empty value.
  returned: always
  type: list
  elements: str
empty:
  description: Names defined with an empty value.
  returned: always
  type: list
  elements: str
missing:
  description: Names not defined.
  returned: always
  type: list
  elements: str
findings:
  description: One finding, the names that are missing or empty (names only).
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import OptionError, ansible_module
from ansible_collections.oncall.runbooks.plugins.module_utils.host import settings


def main():
    module = ansible_module(AnsibleModule, argument_spec=dict(
        names=dict(type='list', elements='str', required=True),
        env_file=dict(type='path'),
        pid=dict(type='int'),
        severity=dict(type='str', choices=['warning', 'critical'], default='critical'),
        label=dict(type='str', default='service'),
    ), supports_check_mode=True)
    runner.run(module, run)


def run(module):
    p = module.params
    try:
        settings.validate(p)
        env = settings.read_env_file(p['env_file']) if p.get('env_file') else settings.read_process_env(p['pid'])
    except OptionError as exc:
        module.fail_json(msg=str(exc))
    for n in p['names']:  # belt and braces: a value can never reach the output
        if env.get(n) and len(env[n]) >= 4:
            module.no_log_values.add(env[n])
    present, empty, missing = settings.classify(env, p['names'])
    bad = ['%s missing' % n for n in missing] + ['%s empty' % n for n in empty]
    finding = {'object': '%s settings' % p['label'],
               'figure': '; '.join(bad) if bad else '%d of %d set' % (len(present), len(p['names'])),
               'threshold': 'all of %s set' % ', '.join(p['names']),
               'verdict': p['severity'] if bad else 'ok'}
    return dict(changed=False, present=present, empty=empty, missing=missing, findings=[finding])


if __name__ == '__main__':
    main()
