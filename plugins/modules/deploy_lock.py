#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: deploy_lock
short_description: Take, renew or release the deploy lock in Redis, so that two deploys never run at once
version_added: 0.1.0
description:
  - One Redis key, taken with C(SET key value NX PX ttl). The value records the O(owner) token,
    a human O(holder) description, when it was taken and last renewed, and the phase. A second
    deploy asking for the lock fails with a sentence naming the holder, the queues it paused,
    when the lock expires and how to take it over if that run is dead.
  - The lock is a lease. Its owner renews it (O(state=renewed)) at every phase for O(ttl); a
    renewal by a token that no longer owns the lock fails, so every step of a deploy is fenced
    by its token. A lock that was not renewed in time expires, and its run counts as dead.
  - Beside the lock, the key C(<lock key>:state) records the owner's phase and the queues it
    paused (O(paused)), with no expiry. The run that takes a free lock (or breaks a dead run's
    lock with O(break_owner)) adopts, in the same Lua call, the queues a dead run left paused
    and returns them as RV(adopted), so that it resumes them.
  - The lock is released only by its owner (a compare-and-delete Lua script). The state record
    goes with it, unless O(paused) names queues still paused, in which case it stays for the next run.
  - Check mode reads the key and returns the plan; it fails, like a real run, when another owner
    holds the lock (it is the deploy's pre-check).
extends_documentation_fragment:
  - oncall.runbooks.redis
  - oncall.runbooks.attributes.action_group_redis
  - oncall.runbooks.attributes
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
attributes:
  check_mode:
    support: full
    details: Reads the lock; refuses when another owner holds it; writes nothing.
  diff_mode:
    support: full
    details: Shows the holder before and after.
  idempotent:
    support: full
    details: Acquiring a lock this owner holds, or releasing one that is gone, changes nothing; renewing it is not reported as a change.
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
    description:
      - V(present) takes the lock (or keeps it when this owner holds it), V(renewed) extends
        this owner's lease by O(ttl) and fails when the lock is no longer this owner's,
        V(absent) releases it.
    type: str
    default: present
    choices: [present, renewed, absent]
  ttl:
    description:
      - The lease; the lock expires when it is not renewed within it.
      - A duration such as C(30m) or C(2h); a bare number is seconds.
    type: str
    default: 1h
  phase:
    description: The phase the owner enters, recorded in the lock and its state record.
    type: str
  paused:
    description:
      - The queues this owner has paused (each with C(name) and C(flavor)), written to the state
        record (V(present), V(renewed)); with V(absent), the queues still paused, kept in the
        record for the next run. Omitted with V(renewed), the record is left as it is.
    type: list
    elements: dict
  info:
    description: Facts about the run kept in the state record (version, previous version, host, started).
    type: dict
  break_owner:
    description:
      - With O(state=present), take over the lock when exactly this owner token holds it (that
        run is dead), adopting the queues it paused. Refused when another token holds it.
    type: str
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
    login_host: 127.0.0.1
    login_port: 6379
    owner: "{{ deploy_token }}"
    holder: "deploy of 2.0.0 by {{ lookup('env', 'USER') }}"
    ttl: 1h

- name: Release it (in the always section)
  oncall.runbooks.deploy_lock:
    login_host: 127.0.0.1
    login_port: 6379
    owner: "{{ deploy_token }}"
    state: absent

- name: Renew the lease at each phase (fails when the lock is no longer this run's)
  oncall.runbooks.deploy_lock:
    login_host: 127.0.0.1
    owner: "{{ deploy_token }}"
    state: renewed
    ttl: 10m
    phase: migrate
    paused: [{name: emails, flavor: bullmq}]
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
state:
  description: The state record beside the lock before the task (C(owner), C(phase), C(paused), C(info), C(updated_at)), or null.
  returned: always
  type: dict
adopted:
  description:
    - The record of a dead run whose paused queues this owner adopted when it took the lock
      (C(owner), C(phase), C(paused), C(info), C(updated_at)); in check mode, what it would adopt;
      null when there was none.
  returned: always
  type: dict
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
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
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
    for entry in params['paused'] or []:
        if not isinstance(entry.get('name'), str) or not entry['name']:
            raise dl.LockError('paused: each queue needs a name (got %r)' % (entry,))
    key = params['key_prefix'] + params['name']
    client = rconn.connect(params)
    lock = dl.observe(client, key)
    state = dl.observe_state(client, key)
    actions = dl.plan(key, lock, params, state)
    public = None
    if lock is not None:
        public = dict((k, lock.get(k)) for k in ('holder', 'acquired_at', 'renewed_at', 'phase', 'ttl_ms'))
        public['ours'] = lock.get('owner') == params['owner']
    if params['state'] == 'absent' and lock is not None and not actions:
        module.warn('%s, not by this owner: left in place (force=true removes it)' % dl.describe(key, lock))
    adopted = None
    if any(a.kind in ('acquire', 'break') for a in actions) and state and state.get('owner') != params['owner'] \
            and state.get('paused'):
        adopted = state  # what the acquire adopts (check mode: would adopt)
    applied = []
    if not module.check_mode:
        adopted = None
        for action in actions:
            adopted = dl.apply(client, key, action, params, lock) or adopted
            applied.append(action.to_dict())
    held = params['state'] != 'absent'
    result = dict(changed=any(a.kind != 'renew' for a in actions), key=key,
                  plan=[a.to_dict() for a in actions], actions=applied, msg=summarize(actions), lock=public,
                  held=held, state=state, adopted=adopted)
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
        state=dict(type='str', default='present', choices=['present', 'renewed', 'absent']),
        ttl=dict(type='str', default='1h'),
        force=dict(type='bool', default=False),
        phase=dict(type='str'),
        paused=dict(type='list', elements='dict'),
        info=dict(type='dict'),
        break_owner=dict(type='str', no_log=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner.run(module, run, describe=lambda exc: rconn.failure(exc, module.params), requires=['redis'])


if __name__ == '__main__':
    main()
