#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: payments_switch
short_description: The payments kill switch - a flag in the configuration table, with who, when and why recorded
version_added: 0.1.0
description:
  - Runbook 004's "Stop accepting new payments" (C(UPDATE configuration SET payments_enabled =
    false WHERE key = 'PAYMENTS_ENABLED')), made idempotent and accountable. The flag is
    changed only when it differs, in one transaction with a row in an audit table saying who
    changed it, when, from what, to what, and why.
  - Disabling needs a O(reason). The audit table is created when missing.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.postgres
attributes:
  check_mode:
    support: full
    description: Reads the flag and says whether it would change it.
  diff_mode:
    support: full
    description: The flag before and after.
options:
  enabled:
    description:
      - Whether payments should be accepted. Leave unset to read the flag and its last change
        without changing anything.
    type: bool
  reason:
    description: Why (an incident id, "Stripe outage"); required to disable.
    type: str
  actor:
    description: Who; defaults to the AWX user or the controller's login.
    type: str
  table:
    description: Configuration table, optionally schema-qualified.
    type: str
    default: marketplace.configuration
  key_column:
    description: Column naming the setting.
    type: str
    default: key
  key:
    description: The setting's key.
    type: str
    default: PAYMENTS_ENABLED
  flag_column:
    description: Boolean column holding the flag.
    type: str
    default: payments_enabled
  audit_table:
    description: Where each change is recorded (created when missing).
    type: str
    default: oncall_runbooks_audit
'''

EXAMPLES = r'''
- name: Stop accepting payments during the Stripe outage
  oncall.runbooks.payments_switch:
    db: payment_sandbox
    enabled: false
    reason: "INC-2211 Stripe API returning 500"
'''

RETURN = r'''
enabled:
  description: The flag after the run.
  returned: always
  type: bool
previous:
  description: The flag before the run.
  returned: always
  type: bool
last_change:
  description: The newest audit row for this key (who, when, why), after the run.
  returned: always
  type: dict
  sample: {actor: alice, changed_at: "2026-11-22 14:02:11+00", old: true, new: false, reason: INC-2211, seconds_ago: 5400}
'''

import getpass
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc


def ident(conn, dotted):
    return pgc.quote_ident(conn, *[p.strip('"') for p in dotted.split('.')])


def main():
    argument_spec = pgc.postgres_argument_spec()
    argument_spec.update(
        enabled=dict(type='bool'),
        reason=dict(type='str'),
        actor=dict(type='str'),
        table=dict(type='str', default='marketplace.configuration'),
        key_column=dict(type='str', default='key', no_log=False),
        key=dict(type='str', default='PAYMENTS_ENABLED', no_log=False),
        flag_column=dict(type='str', default='payments_enabled'),
        audit_table=dict(type='str', default='oncall_runbooks_audit'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if p['enabled'] is False and not p['reason']:
        module.fail_json(msg='disabling payments needs a reason (the incident, what is failing)')
    actor = p['actor'] or os.environ.get('TOWER_USER_NAME') or os.environ.get('AWX_USER_NAME') or getpass.getuser()
    try:
        conn = pgc.connect(p, autocommit=False)
        cur = conn.cursor()
        table, audit = ident(conn, p['table']), ident(conn, p['audit_table'])
        key_col, flag_col = ident(conn, p['key_column']), ident(conn, p['flag_column'])
        cur.execute('SELECT %s FROM %s WHERE %s = %%s FOR UPDATE' % (flag_col, table, key_col), (p['key'],))
        row = cur.fetchone()
        if row is None:
            module.fail_json(msg='%s has no row with %s = %s' % (p['table'], p['key_column'], p['key']))
        previous = bool(row[0])
        changed = p['enabled'] is not None and previous != p['enabled']
        if changed and not module.check_mode:
            cur.execute('CREATE TABLE IF NOT EXISTS %s (id bigserial PRIMARY KEY, key text NOT NULL, old boolean, '
                        'new boolean, actor text NOT NULL, reason text, changed_at timestamptz NOT NULL DEFAULT now())'
                        % audit)
            cur.execute('UPDATE %s SET %s = %%s WHERE %s = %%s' % (table, flag_col, key_col), (p['enabled'], p['key']))
            cur.execute('INSERT INTO %s (key, old, new, actor, reason) VALUES (%%s, %%s, %%s, %%s, %%s)' % audit,
                        (p['key'], previous, p['enabled'], actor, p['reason']))
        conn.commit()
        last = {}
        cur.execute('SELECT to_regclass(%s) IS NOT NULL', (p['audit_table'],))
        if cur.fetchone()[0]:
            cur.execute('SELECT actor, changed_at::text, old, new, reason, '
                        'extract(epoch FROM now() - changed_at)::int FROM %s WHERE key = %%s '
                        'ORDER BY changed_at DESC, id DESC LIMIT 1' % audit, (p['key'],))
            found = cur.fetchone()
            if found:
                last = dict(zip(('actor', 'changed_at', 'old', 'new', 'reason', 'seconds_ago'), found))
        conn.rollback()
    except pgc.PgConnectionError as exc:
        module.fail_json(msg=str(exc))
    except pgc.psycopg2.Error as exc:
        module.fail_json(msg=pgc.failure(exc, p))
    result = dict(changed=changed, previous=previous, enabled=p['enabled'] if changed else previous,
                  last_change=last)
    if module._diff:
        result['diff'] = dict(before='%s: %s\n' % (p['key'], previous), after='%s: %s\n' % (p['key'], result['enabled']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
