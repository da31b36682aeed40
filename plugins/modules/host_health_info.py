#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: host_health_info
short_description: Disk, memory, processes and recent log errors of a host, with verdicts
version_added: 0.1.0
description:
  - Read-only. The host part of runbook 001's daily health check (C(df -h), C(free -h),
    C(pm2 list), C(tail -n 100 /var/log/app.log | grep -i error)) as data, each figure with a
    verdict against its threshold (V(ok), V(warning), V(critical)).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  disks:
    description: Paths whose file systems are measured.
    type: list
    elements: path
    default: ['/']
  disk_warning:
    description: Used share of a file system that is a warning (runbook 001 - 80%).
    type: float
    default: 0.8
  disk_critical:
    description: Used share of a file system that is critical (runbook 001 - 90%).
    type: float
    default: 0.9
  memory_warning:
    description: Used share of memory (MemTotal minus MemAvailable) that is a warning.
    type: float
    default: 0.8
  memory_critical:
    description: Used share of memory that is critical.
    type: float
    default: 0.9
  processes:
    description:
      - Processes that must be running. A name without a space or slash (C(redis-server)) is
        compared with each process' name and the base name of its C(argv[0]); anything else
        (C(node dist/server.js)) is looked for in the whole command line.
    type: list
    elements: str
    default: []
  logs:
    description:
      - Logs to scan, each with C(path), C(pattern) (regular expression, default C(error), case
        insensitive), C(lines) (how many of the last lines, default 100) and C(max) (matches
        allowed, default 10).
    type: list
    elements: dict
    default: []
'''

EXAMPLES = r'''
- name: Host part of the daily health check
  oncall.runbooks.host_health_info:
    disks: [/, /var/lib/postgresql]
    processes: [redis-server, "node dist/server.js"]
    logs:
      - path: /var/log/app.log
        max: 10
  register: host_health
'''

RETURN = r'''
host:
  description: C(disks), C(memory), C(processes) and C(logs) figures.
  returned: always
  type: dict
  sample:
    disks: [{path: /, total: 107374182400, available: 64424509440, used_ratio: 0.4}]
    memory: {total: 25769803776, available: 20615843021, used_ratio: 0.2}
findings:
  description: Each figure against its threshold, with a verdict.
  returned: always
  type: list
  elements: dict
  sample: [{object: disk /, figure: 40%, threshold: ">= 80% warning, >= 90% critical", verdict: ok}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import verdict
from ansible_collections.oncall.runbooks.plugins.module_utils.host import health


def main():
    module = AnsibleModule(
        argument_spec=dict(
            disks=dict(type='list', elements='path', default=['/']),
            disk_warning=dict(type='float', default=0.8),
            disk_critical=dict(type='float', default=0.9),
            memory_warning=dict(type='float', default=0.8),
            memory_critical=dict(type='float', default=0.9),
            processes=dict(type='list', elements='str', default=[]),
            logs=dict(type='list', elements='dict', default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    findings = []
    band = '>= %.0f%% warning, >= %.0f%% critical'
    try:
        disks = [health.disk(path) for path in p['disks']]
        mem = health.memory()
        procs = health.processes(p['processes'])
        logs = []
        for i, log in enumerate(p['logs']):
            if not log.get('path'):
                module.fail_json(msg='logs[%d] needs a path' % i)
            logs.append(dict(health.log_errors(log['path'], log.get('pattern', 'error'), int(log.get('lines', 100))),
                             max=int(log.get('max', 10))))
    except OSError as exc:
        module.fail_json(msg='cannot read %s: %s' % (exc.filename, exc.strerror))
    for d in disks:
        findings.append({'object': 'disk %s' % d['path'], 'figure': '%.0f%%' % (d['used_ratio'] * 100),
                         'threshold': band % (p['disk_warning'] * 100, p['disk_critical'] * 100),
                         'verdict': verdict(d['used_ratio'], p['disk_warning'], p['disk_critical'])})
    findings.append({'object': 'memory', 'figure': '%.0f%%' % (mem['used_ratio'] * 100),
                     'threshold': band % (p['memory_warning'] * 100, p['memory_critical'] * 100),
                     'verdict': verdict(mem['used_ratio'], p['memory_warning'], p['memory_critical'])})
    for proc in procs:
        findings.append({'object': 'process %s' % proc['name'], 'figure': proc['running'],
                         'threshold': '>= 1 running', 'verdict': 'ok' if proc['running'] else 'critical'})
    for log in logs:
        if not log['exists']:
            findings.append({'object': 'log %s' % log['path'], 'figure': 'missing', 'threshold': 'exists',
                             'verdict': 'warning'})
            continue
        findings.append({'object': 'errors in %s' % log['path'], 'figure': log['errors'],
                         'threshold': '<= %d' % log['max'],
                         'verdict': 'ok' if log['errors'] <= log['max'] else 'warning'})
    module.exit_json(changed=False, host=dict(disks=disks, memory=mem, processes=procs, logs=logs),
                     findings=findings)


if __name__ == '__main__':
    main()
