# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection's probes fetch a URL: http and https only, redirects never followed.

urllib (and Ansible's open_url over it) also opens ``file://``, ``ftp://`` and ``data:`` URLs,
so a health URL of ``file:///etc/passwd`` would come back as a body in results and reports.
Every URL is checked here before anything is fetched; a redirect is an answer (its status),
never followed to another place or scheme.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError


class UrlError(OncallError, ValueError):
    """A refused URL, with a one-sentence message naming the option."""


def check_http_url(url, option='url'):
    """Refuse anything but an absolute http:// or https:// URL with a host; returns url."""
    if not isinstance(url, str) or not url.strip():
        raise UrlError('%s must be an http:// or https:// URL, not %r' % (option, url))
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UrlError('%s is not a valid URL (%s): %s' % (option, exc, redact(url)))
    if parts.scheme.lower() not in ('http', 'https') or not parts.hostname:
        raise UrlError('%s must be an http:// or https:// URL with a host, not %s'
                       % (option, redact(url) if parts.scheme else repr(url)))
    if parts.password is not None:
        # a probe's URL is shown in findings and reports: it may name a user, never carry a secret
        raise UrlError('%s must not carry a password (user:password@): give credentials as a header '
                       'from a no_log variable instead: %s' % (option, redact(url)))
    if any(c in url for c in '\r\n\t\0 '):
        raise UrlError('%s must not contain spaces or control characters: %r' % (option, redact(url)))
    return url.strip()


def redact(url):
    """url with the password of its user info (user:password@) replaced by ********."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return '<unparsable URL>'
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit('@', 1)
    userinfo = netloc[0].split(':', 1)[0]
    return urlunsplit((parts.scheme, '%s:********@%s' % (userinfo, netloc[1]), parts.path, parts.query,
                       parts.fragment))


def open_http(url, option='url', **kwargs):
    """Ansible's open_url for an http(s) URL checked first; redirects are not followed (an
    HTTPError with the 3xx status is raised instead)."""
    from ansible.module_utils.urls import open_url
    check_http_url(url, option)
    kwargs['follow_redirects'] = 'none'
    return open_url(url, **kwargs)


def exchange(url, option='url', limit=65536, **kwargs):
    """One request with open_http, never raising for what the far end did: {'status' (None
    without an answer), 'body' (the first `limit` bytes, decoded; an error status's body too),
    'error' (why there was no HTTP answer, else None), 'latency_ms'}. A URL that is not http(s) still
    raises UrlError, before anything is sent. The HTTP probes of http_check and of the services
    backends and deploy watch are both built on this."""
    import time
    from http.client import HTTPException
    from urllib.error import HTTPError, URLError
    started = time.monotonic()
    status, body, error = None, '', None
    try:
        resp = open_http(url, option, **kwargs)
        status = resp.getcode()
        body = resp.read(limit).decode('utf-8', 'replace')
    except HTTPError as exc:
        status = exc.code
        try:
            body = exc.read(limit).decode('utf-8', 'replace') if exc.fp else ''
        except Exception:  # pylint: disable=broad-except
            body = ''
    except (URLError, OSError, ValueError) as exc:
        if isinstance(exc, UrlError):
            raise
        error = str(getattr(exc, 'reason', exc))
    except HTTPException as exc:  # something answered, but not HTTP (BadStatusLine, ...)
        error = 'the answer is not HTTP (%s)' % type(exc).__name__
    return {'status': status, 'body': body, 'error': error,
            'latency_ms': round((time.monotonic() - started) * 1000, 1)}
