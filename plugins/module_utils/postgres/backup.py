# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_backup: a verified pg_dump no older than max_age, and rotation.

Desired state, not an action: "there is a verified backup of this database younger than
max_age, and at most keep of them". A run that finds one does nothing, so a maintenance
window run twice takes one backup.

Files: <dest>/<db>-<UTC stamp>.dump (pg_dump custom format, compressed), beside it
<name>.sha256 (sha256sum's format) and <name>.json (size, checksum, tables listed by
pg_restore --list, timings). Only regular files of that pattern are ever rotated.

A backup is trusted only while it verifies: the backup a run relies on is read again every
run (its SHA-256 against <name>.sha256 and the manifest, pg_restore --list, and a full
pg_restore of every entry to /dev/null). A damaged one is renamed aside to
<name>.damaged-<UTC stamp> (with its .sha256 and .json), never deleted, and a fresh backup
is taken.

Command lines and files:
- pg_dump and pg_restore get no value that can start an option: the connection is one
  --dbname=<conninfo> argument whose every value is quoted by libpq's rules, the password is
  in the environment (PGPASSWORD), the dump goes to pg_dump's standard output and is read
  from pg_restore's standard input.
- Every file is opened relative to one descriptor of dest opened with O_NOFOLLOW (dest
  itself may not be a symbolic link), created with O_EXCL | O_NOFOLLOW under a temporary name
  and renamed into place with os.replace: no link is followed as the directory or a target.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import stat
import subprocess
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.artifacts import exists
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc

STAMP = '%Y%m%dT%H%M%SZ'
_KEYWORD = re.compile(r'^[a-z][a-z_]*$')
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
_OPEN_READ = os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)


class BackupError(OncallError):
    pass


# ---- connection: conninfo and environment ------------------------------------------------

def conninfo_quote(value):
    """A conninfo value in single quotes, backslash and quote escaped (libpq's rules)."""
    return "'%s'" % str(value).replace('\\', '\\\\').replace("'", "\\'")


def connection(params):
    """(argument for pg_dump, environment): the libpq parameters as one --dbname=<conninfo>
    argument of quoted values, the password in PGPASSWORD, never on the command line."""
    try:
        pgc.check_params(params)
        timeout = pgc.connect_timeout_seconds(params)
    except pgc.PgConnectionError as exc:
        raise BackupError(str(exc))
    parts = dict(dbname=params['login_db'], user=params.get('login_user') or 'postgres',
                 port=params.get('login_port') or 5432, sslmode=params.get('ssl_mode') or 'prefer',
                 connect_timeout=10 if timeout is None else timeout,
                 application_name='oncall.runbooks backup')
    host = params.get('login_host') or params.get('login_unix_socket')
    if host:
        parts['host'] = host
    if params.get('ca_cert'):
        parts['sslrootcert'] = params['ca_cert']
    if params.get('ssl_cert'):
        parts['sslcert'] = params['ssl_cert']
    if params.get('ssl_key'):
        parts['sslkey'] = params['ssl_key']
    env = dict(os.environ)
    env.pop('PGPASSWORD', None)
    if params.get('login_password'):
        env['PGPASSWORD'] = params['login_password']
    for key, value in (params.get('connect_params') or {}).items():
        if not isinstance(key, str) or not _KEYWORD.match(key):
            raise BackupError('connect_params has %r, which is not a libpq parameter name' % (key,))
        if key == 'sslpassword':
            raise BackupError('connect_params.sslpassword cannot reach pg_dump without being on its command '
                              'line; give pg_backup an unencrypted client key (sslkey) readable only by its user')
        if key == 'password':
            env['PGPASSWORD'] = str(value)
            continue
        parts[key] = value
    for key, value in parts.items():
        if '\0' in str(value):
            raise BackupError('%s holds a NUL character, which no libpq parameter can' % key)
    if '\0' in env.get('PGPASSWORD', ''):
        raise BackupError('login_password holds a NUL character, which no libpq parameter can')
    conninfo = ' '.join('%s=%s' % (k, conninfo_quote(v)) for k, v in parts.items() if v is not None and v != '')
    return '--dbname=' + conninfo, env


def check_db_name(db):
    """login_db names the backup files: it may hold anything PostgreSQL allows but a path separator."""
    if not db or '/' in db or '\0' in db:
        raise BackupError('login_db %r cannot name a backup file in dest: it must not be empty or hold "/"' % db)


# ---- the directory ---------------------------------------------------------------------

def open_dest(dest, create):
    """(descriptor of dest, created): dest is never a symbolic link; created (mode 0700, and only
    then given that mode) when missing and create is true, else (None, False)."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        if not create:
            return None, False
        os.makedirs(dest, mode=0o700)
        os.chmod(dest, 0o700)  # the mode of what this module created, whatever the umask
        created = True
    else:
        if stat.S_ISLNK(st.st_mode):
            raise BackupError('dest %s is a symbolic link: give the directory itself' % dest)
        if not stat.S_ISDIR(st.st_mode):
            raise BackupError('dest %s exists and is not a directory' % dest)
        created = False
    return os.open(dest, os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_NOFOLLOW', 0)), created


def _pattern(db):
    return re.compile(r'^%s-(\d{8}T\d{6}Z)\.dump$' % re.escape(db))


def _regular(dfd, name):
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _read(dfd, name):
    fd = os.open(name, _OPEN_READ, dir_fd=dfd)
    with os.fdopen(fd, 'rb') as handle:
        return handle.read()


def existing(dfd, db):
    """Backups with a manifest in dest, newest first: [{path-less name, taken, manifest}]."""
    if dfd is None:
        return []
    found = []
    pat = _pattern(db)
    for name in os.listdir(dfd):
        m = pat.match(name)
        if not m or not _regular(dfd, name) or not _regular(dfd, name + '.json'):
            continue  # never verified (an interrupted run), or not a file of ours
        taken = datetime.datetime.strptime(m.group(1), STAMP).replace(tzinfo=datetime.timezone.utc)
        try:
            manifest = json.loads(_read(dfd, name + '.json').decode('utf-8'))
        except (ValueError, OSError):
            manifest = None  # unreadable: it will not verify
        found.append({'name': name, 'taken': taken, 'manifest': manifest})
    found.sort(key=lambda b: b['taken'], reverse=True)
    return found


def unverified(dfd, db):
    if dfd is None:
        return []
    pat = _pattern(db)
    return sorted(n for n in os.listdir(dfd)
                  if pat.match(n) and _regular(dfd, n) and not _regular(dfd, n + '.json'))


# ---- verification ----------------------------------------------------------------------

def _tool(bin_dir, name):
    return os.path.join(bin_dir, name) if bin_dir else name


def _sha256_fd(fd):
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        block = os.read(fd, 1 << 20)
        if not block:
            return digest.hexdigest()
        digest.update(block)


def _restore_checks(fd, bin_dir):
    """(entries, tables with data) from pg_restore --list, after a full pg_restore of every
    entry to /dev/null; BackupError with pg_restore's first line when either fails."""
    pg_restore = _tool(bin_dir, 'pg_restore')
    os.lseek(fd, 0, os.SEEK_SET)
    listing = subprocess.run([pg_restore, '--list'], stdin=fd, capture_output=True, check=False)
    if listing.returncode:
        raise BackupError('pg_restore --list cannot read it: %s' % _first(listing.stderr))
    os.lseek(fd, 0, os.SEEK_SET)
    full = subprocess.run([pg_restore, '--file=/dev/null'], stdin=fd, capture_output=True, check=False)
    if full.returncode:
        raise BackupError('pg_restore cannot restore it: %s' % _first(full.stderr))
    lines = listing.stdout.decode('utf-8', 'replace').splitlines()
    entries = [ln for ln in lines if ln and not ln.startswith(';')]
    tables = sorted(set('.'.join(ln.split()[-3:-1]) for ln in entries if ' TABLE DATA ' in ln))
    return entries, tables


def verify(dfd, backup, bin_dir):
    """None when the backup verifies, else the one reason it does not."""
    name = backup['name']
    try:
        recorded = _read(dfd, name + '.sha256').decode('ascii', 'replace').split()
    except OSError as exc:
        return 'its checksum file %s.sha256 cannot be read (%s)' % (name, exc.strerror)
    manifest = backup.get('manifest') or {}
    try:
        fd = os.open(name, _OPEN_READ, dir_fd=dfd)
    except OSError as exc:
        return 'it cannot be read (%s)' % exc.strerror
    try:
        actual = _sha256_fd(fd)
        if not recorded or recorded[0] != actual:
            return 'its SHA-256 %s differs from the one recorded in %s.sha256' % (actual, name)
        if manifest.get('sha256') != actual:
            return 'its SHA-256 %s differs from the one recorded in its manifest %s.json' % (actual, name)
        try:
            _restore_checks(fd, bin_dir)
        except BackupError as exc:
            return str(exc)
        except OSError as exc:
            return 'pg_restore cannot be run: %s' % (exc.strerror or exc)
    finally:
        os.close(fd)
    return None


# ---- the plan ----------------------------------------------------------------------------

def plan(dfd, dest, db, max_age_s, keep, bin_dir, now=None, rotate_only=False):
    """(actions, findings, backups): the newest backups young enough to be relied on are
    verified, newest first, until one verifies; each damaged one is set aside. rotate_only:
    no backup is relied on (none verified), none taken, only the rotation planned."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    backups = existing(dfd, db)
    actions, findings, damaged = [], [], []
    relied = None
    for b in ([] if rotate_only else backups):
        if (now - b['taken']).total_seconds() >= max_age_s:
            break
        problem = verify(dfd, b, bin_dir)
        path = os.path.join(dest, b['name'])
        if problem is None:
            relied = b
            findings.append({'object': 'backup %s' % path, 'figure': 'verified',
                             'threshold': 'SHA-256 as recorded, pg_restore reads it', 'verdict': 'ok'})
            break
        damaged.append(b)
        findings.append({'object': 'backup %s' % path, 'figure': 'damaged: %s' % problem,
                         'threshold': 'SHA-256 as recorded, pg_restore reads it', 'verdict': 'critical'})
        actions.append({'action': 'set aside', 'object': path, 'count': 1, 'reason': 'damaged: %s' % problem,
                        'to': '%s.damaged-%s' % (path, now.strftime(STAMP))})
    kept = [b for b in backups if b not in damaged]
    if relied is None and not rotate_only:
        if damaged:
            why = 'the newest backup is damaged'
        elif not kept:
            why = 'no verified backup in %s' % dest
        else:
            why = 'newest verified backup is %ds old >= max_age %ds' % (
                int((now - kept[0]['taken']).total_seconds()), int(max_age_s))
        actions.append({'action': 'backup', 'object': db, 'count': 1, 'reason': why})
        survivors = keep - 1
    else:
        survivors = keep
    for old in kept[max(survivors, 0):]:
        actions.append({'action': 'remove', 'object': os.path.join(dest, old['name']), 'count': 1,
                        'reason': 'older than the %d newest kept' % keep})
    for name in unverified(dfd, db):
        actions.append({'action': 'remove', 'object': os.path.join(dest, name), 'count': 1,
                        'reason': 'never verified (an interrupted backup)'})
    return actions, findings, backups


# ---- applying it -------------------------------------------------------------------------

def _write_new(dfd, name, data):
    """data into dest/name: a new temporary file (O_EXCL | O_NOFOLLOW), then os.replace."""
    tmp = '.%s.%d.tmp' % (name, os.getpid())
    fd = os.open(tmp, _OPEN_NEW, 0o600, dir_fd=dfd)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        _unlink_quietly(dfd, tmp)
        raise


def _unlink_quietly(dfd, name):
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass


def take(dbname_arg, env, dfd, dest, db, compress, bin_dir):
    """pg_dump to a new temporary file, verify it, then rename it into place."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(STAMP)
    final = '%s-%s.dump' % (db, stamp)
    tmp = '.%s-%s.dump.partial' % (db, stamp)
    started = time.monotonic()
    fd = os.open(tmp, (_OPEN_NEW & ~os.O_WRONLY) | os.O_RDWR, 0o600, dir_fd=dfd)  # read back to verify
    try:
        try:
            proc = subprocess.run([_tool(bin_dir, 'pg_dump'), '--format=custom', '--compress=%d' % compress,
                                   '--no-password', dbname_arg], stdout=fd, stderr=subprocess.PIPE,
                                  env=env, check=False)
        except OSError as exc:
            raise BackupError('pg_dump cannot be run: %s' % (exc.strerror or exc))
        if proc.returncode:
            raise BackupError('pg_dump of %s failed: %s' % (db, _first(proc.stderr)))
        dumped = time.monotonic()
        try:
            entries, tables = _restore_checks(fd, bin_dir)
        except BackupError as exc:
            raise BackupError('the new dump of %s does not verify: %s' % (db, exc))
        checksum = _sha256_fd(fd)
        size = os.fstat(fd).st_size
        os.replace(tmp, final, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        _unlink_quietly(dfd, tmp)
        raise
    finally:
        os.close(fd)
    manifest = {'database': db, 'file': final, 'size': size,
                'sha256': checksum, 'entries': len(entries), 'tables_with_data': tables,
                'dump_seconds': round(dumped - started, 3),
                'verify_seconds': round(time.monotonic() - dumped, 3),
                'format': 'custom', 'compress': compress}
    _write_new(dfd, final + '.sha256', ('%s  %s\n' % (checksum, final)).encode('utf-8'))
    _write_new(dfd, final + '.json', json.dumps(manifest, indent=2, sort_keys=True).encode('utf-8'))
    return os.path.join(dest, final), manifest


def set_aside(dfd, path, to):
    """Rename a damaged backup (and its .sha256 and .json) to <name>.damaged-<stamp>: kept, never
    counted or rotated again."""
    name, target = os.path.basename(path), os.path.basename(to)
    for suffix in ('', '.sha256', '.json'):
        if _regular(dfd, name + suffix):
            if exists(dfd, target + suffix):
                raise BackupError('cannot set %s aside: %s already exists' % (name + suffix, target + suffix))
            os.rename(name + suffix, target + suffix, src_dir_fd=dfd, dst_dir_fd=dfd)


def remove(dfd, path):
    name = os.path.basename(path)
    for suffix in ('', '.sha256', '.json'):
        if _regular(dfd, name + suffix):
            os.unlink(name + suffix, dir_fd=dfd)


def _first(text):
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    lines = [ln.strip() for ln in (text or '').splitlines() if ln.strip()]
    if not lines:
        return 'no message'
    return re.sub(r'^(pg_dump|pg_restore): (error: )?', '', lines[0])
