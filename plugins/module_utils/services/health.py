# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP health probe and the Prometheus counters of /metrics, for the services backends and
the deploy watch."""

from __future__ import annotations

import re
import time

from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError


def probe(url, timeout=5.0, validate_certs=True):
    """GET url once: {'url', 'status', 'ok' (2xx), 'why', 'latency_ms', 'body'}."""
    started = time.monotonic()
    status, body, why = None, '', ''
    try:
        resp = open_url(url, timeout=timeout, validate_certs=validate_certs, follow_redirects='none')
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
    return {'url': url, 'status': status, 'ok': ok, 'why': why, 'body': body[:500],
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
