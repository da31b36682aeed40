# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""http_check: status, body and latency of HTTP endpoints (health checks, smoke tests)."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import parse_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import check_http_url, exchange, redact


def probe(check, validate_certs=True, option='url'):
    """One request; returns the observation and whether it meets the check. The URL must be
    http(s) (common.urls.UrlError otherwise, before anything is fetched); a redirect is an
    answer with its 3xx status, never followed."""
    url = check_http_url(check['url'], option)
    wanted = check.get('status', 200)
    wanted = [int(s) for s in wanted] if isinstance(wanted, list) else [int(wanted)]
    timeout = parse_duration(check.get('timeout', '10s'), 'timeout')
    limit_s = parse_duration(check['max_latency'], 'max_latency') if check.get('max_latency') else None
    data = check.get('body')
    headers = dict(check.get('headers') or {})
    if data is not None and not isinstance(data, str):
        import json
        data = json.dumps(data)
        headers.setdefault('Content-Type', 'application/json')
    answer = exchange(url, option, method=check.get('method', 'POST' if data is not None else 'GET'),
                      headers=headers, data=data, timeout=timeout, validate_certs=validate_certs)
    status, body, error, latency_ms = answer['status'], answer['body'], answer['error'], answer['latency_ms']
    why = []
    if error:
        why.append('no answer: %s' % error)
    elif status not in wanted:
        why.append('status %s, expected %s' % (status, ' or '.join(map(str, wanted))))
    if not error and check.get('body_contains') and check['body_contains'] not in body:
        why.append('body lacks %r' % check['body_contains'])
    if not error and limit_s is not None and latency_ms > limit_s * 1000:
        why.append('%.0f ms > %.0f ms' % (latency_ms, limit_s * 1000))
    return {'name': check.get('name') or redact(url), 'url': redact(url), 'status': status, 'latency_ms': latency_ms,
            'ok': not why, 'why': '; '.join(why), 'body_excerpt': body[:200]}
