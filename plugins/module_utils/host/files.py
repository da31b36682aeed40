# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""file_retention: old files under given directories, planned then removed.

Runbook 001 9.1 runs `find /var/log -name "*.log" -mtime +30 -delete`. Here the files are
listed first (path, age, size), removal re-checks each one (still a regular file, still
old), and system roots are refused.

Paths are confined: a root must be an absolute path without ``..`` that is not itself a
symbolic link (a link as root is refused, so nothing is removed in the directory it points
to). The walk holds a file descriptor on each directory and opens every subdirectory
relative to it with ``O_NOFOLLOW``; removal opens the same chain again the same way and
unlinks relative to the directory's descriptor, so a directory swapped for a link between
the plan and the removal is never followed. Links inside a root are never followed, never
removed, and directories are never removed.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

FORBIDDEN = ('/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc',
             '/root', '/sbin', '/sys', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin',
             '/var', '/var/lib', '/home', '/opt', '/srv', '/run', '/mnt', '/media', '/tmp', '/snap')

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)


class RetentionError(OncallError):
    pass


def _root_stat(path):
    """lstat of a root after the checks that refuse it; None when it does not exist or is not
    a directory (nothing to clean there)."""
    if not os.path.isabs(path):
        raise RetentionError('refusing to clean %s: paths must be absolute directories' % path)
    if '..' in path.split('/'):
        raise RetentionError("refusing to clean %s: paths must not contain '..'" % path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise RetentionError('refusing to clean %s: it is a symbolic link (to %s); name the directory '
                             'itself' % (path, os.readlink(path)))
    if os.path.realpath(path) in FORBIDDEN:
        raise RetentionError('refusing to clean %s: name a directory of logs (e.g. /var/log/app), '
                             'not a system root' % path)
    return st if stat.S_ISDIR(st.st_mode) else None


def check_paths(paths):
    """Refuse, before anything is read or removed, every root that is relative, contains '..',
    is a symbolic link or is a system root."""
    for path in paths:
        _root_stat(path)


def _open_root(path):
    """A directory file descriptor on root `path` (None when missing), opened through its
    resolved path and checked to be the very directory that was vetted."""
    st = _root_stat(path)
    if st is None:
        return None
    fd = os.open(os.path.realpath(path), _DIR_FLAGS)
    got = os.fstat(fd)
    if (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise RetentionError('refusing to clean %s: it changed while being opened' % path)
    return fd


def _open_sub(dir_fd, name):
    """A subdirectory opened relative to its parent, never through a link (None otherwise)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT, errno.EMLINK):
            return None
        raise


def _walk(dir_fd, parts, recurse):
    """(parts, name, lstat) of every regular file under the directory open as dir_fd."""
    with os.scandir(dir_fd) as entries:
        entries = list(entries)
    subdirs = []
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(entry.name)
        elif entry.is_file(follow_symlinks=False):
            yield parts, entry.name, entry.stat(follow_symlinks=False)
    if not recurse:
        return
    for name in sorted(subdirs):
        sub = _open_sub(dir_fd, name)
        if sub is None:
            continue
        try:
            yield from _walk(sub, parts + (name,), recurse)
        finally:
            os.close(sub)


def candidates(paths, patterns, excludes, max_age_s, recurse=True, now=None):
    """Regular files matching patterns, not excludes, last modified more than max_age_s ago.

    Each entry has path, age_days, size and mtime, plus the private keys _root and _parts
    that remove() uses to reach the file again without following links."""
    now = now or time.time()
    found = []
    for root in paths:
        root_fd = _open_root(root)
        if root_fd is None:
            continue
        try:
            for parts, name, st in _walk(root_fd, (), recurse):
                if not any(fnmatch.fnmatch(name, p) for p in patterns):
                    continue
                if any(fnmatch.fnmatch(name, p) for p in excludes):
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                age = now - st.st_mtime
                if age > max_age_s:
                    found.append({'path': os.path.join(root, *(parts + (name,))), 'age_days': round(age / 86400, 1),
                                  'size': st.st_size, 'mtime': st.st_mtime, '_root': root, '_parts': parts,
                                  '_name': name})
        finally:
            os.close(root_fd)
    found.sort(key=lambda f: f['mtime'])
    return found


def public(entry):
    """A plan entry as the module returns it (path, age_days, size)."""
    return dict((k, v) for k, v in entry.items() if not k.startswith('_') and k != 'mtime')


def remove(files, max_age_s, now=None):
    """Unlink each planned file that is still a regular file older than max_age_s, reached
    again from its root through directories opened with O_NOFOLLOW."""
    now = now or time.time()
    removed, freed, kept = [], 0, []
    fds = {}

    def dir_fd(root, parts):
        key = (root, parts)
        if key not in fds:
            if parts:
                parent = dir_fd(root, parts[:-1])
                fds[key] = None if parent is None else _open_sub(parent, parts[-1])
            else:
                try:
                    fds[key] = _open_root(root)
                except RetentionError:
                    fds[key] = None
        return fds[key]

    try:
        for f in files:
            fd = dir_fd(f['_root'], f['_parts'])
            if fd is None:
                kept.append(dict(public(f), why='a directory on its path is gone or is now a link'))
                continue
            try:
                st = os.stat(f['_name'], dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime <= max_age_s:
                kept.append(dict(public(f), why='changed since the plan'))
                continue
            try:
                os.unlink(f['_name'], dir_fd=fd)
            except OSError as exc:
                exc.filename = f['path']
                raise
            removed.append(f['path'])
            freed += st.st_size
    finally:
        for fd in fds.values():
            if fd is not None:
                os.close(fd)
    return removed, freed, kept
