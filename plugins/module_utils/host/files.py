# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""file_retention: old files under given directories, planned then removed.

Runbook 001 9.1 runs `find /var/log -name "*.log" -mtime +30 -delete`. Here the files are
listed first (path, age, size), removal re-checks each one (still a regular file, still
old), symbolic links are never followed, directories never removed, and system roots refused.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time

FORBIDDEN = ('/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/proc', '/root', '/sbin',
             '/sys', '/usr', '/var', '/home')


class RetentionError(Exception):
    pass


def check_paths(paths):
    for path in paths:
        real = os.path.realpath(path)
        if real in FORBIDDEN:
            raise RetentionError('refusing to clean %s: name a directory of logs (e.g. /var/log/app), '
                                 'not a system root' % path)


def candidates(paths, patterns, excludes, max_age_s, recurse=True, now=None):
    """Regular files matching patterns, not excludes, last modified more than max_age_s ago."""
    now = now or time.time()
    found = []
    for root in paths:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            if not recurse:
                dirnames[:] = []
            for name in filenames:
                if not any(fnmatch.fnmatch(name, p) for p in patterns):
                    continue
                if any(fnmatch.fnmatch(name, p) for p in excludes):
                    continue
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    continue
                age = now - st.st_mtime
                if age > max_age_s:
                    found.append({'path': path, 'age_days': round(age / 86400, 1), 'size': st.st_size,
                                  'mtime': st.st_mtime})
    found.sort(key=lambda f: f['mtime'])
    return found


def remove(files, max_age_s, now=None):
    """Unlink each planned file that is still a regular file older than max_age_s."""
    now = now or time.time()
    removed, freed, kept = [], 0, []
    for f in files:
        try:
            st = os.lstat(f['path'])
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or now - st.st_mtime <= max_age_s:
            kept.append(dict(f, why='changed since the plan'))
            continue
        os.unlink(f['path'])
        removed.append(f['path'])
        freed += st.st_size
    return removed, freed, kept
