# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings: a measured figure against its thresholds, with a verdict.

The collection's one threshold rule, for every module and role: a figure **at or past** a
threshold crosses it (``>=`` for figures where higher is worse, ``<`` for figures where lower
is worse, such as a hit rate below 0.8). A threshold that can never be crossed (a ratio
threshold above 1.0, a warning at or past the critical one) is refused by ``check_thresholds``.

Verdicts are ``ok``, ``warning``, ``critical`` and ``unknown`` (the observer could not look).
A run's verdict is the worst of its findings, in the order ``VERDICT_ORDER``: a critical
finding outweighs everything; ``unknown`` ranks below ``warning`` because it says nothing is
known to be wrong, but above ``ok`` because nothing is known to be right either.
"""

from __future__ import annotations

import math

VERDICTS = ('ok', 'warning', 'critical', 'unknown')
# worst last
VERDICT_ORDER = ('ok', 'unknown', 'warning', 'critical')


def worst(verdicts):
    """The worst of the verdicts (an iterable of verdict strings or finding dicts); 'ok' if none.

    Anything that is not one of the four verdicts counts as 'unknown'."""
    rank = 0
    for v in verdicts or ():
        if isinstance(v, dict):
            v = v.get('verdict', 'ok')
        v = str(v).lower()
        rank = max(rank, VERDICT_ORDER.index(v) if v in VERDICT_ORDER else 1)
    return VERDICT_ORDER[rank]


def fails(verdict_, fail_on):
    """Whether a run whose verdict is verdict_ fails its job under oncall_fail_on=fail_on.

    ``critical`` (the default) fails on critical only; ``warning`` fails on anything but ok
    (so also on unknown: nothing could be checked); ``never`` never fails."""
    fail_on = str(fail_on or 'critical').lower()
    if fail_on == 'never':
        return False
    if fail_on == 'warning':
        return verdict_ != 'ok'
    if fail_on == 'critical':
        return verdict_ == 'critical'
    raise ValueError("oncall_fail_on must be one of critical, warning, never, not '%s'" % fail_on)


def check_thresholds(option, warning, critical, higher_is_worse=True, maximum=None):
    """Refuse thresholds that can never fire or contradict each other (one sentence)."""
    for name, value in (('warning', warning), ('critical', critical)):
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError('%s %s must be a finite number, not %s' % (option, name, value))
        if maximum is not None and value > maximum:
            raise ValueError('%s %s is %s, above %s: it could never be reached'
                             % (option, name, value, maximum))
    if warning is not None and critical is not None:
        if (higher_is_worse and warning >= critical) or (not higher_is_worse and warning <= critical):
            raise ValueError('%s warning (%s) is at or past its critical threshold (%s): the warning could never be seen'
                             % (option, warning, critical))


def verdict(value, warning, critical):
    """'critical' at or past critical, 'warning' at or past warning, else 'ok' (None: no threshold)."""
    if critical is not None and value >= critical:
        return 'critical'
    if warning is not None and value >= warning:
        return 'warning'
    return 'ok'


def verdict_below(value, warning, critical):
    """For figures where lower is worse (a hit rate): 'critical' below critical, 'warning' below
    warning, else 'ok' (None: no threshold). No figure at all is 'unknown', never 'ok'."""
    if value is None:
        return 'unknown'
    if critical is not None and value < critical:
        return 'critical'
    if warning is not None and value < warning:
        return 'warning'
    return 'ok'


def finding(obj, figure, threshold, verdict_, **extra):
    """One finding as every module returns it."""
    out = {'object': obj, 'figure': figure, 'threshold': threshold, 'verdict': verdict_}
    out.update(extra)
    return out
