# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudwatch_logs_search: runbook 004's `aws logs filter-log-events` queries, paginated, as data."""

from __future__ import annotations

import datetime
import re

from ansible_collections.oncall.runbooks.plugins.module_utils.aws.common import call
from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt

LOG_GROUP = re.compile(r'[A-Za-z0-9_./#-]{1,512}', re.ASCII)
LOG_STREAM = re.compile(r'[^:*\x00-\x1f]{1,512}')
SEARCH_FIELDS = ('name', 'filter_pattern', 'max', 'severity', 'log_stream_names', 'fields', 'redact')
# searches by field (service, level, userId): names and values are data, checked before they are
# written into a JSON filter pattern, and every returned event is checked against them again
FIELD_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,63}', re.ASCII)
FIELD_VALUE = re.compile(r'[A-Za-z0-9_.:@/+-]{1,256}', re.ASCII)
MAX_SINCE = 3660 * 86400  # ten years: CloudWatch keeps logs for at most that long


def validate(p):
    """Every option but the connection's, before any call: (since in seconds, searches with
    their max as a number). Raises options.OptionError naming the option."""
    opt.text('log_group_name', p['log_group_name'], max_length=512, pattern=LOG_GROUP,
             what='a log group name (letters, digits and _ . / # -)')
    since = opt.duration('since', p['since'], high=MAX_SINCE)
    if since <= 0:
        raise opt.OptionError('since must be a duration above 0s, such as 1h')
    opt.number('max_events', p['max_events'], low=0, high=10000, integer=True)
    opt.number('streams', p['streams'], low=0, high=50, integer=True)
    fresh = None
    if p.get('fresh_within') not in (None, ''):
        fresh = opt.duration('fresh_within', p['fresh_within'], high=MAX_SINCE)
        if fresh <= 0:
            raise opt.OptionError('fresh_within must be a duration above 0s, such as 10s')
    if not p['searches']:
        raise opt.OptionError('searches must list at least one search (name and filter_pattern)')
    searches = []
    for i, s in enumerate(p['searches']):
        where = 'searches[%d]' % i
        opt.fields(where, s, SEARCH_FIELDS)
        if s.get('name') in (None, ''):
            raise opt.OptionError('%s.name is needed' % where)
        opt.text(where + '.name', s['name'], max_length=256)
        if s.get('filter_pattern') is not None:
            opt.text(where + '.filter_pattern', s['filter_pattern'], max_length=1024, empty=True,
                     what='a CloudWatch filter pattern')
        fields = s.get('fields') or {}
        if fields:
            if s.get('filter_pattern'):
                raise opt.OptionError('%s takes fields or filter_pattern, not both' % where)
            if not isinstance(fields, dict) or len(fields) > 10:
                raise opt.OptionError('%s.fields must be a mapping of at most 10 field names to values' % where)
            for k, v in fields.items():
                opt.text('%s.fields name' % where, k, max_length=64, pattern=FIELD_NAME,
                         what='a field name (letters, digits and _)')
                opt.text('%s.fields.%s' % (where, k), v, max_length=256, pattern=FIELD_VALUE,
                         what='a field value (letters, digits and _ . : @ / + -)')
        if not isinstance(s.get('redact', False), bool):
            raise opt.OptionError('%s.redact must be true or false' % where)
        severity = s.get('severity', 'warning')
        if severity not in ('warning', 'critical'):
            raise opt.OptionError('%s.severity must be warning or critical, not %s' % (where, opt.shown(severity)))
        streams = s.get('log_stream_names') or []
        if not isinstance(streams, list) or len(streams) > 100:
            raise opt.OptionError('%s.log_stream_names must be a list of at most 100 stream names' % where)
        for j, stream in enumerate(streams):
            opt.text('%s.log_stream_names[%d]' % (where, j), stream, max_length=512, pattern=LOG_STREAM,
                     what='a log stream name')
        searches.append(dict(s, max=opt.number(where + '.max', s.get('max', 0), low=0, high=10000, integer=True),
                             severity=severity, fields=dict(fields), redact=bool(s.get('redact', False))))
    return since, searches, fresh


def fields_pattern(fields):
    """The JSON filter pattern of runbook 004's searches by service, level and user
    ({ ($.service = "community") && ($.level = "ERROR") }); values were checked by validate."""
    return '{ %s }' % ' && '.join('($.%s = "%s")' % (k, fields[k]) for k in sorted(fields))


def fields_match(message, fields):
    """Whether a JSON log line carries every field with its value (the same test as the
    pattern, applied to each returned event, so that a backend that ignores a JSON pattern
    cannot widen the result)."""
    import json
    try:
        doc = json.loads(message)
    except ValueError:
        return False
    return isinstance(doc, dict) and all(str(doc.get(k)) == v for k, v in fields.items())


def redacted(events):
    """Matches as counts per stream, no message text (a PII scan names where, never what)."""
    counts = {}
    for e in events:
        counts[e['stream']] = counts.get(e['stream'], 0) + 1
    return [{'stream': k, 'count': counts[k]} for k in sorted(counts)]


def freshness(log_streams, fresh_within, now_ms, group):
    """The newest event of the group against fresh_within (runbook 004: "Verify logs arriving
    (should be < 10s delay)")."""
    newest = [s for s in log_streams if s.get('last_event_ms')]
    obj = 'log streams of %s fresh' % group
    if not newest:
        return {'object': obj, 'figure': 'no event in any stream', 'threshold': '<= %ds' % fresh_within,
                'verdict': 'critical'}
    top = max(newest, key=lambda s: s['last_event_ms'])
    age = max(0.0, (now_ms - top['last_event_ms']) / 1000.0)
    return {'object': obj, 'figure': 'last event %.0fs ago in %s' % (age, top['name']),
            'threshold': '<= %ds' % fresh_within, 'verdict': 'ok' if age <= fresh_within else 'critical'}


def caller_identity(sts):
    """`aws sts get-caller-identity`: account and ARN (no secret)."""
    who = call('sts get-caller-identity', sts.get_caller_identity)
    return {'account': who.get('Account'), 'arn': who.get('Arn'), 'user_id': who.get('UserId')}


def search(logs, group, pattern, start_ms, end_ms, streams, cap=10000):
    """Matching events oldest first, at most cap of them, and whether more were left."""
    kwargs = {'logGroupName': group, 'startTime': start_ms, 'endTime': end_ms}
    if pattern:
        kwargs['filterPattern'] = pattern
    if streams:
        kwargs['logStreamNames'] = streams
    events, token = [], None
    while True:
        if token:
            kwargs['nextToken'] = token
        page = call('filter-log-events on %s' % group, logs.filter_log_events, **kwargs)
        for e in page.get('events', []):
            if len(events) >= cap:
                return events, True
            events.append({'timestamp': _iso(e['timestamp']), 'stream': e.get('logStreamName'),
                           'message': e.get('message', '').rstrip('\n')})
        token = page.get('nextToken')
        if not token or token == kwargs.get('nextToken'):
            return events, False


def streams(logs, group, limit):
    """`aws logs describe-log-streams --order-by LastEventTime --descending`."""
    page = call('describe-log-streams of %s' % group, logs.describe_log_streams, logGroupName=group,
                orderBy='LastEventTime', descending=True, limit=limit)
    return [{'name': s['logStreamName'],
             'last_event': _iso(s['lastEventTimestamp']) if s.get('lastEventTimestamp') else None,
             'last_event_ms': s.get('lastEventTimestamp')}
            for s in page.get('logStreams', [])]


def _iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')[:-4] + 'Z'
