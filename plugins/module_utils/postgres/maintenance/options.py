# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_maintenance's options: the operations and their defaults, the limits, the validators, and
``validate``, the one check of every option before anything connects; ``in_scope`` (schemas,
tables, exclude_tables); MaintenanceError, which every refusal raises."""

from __future__ import annotations

import fnmatch
import math
import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, format_duration, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common import size
from ansible_collections.oncall.runbooks.plugins.module_utils.postgres import connection as pgc
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

OPERATIONS = ('terminate', 'vacuum', 'analyze', 'reindex')

DEFAULTS = {
    'vacuum': {'min_dead_ratio': 0.1, 'min_dead_tuples': 1000, 'freeze_min_xid_age': None,
               'full': False},
    'analyze': {'min_modified_ratio': 0.1, 'max_stats_age': '7d'},
    'reindex': {'min_bloat_ratio': 0.3, 'min_size': '1MB', 'invalid': True, 'gin_min_pending_pages': None},
    'terminate': {'idle_for': '10m', 'idle_in_transaction_for': '5m', 'active_for': None,
                  'users': [], 'exclude_users': [], 'applications': [],
                  'include_superusers': False},
}

# pgstattuple measures tables and indexes whose statistics counters cannot be trusted; it reads
# every page that is not all-visible, so only relations up to this size are measured.
DEFAULT_MEASURE_MAX_SIZE = '1GB'


class MaintenanceError(OncallError):
    """A refusal or failure phrased for the operator."""


INT_MAX = 2 ** 63 - 1
XID_HORIZON = 2 ** 31
PG_TIMEOUT_MAX_S = (2 ** 31 - 1) / 1000.0  # lock_timeout and statement_timeout are int milliseconds
RUNTIME_MAX_S = 366 * 86400
_NUMBER = re.compile(r'[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?', re.ASCII)
_INTEGER = re.compile(r'[+-]?\d+', re.ASCII)


def _shown(value):
    """A value as quoted in an error sentence: repr, one line, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def _bad(option, expected, value):
    return MaintenanceError('%s must be %s, not %s' % (option, expected, _shown(value)))


def check_number(value, option, low, high, low_open=False, high_open=False, integer=False):
    """A finite number (or a string of one) within [low, high]; bools, None, NaN and inf refused."""
    if integer:
        expected = 'an integer from %d to %d' % (low, high)
    elif low_open or high_open:
        expected = 'a number greater than %g and less than %g' % (low, high)
    else:
        expected = 'a number from %g to %g' % (low, high)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(option, expected, value)
    if isinstance(value, str):
        text = value.strip()
        if not (_INTEGER if integer else _NUMBER).fullmatch(text):
            raise _bad(option, expected, value)
        number = int(text) if integer else float(text)
    else:
        number = value
    if isinstance(number, float):
        if not math.isfinite(number) or (integer and not number.is_integer()):
            raise _bad(option, expected, value)
        if integer:
            number = int(number)
    if number < low or number > high or (low_open and number == low) or (high_open and number == high):
        raise _bad(option, expected, value)
    return number


def check_bool(value, option):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLS:
        return _BOOLS[value.strip().lower()]
    raise _bad(option, 'true or false', value)


_BOOLS = {'true': True, 'yes': True, 'on': True, '1': True, 'false': False, 'no': False, 'off': False, '0': False}


def check_names(value, option):
    """A list of strings (None: empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(option, 'a list of names', value)
    return value


def check_duration(value, option, high=None):
    """None or '' (unset), else a duration in seconds, finite and at most *high*."""
    if value is None or value == '':
        return None
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, str) and len(value) > 64:
        raise _bad(option, 'a duration such as 30s, 10m, 24h or 7d', value)
    try:
        seconds = parse_duration(value, option)
    except DurationError as exc:
        raise MaintenanceError(str(exc))
    if not math.isfinite(seconds) or (high is not None and seconds > high):
        raise MaintenanceError('%s must be at most %s, not %s'
                               % (option, format_duration(high or 0), _shown(value)))
    return seconds


# vacuum_cost_delay is a real number of milliseconds from 0 to 100, vacuum_cost_limit an integer
# from 1 to 10000 (PostgreSQL's own ranges); the pause between statements at most an hour.
COST_DELAY_MAX_S = 0.1
COST_LIMIT_MAX = 10000
PAUSE_MAX_S = 3600


def check_cost_delay(value):
    """vacuum_cost_delay as milliseconds (float), or None when unset (the server's setting).

    A duration such as 2ms; a bare number is seconds, as for every duration option, so 2 is
    refused (more than 100ms) rather than taken as milliseconds."""
    if value is None or value == '':
        return None
    if isinstance(value, str) and len(value) > 64 or isinstance(value, float) and not math.isfinite(value):
        raise _bad('vacuum_cost_delay', 'a duration from 0ms to 100ms such as 2ms', value)
    try:
        seconds = parse_duration(value, 'vacuum_cost_delay')
    except DurationError:
        raise _bad('vacuum_cost_delay', 'a duration from 0ms to 100ms such as 2ms', value)
    if not math.isfinite(seconds) or seconds > COST_DELAY_MAX_S:
        raise _bad('vacuum_cost_delay', 'a duration from 0ms to 100ms such as 2ms', value)
    return round(seconds * 1000.0, 3)


def parse_size(value, option='size'):
    """'1MB' / '512kB' / bytes -> bytes; the error names *option*."""
    try:
        return size.parse_size(value, option)
    except size.SizeError as exc:
        raise MaintenanceError(str(exc))


def normalise(params):
    """Validate the operations dict and fill in defaults; returns {op: settings}.

    Every setting is checked here, before anything connects: a wrong type, an empty, negative,
    huge, NaN or infinite value is refused with one sentence naming the setting."""
    ops = params.get('operations')
    if not isinstance(ops, dict) or not ops:
        raise MaintenanceError('operations must name at least one of %s' % ', '.join(OPERATIONS))
    out = {}
    for name, settings in ops.items():
        if name not in OPERATIONS:
            raise MaintenanceError('unknown operation %s in operations: choose from %s'
                                   % (_shown(name), ', '.join(OPERATIONS)))
        settings = {} if settings is None else settings
        if not isinstance(settings, dict):
            raise MaintenanceError('operations.%s must be a dict of settings ({} for defaults), not %s'
                                   % (name, _shown(settings)))
        unknown = [k for k in settings if k not in DEFAULTS[name]]
        if unknown:
            raise MaintenanceError('operations.%s has unknown setting(s) %s; known: %s'
                                   % (name, ', '.join(sorted(_shown(k) for k in unknown)),
                                      ', '.join(sorted(DEFAULTS[name]))))
        merged = dict(DEFAULTS[name])
        merged.update(settings)
        out[name] = merged
    if 'vacuum' in out:
        v = out['vacuum']
        v['min_dead_ratio'] = check_number(v['min_dead_ratio'], 'operations.vacuum.min_dead_ratio', 0, 1)
        v['min_dead_tuples'] = check_number(v['min_dead_tuples'], 'operations.vacuum.min_dead_tuples', 0,
                                            INT_MAX, integer=True)
        if v['freeze_min_xid_age'] not in (None, ''):
            v['freeze_min_xid_age'] = check_number(v['freeze_min_xid_age'], 'operations.vacuum.freeze_min_xid_age',
                                                   1, XID_HORIZON, integer=True)
        else:
            v['freeze_min_xid_age'] = None
        v['full'] = check_bool(v['full'], 'operations.vacuum.full')
        if v['full'] and not params.get('allow_blocking'):
            raise MaintenanceError('VACUUM FULL takes an ACCESS EXCLUSIVE lock for the whole rewrite: '
                                   'set allow_blocking: true to allow it')
    if 'analyze' in out:
        a = out['analyze']
        a['min_modified_ratio'] = check_number(a['min_modified_ratio'], 'operations.analyze.min_modified_ratio',
                                               0, 1)
        a['max_stats_age_s'] = check_duration(a['max_stats_age'], 'operations.analyze.max_stats_age',
                                              RUNTIME_MAX_S * 100)
    if 'reindex' in out:
        r = out['reindex']
        r['min_bloat_ratio'] = check_number(r['min_bloat_ratio'], 'operations.reindex.min_bloat_ratio', 0, 1,
                                            low_open=True, high_open=True)
        r['min_size_b'] = parse_size(r['min_size'], 'operations.reindex.min_size')
        r['invalid'] = check_bool(r['invalid'], 'operations.reindex.invalid')
        if r['gin_min_pending_pages'] not in (None, ''):
            r['gin_min_pending_pages'] = check_number(r['gin_min_pending_pages'],
                                                      'operations.reindex.gin_min_pending_pages', 1, INT_MAX,
                                                      integer=True)
        else:
            r['gin_min_pending_pages'] = None
    if 'terminate' in out:
        t = out['terminate']
        for key in ('idle_for', 'idle_in_transaction_for', 'active_for'):
            t[key + '_s'] = check_duration(t[key], 'operations.terminate.' + key, RUNTIME_MAX_S * 100)
        for key in ('users', 'exclude_users', 'applications'):
            t[key] = check_names(t[key], 'operations.terminate.' + key)
        t['include_superusers'] = check_bool(t['include_superusers'], 'operations.terminate.include_superusers')
    return out


def validate(params):
    """The one validation step of pg_maintenance, before anything is touched: fills in
    lock_timeout_s, statement_timeout_s, max_runtime_s and measure_max_size_b and returns the
    normalised operations."""
    try:
        pgc.check_params(params)  # login_port, connect_timeout, ssl_cert and ssl_key
    except pgc.PgConnectionError as exc:
        raise MaintenanceError(str(exc))
    params['lock_timeout_s'] = check_duration(params.get('lock_timeout'), 'lock_timeout', PG_TIMEOUT_MAX_S)
    if not params['lock_timeout_s']:
        raise MaintenanceError('lock_timeout must be greater than 0: a maintenance statement must '
                               'never wait on a lock without limit')
    params['statement_timeout_s'] = check_duration(params.get('statement_timeout'), 'statement_timeout',
                                                   PG_TIMEOUT_MAX_S)
    params['max_runtime_s'] = check_duration(params.get('max_runtime'), 'max_runtime', RUNTIME_MAX_S)
    params['vacuum_cost_delay_ms'] = check_cost_delay(params.get('vacuum_cost_delay'))
    limit = params.get('vacuum_cost_limit')
    params['vacuum_cost_limit_n'] = (None if limit is None or limit == '' else
                                     check_number(limit, 'vacuum_cost_limit', 1, COST_LIMIT_MAX, integer=True))
    params['pause_s'] = check_duration(params.get('pause'), 'pause', PAUSE_MAX_S) or 0.0
    params['measure_max_size_b'] = parse_size(params.get('measure_max_size', DEFAULT_MEASURE_MAX_SIZE),
                                              'measure_max_size')
    for key in ('schemas', 'tables', 'exclude_tables'):
        if params.get(key) is not None:
            check_names(params[key], key)
    return normalise(params)


def in_scope(schema, name, params):
    schemas = params.get('schemas') or ['*']
    if not any(fnmatch.fnmatchcase(schema, p) for p in schemas):
        return False
    full = '%s.%s' % (schema, name)
    tables = params.get('tables') or []
    if tables and not any(fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(name, p) for p in tables):
        return False
    for pattern in params.get('exclude_tables') or []:
        if fnmatch.fnmatchcase(full, pattern) or fnmatch.fnmatchcase(name, pattern):
            return False
    return True
