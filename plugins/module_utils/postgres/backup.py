# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_backup: a verified pg_dump no older than max_age, and rotation.

Desired state, not an action: "there is a verified backup of this database younger than
max_age, and at most keep of them". A run that finds one does nothing, so a maintenance
window run twice takes one backup.

Files: <dest>/<db>-<UTC stamp>.dump (pg_dump custom format, compressed), beside it
<name>.sha256 and <name>.json (size, checksum, tables listed by pg_restore --list, timings).
Only files of that pattern are ever rotated.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
import time

STAMP = '%Y%m%dT%H%M%SZ'


class BackupError(Exception):
    pass


def _pattern(db):
    return re.compile(r'^%s-(\d{8}T\d{6}Z)\.dump$' % re.escape(db))


def existing(dest, db):
    """Verified backups in dest, newest first: [{path, taken, manifest}]."""
    if not os.path.isdir(dest):
        return []
    found = []
    pat = _pattern(db)
    for name in os.listdir(dest):
        m = pat.match(name)
        if not m:
            continue
        path = os.path.join(dest, name)
        manifest = path + '.json'
        if not os.path.exists(manifest):
            continue  # never verified (an interrupted run): not counted, and rotated away
        taken = datetime.datetime.strptime(m.group(1), STAMP).replace(tzinfo=datetime.timezone.utc)
        with open(manifest) as handle:
            found.append({'path': path, 'taken': taken, 'manifest': json.load(handle)})
    found.sort(key=lambda b: b['taken'], reverse=True)
    return found


def unverified(dest, db):
    if not os.path.isdir(dest):
        return []
    pat = _pattern(db)
    return sorted(os.path.join(dest, n) for n in os.listdir(dest)
                  if pat.match(n) and not os.path.exists(os.path.join(dest, n + '.json')))


def plan(dest, db, max_age_s, keep, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    backups = existing(dest, db)
    actions = []
    newest_age = (now - backups[0]['taken']).total_seconds() if backups else None
    if newest_age is None or newest_age >= max_age_s:
        why = ('no verified backup in %s' % dest if newest_age is None
               else 'newest verified backup is %ds old >= max_age %ds' % (int(newest_age), int(max_age_s)))
        actions.append({'action': 'backup', 'object': db, 'reason': why})
        survivors = keep - 1
    else:
        survivors = keep
    for old in backups[max(survivors, 0):]:
        actions.append({'action': 'remove', 'object': old['path'],
                        'reason': 'older than the %d newest kept' % keep})
    for path in unverified(dest, db):
        actions.append({'action': 'remove', 'object': path, 'reason': 'never verified (an interrupted backup)'})
    return actions, backups


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def take(params, env, dest, db, compress, bin_dir, mode=0o600):
    """pg_dump to a temporary name, verify with pg_restore --list, then rename into place."""
    os.makedirs(dest, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(STAMP)
    final = os.path.join(dest, '%s-%s.dump' % (db, stamp))
    tmp = os.path.join(dest, '.%s-%s.dump.partial' % (db, stamp))
    pg_dump = os.path.join(bin_dir, 'pg_dump') if bin_dir else 'pg_dump'
    pg_restore = os.path.join(bin_dir, 'pg_restore') if bin_dir else 'pg_restore'
    started = time.monotonic()
    try:
        proc = subprocess.run([pg_dump, '--format=custom', '--compress=%d' % compress,
                               '--no-password', '--file', tmp, db], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise BackupError('pg_dump of %s failed: %s' % (db, _first(proc.stderr)))
        os.chmod(tmp, mode)
        dumped = time.monotonic()
        listing = subprocess.run([pg_restore, '--list', tmp], capture_output=True, text=True, check=False)
        if listing.returncode:
            raise BackupError('pg_restore --list cannot read the new dump of %s: %s'
                              % (db, _first(listing.stderr)))
        entries = [ln for ln in listing.stdout.splitlines() if ln and not ln.startswith(';')]
        tables = sorted(set('.'.join(ln.split()[-3:-1]) for ln in entries if ' TABLE DATA ' in ln))
        checksum = sha256(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    os.replace(tmp, final)
    manifest = {'database': db, 'file': os.path.basename(final), 'size': os.path.getsize(final),
                'sha256': checksum, 'entries': len(entries), 'tables_with_data': tables,
                'dump_seconds': round(dumped - started, 3),
                'verify_seconds': round(time.monotonic() - dumped, 3),
                'format': 'custom', 'compress': compress}
    with open(final + '.sha256', 'w') as handle:
        handle.write('%s  %s\n' % (checksum, os.path.basename(final)))
    with open(final + '.json', 'w') as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    return final, manifest


def remove(path):
    for suffix in ('', '.sha256', '.json'):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def libpq_env(params):
    """Connection for pg_dump through libpq's environment; the password never on argv."""
    env = dict(os.environ)
    host = params.get('login_host') or params.get('login_unix_socket')
    if host:
        env['PGHOST'] = host
    env['PGPORT'] = str(params.get('login_port') or 5432)
    env['PGUSER'] = params.get('login_user') or 'postgres'
    env['PGSSLMODE'] = params.get('ssl_mode') or 'prefer'
    env['PGCONNECT_TIMEOUT'] = str(params.get('connect_timeout') or 10)
    env['PGAPPNAME'] = 'oncall.runbooks backup'
    if params.get('ca_cert'):
        env['PGSSLROOTCERT'] = params['ca_cert']
    if params.get('login_password'):
        env['PGPASSWORD'] = params['login_password']
    return env


def _first(text):
    lines = [ln.strip() for ln in (text or '').splitlines() if ln.strip()]
    return lines[0].replace('pg_dump: error: ', '') if lines else 'no message'
