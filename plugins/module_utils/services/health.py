# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP health probe and the Prometheus counters of /metrics, for the services backends and
the deploy watch."""

from __future__ import annotations

import re
import time

from urllib.error import HTTPError, URLError

# UrlError is imported for the callers (pm2_process, the deploy watch), which reach it as health.UrlError.
from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import (  # pylint: disable=unused-import
    UrlError, check_http_url, open_http, redact)


def probe(url, timeout=5.0, validate_certs=True, option='url'):
    """GET url once: {'url', 'status', 'ok' (2xx), 'why', 'latency_ms', 'body'}. Only http(s)
    (UrlError before anything is fetched); a redirect is a non-2xx answer, never followed."""
    check_http_url(url, option)
    started = time.monotonic()
    status, body, why = None, '', ''
    try:
        resp = open_http(url, option, timeout=timeout, validate_certs=validate_certs)
        status = resp.getcode()
        body = resp.read(65536).decode('utf-8', 'replace')
    except HTTPError as exc:
        status = exc.code
        try:
            body = exc.read(65536).decode('utf-8', 'replace')
        except Exception:  # pylint: disable=broad-except
            body = ''
    except (URLError, OSError, ValueError) as exc:
        why = 'no answer (%s)' % getattr(exc, 'reason', exc)
    ok = status is not None and 200 <= status < 300
    if status is not None and not ok:
        why = 'status %s' % status
    return {'url': redact(url), 'status': status, 'ok': ok, 'why': why, 'body': body[:500],
            'latency_ms': round((time.monotonic() - started) * 1000, 1)}


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)\s*$')


def counters(text, names):
    """The summed value of each metric name in Prometheus text format (labels summed over)."""
    out = dict((n, 0.0) for n in names)
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if m and m.group(1) in out:
            out[m.group(1)] += float(m.group(3))
    return out
