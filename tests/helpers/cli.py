# -*- coding: utf-8 -*-
"""Running the collection through the real CLIs: run_module (`ansible`), run_playbook
(`ansible-playbook`), both through run_ansible and tests/ansible_server.py; recap() reads a
play recap."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from helpers.paths import ROOT


def _env():
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
        ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
        ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_LOCALHOST_WARNING='0',
        ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
    )
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    return env


def ansible_bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


class AnsibleServers(object):
    """This process's tests/ansible_server.py servers, one per ansible configuration: the
    working directory and the ANSIBLE_* variables, which ansible-core reads when it is imported.
    Started on first use; each exits when this process does (its standard input closes)."""

    def __init__(self):
        self.servers = {}
        self.dir = None
        self.started = 0
        self.lock = threading.Lock()
        self.cpu_seconds = 0.0  # what the runs cost: each child's and its children's CPU

    def server(self, cwd, env):
        with self.lock:
            return self._server(cwd, env)

    def _server(self, cwd, env):
        key = (cwd, tuple(sorted((k, v) for k, v in env.items() if k.startswith('ANSIBLE_'))),
               env.get('PYTHONPATH', ''))
        if key not in self.servers:
            if len(self.servers) >= 8:  # a ninth configuration: the oldest server goes
                oldest = next(iter(self.servers))
                self.servers.pop(oldest)[0].stdin.close()
            if self.dir is None:
                import atexit
                self.dir = tempfile.mkdtemp(prefix='oncall-ansible-server-')
                atexit.register(shutil.rmtree, self.dir, True)
            self.started += 1
            path = os.path.join(self.dir, '%d.sock' % self.started)
            proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'ansible_server.py'), path],
                                    cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
            ready = proc.stdout.readline()
            if ready != 'ready\n':
                raise RuntimeError('tests/ansible_server.py did not start (%r)' % ready)
            self.servers[key] = (proc, path)
        return self.servers[key][1]


_ansible_servers = AnsibleServers()


def run_ansible(cmd, env, cwd=ROOT, timeout=300):
    """Run `ansible` or `ansible-playbook` (cmd[0], as ansible_bin gives it) like
    subprocess.run(cmd, capture_output=True, text=True, timeout=...): the same argv, environment
    and directory, through a forking server that has ansible-core imported already
    (tests/ansible_server.py). ONCALL_TEST_ANSIBLE_SERVER=0 runs the command itself instead."""
    if os.environ.get('ONCALL_TEST_ANSIBLE_SERVER', '1') == '0':
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    import socket
    path = _ansible_servers.server(cwd, env)
    with tempfile.TemporaryDirectory(prefix='oncall-ansible-run-') as tmp:
        out, err = os.path.join(tmp, 'stdout'), os.path.join(tmp, 'stderr')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.settimeout(timeout)
        pid, rc = None, None
        try:
            sock.sendall(json.dumps({'argv': [os.path.basename(cmd[0])] + list(cmd[1:]), 'env': env,
                                     'cwd': cwd, 'stdout': out, 'stderr': err}).encode() + b'\n')
            reader = sock.makefile('r')
            for line in reader:
                msg = json.loads(line)
                pid = msg.get('pid', pid)
                if 'rc' in msg:
                    rc = msg['rc']
                    _ansible_servers.cpu_seconds += msg.get('cpu_seconds', 0.0)
                    break
        except socket.timeout:
            if pid:
                try:
                    os.killpg(pid, 9)
                except OSError:
                    pass
            raise subprocess.TimeoutExpired(cmd, timeout)
        finally:
            sock.close()
        if rc is None:
            raise RuntimeError('the ansible server ended the run without its exit code: %s' % cmd)
        with open(out, encoding='utf-8', errors='replace') as f_out, \
                open(err, encoding='utf-8', errors='replace') as f_err:
            return subprocess.CompletedProcess(cmd, rc, f_out.read(), f_err.read())


class ModuleRun(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        # the json callback prints one document last; -vvv output may come before it
        start = 0 if proc.stdout.startswith('{') else proc.stdout.rfind('\n{\n') + 1
        try:
            data = json.loads(proc.stdout[start:])
        except ValueError:
            raise AssertionError('no JSON result from ansible (rc %s): %s %s'
                                 % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        self.result = data['plays'][0]['tasks'][0]['hosts']['localhost']

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    @property
    def failed(self):
        return bool(self.result.get('failed'))


def run_module(module, args, check=False, diff=False, verbosity=0):
    """Run oncall.runbooks.<module> through the real `ansible` CLI; returns its result."""
    cmd = [ansible_bin('ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-m', 'oncall.runbooks.' + module, '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if verbosity:
        cmd.append('-' + 'v' * verbosity)
    return ModuleRun(run_ansible(cmd, env=_env(), timeout=300))


VERDICT_TASK = 'Fail the job on its verdict'


def recap(proc, host='lab'):
    """The play recap of a run for one host: ok, changed, unreachable, failed, rescued, and
    verdict_failed - the job was failed by its verdict (oncall_fail_on) after the report was
    written. That deliberate failure is not counted in failed, so failed counts broken tasks."""
    m = re.search(r'%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)'
                  r'(?:\s+skipped=\d+\s+rescued=(\d+))?' % re.escape(host), proc.stdout)
    assert m, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, m.groups()[:4])))
    out['rescued'] = int(m.group(5) or 0)
    last_task = proc.stdout.rfind('\nTASK [')
    header = proc.stdout[last_task + 1:proc.stdout.find('\n', last_task + 1)]
    out['verdict_failed'] = (VERDICT_TASK in header
                             and 'fatal: [' in proc.stdout[last_task:] and out['failed'] >= 1)
    if out['verdict_failed']:
        out['failed'] -= 1
    return out


def run_playbook(playbook, extra_vars=None, check=False, diff=False, inventory=None, tags=None,
                 env=None):
    cmd = [ansible_bin('ansible-playbook'), playbook]
    if inventory:
        cmd += ['-i', inventory]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if tags:
        cmd += ['--tags', tags]
    env = dict(_env(), **(env or {}))
    env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.default'
    env['ANSIBLE_CALLBACK_RESULT_FORMAT'] = 'yaml'
    return run_ansible(cmd, env=env, timeout=900)
