# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings: a measured figure against its thresholds, with a verdict."""

from __future__ import annotations


def verdict(value, warning, critical):
    """'critical' at or past critical, 'warning' at or past warning, else 'ok' (None: no threshold)."""
    if critical is not None and value >= critical:
        return 'critical'
    if warning is not None and value >= warning:
        return 'warning'
    return 'ok'


def verdict_below(value, warning, critical):
    """For figures where lower is worse (a hit rate): 'critical' below critical, 'warning' below
    warning, else 'ok' (None: no threshold, or no figure)."""
    if value is None:
        return 'ok'
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
