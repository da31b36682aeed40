#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_backup
short_description: Keep a verified, checksummed pg_dump no older than max_age, and rotate old ones
version_added: 0.1.0
description:
  - Makes sure O(dest) holds a verified backup of O(login_db) younger than O(max_age). When there is
    none it runs C(pg_dump --format=custom) to a new temporary file, verifies it with
    C(pg_restore --list) and a full C(pg_restore) to C(/dev/null), records its SHA-256 (in
    C(sha256sum) format) and what it holds in a manifest, and only then renames it into place.
  - A backup is trusted only while it verifies. Every run reads the backup it relies on again
    (its SHA-256 against C(<name>.sha256) and the manifest, C(pg_restore --list), a full
    C(pg_restore) to C(/dev/null)). A damaged one is a V(critical) finding, is renamed aside to
    C(<name>.damaged-<UTC stamp>) (with its C(.sha256) and C(.json); never deleted), and a fresh
    backup is taken. A run that finds a young enough backup that verifies does nothing.
  - Keeps the O(keep) newest verified backups and removes older ones and leftovers of interrupted
    runs; it never touches a file that does not match C(<db>-<UTC stamp>.dump).
  - Use O(max_age=0) to always take a fresh backup (before a deploy).
  - The password reaches C(pg_dump) through its environment, never its command line. The
    connection is one C(--dbname=) argument, a libpq connection string whose every value is
    quoted, so no option value (O(login_db) included) can become a C(pg_dump) option or another
    connection parameter. C(connect_params.sslpassword) is refused (it could only be passed on
    the command line).
  - Files are created relative to O(dest) opened without following links, with C(O_EXCL) and
    C(O_NOFOLLOW) under a temporary name, then renamed into place; O(dest) itself may not be a
    symbolic link.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.postgres
  - oncall.runbooks.attributes.action_group_postgres
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Says whether it would back up and what it would rotate; writes nothing.
  diff_mode:
    support: full
    details: Lists the backup files before and after.
  idempotent:
    support: full
    details: A backup is only taken when the newest one is older than O(max_age); rotation keeps O(keep).
options:
  dest:
    description:
      - Directory of the backups; created (mode 0700) when missing. The mode of an existing
        directory is left as it is.
      - May not be a symbolic link.
    type: path
    required: true
  max_age:
    description: A verified backup younger than this satisfies the module (C(20h), C(7d), V(0) for always).
    type: str
    default: 20h
  keep:
    description: Verified backups to keep, the new one included.
    type: int
    default: 7
  compress:
    description: pg_dump compression level (0-9).
    type: int
    default: 6
  bin_dir:
    description: Directory of C(pg_dump) and C(pg_restore); C(PATH) when unset. Use the client of the server's major version or newer.
    type: path
  rotate_only:
    description:
      - Only remove what rotation removes (backups beyond O(keep), leftovers of interrupted runs);
        never take a backup, and rely on (so verify) none. For a full disk (the disk_space runbook).
    type: bool
    default: false
requirements:
  - pg_dump and pg_restore
seealso:
  - module: oncall.runbooks.pg_maintenance
'''

EXAMPLES = r'''
- name: Monthly verified backup, keep a year of them
  oncall.runbooks.pg_backup:
    login_db: payment_sandbox
    login_host: db.internal
    login_password: "{{ vault_pg_password }}"
    dest: /var/backups/postgres
    max_age: 25d
    keep: 12

- name: Backup right before a deploy
  oncall.runbooks.pg_backup:
    login_db: payment_sandbox
    dest: /var/backups/postgres/pre-deploy
    max_age: 0
    keep: 5
  register: pre_deploy_backup
'''

RETURN = r'''
backup:
  description: The backup taken by this run (empty when none was needed).
  returned: always
  type: dict
  sample: {path: /var/backups/postgres/payment_sandbox-20261122T020000Z.dump, size: 1048576,
           sha256: 9f86d0..., entries: 42, dump_seconds: 1.2, verify_seconds: 0.1}
newest:
  description: Path and age in seconds of the newest verified backup after the run.
  returned: always
  type: dict
plan:
  description:
    - Actions decided, each with C(action) (C(set aside), C(backup) or C(remove)), C(object) and
      C(reason); C(set aside) also has C(to), the new name.
  returned: always
  type: list
  elements: dict
database:
  description: The database backed up (C(name), C(server)).
  returned: always
  type: dict
  sample: {name: payment_sandbox, server: "db.internal:5432/payment_sandbox"}
actions:
  description: What was done (the backup taken, the files removed), in the shape of RV(plan); empty in check mode.
  returned: always
  type: list
  elements: dict
removed:
  description: Files removed by rotation.
  returned: always
  type: list
  elements: str
set_aside:
  description: New names of the damaged backups renamed aside by this run (C(<name>.damaged-<UTC stamp>)).
  returned: always
  type: list
  elements: str
findings:
  description:
    - The verification of each backup the run relied on, newest first, until one verified -
      V(ok) (verified) or V(critical) (damaged, with the reason in C(figure)).
  returned: always
  type: list
  elements: dict
  sample:
    - {object: backup /var/backups/postgres/payment_sandbox-20261122T020000Z.dump,
       figure: "damaged: pg_restore cannot restore it: could not read input file: end of file",
       threshold: "SHA-256 as recorded, pg_restore reads it", verdict: critical}
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
msg:
  description: One line saying what was planned and done.
  returned: always
  type: str
'''

import datetime
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import backup as pgb
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc


def main():
    argument_spec = pgc.postgres_argument_spec()
    argument_spec.update(
        dest=dict(type='path', required=True),
        max_age=dict(type='str', default='20h'),
        keep=dict(type='int', default=7),
        compress=dict(type='int', default=6),
        bin_dir=dict(type='path'),
        rotate_only=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, describe=lambda exc: pgc.failure_of(exc, module.params))


def run(module):
    p = module.params
    try:
        max_age = parse_duration(p['max_age'], 'max_age')
    except DurationError as exc:
        module.fail_json(msg=str(exc))
    if p['keep'] < 1:
        module.fail_json(msg='keep must be at least 1 (the backup this run takes), got %d' % p['keep'])
    if not 0 <= p['compress'] <= 9:
        module.fail_json(msg='compress must be between 0 and 9, got %d' % p['compress'])
    dest, db = os.path.abspath(p['dest']), p['login_db']
    result = dict(changed=False, plan=[], backup={}, removed=[], actions=[], findings=[], set_aside=[],
                  database=dict(name=db, server=pgc.where(p)))
    dfd = None
    try:
        pgb.check_db_name(db)
        dbname_arg, env = pgb.connection(p)
        dfd, created = pgb.open_dest(dest, create=False)
        actions, findings, before = pgb.plan(dfd, dest, db, max_age, p['keep'], p['bin_dir'],
                                             rotate_only=p['rotate_only'])
        result.update(changed=bool(actions), plan=actions, findings=findings)
        listing_before = [b['name'] for b in before]
        if not module.check_mode and actions:
            if dfd is None:
                dfd, created = pgb.open_dest(dest, create=True)
            for action in actions:
                if action['action'] == 'set aside':
                    pgb.set_aside(dfd, action['object'], action['to'])
                    result['set_aside'].append(action['to'])
                    result['actions'].append(action)
            for action in actions:
                if action['action'] == 'backup':
                    path, manifest = pgb.take(dbname_arg, env, dfd, dest, db, p['compress'], p['bin_dir'])
                    result['backup'] = dict(manifest, path=path)
                    result['actions'].append(dict(action, path=path))
            for action in actions:
                if action['action'] == 'remove':
                    pgb.remove(dfd, action['object'])
                    result['removed'].append(action['object'])
                    result['actions'].append(action)
        after = pgb.existing(dfd, db)
    except pgb.BackupError as exc:
        module.fail_json(msg=str(exc), **result)
    except OSError as exc:
        module.fail_json(msg='cannot write the backup in %s: %s' % (dest, exc.strerror or exc), **result)
    finally:
        if dfd is not None:
            os.close(dfd)
    now = datetime.datetime.now(datetime.timezone.utc)
    result['newest'] = ({'path': os.path.join(dest, after[0]['name']),
                         'age_seconds': int((now - after[0]['taken']).total_seconds())} if after else {})
    if module._diff:
        result['diff'] = dict(before='\n'.join(listing_before) + '\n',
                              after='\n'.join(b['name'] for b in after) + '\n')
    return result


if __name__ == '__main__':
    main()
