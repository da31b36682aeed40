# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudwatch_logs_search: runbook 004's `aws logs filter-log-events` queries, paginated, as data."""

from __future__ import annotations

import datetime

from ansible_collections.oncall.runbooks.plugins.module_utils.aws.common import call


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
