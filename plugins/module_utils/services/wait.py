# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait until a systemd unit set or a Docker container is healthy, within one deadline: the
service_wait module's logic (private to the collection).

Each backend is a read of the service's state (``systemctl show``; the Docker Engine API's
container inspect), a verdict on it (healthy, terminal, not yet), and then the health URLs,
polled until they answer 2xx. A terminal state (a unit in ActiveState ``failed``; a container
that exited and that no restart policy brings back) ends the wait at once."""

from __future__ import annotations

import json
import re
import socket
import time
from http.client import HTTPConnection, HTTPException
from urllib.parse import quote, urlsplit

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError
from ansible_collections.oncall.runbooks.plugins.module_utils.services import health as hc

UNIT_PROPERTIES = ('Id', 'ActiveState', 'SubState', 'MainPID')
# systemd's unit name grammar (systemd.unit(5)): what systemctl is given is a unit, never an option
_UNIT = re.compile(r'^[A-Za-z0-9:_.\\@-]{1,255}$')
# Docker's container name grammar (the daemon's own: [a-zA-Z0-9][a-zA-Z0-9_.-]+), or an ID
_CONTAINER = re.compile(r'^/?[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$')


class WaitError(OncallError):
    """The service did not become healthy, or could not be read: one sentence, and the result."""


# --- systemd --------------------------------------------------------------------------------

def check_units(units, name):
    """The units to wait for, each a unit name (never an option to systemctl)."""
    if not units:
        raise WaitError('no instance of %s to wait for: scale it first (services_instances)' % name)
    for unit in units:
        if not isinstance(unit, str) or unit.startswith('-') or not _UNIT.match(unit):
            raise WaitError('units must be systemd unit names (letters, digits, ":_.\\@-"), not %r' % (unit,))
    return list(units)


def instance_of(unit):
    """The instance of a template unit's instance (svc@3.service -> '3'); '' for a plain unit."""
    m = re.match(r'^[^@]*@([^.]*)[.]service$', unit)
    return m.group(1) if m else ''


def unit_urls(health_url, units):
    """The health URLs to ask, in order and without repeats: %i is each unit's instance."""
    urls = []
    for unit in units if health_url else ():
        url = health_url.replace('%i', instance_of(unit))
        if url not in urls:
            urls.append(url)
    return urls


def parse_show(text):
    """`systemctl show --property=...` of several units: one dict per unit, in order."""
    units = []
    for block in text.split('\n\n'):
        props = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
        if props:
            units.append(props)
    return units


def unit_healthy(unit):
    return unit.get('ActiveState') == 'active' and unit.get('SubState') == 'running'


def systemd_state(units_read, wanted):
    """'healthy' (every wanted unit active/running), 'failed' (one is ActiveState=failed: no
    point in waiting), or 'waiting'."""
    if any(u.get('ActiveState') == 'failed' for u in units_read):
        return 'failed'
    if len(units_read) == len(wanted) and all(unit_healthy(u) for u in units_read):
        return 'healthy'
    return 'waiting'


class Systemd(object):
    """systemctl and journalctl through run_command (argv lists, never a shell)."""

    def __init__(self, run_command, systemctl='systemctl', journalctl='journalctl'):
        self._run = run_command
        self.systemctl = systemctl
        self.journalctl = journalctl

    def show(self, units):
        argv = [self.systemctl, 'show', '--property=' + ','.join(UNIT_PROPERTIES), '--'] + list(units)
        rc, out, err = self._run(argv)
        if rc != 0:
            raise WaitError('systemctl show failed (exit %s): %s' % (rc, (err or out).strip()[:300]))
        return parse_show(out)

    def journal(self, units, lines):
        argv = [self.journalctl, '--no-pager', '-o', 'cat', '-n', str(int(lines))]
        for unit in units:
            argv += ['-u', unit]
        rc, out, _err = self._run(argv)
        return out.splitlines() if rc == 0 else []


# --- Docker ---------------------------------------------------------------------------------

class _UnixConnection(HTTPConnection):
    def __init__(self, path, timeout):
        HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def docker_endpoint(docker_host, tls=False):
    """(kind, address) of a DOCKER_HOST value: ('unix', path) or ('tcp', (host, port)). Anything
    else (ssh://, TLS: tls is DOCKER_TLS_VERIFY or DOCKER_TLS set) is refused with a sentence:
    the wait reads the Engine API itself, without TLS."""
    value = (docker_host or 'unix:///var/run/docker.sock').strip()
    parts = urlsplit(value)
    if parts.scheme == 'unix' and parts.path:
        return 'unix', parts.path
    if parts.scheme in ('tcp', 'http') and parts.hostname and not tls:
        try:
            return 'tcp', (parts.hostname, parts.port or 2375)
        except ValueError:
            pass
    raise WaitError('docker_host must be unix:///path/to/docker.sock or tcp://host:port without TLS (the wait reads '
                    'the Engine API itself), not %r%s: run the task on the Docker host (delegate_to) instead'
                    % (value, ' with TLS' if tls else ''))


class Docker(object):
    """The one Engine API call the wait needs: GET /containers/<name>/json."""

    def __init__(self, docker_host=None, tls=False, timeout=10.0):
        self.kind, self.address = docker_endpoint(docker_host, tls)
        self.timeout = timeout

    def _connection(self):
        if self.kind == 'unix':
            return _UnixConnection(self.address, self.timeout)
        return HTTPConnection(self.address[0], self.address[1], timeout=self.timeout)

    def inspect(self, name):
        """The container's inspect document, or None when the daemon does not know it."""
        conn = self._connection()
        try:
            conn.request('GET', '/containers/%s/json' % quote(name.lstrip('/'), safe=''))
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, HTTPException) as exc:
            raise WaitError('cannot reach the Docker daemon at %s: %s'
                            % (self.address if self.kind == 'unix' else '%s:%s' % self.address, exc))
        finally:
            conn.close()
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise WaitError('the Docker daemon answered %s to the inspect of %s: %s'
                            % (resp.status, name, body[:300].decode('utf-8', 'replace').strip()))
        try:
            return json.loads(body.decode('utf-8'))
        except ValueError:
            raise WaitError('the Docker daemon answered the inspect of %s with something that is not JSON: %r'
                            % (name, body[:100]))


def check_container(name):
    if not isinstance(name, str) or not _CONTAINER.match(name):
        raise WaitError('name must be a Docker container name or ID (letters, digits, "_.-"), not %r' % (name,))
    return name


def container_health(container):
    return ((container.get('State') or {}).get('Health') or {}).get('Status') or 'none'


def docker_state(container):
    """'healthy' (running, and healthy or without a healthcheck), 'failed' (exited or dead with
    no restart policy to bring it back, or absent), or 'waiting' (starting, unhealthy: a later
    check may pass)."""
    if container is None:
        return 'waiting'
    state = container.get('State') or {}
    if state.get('Running') and container_health(container) in ('healthy', 'none'):
        return 'healthy'
    policy = ((container.get('HostConfig') or {}).get('RestartPolicy') or {}).get('Name') or ''
    if state.get('Status') in ('exited', 'dead') and policy in ('', 'no'):
        return 'failed'
    return 'waiting'


def describe_container(container):
    """'running, health starting' / 'exited, exit code 3, health none' / 'it does not exist'."""
    if container is None:
        return 'it does not exist'
    state = container.get('State') or {}
    status = state.get('Status') or '?'
    code = ', exit code %s' % state.get('ExitCode') if status in ('exited', 'dead') else ''
    return '%s%s, health %s' % (status, code, container_health(container))


def container_summary(container):
    """What the result shows of the inspect document (never its environment: it may hold secrets)."""
    if container is None:
        return {}
    state = container.get('State') or {}
    return {'id': container.get('Id', ''), 'name': (container.get('Name') or '').lstrip('/'),
            'image': (container.get('Config') or {}).get('Image', ''),
            'status': state.get('Status', ''), 'running': bool(state.get('Running')),
            'exit_code': state.get('ExitCode'), 'health': container_health(container),
            'started_at': state.get('StartedAt', ''),
            'restart_policy': ((container.get('HostConfig') or {}).get('RestartPolicy') or {}).get('Name') or ''}


# --- the wait -------------------------------------------------------------------------------

def poll(read, verdict, deadline, interval, clock=time.monotonic, sleep=time.sleep):
    """read() until verdict(value) is not 'waiting' or the deadline passes; (value, verdict)."""
    while True:
        value = read()
        state = verdict(value)
        if state != 'waiting' or clock() >= deadline:
            return value, state
        sleep(max(0.0, min(interval, deadline - clock())))


def wait_urls(urls, deadline, interval, validate_certs=True, clock=time.monotonic, sleep=time.sleep):
    """Each URL in turn until it answers 2xx or the shared deadline passes: the last probe of each."""
    answers = []
    for url in urls:
        answer = None
        while True:
            left = deadline - clock()
            answer = hc.probe(url, timeout=max(1.0, min(5.0, max(interval, left))), validate_certs=validate_certs,
                              option='health_url')
            if answer['ok'] or clock() >= deadline:
                break
            sleep(max(0.0, min(interval, deadline - clock())))
        answers.append(answer)
    return answers


def said(answer):
    """What a health URL answered: 'answered 500', or 'did not answer (connection refused)'."""
    if answer['status'] is not None:
        return 'answered %s' % answer['status']
    why = answer['why']
    return 'did not answer (%s)' % (why[len('no answer ('):-1] if why.startswith('no answer (') else why)


def health_messages(answers):
    """['<url> answered 500', '<url> did not answer (...)'] for the URLs that did not answer 2xx."""
    return ['%s %s' % (a['url'], said(a)) for a in answers if not a['ok']]


def health_message(answers):
    """The health_messages of answers, as one clause."""
    return ', '.join(health_messages(answers))
