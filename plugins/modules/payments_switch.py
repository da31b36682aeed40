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
  - All or nothing - every name is parsed and the tables are checked (the configuration table
    with its key and boolean flag columns, the audit table's columns or the right to create it)
    before one transaction changes the flag and inserts the audit row; a bad name or table fails
    with one sentence and nothing changed, and RV(committed) says whether the change was committed.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.postgres
  - oncall.runbooks.attributes.action_group_postgres
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Reads the flag and says whether it would change it.
  diff_mode:
    support: full
    details: The flag before and after.
  idempotent:
    support: full
    details: The flag is only written when it differs from O(enabled).
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
    description:
      - Configuration table, optionally schema-qualified. A plain part is taken as written
        (case kept); any other name must be double-quoted (C("Audit Log"), C("a""b")).
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
    description:
      - Where each change is recorded (created when missing), optionally schema-qualified; named
        as O(table) is. An existing table must have the audit columns (C(id), C(key), C(old),
        C(new), C(actor), C(reason), C(changed_at)).
    type: str
    default: oncall_runbooks_audit
'''

EXAMPLES = r'''
- name: Stop accepting payments during the Stripe outage
  oncall.runbooks.payments_switch:
    login_db: payment_sandbox
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
committed:
  description: Whether a change of the flag and its audit row were committed by this run.
  returned: always
  type: bool
msg:
  description: One sentence - the flag, and whether it was committed, would change or was already so.
  returned: always
  type: str
plan:
  description: The change decided (C(kind) V(disable payments) or V(enable payments), C(object), C(from), C(to), C(reason)); empty when the flag is already so.
  returned: always
  type: list
  elements: dict
actions:
  description: The change committed, with its C(audit_row) id; empty in check mode and when nothing changed.
  returned: always
  type: list
  elements: dict
last_change:
  description: The newest audit row for this key (who, when, why), after the run.
  returned: always
  type: dict
  sample: {actor: alice, changed_at: "2026-11-22 14:02:11+00", old: true, new: false, reason: INC-2211, seconds_ago: 5400}
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

import getpass
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.stripe import switch as sw

NAME_OPTIONS = (('table', 2), ('audit_table', 2), ('key_column', 1), ('flag_column', 1))


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
    runner.run(module, run, describe=lambda exc: pgc.failure_of(exc, module.params), requires=['psycopg2'])


def run(module):
    p = module.params
    # Everything is validated before the database is touched.
    if p['enabled'] is False and not (p['reason'] or '').strip():
        module.fail_json(msg='disabling payments needs a reason (the incident, what is failing)')
    names = {}
    try:
        for option, parts in NAME_OPTIONS:
            names[option] = sw.parse_name(p[option], option, parts)
    except sw.SwitchError as exc:
        module.fail_json(msg='%s; nothing was changed' % exc, committed=False)
    actor = p['actor'] or os.environ.get('TOWER_USER_NAME') or os.environ.get('AWX_USER_NAME') or getpass.getuser()
    try:
        conn = pgc.connect(p, autocommit=False)
    except pgc.PgConnectionError as exc:
        module.fail_json(msg='%s; nothing was changed' % exc, committed=False)

    committed = False
    stage = 'reading the switch'
    try:
        cur = conn.cursor()
        quoted = dict((option, pgc.quote_ident(*parts)) for option, parts in names.items())
        table, audit = quoted['table'], quoted['audit_table']
        key_col, flag_col = quoted['key_column'], quoted['flag_column']
        cur.execute("SET LOCAL lock_timeout = '10s'")
        audit_exists = sw.check_tables(cur, quoted, names, p)
        cur.execute('SELECT %s FROM %s WHERE %s = %%s FOR UPDATE' % (flag_col, table, key_col), (p['key'],))
        rows = cur.fetchall()
        if len(rows) != 1:
            raise sw.SwitchError('%s has %s row with %s = %s' % (
                p['table'], 'more than one' if rows else 'no', p['key_column'], p['key']))
        previous = rows[0][0]
        changed = p['enabled'] is not None and previous is not p['enabled']
        audit_id = None
        if changed and not module.check_mode:
            stage = 'changing the switch'
            if not audit_exists:
                cur.execute('CREATE TABLE %s (id bigserial PRIMARY KEY, key text NOT NULL, old boolean, '
                            'new boolean, actor text NOT NULL, reason text, changed_at timestamptz NOT NULL DEFAULT now())'
                            % audit)
                audit_exists = True
            cur.execute('UPDATE %s SET %s = %%s WHERE %s = %%s' % (table, flag_col, key_col), (p['enabled'], p['key']))
            cur.execute('INSERT INTO %s (key, old, new, actor, reason) VALUES (%%s, %%s, %%s, %%s, %%s) RETURNING id'
                        % audit, (p['key'], previous, p['enabled'], actor, p['reason']))
            audit_id = cur.fetchone()[0]
        last = {}
        if audit_exists:  # read inside the transaction: nothing can fail after the commit
            cur.execute('SELECT actor, changed_at::text, old, new, reason, '
                        'extract(epoch FROM now() - changed_at)::int FROM %s WHERE key = %%s '
                        'ORDER BY changed_at DESC, id DESC LIMIT 1' % audit, (p['key'],))
            found = cur.fetchone()
            if found:
                last = dict(zip(('actor', 'changed_at', 'old', 'new', 'reason', 'seconds_ago'), found))
        if audit_id is not None:
            stage = 'committing the switch'
            conn.commit()
            committed = True
        else:
            conn.rollback()
    except sw.SwitchError as exc:
        conn.rollback()
        module.fail_json(msg='%s; nothing was changed' % exc, committed=False)
    except pgc.psycopg2.Error as exc:
        try:
            conn.rollback()
        except pgc.psycopg2.Error:
            pass
        # The server refusing the COMMIT rolled it back; a connection lost during it leaves it unknown.
        lost = stage == 'committing the switch' and getattr(exc, 'pgcode', None) is None
        outcome = 'its outcome is unknown: read the switch again' if lost else 'nothing was changed'
        module.fail_json(msg='%s while %s; %s' % (pgc.failure(exc, p), stage, outcome), committed=False)
    finally:
        conn.close()
    enabled = p['enabled'] if changed else previous
    plan = []
    if changed:
        plan.append({'action': 'enable payments' if enabled else 'disable payments', 'count': 1,
                     'object': '%s %s = %s' % (p['table'], p['key_column'], p['key']),
                     'from': previous, 'to': enabled, 'reason': p['reason'] or ''})
    actions = [dict(plan[0], audit_row=audit_id)] if committed else []
    result = dict(changed=changed, committed=committed, previous=previous, enabled=enabled, last_change=last,
                  plan=plan, actions=actions,
                  msg=('payments %s: %s' % ('enabled' if enabled else 'disabled',
                                            'committed with audit row %s' % audit_id if committed
                                            else ('would change (check mode)' if changed else 'already so'))))
    if module._diff:
        result['diff'] = dict(before='%s: %s\n' % (p['key'], previous), after='%s: %s\n' % (p['key'], enabled))
    return result


if __name__ == '__main__':
    main()
