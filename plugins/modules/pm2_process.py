#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pm2_process
short_description: Start, restart, scale or stop a pm2 application and wait until it is healthy
version_added: 0.1.0
description:
  - The C(pm2) backend of the C(oncall.runbooks.services) role. C(pm2 jlist) is the source of
    truth - the module reads it, plans what brings the application to O(state) (start, restart,
    scale, stop), applies the plan with the pm2 CLI, and then waits until every instance is
    online and O(health_url) answers 2xx, within O(wait_timeout); otherwise it fails naming the
    instances' statuses or the health answer.
  - V(restarted) always restarts (like C(pm2 restart)); V(started) only starts what is missing or
    restarts instances that are not online, so it is idempotent.
  - In check mode it reads C(pm2 jlist) and returns the plan; nothing is started or restarted.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Returns the plan computed from C(pm2 jlist); nothing is changed.
  diff_mode:
    support: full
    details: Shows the instances and their statuses before and after.
  idempotent:
    support: partial
    details: V(started) and V(stopped) are idempotent; V(restarted) restarts on every run, as it is asked to.
options:
  name:
    description:
      - The pm2 application name (C(pm2 start --name)).
      - Letters, digits, C(.), C(_) or C(-), starting with a letter or digit. Names pm2 would read as
        something else are refused before pm2 runs - all digits (a pm_id), V(all), or containing
        C(.json), C(.yml), C(.yaml) or C(.config.js) (a config file).
    type: str
    required: true
  state:
    description:
      - V(started) starts the application when pm2 does not know it (needs O(script)) and
        restarts it when an instance is not online.
      - V(restarted) restarts every instance.
      - V(stopped) stops every instance (C(pm2 stop)), keeping it in the process list.
    type: str
    default: started
    choices: [started, restarted, stopped]
  instances:
    description:
      - Number of instances wanted (C(pm2 scale)). Scaling needs cluster mode, which is how the
        module starts an application.
    type: int
  script:
    description: The script pm2 runs, used only when the application is not in C(pm2 jlist) yet.
    type: path
  cwd:
    description: Working directory of a started application.
    type: path
  env:
    description:
      - Environment of a started application. Put secrets in O(secret_env) instead.
      - Names are environment variable names; C(PM2_*) names are refused (they would redirect pm2 itself).
    type: dict
  secret_env:
    description:
      - Environment variables holding secrets (passwords, tokens); never logged or returned.
      - Names as for O(env).
    type: dict
  node_args:
    description: Arguments for the Node interpreter of a started application.
    type: str
  pm2_bin:
    description: The pm2 executable.
    type: path
    default: pm2
  pm2_home:
    description: The pm2 home directory (C(PM2_HOME)), which selects the pm2 daemon.
    type: path
  health_url:
    description:
      - A URL that must answer 2xx before the application counts as healthy.
      - Only C(http://) and C(https://) URLs (anything else is refused before pm2 runs); redirects are not followed.
    type: str
  wait:
    description: Wait until the application is healthy after a change (and check it when nothing changed).
    type: bool
    default: true
  wait_timeout:
    description: How long to wait for health (C(30s), C(2m) or seconds).
    type: str
    default: 60s
  min_uptime:
    description:
      - How long each instance must have been online, so that a crash loop is not taken for health;
        a duration such as V(1s) or V(500ms) (a bare number is seconds).
    type: str
    default: 1s
'''

EXAMPLES = r'''
- name: Restart the API and wait until /health answers
  oncall.runbooks.pm2_process:
    name: api
    state: restarted
    health_url: http://127.0.0.1:3001/health
    wait_timeout: 60s

- name: Run four instances
  oncall.runbooks.pm2_process:
    name: api
    instances: 4
'''

RETURN = r'''
plan:
  description: The planned actions (C(start), C(restart), C(scale), C(stop)) with object and reason.
  returned: always
  type: list
  elements: dict
  sample: [{action: restart, object: api, reason: restart requested, count: 2, ids: [], destructive: false}]
msg:
  description: The plan in one line.
  returned: always
  type: str
before:
  description: The application as C(pm2 jlist) showed it before any change.
  returned: always
  type: dict
  sample: {name: api, exists: true, instances: 2, online: 2, statuses: [online], processes: []}
process:
  description: The application after the change and the wait (in check mode, as before).
  returned: always
  type: dict
  contains:
    instances:
      description: Number of instances in C(pm2 jlist).
      type: int
    online:
      description: Number of instances online.
      type: int
    statuses:
      description: The distinct statuses of the instances.
      type: list
      elements: str
    processes:
      description: One entry per instance with C(pm_id), C(pid), C(status), C(restarts), C(exec_path) and C(memory) (bytes, as pm2 monit reads it).
      type: list
      elements: dict
health:
  description: The last answer of O(health_url) (C(status), C(ok), C(latency_ms), C(why)).
  returned: when O(health_url) is set and the module waited
  type: dict
actions:
  description:
    - What was done, in order, as plan items whose C(count) is what was really handled (docs/plan.md);
      empty in check mode.
  returned: always
  type: list
  elements: dict
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
findings:
  description: Findings (C(object), C(figure), C(threshold), C(verdict)); empty when there is nothing to rate.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import summarize
from ansible_collections.oncall.runbooks.plugins.module_utils.services import pm2 as p2
from ansible_collections.oncall.runbooks.plugins.module_utils.services import health as hc


def run(module):
    params = module.params
    try:
        timeout = parse_duration(params['wait_timeout'], 'wait_timeout')
        min_uptime = parse_duration(params['min_uptime'], 'min_uptime')
    except DurationError as exc:
        raise p2.Pm2Error(str(exc))
    p2.check_name(params['name'])
    if params['instances'] is not None and params['instances'] < 1:
        raise p2.Pm2Error('instances must be at least 1 (use state: stopped to stop %s)' % params['name'])
    p2.check_env(params['env'], 'env')
    p2.check_env(params['secret_env'], 'secret_env')
    if params['health_url']:
        try:
            hc.check_http_url(params['health_url'], 'health_url')
        except hc.UrlError as exc:
            raise p2.Pm2Error(str(exc))
    pm2 = p2.Pm2(module.run_command, params['pm2_bin'], params['pm2_home'])
    before = p2.observe(pm2.jlist(), params['name'])
    actions = p2.plan(before, params)
    result = dict(changed=bool(actions), plan=[a.to_dict() for a in actions], msg=summarize(actions),
                  before=before, process=before)
    if module.check_mode:
        return result
    if actions:
        result['actions'] = p2.apply(pm2, actions, params)
    if params['state'] == 'stopped':
        result['process'] = p2.observe(pm2.jlist(), params['name'])
    elif params['wait']:
        want = params['instances'] or max(before['instances'], 1)
        result['process'], health = p2.wait_healthy(pm2, params['name'], want, params['health_url'],
                                                    timeout, min_uptime)
        if health is not None:
            result['health'] = health
    else:
        result['process'] = p2.observe(pm2.jlist(), params['name'])
    if module._diff:
        keep = ('instances', 'online', 'statuses')
        result['diff'] = dict(before=dict((k, before[k]) for k in keep),
                              after=dict((k, result['process'][k]) for k in keep))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            state=dict(type='str', default='started', choices=['started', 'restarted', 'stopped']),
            instances=dict(type='int'),
            script=dict(type='path'),
            cwd=dict(type='path'),
            env=dict(type='dict'),
            secret_env=dict(type='dict', no_log=True),
            node_args=dict(type='str'),
            pm2_bin=dict(type='path', default='pm2'),
            pm2_home=dict(type='path'),
            health_url=dict(type='str'),
            wait=dict(type='bool', default=True),
            wait_timeout=dict(type='str', default='60s'),
            min_uptime=dict(type='str', default='1s'),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


if __name__ == '__main__':
    main()
