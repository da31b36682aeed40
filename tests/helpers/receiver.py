# -*- coding: utf-8 -*-
"""A recording HTTP receiver on loopback for the notification tests: every request's method,
path, headers and exact JSON body are kept; the answer per path is set by the test (200 by
default, or a status, or a delay longer than the client's timeout). Never an outside address."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(object):
    def __init__(self):
        self.requests = []           # dicts: method, path, headers, body (parsed JSON, or the raw text)
        self.answers = {}            # path -> status (int) or ('sleep', seconds)
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                raw = self.rfile.read(int(self.headers.get('Content-Length') or 0)).decode('utf-8', 'replace')
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                with owner.lock:
                    owner.requests.append({'method': 'POST', 'path': self.path, 'headers': dict(self.headers),
                                           'body': body})
                answer = owner.answers.get(self.path, 202 if 'enqueue' in self.path else 200)
                if isinstance(answer, tuple):
                    time.sleep(answer[1])
                    answer = 200
                text = b'{"status":"success"}' if answer < 300 else b'{"status":"error"}'
                try:
                    self.send_response(answer)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path):
        with self.lock:
            return [r['body'] for r in self.requests if r['path'] == path]

    def clear(self):
        with self.lock:
            del self.requests[:]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
