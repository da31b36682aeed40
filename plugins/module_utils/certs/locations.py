# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a certificate lives: files, a Kubernetes TLS secret, or a TLS endpoint.

Every location has one interface (like community.crypto's module backends):

* ``name``: how plans, results and errors name it;
* ``read()``: ``(chain, key)`` with ``chain`` the certificates (leaf first) and ``key`` the
  private key or None; ``(None, None)`` when nothing is there yet; CertError on bad content;
* ``write(leaf, chain, key)`` for destinations (files and secrets): put a new certificate in
  place; the private key is never returned, logged or put in a diff.
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import shutil
import socket
import ssl
import tempfile

from ansible_collections.oncall.runbooks.plugins.module_utils import kube
from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509
from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import parse_duration
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError

LOCATION_TYPES = ('file', 'k8s_secret', 'endpoint')


# ---- files -----------------------------------------------------------------------------------

def _read_file(path, what):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CertError('cannot read %s %s: %s' % (what, path, exc.strerror or exc))


def _ids(owner, group):
    import grp
    import pwd
    uid = gid = -1
    try:
        if owner not in (None, ''):
            uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
        if group not in (None, ''):
            gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise CertError('unknown owner or group %s: create it or change owner/group' % exc)
    return uid, gid


def _stage(path, data, mode, owner=None, group=None):
    """Write *data* to a temp file next to *path*, created with *mode* (a key is never
    readable by others, not even for an instant), owned as asked; returns its path."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CertError('directory %s of %s does not exist: create it first' % (directory, path))
    uid, gid = _ids(owner, group)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, mode)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        with os.fdopen(fd, 'wb') as f:
            f.write(data if isinstance(data, bytes) else data.encode('ascii'))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        _discard([tmp])
        raise CertError('cannot write %s: %s' % (path, exc.strerror or exc))
    return tmp


def _discard(paths):
    for tmp in paths:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _commit(tmp, path, backup):
    """Keep the previous *path* as ``<path>.<UTC time>.bak`` (when *backup*), then rename."""
    backup_path = None
    if backup and os.path.exists(path):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')
        backup_path = '%s.%s.bak' % (path, stamp)
        shutil.copy2(path, backup_path)
    os.replace(tmp, path)
    return backup_path


def atomic_write(path, data, mode, owner=None, group=None, backup=True):
    """Replace *path* by *data* atomically; returns the backup path or None."""
    return write_all([(path, data, mode)], owner, group, backup)[0]


def write_all(files, owner=None, group=None, backup=True):
    """Replace several files together: every new file is written (temp files) before any is
    renamed into place, so an error (disk full, unknown owner) leaves all of them as they
    were. Returns the backup paths (None where there was no previous file)."""
    staged = []
    try:
        for path, data, mode in files:
            staged.append((_stage(path, data, mode, owner, group), path))
    except CertError:
        _discard([tmp for tmp, dummy in staged])
        raise
    backups = []
    try:
        for tmp, path in staged:
            backups.append(_commit(tmp, path, backup))
    except OSError as exc:
        _discard([tmp for tmp, dummy in staged])
        raise CertError('cannot replace %s: %s' % (exc.filename or path, exc.strerror or exc))
    return backups


class FileLocation(object):
    """``{type: file, path, key_path, chain_path}``: PEM files on the host running the module.

    ``path`` holds the leaf followed by its chain (nginx's ``ssl_certificate``, a fullchain),
    unless ``chain_path`` is given, then ``path`` holds the leaf alone and ``chain_path`` the
    chain.
    """

    def __init__(self, spec):
        self.path = spec.get('path')
        if not self.path:
            raise CertError('a file location needs path (the certificate file)')
        self.key_path = spec.get('key_path')
        self.chain_path = spec.get('chain_path')
        self.owner = spec.get('owner')
        self.group = spec.get('group')
        self.mode = _mode(spec.get('mode'), 0o644, 'mode')
        self.key_mode = _mode(spec.get('key_mode'), 0o600, 'key_mode')
        self.backup = spec.get('backup', True) is not False
        self.name = 'file %s' % self.path
        self.backups = []

    def read(self):
        data = _read_file(self.path, 'certificate file')
        if data is None:
            return None, None
        chain = x509.load_chain(data, 'certificate file %s' % self.path)
        if self.chain_path:
            more = _read_file(self.chain_path, 'chain file')
            if more:
                chain += x509.load_chain(more, 'chain file %s' % self.chain_path)
        key = None
        if self.key_path:
            raw = _read_file(self.key_path, 'key file')
            if raw is not None:
                key = x509.load_key(raw, 'key file %s' % self.key_path)
        return chain, key

    def write(self, leaf, chain, key):
        if not self.key_path:
            raise CertError('%s needs key_path to receive the new private key' % self.name)
        # the key first: a reader that sees the new certificate finds its key already there
        files = [(self.key_path, x509.key_pem(key), self.key_mode),
                 (self.path, ''.join(x509.cert_pem(c) for c in ([leaf] if self.chain_path else [leaf] + chain)),
                  self.mode)]
        if self.chain_path:
            files.append((self.chain_path, ''.join(x509.cert_pem(c) for c in chain), self.mode))
        self.backups += [b for b in write_all(files, self.owner, self.group, self.backup) if b]


def _mode(value, default, option):
    if value in (None, ''):
        return default
    try:
        return int(str(value), 8)
    except ValueError:
        raise CertError('%s must be an octal mode such as 0600, not %r' % (option, value))


# ---- a TLS endpoint --------------------------------------------------------------------------

def _served_chain(tls):
    """DER of every certificate the server sent (leaf first).

    Python 3.13 has SSLSocket.get_unverified_chain(); 3.10 to 3.12 have it on the private
    _sslobj only. Without either, only the leaf (and chain verification then needs the
    intermediates in the trusted bundle).
    """
    getter = getattr(tls, 'get_unverified_chain', None) or getattr(getattr(tls, '_sslobj', None),
                                                                   'get_unverified_chain', None)
    ders = []
    if getter is not None:
        for cert in getter() or []:
            ders.append(cert if isinstance(cert, bytes) else cert.public_bytes(ssl._ssl.ENCODING_DER))  # pylint: disable=protected-access
    return ders or [tls.getpeercert(binary_form=True)]


class EndpointLocation(object):
    """``{type: endpoint, host, port, server_name}``: what a TLS server presents (read-only).

    ``verify_name`` is the name a client asks for (``server_name``, else ``host``): the served
    certificate must be for it (a DNS or IP subjectAltName), as ``openssl s_client
    -verify_hostname`` / ``-verify_ip`` checks.
    """

    def __init__(self, spec, timeout='10s'):
        self.host = spec.get('host')
        if not self.host:
            raise CertError('an endpoint location needs host')
        self.port = int(spec.get('port') or 443)
        self.server_name = spec.get('server_name') or self.host
        self.verify_name = self.server_name
        self.timeout = parse_duration(spec.get('timeout') or timeout, 'timeout')
        self.name = 'endpoint %s:%d (%s)' % (self.host, self.port, self.server_name)

    def read(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # we read what is served, then verify it ourselves
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname=self.server_name) as tls:
                    ders = _served_chain(tls)
        except ssl.SSLError as exc:
            raise CertError('%s does not answer TLS: %s' % (self.name, exc.reason or exc))
        except (OSError, socket.timeout) as exc:
            raise CertError('cannot connect to %s: %s' % (self.name, getattr(exc, 'strerror', None) or exc))
        from cryptography import x509 as cx509
        return [cx509.load_der_x509_certificate(d) for d in ders if d], None

    def write(self, leaf, chain, key):
        raise CertError('%s is read-only: give a destination (files or a Kubernetes secret)' % self.name)


# ---- a Kubernetes TLS secret -----------------------------------------------------------------

def k8s_client(params):
    """A kubernetes ApiClient from the Kubernetes options (module_utils/kube.py, kubernetes.core's names)."""
    try:
        return kube.api_client(params)
    except kube.KubeError as exc:
        raise CertError(str(exc))


def k8s_error(exc, what):
    status = getattr(exc, 'status', None)
    reason = getattr(exc, 'reason', None) or exc
    if status:
        return CertError('Kubernetes API refused %s: %s %s' % (what, status, reason))
    return CertError('cannot reach the Kubernetes API for %s: %s' % (what, reason))


class SecretLocation(object):
    """``{type: k8s_secret, namespace, name}``: a ``kubernetes.io/tls`` secret (tls.crt, tls.key)."""

    def __init__(self, spec, k8s_params):
        self.namespace = spec.get('namespace') or 'default'
        self.secret = spec.get('name')
        if not self.secret:
            raise CertError('a k8s_secret location needs name (and namespace)')
        self.k8s_params = k8s_params
        self.name = 'secret %s/%s' % (self.namespace, self.secret)
        self._api = None
        self.exists = False

    def api(self):
        if self._api is None:
            from kubernetes import client as kclient
            self._api = kclient.CoreV1Api(k8s_client(self.k8s_params))
        return self._api

    def read(self):
        from kubernetes.client.rest import ApiException
        try:
            secret = self.api().read_namespaced_secret(self.secret, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None, None
            raise k8s_error(exc, 'reading %s' % self.name)
        except Exception as exc:  # pylint: disable=broad-except  # urllib3 connection errors
            raise k8s_error(exc, 'reading %s' % self.name)
        self.exists = True
        if secret.type != 'kubernetes.io/tls':
            raise CertError('%s is of type %s, not kubernetes.io/tls: point to a TLS secret'
                            % (self.name, secret.type))
        data = secret.data or {}
        if not data.get('tls.crt'):
            return None, None
        chain = x509.load_chain(base64.b64decode(data['tls.crt']), '%s tls.crt' % self.name)
        key = None
        if data.get('tls.key'):
            key = x509.load_key(base64.b64decode(data['tls.key']), '%s tls.key' % self.name)
        return chain, key

    def write(self, leaf, chain, key):
        from kubernetes.client.rest import ApiException
        data = {
            'tls.crt': base64.b64encode(''.join(x509.cert_pem(c) for c in [leaf] + chain).encode('ascii')).decode('ascii'),
            'tls.key': base64.b64encode(x509.key_pem(key)).decode('ascii'),
        }
        try:
            if self.exists:
                self.api().patch_namespaced_secret(self.secret, self.namespace, {'data': data})
            else:
                body = {'apiVersion': 'v1', 'kind': 'Secret', 'type': 'kubernetes.io/tls',
                        'metadata': {'name': self.secret, 'namespace': self.namespace}, 'data': data}
                self.api().create_namespaced_secret(self.namespace, body)
        except ApiException as exc:
            raise k8s_error(exc, 'writing %s' % self.name)
        except Exception as exc:  # pylint: disable=broad-except
            raise k8s_error(exc, 'writing %s' % self.name)


_HOST = re.compile(r'(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?|[0-9A-Fa-f:.]{2,45}|'
                   r'\[[0-9A-Fa-f:.]{2,45}\]', re.ASCII)
_K8S_NAME = re.compile(r'[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?', re.ASCII)


def _opt(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except opt.OptionError as exc:
        raise CertError(str(exc))


def _abs_path(option, value):
    _opt(opt.text, option, value, max_length=4096, what='an absolute path')
    if not os.path.isabs(value) or '\0' in value:
        raise CertError('%s must be an absolute path, not %s' % (option, opt.shown(value)))


def check_spec(spec, what='source'):
    """The fields of a location (and of an inventory entry around it), before anything is read
    or written: one sentence naming the field (CertError)."""
    if not isinstance(spec, dict):
        raise CertError('%s must be a dictionary with type and its fields, not %s' % (what, opt.shown(spec)))
    if spec.get('renew_before') not in (None, ''):
        _opt(opt.number, what + '.renew_before', spec['renew_before'], low=0, high=3650)
    for field in ('verify_chain', 'trust_chain_root', 'backup'):
        if spec.get(field) is not None:
            _opt(opt.flag, '%s.%s' % (what, field), spec[field])
    if isinstance(spec.get('source'), dict) or 'source' in spec:
        if spec.get('name') is not None:
            _opt(opt.text, what + '.name', spec['name'], max_length=253)
        return check_spec(spec['source'], what + '.source')
    kind = spec.get('type')
    if kind not in LOCATION_TYPES:
        raise CertError('%s.type must be one of %s, not %s' % (what, ', '.join(LOCATION_TYPES), opt.shown(kind)))
    if kind == 'file':
        if spec.get('path') in (None, ''):
            raise CertError('%s.path is needed: a file location needs the certificate file' % what)
        for field in ('path', 'key_path', 'chain_path'):
            if spec.get(field) is not None:
                _abs_path('%s.%s' % (what, field), spec[field])
        for field in ('owner', 'group'):
            if spec.get(field) is not None:
                _opt(opt.text, '%s.%s' % (what, field), str(spec[field]) if isinstance(spec[field], int)
                     and not isinstance(spec[field], bool) else spec[field], max_length=64)
        for field in ('mode', 'key_mode'):
            if spec.get(field) not in (None, ''):
                value = spec[field]
                if isinstance(value, bool) or not isinstance(value, (int, str)) or \
                        not re.fullmatch(r'0?[0-7]{3,4}', str(value), re.ASCII):
                    raise CertError('%s.%s must be an octal mode such as 0600, not %s' % (what, field, opt.shown(value)))
    elif kind == 'endpoint':
        if spec.get('host') in (None, ''):
            raise CertError('%s.host is needed: an endpoint location needs the host to connect to' % what)
        _opt(opt.text, what + '.host', spec['host'], max_length=253, pattern=_HOST, what='a host name or address')
        if spec.get('port') is not None:
            _opt(opt.number, what + '.port', spec['port'], low=1, high=65535, integer=True)
        if spec.get('server_name') not in (None, ''):
            _opt(opt.text, what + '.server_name', spec['server_name'], max_length=253, pattern=_HOST,
                 what='a host name (SNI)')
        if spec.get('timeout') not in (None, ''):
            _opt(opt.duration, what + '.timeout', spec['timeout'], low=0.1, high=300)
    else:
        for field in ('namespace', 'name'):
            if spec.get(field) is not None or field == 'name':
                _opt(opt.text, '%s.%s' % (what, field), spec.get(field), max_length=253, pattern=_K8S_NAME,
                     what='a Kubernetes name')


def location(spec, k8s_params=None, what='source'):
    check_spec(spec, what)
    kind = (spec or {}).get('type')
    if kind == 'file':
        return FileLocation(spec)
    if kind == 'endpoint':
        return EndpointLocation(spec)
    if kind == 'k8s_secret':
        return SecretLocation(spec, k8s_params or {})
    raise CertError('%s.type must be one of %s, not %r' % (what, ', '.join(LOCATION_TYPES), kind))
