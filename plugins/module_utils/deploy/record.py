# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy and rollback records (the deploy_record module's logic): what a run's outcome was,
how long each phase took, how long the queues stayed paused, and where the record is written.
Private to the oncall.runbooks collection."""

from __future__ import annotations

import json
import os
import re

from ansible_collections.oncall.runbooks.plugins.module_utils.common.artifacts import (
    ArtifactError, open_dest, write_new, write_replace)

# An inventory name or a token ends up in a file name: letters, digits and . _ : - only, so that
# no name can climb out of the report directory or hide as a dot file.
HOST = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,200}$')
OWNER = re.compile(r'^[A-Za-z0-9]{6,64}$')
STAMP = re.compile(r'^[0-9]{8}T[0-9]{6}(\.[0-9]{1,6})?Z$')


class RecordError(ArtifactError):
    """A refused record (a name that cannot be a file name), phrased for the operator."""


def check(host, owner, stamp):
    if not isinstance(host, str) or not HOST.match(host):
        raise RecordError("host must be an inventory name of letters, digits, '.', '_', ':' or '-' (it names "
                          "the record's file), not %r" % (host,))
    if not isinstance(owner, str) or not OWNER.match(owner):
        raise RecordError('owner must be the run token, 6 to 64 letters or digits, not %r' % (owner,))
    if not isinstance(stamp, str) or not STAMP.match(stamp):
        raise RecordError('stamp must be a UTC time like 20261127T171839.123456Z, not %r' % (stamp,))


def outcome(recover, needed, dry_run, error, rolled_back, rollback_error):
    """One word for what the deploy did, decided in this order: a recovery run; nothing to do;
    a dry run; deployed; rolled back after a failure; the rollback failed too; failed."""
    if recover:
        return 'recovery failed' if error else 'recovered'
    if not needed and not error:
        return 'unchanged'
    if dry_run and not error:
        return 'planned'
    if not error:
        return 'deployed'
    if rolled_back:
        return 'rolled back'
    if rollback_error:
        return 'rollback failed'
    return 'failed'


def phases(marks):
    """[{'phase', 'seconds'}] from the marks [{'phase', 'at'}]: each phase lasts until the next
    mark; the last mark ends the run and is not a phase."""
    out = []
    for mark, following in zip(marks, marks[1:]):
        out.append({'phase': str(mark['phase']),
                    'seconds': round(float(following['at']) - float(mark['at']), 3)})
    return out


def _seconds(value):
    """A mark time (epoch seconds, maybe as a string); None for an empty one."""
    if value in (None, ''):
        return None
    return float(value)


def deploy(fields, marks, now, recover=False, needed=True, dry_run=False, paused_at=None, resumed_at=None,
           finished=''):
    """The deploy record: the caller's fields with the computed outcome, mode, phases,
    total_seconds and queues.paused_seconds. now: the epoch time of the end mark."""
    marks = list(marks) + [{'phase': 'end', 'at': now}]
    record = dict(fields)
    record['mode'] = 'check' if dry_run else 'apply'
    record['finished'] = finished
    record['outcome'] = outcome(recover, needed, dry_run, fields.get('error'), fields.get('rolled_back'),
                                fields.get('rollback_error'))
    record['phases'] = phases(marks)
    record['total_seconds'] = round(float(marks[-1]['at']) - float(marks[0]['at']), 3)
    queues = dict(record.get('queues') or {})
    paused, resumed = _seconds(paused_at), _seconds(resumed_at)
    queues['paused_seconds'] = round((resumed if resumed is not None else float(now)) - paused, 3) \
        if paused is not None else 0
    record['queues'] = queues
    return record


def file_names(kind, host, stamp, owner, dry_run):
    """(the run's own file, the latest file) for a deploy or rollback record."""
    own = '%s-%s-%s-%s%s.json' % (kind, host, stamp, owner[:6], '-check' if dry_run else '')
    return own, '%s-%s-latest.json' % (kind, host)


def write(dest, own, latest, record):
    """Write the run's own record (never over an existing file) and, when latest is a name,
    replace that file with the same record; returns (own path, latest path or '')."""
    text = json.dumps(record, indent=4, sort_keys=True) + '\n'
    real, dir_fd = open_dest(dest)
    try:
        if not write_new(dir_fd, own, text):
            raise RecordError('the record %s already exists in %s: a run writes its own record once' % (own, real))
        if latest:
            write_replace(dir_fd, latest, text)
    finally:
        os.close(dir_fd)
    return os.path.join(real, own), os.path.join(real, latest) if latest else ''
