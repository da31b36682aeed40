# -*- coding: utf-8 -*-
"""Run the `ansible` and `ansible-playbook` CLIs for the tests without paying their imports.

A test run starts the two CLIs about 1,200 times, and before either reads its arguments it
spends about 0.35 CPU-seconds importing ansible-core: a third of an ad hoc module run. This
server imports the CLIs once, then forks a child per request. The child is a fresh controller:
it takes the request's environment, directory and argv, runs exactly the CLI's own entry point
(`CLI.cli_executor`, what the console scripts call) with its output in the files the client
named, and exits with the CLI's exit code. Nothing a run does reaches the server or the next run.

What the fork cannot give a child is an ansible configuration other than the one the server
read when it imported ansible (ansible.constants is computed at import): the client keeps one
server per configuration, that is per working directory and set of ANSIBLE_* variables
(tests/helpers/cli.py, AnsibleServers).

Protocol, on a Unix socket, one connection per run:
  client -> server  one JSON line: {"argv": [...], "env": {...}, "cwd": "...",
                                    "stdout": PATH, "stderr": PATH}
  child -> client   {"pid": N} when it starts (the client kills its process group on a timeout),
                    then {"rc": N, "cpu_seconds": X} when it ends (X: the CPU it and its children
                    used, which the tests' CPU list counts).
The server exits when its standard input closes: its client, the pytest worker, is gone.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import socket
import sys

# What the two CLIs import before they run, imported once here.
from ansible.cli.adhoc import AdHocCLI
from ansible.cli.playbook import PlaybookCLI
import ansible.executor.module_common  # noqa: F401  pylint: disable=unused-import
import ansible.executor.playbook_executor  # noqa: F401  pylint: disable=unused-import
import ansible.executor.process.worker  # noqa: F401  pylint: disable=unused-import
import ansible.executor.task_queue_manager  # noqa: F401  pylint: disable=unused-import
import ansible.plugins.action.normal  # noqa: F401  pylint: disable=unused-import
import ansible.plugins.connection.local  # noqa: F401  pylint: disable=unused-import
import ansible.plugins.strategy.linear  # noqa: F401  pylint: disable=unused-import

CLIS = {'ansible': AdHocCLI, 'ansible-playbook': PlaybookCLI}


def _child(conn, req):
    """In the forked child: become the CLI run the request describes; never returns."""
    rc = 1
    try:
        os.setsid()  # its own process group: a timeout kills the run and what it started
        conn.sendall(json.dumps({'pid': os.getpid()}).encode() + b'\n')
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        out = os.open(req['stdout'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(req['stderr'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        os.environ.clear()
        os.environ.update(req['env'])
        os.chdir(req['cwd'])
        sys.argv = list(req['argv'])
        cli = CLIS[os.path.basename(req['argv'][0])]
        try:
            cli.cli_executor(list(req['argv']))
        except SystemExit as done:
            rc = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException as exc:  # pylint: disable=broad-except
        os.write(2, ('ansible_server: the run failed to start: %r\n' % (exc,)).encode())
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            try:
                used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
                conn.sendall(json.dumps({'rc': rc, 'cpu_seconds': sum(u.ru_utime + u.ru_stime for u in used)})
                             .encode() + b'\n')
            finally:
                os._exit(rc)  # pylint: disable=protected-access


def _read_request(conn):
    data = b''
    while not data.endswith(b'\n'):
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError('the client closed the connection before its request ended')
        data += chunk
    return json.loads(data)


def serve(path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    while True:
        ready = select.select([listener, sys.stdin], [], [], 1.0)[0]
        while True:  # reap the children that ended
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
            return
        if listener in ready:
            conn = listener.accept()[0]
            try:
                req = _read_request(conn)
            except (EOFError, ValueError, OSError):
                conn.close()
                continue
            if os.fork() == 0:
                listener.close()
                _child(conn, req)
            conn.close()


if __name__ == '__main__':
    serve(sys.argv[1])
