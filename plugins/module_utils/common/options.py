# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of option values the argument spec cannot express (ranges, finiteness, lengths, the
fields of untyped list and dict options), each refusal one sentence naming the option.

A module runs these in one validation step before it touches anything (issue 14, "Bad input").
Values are shown shortened: a 100,000-character value never ends up in a message.
"""

from __future__ import annotations

import math
import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import check_thresholds
from ansible_collections.oncall.runbooks.plugins.module_utils.common.size import SizeError, parse_size
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

_DECIMAL = re.compile(r'[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?', re.ASCII)
_INTEGER = re.compile(r'[+-]?\d+', re.ASCII)


class OptionError(OncallError, ValueError):
    """A refused option value, phrased as one sentence that names the option."""


def shown(value, limit=40):
    """A value as a message may show it: repr, one line, at most limit characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _fmt(bound):
    return str(int(bound)) if float(bound).is_integer() else '%g' % bound


def number(option, value, low=None, high=None, integer=False, low_open=False):
    """value as an int (integer) or float within [low, high] (low excluded with low_open).

    Numbers and ASCII decimal strings ("5", "0.8") are taken; booleans, NaN, infinities,
    other digits and anything else are refused."""
    kind = 'a whole number' if integer else 'a number'
    if low is not None and high is not None:
        kind += ' above %s and at most %s' % (_fmt(low), _fmt(high)) if low_open else \
            ' from %s to %s' % (_fmt(low), _fmt(high))
    elif low is not None:
        kind += ' above %s' % _fmt(low) if low_open else (' of at least %s' % _fmt(low))
    if isinstance(value, str) and len(value) <= 64 and \
            (_INTEGER.fullmatch(value.strip()) if integer else _DECIMAL.fullmatch(value.strip())):
        value = int(value) if integer else float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError('%s must be %s, not %s' % (option, kind, shown(value)))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OptionError('%s must be %s, not %s' % (option, kind, shown(value)))
        if integer:
            if not value.is_integer():
                raise OptionError('%s must be %s, not %s' % (option, kind, shown(value)))
            value = int(value)
    if (low is not None and (value < low or (low_open and value == low))) or \
            (high is not None and value > high):
        raise OptionError('%s must be %s, not %s' % (option, kind, shown(value)))
    return value


def text(option, value, max_length=1024, empty=False, pattern=None, what=None):
    """value as a string of at most max_length characters (empty only with empty=True), matching
    pattern (a compiled regex, fullmatch) when given; what says what is expected."""
    if not isinstance(value, str):
        raise OptionError('%s must be %s, not %s' % (option, what or 'a string', shown(value)))
    if not value and not empty:
        raise OptionError('%s must not be empty' % option)
    if len(value) > max_length:
        raise OptionError('%s is %d characters long, more than %d' % (option, len(value), max_length))
    if pattern is not None and value and not pattern.fullmatch(value):
        raise OptionError('%s must be %s, not %s' % (option, what or 'a plain name', shown(value)))
    return value


def duration(option, value, high=None, low=0):
    """A duration (30s, 10m, 24h or seconds) in seconds, finite, within [low, high]."""
    if isinstance(value, str) and len(value) > 64 or isinstance(value, float) and not math.isfinite(value):
        raise OptionError('%s must be a duration such as 30s, 10m, 24h or 7d, not %s' % (option, shown(value)))
    try:
        seconds = parse_duration(value, option)
    except DurationError as exc:
        raise OptionError(str(exc).replace(repr(value), shown(value)))
    if isinstance(value, str) and not value.isascii():
        raise OptionError('%s must be a duration such as 30s, 10m, 24h or 7d, not %s' % (option, shown(value)))
    if not math.isfinite(seconds) or seconds < low or (high is not None and seconds > high):
        raise OptionError('%s must be a duration from %gs to %gs, not %s'
                          % (option, low, high if high is not None else float('inf'), shown(value)))
    return seconds


def size(option, value):
    """A size (512kB, 1MB, bytes) in bytes; parse_size refuses negative, NaN and huge sizes."""
    if isinstance(value, str) and len(value) > 64:
        raise OptionError('%s must be a size such as 1MB or 512kB, not %s' % (option, shown(value)))
    try:
        return parse_size(value, option)
    except SizeError as exc:
        raise OptionError(str(exc))


def flag(option, value):
    """A boolean field of an untyped dict: true/false as YAML or Ansible write them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ('yes', 'true', 'on', '1', 'no', 'false', 'off', '0'):
        return value.strip().lower() in ('yes', 'true', 'on', '1')
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise OptionError('%s must be true or false, not %s' % (option, shown(value)))


def fields(option, value, allowed):
    """value as a dict whose keys are among allowed (an entry of a list of dicts)."""
    if not isinstance(value, dict):
        raise OptionError('%s must be a dictionary, not %s' % (option, shown(value)))
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise OptionError('%s has unknown field(s) %s: use %s'
                          % (option, shown(', '.join(unknown)), ', '.join(sorted(allowed))))
    return value


def ordered(warning_option, warning, critical_option, critical, higher_is_worse=True):
    """Refuse a warning threshold at or past its critical one (the rule of findings.check_thresholds)."""
    try:
        check_thresholds(warning_option, warning, critical, higher_is_worse)
    except ValueError:
        raise OptionError('%s (%s) is at or %s %s (%s): the warning could never be seen'
                          % (warning_option, shown(warning), 'above' if higher_is_worse else 'below',
                             critical_option, shown(critical)))


def _infinite(value):
    if isinstance(value, float):
        return math.isinf(value)
    if isinstance(value, str) and len(value) <= 64:
        return value.strip().lstrip('+-').lower() in ('inf', 'infinity')
    return False


def _loosened(spec):
    """spec with its int options raw and its dict options with suboptions raw (without them)."""
    out = {}
    for name, desc in spec.items():
        desc = dict(desc)
        if desc.get('type') == 'int':
            desc['type'] = 'raw'
        if desc.get('elements') == 'int':
            desc['elements'] = 'raw'
        if desc.get('options'):
            if desc.get('type') == 'dict':
                desc = dict((k, v) for k, v in desc.items() if k not in ('options', 'required_if',
                                                                         'mutually_exclusive', 'required_one_of',
                                                                         'required_together', 'required_by'))
                desc['type'] = 'raw'
            else:
                desc['options'] = _loosened(desc['options'])
        out[name] = desc
    return out


def _given(params, name, desc):
    value = (params or {}).get(name)
    for alias in desc.get('aliases') or ():
        if value is None and isinstance(params, dict):
            value = params.get(alias)
    return value


def _infinite_int(spec, params, prefix=''):
    """The name of the first int option (or field of a dict option) given an infinity."""
    for name, desc in spec.items():
        value = _given(params, name, desc)
        if desc.get('type') == 'int' and _infinite(value):
            return prefix + name
        if desc.get('elements') == 'int' and isinstance(value, list) and any(_infinite(v) for v in value):
            return prefix + name
        if desc.get('options'):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    found = _infinite_int(desc['options'], item, prefix + name + (
                        '[%d].' % i if isinstance(value, list) else '.'))
                    if found:
                        return found
    return None


def _not_a_dict(spec, params):
    """The first dict option with suboptions given something other than a dictionary (which
    AnsibleModule answers with a TypeError, or a sentence that names no option)."""
    for name, desc in spec.items():
        value = _given(params, name, desc)
        if desc.get('type') == 'dict' and desc.get('options') and value is not None and not isinstance(value, dict):
            return name
    return None


def ansible_module(module_class, **kwargs):
    """module_class(**kwargs), where two of AnsibleModule's own checks would not be one
    sentence naming the option: an int option given an infinity ("inf", .inf: OverflowError),
    and a dict option with suboptions given a number or a string (TypeError, or "dictionary
    requested, could not parse JSON or key=value")."""
    spec = kwargs['argument_spec']
    from ansible.module_utils import basic
    raw = {}
    if getattr(basic, '_ANSIBLE_ARGS', None) is not None:  # as AnsiballZ and patch_module_args set them
        try:
            raw = basic._load_params()  # pylint: disable=protected-access
        except Exception:  # pylint: disable=broad-except
            raw = {}  # AnsibleModule reports unreadable arguments itself
    msg = None
    name = _not_a_dict(spec, raw)
    if name:
        msg = '%s must be a dictionary of its options, not %s' % (name, shown(_given(raw, name, spec[name])))
    else:
        try:
            return module_class(**kwargs)
        except OverflowError:
            module = module_class(**dict(kwargs, argument_spec=_loosened(spec)))
            msg = '%s must be a whole number, not infinity' % (_infinite_int(spec, module.params) or 'an int option')
            module.fail_json(msg=msg)
    module = module_class(**dict(kwargs, argument_spec=_loosened(spec)))
    module.fail_json(msg=msg)
