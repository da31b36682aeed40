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
  - Read-only. Every option is checked before anything is read - thresholds are shares above 0
    and at most 1, each warning below its critical; log and process limit fields as below; a bad
    value is one sentence naming the option.
  - The host part of runbook 001's daily health check (C(df -h), C(free -h),
    C(pm2 list), C(tail -n 100 /var/log/app.log | grep -i error)) as data, each figure with a
    verdict against its threshold (V(ok), V(warning), V(critical)).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes
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
  process_memory:
    description:
      - Resident memory limits of named processes (runbook 001 5.4 - memory leaks), each with
        C(name) (a pattern as in O(processes)), C(warning) and C(critical) (sizes such as
        C(512MB), C(1GB) or bytes). The largest matching process is compared; a finding each.
    type: list
    elements: dict
    default: []
  top_processes:
    description:
      - How many of the processes using the most resident memory to list in C(top_processes)
        (C(ps aux | sort -k 4 -r | head)), up to 1000; V(0) lists none.
    type: int
    default: 0
  logs:
    description:
      - Logs to scan, each with C(path), C(pattern) (regular expression, default C(error), case
        insensitive), C(lines) (how many of the last lines, 1 to 1000000, default 100) and C(max)
        (matches allowed, default 10). C(path) is absolute.
    type: list
    elements: dict
    default: []
'''

EXAMPLES = r'''
- name: Host part of the daily health check
  oncall.runbooks.host_health_info:
    disks: [/, /var/lib/postgresql]
    processes: [redis-server, "node dist/server.js"]
    top_processes: 10
    process_memory:
      - {name: "node dist/server.js", warning: 1GB, critical: 1536MB}
    logs:
      - path: /var/log/app.log
        max: 10
  register: host_health
'''

RETURN = r'''
host:
  description:
    - C(disks), C(memory), C(processes) (C(name), C(running), C(pids), C(rss) of them all and
      C(max_rss) of the largest, in bytes), C(top_processes) and C(logs) figures.
  returned: always
  type: dict
  sample:
    disks: [{path: /, total: 107374182400, available: 64424509440, used_ratio: 0.4}]
    memory: {total: 25769803776, available: 20615843021, used_ratio: 0.2}
    processes: [{name: redis-server, running: 1, pids: [812], rss: 9437184, max_rss: 9437184}]
    top_processes: [{pid: 812, name: redis-server, command: redis-server 127.0.0.1:6379, rss: 9437184,
                     memory_ratio: 0.0004}]
findings:
  description: Each figure against its threshold, with a verdict.
  returned: always
  type: list
  elements: dict
  sample: [{object: disk /, figure: 40%, threshold: ">= 80% warning, >= 90% critical", verdict: ok}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import verdict
from ansible_collections.oncall.runbooks.plugins.module_utils.host import health
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import (
    OptionError, ansible_module, shown)


def main():
    module = ansible_module(
        AnsibleModule,
        argument_spec=dict(
            disks=dict(type='list', elements='path', default=['/']),
            disk_warning=dict(type='float', default=0.8),
            disk_critical=dict(type='float', default=0.9),
            memory_warning=dict(type='float', default=0.8),
            memory_critical=dict(type='float', default=0.9),
            processes=dict(type='list', elements='str', default=[]),
            process_memory=dict(type='list', elements='dict', default=[]),
            top_processes=dict(type='int', default=0),
            logs=dict(type='list', elements='dict', default=[]),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


def run(module):
    p = module.params
    findings = []
    band = '>= %.0f%% warning, >= %.0f%% critical'
    try:
        wanted_limits, wanted_logs = health.validate(p)
    except OptionError as exc:
        module.fail_json(msg=str(exc))
    where = 'disks'
    try:
        disks = []
        for i, path in enumerate(p['disks']):
            where = 'disks[%d]' % i
            disks.append(health.disk(path))
        where = 'memory'
        mem = health.memory()
        procs = health.processes(p['processes'])
        limits = [(health.processes([name])[0], warn, crit) for name, warn, crit in wanted_limits]
        top = health.top_processes(p['top_processes'], mem['total']) if p['top_processes'] > 0 else []
        logs = []
        for i, log in enumerate(wanted_logs):
            where = 'logs[%d].path' % i
            logs.append(dict(health.log_errors(log['path'], log['pattern'], log['lines']), max=log['max']))
    except OSError as exc:
        module.fail_json(msg='%s: cannot read %s: %s' % (where, shown(exc.filename, 200), exc.strerror))
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
    for proc, warn, crit in limits:
        findings.append({'object': 'memory of process %s' % proc['name'],
                         'figure': '%d MB (largest of %d)' % (proc['max_rss'] >> 20, proc['running']),
                         'threshold': ' '.join(x for x in (('>= %d MB warning' % (warn >> 20)) if warn is not None else '',
                                                           ('>= %d MB critical' % (crit >> 20)) if crit is not None else '') if x),
                         'verdict': verdict(proc['max_rss'], warn, crit), 'pids': proc['pids']})
    for log in logs:
        if not log['exists']:
            findings.append({'object': 'log %s' % log['path'], 'figure': 'missing', 'threshold': 'exists',
                             'verdict': 'warning'})
            continue
        findings.append({'object': 'errors in %s' % log['path'], 'figure': log['errors'],
                         'threshold': '<= %d' % log['max'],
                         'verdict': 'ok' if log['errors'] <= log['max'] else 'warning'})
    return dict(changed=False, host=dict(disks=disks, memory=mem, processes=procs, logs=logs,
                                         top_processes=top, process_memory=[x[0] for x in limits]),
                findings=findings)


if __name__ == '__main__':
    main()
