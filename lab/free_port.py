# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A loopback TCP port for a server to listen on later: free now, and outside the kernel's
ephemeral port range.

A port taken with bind(('127.0.0.1', 0)) and released comes from the ephemeral range, the range
every outgoing connection takes its local port from. A server started seconds later on it can find
it in use by a client's connection (a test suite opens hundreds per second to Redis, PostgreSQL
and HTTP), and then either fails to start (EADDRINUSE) or, worse, its caller talks to whatever
took the port. The CI saw both. A port below the range (20000 up to the range's start) is never
given to a client, so only another server can take it.

Under pytest-xdist (PYTEST_XDIST_WORKER=gwK, PYTEST_XDIST_WORKER_COUNT=N, inherited by lab/lab.sh
and every server the tests start) worker K takes only ports p with p % N == K, so two workers
never pick the same port.

    python3 lab/free_port.py          # prints one port
    python3 lab/free_port.py 10000    # a port p with p + 10000 free too (a Redis Cluster bus)
"""

from __future__ import annotations

import os
import random
import socket
import sys

LOWEST = 20000  # below: the lab's default ports (15432, 16379, 19090...) and common services
RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range'


def ephemeral_range():
    """(first, last) port the kernel gives outgoing connections; Linux's default if unknown."""
    try:
        with open(RANGE_FILE) as fh:
            first, last = (int(x) for x in fh.read().split()[:2])
        return first, last
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port):
    with socket.socket() as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def _worker():
    """(index, count) of this pytest-xdist worker, (0, 1) outside one."""
    name = os.environ.get('PYTEST_XDIST_WORKER', '')
    try:
        count = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
        index = int(name[2:]) if name.startswith('gw') else 0
    except ValueError:
        return 0, 1
    return (index % count, count) if count > 0 else (0, 1)


def free_port(span=0, tries=500):
    """A port p free now and below the ephemeral range; with span, p + span is free and below
    the range too. When the range leaves no room, a port the kernel picks (bind to port 0)."""
    first, _last = ephemeral_range()
    index, count = _worker()
    high = first - 1 - span
    if high - LOWEST > 100 * count:
        for _attempt in range(tries):
            port = random.randrange(LOWEST, high + 1)
            port -= (port - index) % count  # this worker's ports only
            if port >= LOWEST and _bindable(port) and (not span or _bindable(port + span)):
                return port
    while True:  # no room below the range (or every try was taken): the kernel's pick
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        if not span or (port + span <= 65535 and _bindable(port + span)):
            return port


if __name__ == '__main__':
    print(free_port(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
