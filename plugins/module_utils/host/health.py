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

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt

LOG_FIELDS = ('path', 'pattern', 'lines', 'max')
PROCESS_MEMORY_FIELDS = ('name', 'warning', 'critical')
MAX_LOG_LINES = 1000000
MAX_PATTERN = 4096


def _path(option, value):
    opt.text(option, value, max_length=4096, what='an absolute path')
    if not os.path.isabs(value) or '\0' in value:
        raise opt.OptionError('%s must be an absolute path, not %s' % (option, opt.shown(value)))
    return value


def _ratio(option, value):
    return opt.number(option, value, low=0, high=1, low_open=True)


def validate(params):
    """Every option checked before anything is read; returns (process limits, logs) as
    [(name, warning bytes, critical bytes)] and [{path, pattern (compiled), lines, max}].
    Raises options.OptionError with one sentence naming the option."""
    for i, path in enumerate(params['disks']):
        _path('disks[%d]' % i, path)
    for kind in ('disk', 'memory'):
        warning = _ratio('%s_warning' % kind, params['%s_warning' % kind])
        critical = _ratio('%s_critical' % kind, params['%s_critical' % kind])
        opt.ordered('%s_warning' % kind, warning, '%s_critical' % kind, critical)
    for i, name in enumerate(params['processes']):
        opt.text('processes[%d]' % i, name, max_length=MAX_PATTERN)
    opt.number('top_processes', params['top_processes'], low=0, high=1000, integer=True)
    limits = []
    for i, lim in enumerate(params['process_memory']):
        where = 'process_memory[%d]' % i
        opt.fields(where, lim, PROCESS_MEMORY_FIELDS)
        name = opt.text(where + '.name', lim.get('name'), max_length=MAX_PATTERN, what='a process name')
        if lim.get('warning') is None and lim.get('critical') is None:
            raise opt.OptionError('%s needs a warning or critical size' % where)
        warn = opt.size(where + '.warning', lim['warning']) if lim.get('warning') is not None else None
        crit = opt.size(where + '.critical', lim['critical']) if lim.get('critical') is not None else None
        if warn is not None and crit is not None:
            opt.ordered(where + '.warning', warn, where + '.critical', crit)
        limits.append((name, warn, crit))
    logs = []
    for i, log in enumerate(params['logs']):
        where = 'logs[%d]' % i
        opt.fields(where, log, LOG_FIELDS)
        if log.get('path') in (None, ''):
            raise opt.OptionError('%s.path is needed: the log file to scan' % where)
        path = _path(where + '.path', log['path'])
        pattern = opt.text(where + '.pattern', log.get('pattern', 'error'), max_length=MAX_PATTERN,
                           what='a regular expression')
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except (re.error, RecursionError, OverflowError) as exc:
            raise opt.OptionError('%s.pattern is not a regular expression (%s)' % (where, exc))
        lines = opt.number(where + '.lines', log.get('lines', 100), low=1, high=MAX_LOG_LINES, integer=True)
        maximum = opt.number(where + '.max', log.get('max', 10), low=0, high=MAX_LOG_LINES, integer=True)
        logs.append(dict(path=path, pattern=regex, lines=lines, max=maximum))
    return limits, logs


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
    regex = pattern if hasattr(pattern, 'search') else re.compile(pattern, re.IGNORECASE)
    if not os.path.exists(path):
        return {'path': path, 'exists': False, 'errors': 0, 'sample': []}
    matching = [ln for ln in tail_lines(path, lines) if regex.search(ln)]
    return {'path': path, 'exists': True, 'errors': len(matching), 'sample': matching[-5:]}
