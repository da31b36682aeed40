# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_health_info: disk, memory, processes and recent log errors with verdicts.

Runbook 001 section 1 ("Daily Health Check"): disk usage < 80%, memory usage < 80%, the
processes running, fewer than 10 recent errors in the application log.
"""

from __future__ import annotations

import errno
import os
import re
import stat


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


def _rss(proc, pid):
    """Resident memory of a process in bytes (VmRSS), 0 for kernel threads or when gone."""
    try:
        with open(os.path.join(proc, pid, 'status')) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except (IOError, OSError):
        pass
    return 0


def _seen(proc):
    """(pid, comm, argv[0] base name, command line) of every process but this one."""
    seen = []
    for pid in os.listdir(proc):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(os.path.join(proc, pid, 'cmdline'), 'rb') as handle:
                argv = [a.decode('utf-8', 'replace') for a in handle.read().split(b'\0') if a]
            with open(os.path.join(proc, pid, 'comm')) as handle:
                comm = handle.read().strip()
        except (IOError, OSError):
            continue
        if argv:
            first = os.path.basename(argv[0]).split(' ')[0].rstrip(':')
            seen.append((int(pid), comm, first, ' '.join(argv)))
    return seen


def _matches(pattern, entry):
    if ' ' in pattern or '/' in pattern:
        return pattern in entry[3]
    return pattern in entry[1:3]


def processes(patterns, proc='/proc'):
    """Count running processes per pattern, with their pids and resident memory.

    A pattern without a space or slash is a program name, compared with each process' name
    and the base name of its argv[0] (``redis-server``, ``postgres``); one with a space or a
    slash is looked for in the whole command line (``node dist/server.js``). Names are not
    searched in command lines, so the command that runs this check never counts as a match.
    """
    seen = _seen(proc) if patterns else []
    out = []
    for pattern in patterns:
        pids = sorted(entry[0] for entry in seen if _matches(pattern, entry))
        rss = dict((pid, _rss(proc, str(pid))) for pid in pids)
        out.append({'name': pattern, 'running': len(pids), 'pids': pids, 'rss': sum(rss.values()),
                    'max_rss': max(rss.values()) if rss else 0})
    return out


def top_processes(count, total_memory, proc='/proc'):
    """The count processes using the most resident memory (ps aux | sort -k 4 -r | head)."""
    rows = []
    for pid, comm, _first, cmdline in _seen(proc):
        rss = _rss(proc, str(pid))
        if rss:
            rows.append({'pid': pid, 'name': comm, 'command': cmdline[:200], 'rss': rss,
                         'memory_ratio': round(float(rss) / total_memory, 4) if total_memory else 0.0})
    rows.sort(key=lambda r: -r['rss'])
    return rows[:count]


def tail_lines(path, lines):
    """The last `lines` lines of a file, read from the end (logs can be large).

    Only a regular file is read: it is opened without blocking (a FIFO would wait for a writer
    forever) and without becoming a controlling terminal, then checked with fstat."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, 'O_CLOEXEC', 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, 'not a regular file', path)
    with os.fdopen(fd, 'rb') as handle:
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
