# -*- coding: utf-8 -*-
"""A small in-memory fake of the AWX REST API (/api/v2/) for the awx.awx modules.

No AWX runs here (it needs Kubernetes or a dozen containers), so the awx_configure playbook
is run against this stand-in: a stateful HTTP server on a free loopback port that keeps the
objects the modules create and answers their lookups, associations and survey specs the way
AWX does. The modules themselves are the real awx.awx ones (their argument specs, their
lookups, their change detection); only the server is fake. Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

UNIFIED = ('job_templates', 'workflow_job_templates', 'projects', 'inventory_sources')
RELATED = ('survey_spec', 'credentials', 'labels', 'instance_groups', 'notification_templates_started',
           'notification_templates_success', 'notification_templates_error', 'copy')
NAME_FIELDS = {'users': 'username', 'instances': 'hostname'}


class FakeAWX(object):
    def __init__(self, token='fake-token'):
        self.token = token
        self.objects = {}          # kind -> {id: obj}
        self.assoc = {}            # (kind, id, sub) -> [ids]
        self.surveys = {}          # job template id -> spec
        self.requests = []         # (method, path, body)
        self.next_id = 1
        self.lock = threading.Lock()
        handler = self._handler()
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.port = self.server.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- state helpers for the tests
    def named(self, kind, name):
        for obj in self.objects.get(kind, {}).values():
            if obj.get(NAME_FIELDS.get(kind, 'name')) == name:
                return obj
        return None

    def associated(self, kind, obj_id, sub):
        return [self.objects[self._assoc_kind(sub)][i] for i in self.assoc.get((kind, obj_id, sub), [])]

    def writes(self):
        return [r for r in self.requests if r[0] in ('POST', 'PATCH', 'PUT', 'DELETE')]

    @staticmethod
    def _assoc_kind(sub):
        return sub

    # -- request handling
    def _list(self, kind, query):
        if kind == 'unified_job_templates':
            items = [o for k in UNIFIED for o in self.objects.get(k, {}).values()]
        else:
            items = list(self.objects.get(kind, {}).values())
        ors = {k[4:]: v for k, v in query.items() if k.startswith('or__')}
        plain = {k: v for k, v in query.items() if not k.startswith('or__') and k not in ('page_size', 'page', 'order_by')}
        out = []
        for obj in items:
            if any(str(obj.get(k)) != v and not (obj.get(k) is None and v in ('', 'None')) for k, v in plain.items()):
                continue
            if ors and not any(str(obj.get(k)) == v for k, v in ors.items()):
                continue
            out.append(obj)
        return {'count': len(out), 'next': None, 'previous': None, 'results': out}

    def handle(self, method, path, query, body):
        m = re.match(r'^/api/v2/(?P<kind>[a-z_]+)/(?:(?P<id>\d+)/(?:(?P<sub>[a-z_]+)/)?)?$', path)
        if path in ('/api/', '/api/v2/'):
            return 200, {'current_version': '/api/v2/'}
        if not m:
            return 404, {'detail': 'Not found.'}
        kind, oid, sub = m.group('kind'), m.group('id'), m.group('sub')
        with self.lock:
            if oid is None:
                if method == 'GET':
                    return 200, self._list(kind, query)
                if method == 'POST':
                    obj = dict(body)
                    url = '/api/v2/%s/%d/' % (kind, self.next_id)
                    obj.update(id=self.next_id, type=kind.rstrip('s'), url=url, summary_fields={},
                               related=dict((s, url + s + '/') for s in RELATED))
                    self.next_id += 1
                    self.objects.setdefault(kind, {})[obj['id']] = obj
                    return 201, obj
                return 405, {'detail': 'method not allowed'}
            oid = int(oid)
            obj = self.objects.get(kind, {}).get(oid)
            if obj is None:
                return 404, {'detail': 'Not found.'}
            if sub is None:
                if method == 'GET':
                    return 200, obj
                if method == 'PATCH':
                    obj.update(body)
                    return 200, obj
                if method == 'DELETE':
                    del self.objects[kind][oid]
                    return 204, None
                return 405, {'detail': 'method not allowed'}
            if sub == 'survey_spec':
                if method == 'GET':
                    return 200, self.surveys.get(oid, {})
                if method == 'POST':
                    self.surveys[oid] = body
                    return 200, {}
                if method == 'DELETE':
                    self.surveys.pop(oid, None)
                    return 200, {}
            key = (kind, oid, sub)
            if method == 'GET':
                ids = self.assoc.get(key, [])
                results = [self.objects.get(sub, {}).get(i, {'id': i}) for i in ids]
                return 200, {'count': len(results), 'next': None, 'previous': None, 'results': results}
            if method == 'POST':
                ids = self.assoc.setdefault(key, [])
                if body.get('disassociate'):
                    if body['id'] in ids:
                        ids.remove(body['id'])
                elif body['id'] not in ids:
                    ids.append(body['id'])
                return 204, None
        return 405, {'detail': 'method not allowed'}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _do(self, method):
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length) if length else b''
                body = json.loads(raw) if raw else {}
                fake.requests.append((method, url.path, body))
                if self.headers.get('Authorization') != 'Bearer ' + fake.token:
                    status, data = 401, {'detail': 'Authentication credentials were not provided.'}
                else:
                    status, data = fake.handle(method, url.path, query, body)
                payload = b'' if data is None else json.dumps(data).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('X-API-Product-Name', 'AWX')
                self.send_header('X-API-Product-Version', '24.6.1')
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self._do('GET')

            def do_POST(self):
                self._do('POST')

            def do_PATCH(self):
                self._do('PATCH')

            def do_DELETE(self):
                self._do('DELETE')

            def do_HEAD(self):
                self._do('HEAD')

        return Handler
