#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: deploy_record
short_description: Write the record of a deploy or a rollback - its outcome, phases and paused queues
version_added: 0.1.0
description:
  - The C(oncall.runbooks.deploy) role's record, written where the role runs it (the controller,
    with C(delegate_to) V(localhost)) into O(dest).
  - With O(kind=deploy) the module completes O(record) with what is computed from the run - the
    C(outcome) (V(recovered), V(recovery failed), V(unchanged), V(planned), V(deployed),
    V(rolled back), V(rollback failed) or V(failed)), C(mode), C(finished), the seconds of each
    phase from O(marks) (C(phases), C(total_seconds)), and C(queues.paused_seconds) from
    O(paused_at) and O(resumed_at). With O(kind=rollback) O(record) is written as given, with
    C(mode) and C(finished).
  - The run's own file is C(<kind>-<host>-<stamp>-<owner[:6]>[-check].json), never written over
    an existing file. With O(latest=true) C(<kind>-<host>-latest.json), which C(playbooks/rollback.yml)
    reads, is replaced by the same record (renamed over it, so a link planted there is replaced, its
    target never written).
  - O(host), O(owner) and O(stamp) name the file, so they are checked first - an inventory name
    with a C(/) or starting with a dot is refused with one sentence.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: none
    details:
      - A record is an artifact of the run, a dry run's too; the role runs the module with
        C(check_mode) V(false) and says that the run was a dry run with O(dry_run).
  diff_mode:
    support: none
    details: A new file per run; there is nothing to compare it with.
  idempotent:
    support: none
    details: Each run writes its own record; the record is a report, not a change to a managed system (C(changed) is V(false)).
options:
  kind:
    description: What the record is of; the file names start with it.
    type: str
    default: deploy
    choices: [deploy, rollback]
  dest:
    description: The report directory; created when missing. A system directory (C(/etc), C(/usr), ...) is refused.
    type: path
    required: true
  host:
    description: The inventory name of the host the run was for.
    type: str
    required: true
  owner:
    description: The run's token (the deploy lock's owner); its first six characters make the file name unique.
    type: str
    required: true
  stamp:
    description: The run's UTC start time with microseconds (V(20261127T171839.123456Z)), from the role.
    type: str
    required: true
  dry_run:
    description: The run was a dry run (C(--check)) - C(mode) is V(check), the file name ends in C(-check).
    type: bool
    default: false
  record:
    description: The record's fields - versions, the error, the queues, the watch result; the computed ones are added.
    type: dict
    required: true
  marks:
    description:
      - O(kind=deploy) - the phase marks, each C({phase, at}) with C(at) in epoch seconds, in order; the
        module adds the C(end) mark. Each phase lasts until the next mark.
    type: list
    elements: dict
    default: []
  recover:
    description: O(kind=deploy) - the run was a recovery run (C(deploy_recover)).
    type: bool
    default: false
  needed:
    description: O(kind=deploy) - the release was not live yet, so the deploy had something to do.
    type: bool
    default: true
  paused_at:
    description: O(kind=deploy) - when the run paused the queues (epoch seconds); empty when it paused none.
    type: str
    default: ''
  resumed_at:
    description: O(kind=deploy) - when it resumed them (epoch seconds); empty when not resumed, then the end counts.
    type: str
    default: ''
  latest:
    description: Also replace C(<kind>-<host>-latest.json) with this record.
    type: bool
    default: false
seealso:
  - module: oncall.runbooks.deploy_lock
'''

EXAMPLES = r'''
- name: Write the deploy record
  oncall.runbooks.deploy_record:
    dest: "{{ deploy_report_dir }}"
    host: "{{ inventory_hostname }}"
    owner: "{{ deploy_token }}"
    stamp: "{{ deploy_record_stamp }}"
    dry_run: "{{ ansible_check_mode }}"
    marks: "{{ deploy_marks }}"
    needed: "{{ deploy_needed }}"
    record:
      version: "{{ deploy_version }}"
      previous_version: "{{ deploy_previous_version }}"
      error: "{{ deploy_error }}"
      rolled_back: "{{ deploy_rolled_back }}"
      rollback_error: "{{ deploy_rollback_error }}"
    latest: "{{ deploy_switched and not ansible_check_mode }}"
  delegate_to: localhost
  check_mode: false
'''

RETURN = r'''
record:
  description: The record as written.
  returned: success
  type: dict
  sample: {outcome: deployed, mode: apply, phases: [{phase: pre-checks, seconds: 0.412}], total_seconds: 21.5}
path:
  description: The run's own record.
  returned: success
  type: str
  sample: /srv/reports/deploy-web1-20261127T171839.123456Z-a1b2c3.json
latest_path:
  description: The latest file replaced, or an empty string without O(latest).
  returned: success
  type: str
'''

import datetime
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.deploy import record as dr


def run(module):
    p = module.params
    dr.check(p['host'], p['owner'], p['stamp'])
    finished = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    if p['kind'] == 'deploy':
        for mark in p['marks']:
            if not isinstance(mark, dict) or 'phase' not in mark or 'at' not in mark:
                raise dr.RecordError('marks must be a list of {phase, at}, not %r' % (mark,))
        if not p['marks']:
            raise dr.RecordError('marks must hold at least the first phase of the deploy')
        try:
            rec = dr.deploy(p['record'], p['marks'], time.time(), recover=p['recover'], needed=p['needed'],
                            dry_run=p['dry_run'], paused_at=p['paused_at'], resumed_at=p['resumed_at'],
                            finished=finished)
        except ValueError as exc:
            raise dr.RecordError('marks, paused_at and resumed_at must be epoch seconds: %s' % exc)
    else:
        rec = dict(p['record'], mode='check' if p['dry_run'] else 'apply', finished=finished)
    own, latest = dr.file_names(p['kind'], p['host'], p['stamp'], p['owner'], p['dry_run'])
    try:
        path, latest_path = dr.write(p['dest'], own, latest if p['latest'] else '', rec)
    except OSError as exc:
        raise dr.RecordError('cannot write the %s record in %s: %s' % (p['kind'], p['dest'], exc.strerror or exc))
    return dict(changed=False, record=rec, path=path, latest_path=latest_path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type='str', default='deploy', choices=['deploy', 'rollback']),
            dest=dict(type='path', required=True),
            host=dict(type='str', required=True),
            owner=dict(type='str', required=True),
            stamp=dict(type='str', required=True),
            dry_run=dict(type='bool', default=False),
            record=dict(type='dict', required=True),
            marks=dict(type='list', elements='dict', default=[]),
            recover=dict(type='bool', default=False),
            needed=dict(type='bool', default=True),
            paused_at=dict(type='str', default=''),
            resumed_at=dict(type='str', default=''),
            latest=dict(type='bool', default=False),
        ),
        supports_check_mode=False,
    )
    runner.run(module, run)


if __name__ == '__main__':
    main()
