# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes as users write them: 512kB, 1MB, 1.5GB, or a number of bytes."""

from __future__ import annotations


class SizeError(ValueError):
    pass


def parse_size(value):
    """'1MB' / '512kB' / bytes -> bytes."""
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().upper().replace(' ', '')
    for unit, mult in (('TB', 1 << 40), ('GB', 1 << 30), ('MB', 1 << 20), ('KB', 1 << 10), ('B', 1)):
        if text.endswith(unit):
            try:
                return int(float(text[:-len(unit)]) * mult)
            except ValueError:
                break
    if text.isdigit():
        return int(text)
    raise SizeError('%r is not a size such as 1MB or 512kB' % value)
