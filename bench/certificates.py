#!/usr/bin/env python
"""What the certificate modules cost: the daily check and a renewal.

Printed figures (real servers: pebble, nginx; all on loopback):

* cert_info logic over N certificate files, and over M TLS endpoints served by one nginx
  (per certificate: parse, summary, chain verification against the system bundle);
* one cert_renew run through the real ansible CLI that finds nothing to do (the daily cost);
* ACME issuance from pebble, http-01 validated through nginx's webroot (logic only, per order),
  and a self-signed renewal, for scale.

    .venv/bin/python bench/certificates.py [--files 200] [--endpoints 20] [--orders 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

from helpers.cert import Nginx, Pebble, make_cert  # noqa: E402
from helpers import run_module  # noqa: E402

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import acme_issue, info, x509  # noqa: E402


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--files', type=int, default=200)
    ap.add_argument('--endpoints', type=int, default=20)
    ap.add_argument('--orders', type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='oncall-bench-certs-')
    nginx = Nginx(sans=['app.oncall.test'], days=60)
    pebble = Pebble(http_port=nginx.http_port)
    try:
        specs = []
        for i in range(args.files):
            crt, dummy = make_cert(tmp, 'c%d' % i, ['c%d.oncall.test' % i], 5 + i % 90)
            specs.append({'type': 'file', 'path': crt})
        roots = x509.load_trust(None)
        secs, items = timed(lambda: [info.inspect(s, {}, roots, 30, 7) for s in specs])
        print('cert_info logic, %d files: %.3f s (%.2f ms per certificate, %d roots in the system bundle)'
              % (len(items), secs, secs * 1000 / len(items), len(roots)))
        ep = {'type': 'endpoint', 'host': '127.0.0.1', 'port': nginx.tls_port, 'server_name': 'app.oncall.test'}
        secs, items = timed(lambda: [info.inspect(ep, {}, roots, 30, 7) for dummy in range(args.endpoints)])
        print('cert_info logic, %d endpoint reads (nginx, TLS handshake each): %.3f s (%.2f ms each)'
              % (len(items), secs, secs * 1000 / len(items)))
        renew_args = dict(source={'type': 'file', 'path': nginx.cert, 'key_path': nginx.key}, provider='selfsigned')
        secs, run = timed(lambda: run_module('cert_renew', renew_args))
        assert run['changed'] is False
        print('cert_renew through the ansible CLI, nothing to do: %.2f s' % secs)
        cfg = dict(directory=pebble.directory, ca_path=pebble.ca_path, webroot=nginx.webroot,
                   account_key_path=os.path.join(tmp, 'account.pem'))
        times = []
        for i in range(args.orders):
            key = x509.new_key('ec256')
            secs, chain = timed(lambda: acme_issue.issue(cfg, key, ['DNS:o%d.oncall.test' % i]))
            assert x509.key_matches(chain[0], key)
            times.append(secs)
        print('ACME order from pebble, http-01 via nginx webroot (PEBBLE_VA_NOSLEEP=1): median %.3f s, max %.3f s over %d orders'
              % (statistics.median(times), max(times), len(times)))
        secs, run = timed(lambda: run_module('cert_renew', dict(renew_args, force=True)))
        assert run['renewed'] is True
        print('cert_renew through the ansible CLI, self-signed renewal with file backup: %.2f s' % secs)
    finally:
        pebble.stop()
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
