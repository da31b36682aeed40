# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP health probe and the Prometheus counters of /metrics, for the services backends and
the deploy watch."""

from __future__ import annotations

import re

# UrlError, check_http_url and open_http are imported for the callers (pm2_process, the deploy
# watch), which reach them as health.<name>.
from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import (  # pylint: disable=unused-import
    UrlError, check_http_url, exchange, open_http, redact)


def probe(url, timeout=5.0, validate_certs=True, option='url'):
    """GET url once: {'url', 'status', 'ok' (2xx), 'why', 'latency_ms', 'body'}. Only http(s)
    (UrlError before anything is fetched); a redirect is a non-2xx answer, never followed."""
    answer = exchange(url, option, timeout=timeout, validate_certs=validate_certs)
    status = answer['status']
    why = 'no answer (%s)' % answer['error'] if answer['error'] is not None else ''
    ok = status is not None and 200 <= status < 300
    if status is not None and not ok:
        why = 'status %s' % status
    return {'url': redact(url), 'status': status, 'ok': ok, 'why': why, 'body': answer['body'][:500],
            'latency_ms': answer['latency_ms']}


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)\s*$')


def counters(text, names):
    """The summed value of each metric name in Prometheus text format (labels summed over)."""
    out = dict((n, 0.0) for n in names)
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if m and m.group(1) in out:
            out[m.group(1)] += float(m.group(3))
    return out
