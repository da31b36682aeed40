# -*- coding: utf-8 -*-
"""A real HTTP server on a free loopback port, answering what a test says (the probes' tests)."""

from __future__ import annotations

import contextlib
import http.server
import threading


@contextlib.contextmanager
def loopback_http(answer):
    """Serve GET with answer(path) -> (status, body bytes, extra headers); yields the base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  (http.server's name)
            code, body, headers = answer(self.path)
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield 'http://127.0.0.1:%d' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
