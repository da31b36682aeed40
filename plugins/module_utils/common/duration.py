# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One parser for every duration option of the collection (DESIGN.md, Conventions)."""

from __future__ import annotations

import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

_UNITS = {
    'ms': 0.001,
    's': 1,
    'm': 60,
    'h': 3600,
    'd': 86400,
    'w': 604800,
}

_PART = re.compile(r'(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)')


class DurationError(OncallError, ValueError):
    """Raised with a one-sentence message when a duration cannot be parsed."""


def parse_duration(value, option='duration'):
    """Return *value* as seconds (float).

    Accepts a number of seconds (int, float or digit string) or a string made of
    one or more ``<number><unit>`` parts with units ``ms s m h d w``, e.g. ``30s``,
    ``10m``, ``24h``, ``7d`` or ``1h30m``. Negative durations are refused.
    """
    if isinstance(value, bool) or value is None:
        raise DurationError('%s must be a duration such as 30s, 10m, 24h or 7d, not %r' % (option, value))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if re.fullmatch(r'\d+(?:\.\d+)?', text):
            seconds = float(text)
        else:
            compact = text.replace(' ', '')
            parts = _PART.findall(compact)
            if not parts or ''.join(n + u for n, u in parts) != compact:
                raise DurationError(
                    '%s must be a duration such as 30s, 10m, 24h or 7d, not %r' % (option, value))
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds < 0:
        raise DurationError('%s must not be negative, got %r' % (option, value))
    return seconds


def format_duration(seconds):
    """Render seconds compactly for plans and reports (``90061`` -> ``1d1h1m1s``)."""
    seconds = int(round(seconds))
    if seconds == 0:
        return '0s'
    out = []
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60), ('s', 1)):
        if seconds >= size:
            out.append('%d%s' % (seconds // size, unit))
            seconds %= size
    return ''.join(out)
