# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vectordb_info: runbook 003 "Vector Database Issues" - ChromaDB's heartbeat, version and
collection count over its HTTP API (the routes of chromadb/server/fastapi, 1.x: /api/v2/...)."""

from __future__ import annotations

import json
import re

from urllib.error import HTTPError, URLError
from urllib.parse import quote

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt
from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import check_http_url, open_http, redact

NAME = re.compile(r'[A-Za-z0-9_.-]{1,128}', re.ASCII)


def validate(p):
    check_http_url(p['url'], 'url')
    opt.text('tenant', p['tenant'], max_length=128, pattern=NAME, what='a tenant name (letters, digits and _ . -)')
    opt.text('database', p['database'], max_length=128, pattern=NAME, what='a database name (letters, digits and _ . -)')
    opt.number('min_collections', p['min_collections'], low=0, high=10 ** 6, integer=True)
    return opt.duration('timeout', p['timeout'], high=300, low=0.1)


def _get(base, path, timeout, headers, validate_certs):
    """(status, decoded JSON or None, error sentence or None)."""
    url = base.rstrip('/') + path
    try:
        resp = open_http(url, 'url', method='GET', headers=headers, timeout=timeout, validate_certs=validate_certs)
        body = resp.read(1 << 20).decode('utf-8', 'replace')
        status = resp.getcode()
    except HTTPError as exc:
        return exc.code, None, 'GET %s answered %s' % (redact(url), exc.code)
    except (URLError, OSError, ValueError) as exc:
        return None, None, 'GET %s: no answer (%s)' % (redact(url), getattr(exc, 'reason', exc))
    try:
        return status, json.loads(body), None
    except ValueError:
        return status, None, 'GET %s: the answer is not JSON' % redact(url)


def observe(p, timeout, headers):
    v = p['api_version']
    base, certs = p['url'], p['validate_certs']
    out = {'heartbeat_ns': None, 'version': None, 'collections': None, 'errors': []}
    status, doc, err = _get(base, '/api/%s/heartbeat' % v, timeout, headers, certs)
    if err or not isinstance(doc, dict) or not isinstance(doc.get('nanosecond heartbeat'), int):
        out['errors'].append(err or 'the heartbeat has no "nanosecond heartbeat"')
        return out
    out['heartbeat_ns'] = doc['nanosecond heartbeat']
    status, doc, err = _get(base, '/api/%s/version' % v, timeout, headers, certs)
    out['version'] = doc if isinstance(doc, str) else None
    if v == 'v2':
        path = '/api/v2/tenants/%s/databases/%s/collections_count' % (quote(p['tenant'], safe=''), quote(p['database'], safe=''))
        status, doc, err = _get(base, path, timeout, headers, certs)
        count = doc if isinstance(doc, int) and not isinstance(doc, bool) else None
    else:
        status, doc, err = _get(base, '/api/v1/collections', timeout, headers, certs)
        count = len(doc) if isinstance(doc, list) else None
    if count is None:
        out['errors'].append(err or 'the collection count is not a number')
    out['collections'] = count
    return out


def findings(obs, p):
    where = redact(p['url'])
    out = [{'object': 'vector database heartbeat (%s)' % where,
            'figure': 'answers (version %s)' % (obs['version'] or '?') if obs['heartbeat_ns'] is not None
            else obs['errors'][0],
            'threshold': 'answers', 'verdict': 'ok' if obs['heartbeat_ns'] is not None else 'critical'}]
    obj = 'vector database collections (%s/%s)' % (p['tenant'], p['database'])
    if obs['heartbeat_ns'] is None:
        out.append({'object': obj, 'figure': 'not read: no heartbeat', 'threshold': '', 'verdict': 'unknown'})
    elif obs['collections'] is None:
        out.append({'object': obj, 'figure': obs['errors'][-1], 'threshold': '>= %d' % p['min_collections'],
                    'verdict': 'critical'})
    else:
        out.append({'object': obj, 'figure': str(obs['collections']), 'threshold': '>= %d' % p['min_collections'],
                    'verdict': 'ok' if obs['collections'] >= p['min_collections'] else 'warning'})
    return out
