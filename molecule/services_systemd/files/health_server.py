# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sample service of the services_systemd scenario: an HTTP server on 127.0.0.1:PORT whose
/health answers STATUS (default 200) and every other path 200, each with its pid.

    health_server.py PORT [STATUS]
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1])
STATUS = int(sys.argv[2]) if len(sys.argv) > 2 else 200


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        code = STATUS if self.path == '/health' else 200
        body = json.dumps({'pid': os.getpid(), 'port': PORT, 'status': code}).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print('listening on 127.0.0.1:%d, /health answers %d' % (PORT, STATUS), flush=True)
HTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
