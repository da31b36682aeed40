# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, then apply (DESIGN.md): the one shape of a plan item and of an applied result.

A plan item (and an applied action, and a skipped item) is a dict with

- ``object``: what it acts on (a queue, a table, a file, a PaymentIntent);
- ``action``: what it does to it (``pause``, ``vacuum``, ``remove``, ``refund``);
- ``count``: how many items (jobs, keys, rows; 1 for one object). In ``actions``, how many
  were really handled; ``None`` when it cannot be known before;
- ``reason``: why, one sentence (for a skipped item: why it was not done);
- ``statement`` (the SQL it runs) or ``ids`` (the first ``MAX_IDS`` job ids) where there are some;

plus what a module adds of its own (``target``, ``figures``, ``seconds``, ``destructive``).

A module that plans returns ``plan`` (what it would do), ``actions`` (what it did: empty in
check mode), ``skipped_items`` (what it will not do, and why), ``findings`` and ``msg``
(docs/plan.md). ``runbook_report`` reads exactly this shape.
"""

from __future__ import annotations

MAX_IDS = 100

RESULT_KEYS = ('plan', 'actions', 'skipped_items', 'findings', 'msg')


def item(action, obj, reason='', count=1, statement=None, ids=None, **extra):
    """One plan item (or applied action, or skipped item) in the collection's one shape."""
    out = {'object': obj, 'action': action, 'count': count, 'reason': reason}
    if statement is not None:
        out['statement'] = statement
    if ids is not None:
        out['ids'] = list(ids)[:MAX_IDS]
    out.update(extra)
    return out


class Action(object):
    """One planned change: what kind, on which object, why, and how many items."""

    __slots__ = ('kind', 'object', 'reason', 'count', 'ids', 'params', 'destructive')

    def __init__(self, kind, obj, reason, count=1, ids=None, params=None, destructive=False):
        self.kind = kind
        self.object = obj
        self.reason = reason
        self.count = count
        self.ids = list(ids or [])[:MAX_IDS]
        self.params = dict(params or {})
        self.destructive = destructive

    def to_dict(self):
        # 'kind' is the 0.0 name of 'action', kept while tests and playbooks still read it
        return item(self.kind, self.object, self.reason, self.count, ids=self.ids,
                    destructive=self.destructive, kind=self.kind)


def shaped(result):
    """result with every key of the applied-result shape (a module that plans returns it)."""
    result.setdefault('plan', [])
    result.setdefault('actions', [])
    result.setdefault('skipped_items', [])
    result.setdefault('findings', [])
    if not result.get('msg'):
        result['msg'] = '; '.join('%s %s (%s): %s' % (p.get('action'), p.get('object'), p.get('count'), p.get('reason'))
                                  for p in result['plan']) or 'nothing to do'
    return result


def summarize(actions):
    """A one-line, human summary of a plan for messages and reports."""
    if not actions:
        return 'nothing to do'
    return '; '.join('%s %s (%d): %s' % (a.kind, a.object, a.count, a.reason) for a in actions)
