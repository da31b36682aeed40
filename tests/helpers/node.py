# -*- coding: utf-8 -*-
"""Node: real BullMQ and Bull, through lab/node's scripts and workers."""

from __future__ import annotations

import json
import os
import subprocess
import time

from helpers.paths import NODE_DIR
from helpers.servers import stop_process


def node(script, *args, port, timeout=300):
    """Run lab/node/<script> and return its JSON output (last JSON line)."""
    proc = subprocess.run(['node', os.path.join(NODE_DIR, script)] + [str(a) for a in args]
                          + ['--port', str(port)], capture_output=True, text=True, timeout=timeout,
                          cwd=NODE_DIR, check=False)
    if proc.returncode:
        raise RuntimeError('node %s %s failed: %s' % (script, ' '.join(map(str, args)), proc.stderr))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith(('{', '['))]
    return json.loads(lines[-1])


class Worker(object):
    """A real worker process (lab/node/worker.js) and the events it printed."""

    def __init__(self, flavor, queue, port, *extra):
        self.proc = subprocess.Popen(
            ['node', os.path.join(NODE_DIR, 'worker.js'), '--flavor', flavor, '--queue', queue,
             '--port', str(port)] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=NODE_DIR, bufsize=1)
        self.events = []
        import threading
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.wait_for(lambda evs: any(e.get('event') == 'ready' for e in evs), 30)

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith('{'):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass

    def done_ids(self, kind=None):
        kinds = (kind,) if kind else ('processed', 'failed')
        return [str(e['id']) for e in list(self.events) if e.get('event') in kinds]

    def wait_for(self, predicate, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate(list(self.events)):
                return True
            if self.proc.poll() is not None:
                raise RuntimeError('worker exited: %s' % self.proc.stderr.read())
            time.sleep(0.05)
        return False

    def stop(self):
        stop_process(self.proc, 5)
