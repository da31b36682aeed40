# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes as users write them: 512kB, 1MB, 1.5GB, or a number of bytes."""

from __future__ import annotations

import math
import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

# Larger than any disk this collection will see, small enough to stay exact in a float.
MAX_SIZE = 1 << 60

_SIZE = re.compile(r'([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)(TB|GB|MB|KB|B)?', re.ASCII)
_UNITS = {'TB': 1 << 40, 'GB': 1 << 30, 'MB': 1 << 20, 'KB': 1 << 10, 'B': 1, None: 1}


class SizeError(OncallError, ValueError):
    pass


def parse_size(value, option=None):
    """'1MB' / '512kB' / bytes -> bytes.

    Negative, NaN, infinite, boolean and absurdly large values are refused with one sentence
    that names *option* when it is given."""
    what = '%s must be a size such as 1MB or 512kB' % option if option else 'not a size such as 1MB or 512kB'
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + '...'
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SizeError('%s, not %s' % (what, shown) if option else '%s is %s' % (shown, what))
    if isinstance(value, (int, float)):
        number = value
    else:
        match = _SIZE.fullmatch(value.strip().upper().replace(' ', ''))
        if not match:
            raise SizeError('%s, not %s' % (what, shown) if option else '%s is %s' % (shown, what))
        number = float(match.group(1)) * _UNITS[match.group(2)]
    if isinstance(number, float) and not math.isfinite(number) or number < 0 or number > MAX_SIZE:
        raise SizeError('%s from 0 to 1024TB, not %s' % (what, shown) if option
                        else '%s is %s from 0 to 1024TB' % (shown, what))
    return int(number)
