#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: deploy_lock
short_description: Take or release the deploy lock in Redis, so that two deploys never run at once
version_added: 0.1.0
description:
  - One Redis key, taken with C(SET key value NX PX ttl). The value records the O(owner) token,
    a human O(holder) description and when it was taken. A second deploy asking for the lock
    fails with a sentence naming the holder and when the lock expires.
  - The lock is released only by its owner (a compare-and-delete Lua script), and it expires by
    itself after O(ttl) if its owner dies, so a crashed deploy cannot block the next one forever.
  - Check mode reads the key and returns the plan; it fails, like a real run, when another owner
    holds the lock (it is the deploy's pre-check).
extends_documentation_fragment:
  - oncall.runbooks.redis
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
attributes:
  check_mode:
    support: full
    description: Reads the lock; refuses when another owner holds it; writes nothing.
  diff_mode:
    support: full
    description: Shows the holder before and after.
options:
  name:
    description: The lock's name; the key is O(key_prefix) followed by it.
    type: str
    default: deploy
  key_prefix:
    description: Prefix of the lock key.
    type: str
    default: "oncall:lock:"
  owner:
    description: The token of this run; the same token releases the lock.
    type: str
    required: true
  holder:
    description: Who holds the lock, for the message another deploy gets (version, user, host).
    type: str
    default: a deploy
  state:
    description: V(present) takes the lock, V(absent) releases it.
    type: str
    default: present
    choices: [present, absent]
  ttl:
    description: How long the lock lives if it is never released (C(30m), C(2h) or seconds).
    type: str
    default: 1h
  force:
    description:
      - With O(state=absent), remove the lock even when another owner holds it (after a deploy
        died). Never needed otherwise.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Refuse a second deploy
  oncall.runbooks.deploy_lock:
    host: 127.0.0.1
    port: 6379
    owner: "{{ deploy_token }}"
    holder: "deploy of 2.0.0 by {{ lookup('env', 'USER') }}"
    ttl: 1h

- name: Release it (in the always section)
  oncall.runbooks.deploy_lock:
    host: 127.0.0.1
    port: 6379
    owner: "{{ deploy_token }}"
    state: absent
'''

RETURN = r'''
key:
  description: The lock key.
  returned: always
  type: str
  sample: "oncall:lock:deploy"
plan:
  description: The planned action (C(acquire) or C(release)), empty when nothing changes.
  returned: always
  type: list
  elements: dict
msg:
  description: The plan in one line.
  returned: always
  type: str
lock:
  description: The lock before the change (C(holder), C(acquired_at), C(ttl_ms)), or null when free.
  returned: always
  type: dict
held:
  description: Whether this owner holds the lock after the task (in check mode, as planned).
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import summarize
from ansible_collections.oncall.runbooks.plugins.module_utils.deploy import lock as dl
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn


def run(module):
    params = dict(module.params)
    try:
        params['ttl_ms'] = int(parse_duration(params['ttl'], 'ttl') * 1000)
    except DurationError as exc:
        raise dl.LockError(str(exc))
    if params['ttl_ms'] <= 0:
        raise dl.LockError('ttl must be more than 0s')
    key = params['key_prefix'] + params['name']
    client = rconn.connect(params)
    lock = dl.observe(client, key)
    actions = dl.plan(key, lock, params)
    public = None
    if lock is not None:
        public = dict((k, lock.get(k)) for k in ('holder', 'acquired_at', 'ttl_ms'))
        public['ours'] = lock.get('owner') == params['owner']
    if params['state'] == 'absent' and lock is not None and not actions:
        module.warn('%s, not by this owner: left in place (force=true removes it)' % dl.describe(key, lock))
    if not module.check_mode:
        for action in actions:
            dl.apply(client, key, action, params)
    held = params['state'] == 'present'
    result = dict(changed=bool(actions), key=key, plan=[a.to_dict() for a in actions],
                  msg=summarize(actions), lock=public, held=held)
    if module._diff:
        result['diff'] = dict(before={'holder': lock.get('holder') if lock else None},
                              after={'holder': params['holder'] if held else None})
    return result


def main():
    argument_spec = rconn.redis_argument_spec()
    argument_spec.update(
        name=dict(type='str', default='deploy'),
        key_prefix=dict(type='str', default='oncall:lock:', no_log=False),
        owner=dict(type='str', required=True, no_log=False),
        holder=dict(type='str', default='a deploy'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        ttl=dict(type='str', default='1h'),
        force=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    rconn.run_module(module, run, errors=(dl.LockError,))


if __name__ == '__main__':
    main()
