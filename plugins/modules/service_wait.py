#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: service_wait
short_description: Wait until systemd units or a Docker container are healthy, within one deadline
version_added: 0.1.0
description:
  - The wait of the C(oncall.runbooks.services) role's C(systemd) and C(docker) backends (the
    C(pm2) backend waits in M(oncall.runbooks.pm2_process)). Read-only - it reads the service's
    state until it is healthy, then asks the health URLs until they answer 2xx, all within
    O(timeout); otherwise it fails with one sentence naming the state it saw.
  - O(backend=systemd) - healthy means every unit of O(units) is C(active)/C(running)
    (C(systemctl show) on the host the task runs on). A unit in C(ActiveState=failed) ends the
    wait at once. A failed wait quotes the last O(journal_lines) lines of the units' journal.
  - O(backend=docker) - healthy means the container O(name) runs and, when it has a healthcheck,
    Docker reports it C(healthy) (the Engine API's container inspect, at O(docker_host)). A
    container that exited or died and that no restart policy brings back ends the wait at once;
    an C(unhealthy) or C(starting) one is waited for until the timeout, since a later check may
    pass.
  - Then every URL of O(health_url) must answer 2xx (a redirect is not followed and is not 2xx).
    With O(backend=systemd), C(%i) in the URL is each unit's instance (C(app@3.service) asks the
    URL with C(3)); each distinct URL is asked.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; waits the same in check mode (the role runs it only after a real change).
options:
  backend:
    description: What to wait for.
    type: str
    required: true
    choices: [systemd, docker]
  units:
    description:
      - O(backend=systemd) - the units to wait for (for example C(app.service), or C(app@1.service)
        and C(app@2.service) for a template unit's instances). Unit names only; a value starting
        with C(-) or holding characters outside systemd's unit name grammar is refused.
    type: list
    elements: str
    default: []
  name:
    description:
      - O(backend=docker) - the container name or ID.
      - O(backend=systemd) - the service's name, used only in the message when O(units) is empty.
    type: str
  health_url:
    description:
      - The http(s) URL that must answer 2xx once the service runs; empty for none.
      - Redirects are not followed. A password in the URL is refused, as is any scheme but http(s),
        before anything is asked (with O(backend=systemd), each URL once C(%i) is replaced).
    type: str
    default: ''
  timeout:
    description: The deadline for the whole wait, a duration (C(30s), C(2m)) or seconds.
    type: str
    default: 60s
  poll:
    description: Seconds between two reads of the state or two asks of a health URL.
    type: float
    default: 1.0
  journal_lines:
    description: O(backend=systemd) - the journal lines quoted in the message of a failed wait.
    type: int
    default: 20
  docker_host:
    description:
      - O(backend=docker) - the Docker daemon, C(unix:///path/to/docker.sock) or C(tcp://host:port)
        (the Engine API without TLS); empty for C(DOCKER_HOST) or C(unix:///var/run/docker.sock).
      - A daemon reached over TLS or C(ssh://) is refused with one sentence; run the task on the
        Docker host itself (C(delegate_to)) instead.
    type: str
    default: ''
  validate_certs:
    description: Verify the TLS certificate of an https O(health_url).
    type: bool
    default: true
notes:
  - The deadline counts from the start of the module, not from the restart the caller made; the
    read of the state and each URL's answer take time too.
seealso:
  - module: oncall.runbooks.pm2_process
'''

EXAMPLES = r'''
- name: Wait until the instances of app@ run and answer on /health
  oncall.runbooks.service_wait:
    backend: systemd
    units: [app@1.service, app@2.service]
    health_url: http://127.0.0.1:810%i/health
    timeout: 60s

- name: Wait until the container is healthy for Docker and its URL answers 2xx
  oncall.runbooks.service_wait:
    backend: docker
    name: web
    health_url: http://127.0.0.1:8080/health
    timeout: 2m
'''

RETURN = r'''
units:
  description: O(backend=systemd) - the units as last read (C(Id), C(ActiveState), C(SubState), C(MainPID)).
  returned: always
  type: list
  elements: dict
  sample: [{Id: app@1.service, ActiveState: active, SubState: running, MainPID: '4242'}]
unhealthy_units:
  description: O(backend=systemd) - the units of RV(units) that are not C(active)/C(running).
  returned: always
  type: list
  elements: dict
unit_failed:
  description: O(backend=systemd) - whether a unit was in C(ActiveState=failed), which ended the wait early.
  returned: always
  type: bool
container:
  description:
    - O(backend=docker) - the container as last read (C(id), C(name), C(image), C(status),
      C(running), C(exit_code), C(health), C(started_at), C(restart_policy)); empty when it
      does not exist. Never its environment.
  returned: always
  type: dict
health:
  description: The last answer of each health URL (C(url), C(status), C(ok), C(why), C(latency_ms)).
  returned: always
  type: list
  elements: dict
health_message:
  description: What the URLs that did not answer 2xx answered, one entry per URL.
  returned: always
  type: list
  elements: str
journal:
  description: O(backend=systemd) - the units' last journal lines, read only when the wait failed.
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the wait took.
  returned: always
  type: float
msg:
  description: What was waited for and how it ended.
  returned: always
  type: str
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options, runner
from ansible_collections.oncall.runbooks.plugins.module_utils.services import health as hc
from ansible_collections.oncall.runbooks.plugins.module_utils.services import wait as sw


def _fail(msg, result):
    """Fail with msg and the result so far (the same dict: run() adds the elapsed time to it)."""
    err = sw.WaitError(msg)
    err.results = result
    raise err


def wait_systemd(module, params, deadline, result):
    units = sw.check_units(params['units'], params['name'] or 'the service')
    urls = sw.unit_urls(params['health_url'], units)
    for url in urls:  # each with its instance in place of %i
        hc.check_http_url(url, 'health_url')
    systemd = sw.Systemd(module.run_command, module.get_bin_path('systemctl', required=True),
                         module.get_bin_path('journalctl') or 'journalctl')
    read, state = sw.poll(lambda: systemd.show(units), lambda read: sw.systemd_state(read, units),
                          deadline, params['poll'])
    answers = []
    if state == 'healthy' and urls:
        answers = sw.wait_urls(urls, deadline, params['poll'], params['validate_certs'])
    result.update(units=read, unhealthy_units=[u for u in read if not sw.unit_healthy(u)],
                  unit_failed=state == 'failed', health=answers,
                  health_message=sw.health_messages(answers))
    if state == 'healthy' and all(a['ok'] for a in answers):
        result['msg'] = 'systemd unit %s is active/running%s' % (
            ', '.join(units), ' and %s answered 2xx' % ', '.join(urls) if urls else '')
        return result
    result['journal'] = systemd.journal(units, params['journal_lines'])
    journal = '(last journal lines: %s)' % ' | '.join(result['journal'])
    if result['unhealthy_units'] or state != 'healthy':
        bad = ', '.join('%s is %s/%s' % (u.get('Id', '?'), u.get('ActiveState', '?'), u.get('SubState', '?'))
                        for u in result['unhealthy_units'])
        _fail('systemd unit %s, not active/running %s %s' % (
            bad, '(it failed: the wait stopped before its %s timeout)' % params['timeout'] if state == 'failed'
            else 'after %s' % params['timeout'], journal), result)
    _fail('systemd unit %s is active/running but %s, not 2xx, after %s %s' % (
        ', '.join(units), sw.health_message(answers), params['timeout'], journal), result)


def wait_docker(params, deadline, result):
    name = sw.check_container(params['name'])
    tls = any(os.environ.get(v, '') not in ('', '0', 'false') for v in ('DOCKER_TLS_VERIFY', 'DOCKER_TLS'))
    docker = sw.Docker(params['docker_host'] or os.environ.get('DOCKER_HOST'), tls=tls)
    container, state = sw.poll(lambda: docker.inspect(name), sw.docker_state, deadline, params['poll'])
    result['container'] = sw.container_summary(container)
    if state != 'healthy':
        _fail('container %s (image %s) is not healthy within %s: %s; see docker logs %s and docker inspect %s' % (
            name, result['container'].get('image') or '?', params['timeout'], sw.describe_container(container),
            name, name), result)
    if params['health_url']:
        answer = sw.wait_urls([params['health_url']], deadline, params['poll'], params['validate_certs'])[0]
        result.update(health=[answer], health_message=sw.health_messages([answer]))
        if not answer['ok']:
            _fail('container %s runs and is healthy for Docker, but %s did not answer 2xx within %s (last: %s)' % (
                name, answer['url'], params['timeout'],
                'status %s' % answer['status'] if answer['status'] is not None else 'no answer'), result)
    result['msg'] = 'container %s runs and is %s%s' % (
        name, 'healthy' if result['container']['health'] == 'healthy' else 'running (no healthcheck)',
        ', and %s answered 2xx' % params['health_url'] if params['health_url'] else '')
    return result


def run(module):
    params = module.params
    seconds = options.duration('timeout', params['timeout'], high=86400)
    options.number('poll', params['poll'], low=0.05, high=3600)
    options.number('journal_lines', params['journal_lines'], low=0, high=10000, integer=True)
    if params['health_url'] and params['backend'] == 'docker':
        hc.check_http_url(params['health_url'], 'health_url')
    started = time.monotonic()
    result = dict(changed=False, units=[], unhealthy_units=[], unit_failed=False, container={}, health=[],
                  health_message=[], journal=[], elapsed=0.0)
    try:
        if params['backend'] == 'systemd':
            return wait_systemd(module, params, started + seconds, result)
        if not params['name']:
            raise sw.WaitError('name is required with backend docker (the container to wait for)')
        return wait_docker(params, started + seconds, result)
    finally:
        result['elapsed'] = round(time.monotonic() - started, 3)


def main():
    module = options.ansible_module(
        AnsibleModule,
        argument_spec=dict(
            backend=dict(type='str', required=True, choices=['systemd', 'docker']),
            units=dict(type='list', elements='str', default=[]),
            name=dict(type='str'),
            health_url=dict(type='str', default=''),
            timeout=dict(type='str', default='60s'),
            poll=dict(type='float', default=1.0),
            journal_lines=dict(type='int', default=20),
            docker_host=dict(type='str', default=''),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


if __name__ == '__main__':
    main()
