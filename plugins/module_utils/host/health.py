# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_health_info: disk, memory, processes and recent log errors with verdicts.

Runbook 001 section 1 ("Daily Health Check"): disk usage < 80%, memory usage < 80%, the
processes running, fewer than 10 recent errors in the application log.
"""

from __future__ import annotations

import os
import re


def verdict(value, warning, critical):
    if critical is not None and value >= critical:
        return 'critical'
    if warning is not None and value >= warning:
        return 'warning'
    return 'ok'


def disk(path):
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    ratio = float(used) / (used + free) if used + free else 0.0  # as df computes Use%
    return {'path': path, 'total': total, 'available': free, 'used_ratio': round(ratio, 4)}


def memory(meminfo='/proc/meminfo'):
    values = {}
    with open(meminfo) as handle:
        for line in handle:
            key, rest = line.split(':', 1)
            values[key] = int(rest.split()[0]) * 1024
    total = values['MemTotal']
    available = values.get('MemAvailable', values.get('MemFree', 0))
    return {'total': total, 'available': available, 'used_ratio': round(1 - float(available) / total, 4)}


def processes(patterns, proc='/proc'):
    """Count processes whose command line contains each pattern (like pgrep -f)."""
    cmdlines = []
    for pid in os.listdir(proc):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(os.path.join(proc, pid, 'cmdline'), 'rb') as handle:
                cmd = handle.read().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
        except (IOError, OSError):
            continue
        if cmd:
            cmdlines.append(cmd)
    return [{'name': p, 'running': sum(1 for c in cmdlines if p in c)} for p in patterns]


def tail_lines(path, lines):
    """The last `lines` lines of a file, read from the end (logs can be large)."""
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        block, data = 65536, b''
        while end > 0 and data.count(b'\n') <= lines:
            step = min(block, end)
            end -= step
            handle.seek(end)
            data = handle.read(step) + data
    return data.decode('utf-8', 'replace').splitlines()[-lines:]


def log_errors(path, pattern, lines):
    regex = re.compile(pattern, re.IGNORECASE)
    if not os.path.exists(path):
        return {'path': path, 'exists': False, 'errors': 0, 'sample': []}
    matching = [ln for ln in tail_lines(path, lines) if regex.search(ln)]
    return {'path': path, 'exists': True, 'errors': len(matching), 'sample': matching[-5:]}
