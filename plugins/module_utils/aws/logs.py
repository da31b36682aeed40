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
SEARCH_FIELDS = ('name', 'filter_pattern', 'max', 'severity', 'log_stream_names')
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
                             severity=severity))
    return since, searches


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
             'last_event': _iso(s['lastEventTimestamp']) if s.get('lastEventTimestamp') else None}
            for s in page.get('logStreams', [])]


def _iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')[:-4] + 'Z'
