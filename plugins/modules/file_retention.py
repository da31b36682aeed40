#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: file_retention
short_description: Remove log files older than an age, listing each one first
version_added: 0.1.0
description:
  - The weekly window's C(find /var/log -name "*.log" -mtime +30 -delete), planned first. The
    module lists every regular file under O(paths) matching O(patterns) and last modified more
    than O(older_than) ago, with its age and size, then removes them unless in check mode.
  - Symbolic links are not followed, directories are never removed, each file is checked again
    just before it is removed, and system roots such as C(/var) or C(/etc) are refused as paths.
  - Each path must be absolute, without C(..), and not itself a symbolic link (refused before
    anything is removed, since the files in the directory it points to are not the ones named).
    Subdirectories are opened relative to their parent with C(O_NOFOLLOW) and files are removed
    relative to their directory, so a directory replaced by a link between the plan and the
    removal is never followed. A path that does not exist is skipped.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Lists what would be removed; removes nothing.
  diff_mode:
    support: full
    details: The list of files before and after.
  idempotent:
    support: full
    details: The files it removed are gone; a second run finds nothing older than O(older_than).
options:
  paths:
    description:
      - Directories to clean (recursively, see O(recurse)).
      - Absolute, without C(..), not a symbolic link and not a system root.
    type: list
    elements: path
    required: true
  patterns:
    description: File name glob patterns to consider.
    type: list
    elements: str
    default: ['*.log', '*.log.[0-9]*', '*.log.gz']
  excludes:
    description: File name glob patterns never to remove.
    type: list
    elements: str
    default: []
  older_than:
    description: Remove files last modified more than this long ago (C(30d)).
    type: str
    default: 30d
  recurse:
    description: Descend into subdirectories.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Clean logs older than 30 days (runbook 001 9.1)
  oncall.runbooks.file_retention:
    paths: [/var/log/app, /srv/app/logs]
    older_than: 30d
'''

RETURN = r'''
plan:
  description:
    - Files to remove, oldest first, as plan items (docs/plan.md) with C(object) the file's path,
      C(action) V(remove), plus C(path) (the same), C(age_days) and C(size) in bytes.
  returned: always
  type: list
  elements: dict
  sample: [{object: /var/log/app/api.log.3.gz, action: remove, count: 1, reason: '41.2 days old, 1048576 bytes',
            path: /var/log/app/api.log.3.gz, age_days: 41.2, size: 1048576}]
removed:
  description: Paths removed.
  returned: always
  type: list
  elements: str
freed_bytes:
  description: Bytes freed.
  returned: always
  type: int
actions:
  description:
    - What was done, in order, as plan items whose C(count) is what was really handled (docs/plan.md);
      empty in check mode.
  returned: always
  type: list
  elements: dict
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
findings:
  description: Findings (C(object), C(figure), C(threshold), C(verdict)); empty when there is nothing to rate.
  returned: always
  type: list
  elements: dict
msg:
  description: One line saying what was planned and done.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import item
from ansible_collections.oncall.runbooks.plugins.module_utils.host import files


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='path', required=True),
            patterns=dict(type='list', elements='str', default=['*.log', '*.log.[0-9]*', '*.log.gz']),
            excludes=dict(type='list', elements='str', default=[]),
            older_than=dict(type='str', default='30d'),
            recurse=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


def run(module):
    p = module.params
    try:
        max_age = parse_duration(p['older_than'], 'older_than')
        files.check_paths(p['paths'])
        plan = files.candidates(p['paths'], p['patterns'], p['excludes'], max_age, p['recurse'])
    except (DurationError, files.RetentionError) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg='cannot read %s: %s' % (exc.filename, exc.strerror))
    result = dict(changed=bool(plan), plan=[planned(f) for f in plan], actions=[], removed=[], freed_bytes=0,
                  msg='%d file(s) older than %s' % (len(plan), p['older_than']))
    if plan and not module.check_mode:
        try:
            removed, freed, kept = files.remove(plan, max_age)
        except OSError as exc:
            result['msg'] = 'cannot remove %s: %s' % (exc.filename, exc.strerror)
            module.fail_json(**result)
        result.update(removed=removed, freed_bytes=freed, changed=bool(removed),
                      actions=[i for i in result['plan'] if i['object'] in removed])
        if kept:
            result['kept'] = kept
    if module._diff:
        result['diff'] = dict(before=''.join('%s\n' % f['path'] for f in plan),
                              after=''.join('%s\n' % f['path'] for f in plan
                                            if module.check_mode is False and f['path'] not in result['removed']))
    return result


def planned(entry):
    """A file to remove as a plan item: object is its path (path, age_days and size as before, read
    by the disk_space runbook's table)."""
    public = files.public(entry)
    return item('remove', public['path'], '%s days old, %s bytes' % (public['age_days'], public['size']), **public)


if __name__ == '__main__':
    main()
