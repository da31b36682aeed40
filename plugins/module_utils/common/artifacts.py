# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing artifacts (reports, deploy and rollback records) into their directory: private to the
oncall.runbooks collection.

The directory is resolved once and opened as a file descriptor that every file is then written
relative to (never through a link); a new file is a temporary file linked to its name, so an
existing file is never overwritten; a "latest" file is replaced by renaming over it, so a link
planted there is replaced, its target never written.
"""

from __future__ import annotations

import os

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

# A report never goes to or under these (they hold the system, not artifacts).
SYSTEM_DIRS = ('/proc', '/sys', '/dev', '/boot', '/etc', '/bin', '/sbin', '/usr', '/lib', '/lib32',
               '/lib64', '/libx32')

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)


class ArtifactError(OncallError):
    """A refused place for an artifact, already phrased for the operator."""


def open_dest(dest):
    """The report directory, resolved once, created when missing, and opened as a directory
    file descriptor that every file is then written relative to."""
    real = os.path.realpath(dest)
    if real == '/' or any(real == d or real.startswith(d + '/') for d in SYSTEM_DIRS):
        raise ArtifactError('dest %s is a system directory (%s): give a directory for reports' % (dest, real))
    os.makedirs(real, exist_ok=True)
    return real, os.open(real, _DIR_FLAGS)


def exists(dir_fd, name):
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _temp(dir_fd, final, text):
    """Write text to a new temporary file beside `final` (O_EXCL, O_NOFOLLOW): its name."""
    for attempt in range(100):
        tmp = '.%s.%d.%d.tmp' % (final, os.getpid(), attempt)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0),
                         0o644, dir_fd=dir_fd)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            os.unlink(tmp, dir_fd=dir_fd)
            raise
        return tmp
    raise OSError('no free temporary name for %s' % final)


def write_new(dir_fd, final, text):
    """Create `final` with text; False (nothing written) when that name is taken. A hard link
    of the temporary file never replaces or follows what is there."""
    tmp = _temp(dir_fd, final, text)
    try:
        os.link(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp, dir_fd=dir_fd)


def write_replace(dir_fd, final, text):
    """Replace `final` with text by renaming a temporary file over it: a link there is replaced,
    its target never written."""
    tmp = _temp(dir_fd, final, text)
    try:
        os.replace(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=dir_fd)
        raise
