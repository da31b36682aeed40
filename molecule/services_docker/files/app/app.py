"""The services_docker scenario's application: /health and /version on the container's loopback.

`app.py` serves; `app.py check` is the image's HEALTHCHECK (exit 0 when /health answers 200).
APP_VERSION names the release; APP_BROKEN=1 makes /health answer 500, so that the container
never turns healthy (the broken image of the scenario).
"""
import http.server
import os
import sys
import urllib.request

PORT = 8080
VERSION = os.environ.get("APP_VERSION", "unknown")
BROKEN = os.environ.get("APP_BROKEN", "0") == "1"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            code, body = (500, "broken\n") if BROKEN else (200, "ok\n")
        elif self.path == "/version":
            code, body = 200, VERSION + "\n"
        else:
            code, body = 404, "not found\n"
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def check():
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % PORT, timeout=2) as r:
            return 0 if r.status == 200 else 1
    except Exception:
        return 1


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        sys.exit(check())
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
