# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""app_settings_info: which configuration variables a service has (runbook 003 "Verify
environment variables (OAuth secrets)", runbook 004 "echo $CLOUDWATCH_LOG_GROUP"), by name
only. Values are read to tell set from empty and are never returned."""

from __future__ import annotations

import os
import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt

NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,127}', re.ASCII)
_LINE = re.compile(r'\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$')


def validate(p):
    if not p['names']:
        raise opt.OptionError('names must list at least one variable name')
    for i, n in enumerate(p['names']):
        opt.text('names[%d]' % i, n, max_length=128, pattern=NAME, what='a variable name (letters, digits and _)')
    if (p.get('env_file') is None) == (p.get('pid') is None):
        raise opt.OptionError('give one of env_file (a .env file) or pid (a running process)')
    if p.get('pid') is not None:
        opt.number('pid', p['pid'], low=1, high=2 ** 22, integer=True)


def read_env_file(path):
    """{name: value} of a dotenv file (NAME=value, export NAME=value, # comments)."""
    if not os.path.isfile(path):
        raise opt.OptionError('env_file %s is not a readable file' % path)
    out = {}
    with open(path, 'r', encoding='utf-8', errors='replace') as fh:
        for line in fh:
            if line.lstrip().startswith('#'):
                continue
            m = _LINE.match(line.rstrip('\n'))
            if m:
                value = m.group(2).strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
                    value = value[1:-1]
                out[m.group(1)] = value
    return out


def read_process_env(pid):
    """{name: value} of a running process (/proc/PID/environ)."""
    path = '/proc/%d/environ' % int(pid)
    try:
        with open(path, 'rb') as fh:
            raw = fh.read()
    except OSError as exc:
        raise opt.OptionError('cannot read the environment of process %d: %s' % (pid, exc.strerror or exc))
    out = {}
    for item in raw.split(b'\0'):
        if b'=' in item:
            k, v = item.split(b'=', 1)
            out[k.decode('utf-8', 'replace')] = v.decode('utf-8', 'replace')
    return out


def classify(env, names):
    """(present, empty, missing) lists of names; values stay here."""
    present = [n for n in names if env.get(n)]
    empty = [n for n in names if n in env and not env[n]]
    missing = [n for n in names if n not in env]
    return present, empty, missing
