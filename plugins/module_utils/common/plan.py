# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, then apply (DESIGN.md): the shared shape of a plan and of its actions."""

from __future__ import annotations

MAX_IDS = 100


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
        return {
            'kind': self.kind,
            'object': self.object,
            'reason': self.reason,
            'count': self.count,
            'ids': list(self.ids),
            'destructive': self.destructive,
        }


def summarize(actions):
    """A one-line, human summary of a plan for messages and reports."""
    if not actions:
        return 'nothing to do'
    return '; '.join('%s %s (%d): %s' % (a.kind, a.object, a.count, a.reason) for a in actions)
