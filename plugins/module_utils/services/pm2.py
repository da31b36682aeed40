# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pm2 backend of the services role: `pm2 jlist` is the source of truth.

Observe the processes of one pm2 application, plan (start, restart, scale, stop), apply with
the pm2 CLI, then wait until every instance is online and the health URL answers.
"""

from __future__ import annotations

import json
import re
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

ANSI = re.compile(r'\x1b\[[0-9;]*m')

# pm2 reads the argument of restart/stop/scale as a pm_id when it is a number, as every process
# for `all`, as a regular expression for /.../, as a config file when it contains .json, .yml,
# .yaml or .config.js, and as a namespace when no process has that name; a leading '-' makes
# it an option. Application names are therefore plain names, checked before pm2 is run.
NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$')
CONFIG_LIKE = ('.json', '.yml', '.yaml', '.config.js', '.config.cjs', '.config.mjs')
ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')

from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action
from ansible_collections.oncall.runbooks.plugins.module_utils.services import health as hc


class Pm2Error(OncallError):
    """A pm2 failure, already phrased for the operator."""


def check_name(name):
    """Refuse an application name pm2 would read as something else (see NAME above)."""
    if (not isinstance(name, str) or not NAME.match(name) or name.isdigit() or name == 'all'
            or any(ext in name for ext in CONFIG_LIKE)):
        raise Pm2Error("name must be a plain pm2 application name (letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit, not all digits, not 'all', not like a config "
                       "file), not %r" % (name,))


def check_env(env, option):
    """Environment names must be identifiers and must not redirect pm2 itself (PM2_*)."""
    for key in env or {}:
        if not ENV_NAME.match(str(key)) or str(key).upper().startswith('PM2_'):
            raise Pm2Error('%s names must be environment variable names (letters, digits and _) '
                           'other than PM2_*, not %r' % (option, key))


class Pm2(object):
    """The pm2 CLI, run through a callable with AnsibleModule.run_command's signature."""

    def __init__(self, run_command, pm2_bin='pm2', pm2_home=None):
        self.run_command = run_command
        self.bin = pm2_bin
        self.env = {'FORCE_COLOR': '0', 'NO_COLOR': '1'}
        if pm2_home:
            self.env['PM2_HOME'] = pm2_home

    def _run(self, args, extra_env=None):
        env = dict(self.env, **(extra_env or {}))
        rc, out, err = self.run_command([self.bin] + args, environ_update=env)
        if rc != 0:
            lines = [ANSI.sub('', ln).strip() for ln in (err or out or '').splitlines() if ln.strip()]
            lines = [ln for ln in lines if 'ERROR' in ln] or lines
            last = lines[-1] if lines else 'no output'
            raise Pm2Error('pm2 %s failed (rc %d): %s' % (' '.join(args[:2]), rc, last))
        return out

    def jlist(self):
        out = self._run(['jlist'])
        # pm2 prints a banner before the JSON list when this command started its daemon.
        for line in reversed(out.splitlines()):
            if line.startswith('['):
                try:
                    return json.loads(line)
                except ValueError:
                    break
        raise Pm2Error('pm2 jlist did not return a JSON list: %s' % out.strip()[-200:])

    def start(self, name, script, instances, cwd=None, env=None, node_args=None):
        if script and not script.startswith('/'):
            raise Pm2Error('script must be an absolute path, not %s' % script)
        check_name(name)
        # --option=value: a value is never read as an option of its own
        args = ['start', script, '--name=%s' % name, '-i', str(int(instances or 1))]
        if cwd:
            args.append('--cwd=%s' % cwd)
        if node_args:
            args.append('--node-args=%s' % node_args)
        self._run(args, extra_env=env)

    def restart(self, name):
        check_name(name)
        self._run(['restart', name])

    def scale(self, name, instances):
        check_name(name)
        self._run(['scale', name, str(int(instances))])

    def stop(self, name):
        check_name(name)
        self._run(['stop', name])

    def save(self):
        self._run(['save'])


def observe(procs, name):
    """What pm2 jlist says about application `name`: instances, statuses, restarts, pids."""
    mine = [p for p in procs if p.get('name') == name]
    out = {'name': name, 'exists': bool(mine), 'instances': len(mine), 'online': 0,
           'processes': []}
    for p in sorted(mine, key=lambda x: x.get('pm_id', 0)):
        penv = p.get('pm2_env') or {}
        entry = {'pm_id': p.get('pm_id'), 'pid': p.get('pid'), 'status': penv.get('status'),
                 'restarts': penv.get('restart_time', 0), 'unstable_restarts': penv.get('unstable_restarts', 0),
                 'uptime_ms': penv.get('pm_uptime'), 'exec_path': penv.get('pm_exec_path'),
                 'exec_mode': penv.get('exec_mode'), 'memory': (p.get('monit') or {}).get('memory')}
        out['processes'].append(entry)
        if entry['status'] == 'online':
            out['online'] += 1
    out['statuses'] = sorted(set(p['status'] for p in out['processes']))
    return out


def plan(obs, params):
    """The actions that bring application `name` to the requested state."""
    name, state, instances = params['name'], params['state'], params.get('instances')
    actions = []
    if state == 'stopped':
        if obs['online']:
            actions.append(Action('stop', name, '%d instance(s) online' % obs['online'], obs['online']))
        return actions
    if not obs['exists']:
        if not params.get('script'):
            raise Pm2Error('pm2 has no process named %s: set script to start it, or check name '
                           'and pm2_home' % name)
        actions.append(Action('start', name, 'not in pm2 jlist', instances or 1,
                              params={'script': params['script']}))
        return actions
    if state == 'restarted':
        actions.append(Action('restart', name, 'restart requested', obs['instances']))
    elif obs['online'] < obs['instances']:
        actions.append(Action('restart', name, '%d of %d instance(s) online (%s)' % (
            obs['online'], obs['instances'], ', '.join(obs['statuses'])), obs['instances']))
    if instances and instances != obs['instances']:
        actions.append(Action('scale', name, '%d instance(s), %d wanted' % (obs['instances'], instances),
                              instances))
    return actions


def apply(pm2, actions, params):
    done = []
    for action in actions:
        if action.kind == 'start':
            env = dict(params.get('env') or {}, **(params.get('secret_env') or {}))
            pm2.start(params['name'], params['script'], params.get('instances'), params.get('cwd'),
                      dict((k, str(v)) for k, v in env.items()), params.get('node_args'))
        elif action.kind == 'restart':
            pm2.restart(params['name'])
        elif action.kind == 'scale':
            pm2.scale(params['name'], action.count)
        elif action.kind == 'stop':
            pm2.stop(params['name'])
        done.append(action.to_dict())
    return done


def wait_healthy(pm2, name, instances, health_url, timeout, min_uptime=1.0, sleep=time.sleep,
                 clock=time.time):
    """Wait until `instances` processes of `name` are online for min_uptime and the health URL
    answers 2xx; returns (observation, health result) or raises Pm2Error saying what is wrong."""
    deadline = clock() + timeout
    last_health = None
    while True:
        obs = observe(pm2.jlist(), name)
        now_ms = clock() * 1000
        settled = [p for p in obs['processes'] if p['status'] == 'online'
                   and (now_ms - (p['uptime_ms'] or now_ms)) >= min_uptime * 1000]
        procs_ok = obs['instances'] >= (instances or 1) and len(settled) == obs['instances']
        if procs_ok and health_url:
            last_health = hc.probe(health_url, timeout=min(5.0, max(1.0, timeout)))
        if procs_ok and (not health_url or last_health['ok']):
            return obs, last_health
        if clock() >= deadline:
            why = '%d of %d instance(s) online (%s, %d restart(s))' % (
                obs['online'], max(obs['instances'], instances or 1), ', '.join(obs['statuses']) or 'absent',
                sum(p['restarts'] for p in obs['processes']))
            if procs_ok and last_health:
                why = 'processes online but %s answered %s' % (health_url, last_health['why'])
            raise Pm2Error('pm2 application %s did not become healthy within %ds: %s; see `pm2 logs %s`'
                           % (name, timeout, why, name))
        sleep(0.5)
