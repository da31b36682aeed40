# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_renew's logic: observe the current certificate, plan (renew or not, and why), apply.

Providers share one interface, ``issue(params, key, sans) -> chain`` (leaf first): selfsigned,
ownca, acme (``acme_issue.py``). cert_manager is different: it asks cert-manager to issue
(``cert_manager.py``) and the new certificate appears in the Certificate's secret.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.oncall.runbooks.plugins.module_utils import kube
from ansible_collections.oncall.runbooks.plugins.module_utils.certs import locations, x509
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError
from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt

_HTTPS = re.compile(r'https?://[!-~]+', re.ASCII)
_EMAIL = re.compile(r'[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}', re.ASCII)
_SAN = re.compile(r'((DNS|IP):)?[A-Za-z0-9*_.:-]+', re.ASCII)
_K8S_NAME = re.compile(r'[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?', re.ASCII)

PROVIDERS = ('selfsigned', 'ownca', 'acme', 'cert_manager')


def plan(chain, key, params, now=None):
    """Reasons to renew (empty: the current certificate is good enough)."""
    if chain is None:
        return ['no certificate at the source']
    reasons = []
    info = x509.summarize(chain, now)
    if params.get('force'):
        reasons.append('force is set')
    if info['days_remaining'] < params['renew_before']:
        reasons.append('%.1f days left < renew_before %s' % (info['days_remaining'], params['renew_before']))
    wanted = x509.normalize_sans(params.get('subject_alt_names'))
    if wanted and wanted != info['subject_alt_names']:
        reasons.append('subject_alt_names differ: has %s, wants %s'
                       % (', '.join(info['subject_alt_names']) or 'none', ', '.join(wanted)))
    if params.get('key_type') and params['key_type'] != info['key_type']:
        reasons.append('key_type differs: has %s, wants %s' % (info['key_type'], params['key_type']))
    if key is not None and not x509.key_matches(chain[0], key):
        reasons.append('the private key does not match the certificate')
    return reasons


def _selfsigned(params, key, sans):
    return [x509.sign(key, sans, params.get('common_name'), params['valid_days'])]


def _ownca(params, key, sans):
    cfg = params.get('ownca') or {}
    if not cfg.get('cert_path') or not cfg.get('key_path'):
        raise CertError('provider=ownca needs ownca.cert_path and ownca.key_path (the CA certificate and key)')
    try:
        with open(cfg['cert_path'], 'rb') as f:
            ca_chain = x509.load_chain(f.read(), 'CA certificate %s' % cfg['cert_path'])
        with open(cfg['key_path'], 'rb') as f:
            ca_key = x509.load_key(f.read(), 'CA key %s' % cfg['key_path'], cfg.get('key_passphrase'))
    except OSError as exc:
        raise CertError('cannot read the own CA file %s: %s' % (exc.filename, exc.strerror))
    if not x509.key_matches(ca_chain[0], ca_key):
        raise CertError('CA key %s does not match CA certificate %s' % (cfg['key_path'], cfg['cert_path']))
    leaf = x509.sign(key, sans, params.get('common_name'), params['valid_days'], ca_chain[0], ca_key)
    return [leaf] + ca_chain


def _acme(params, key, sans):
    from ansible_collections.oncall.runbooks.plugins.module_utils.certs import acme_issue
    cfg = dict(params.get('acme') or {})
    cfg.setdefault('common_name', params.get('common_name'))
    return acme_issue.issue(cfg, key, sans)


ISSUERS = {'selfsigned': _selfsigned, 'ownca': _ownca, 'acme': _acme}


def k8s_params(params):
    return kube.kube_params(params)


def _abs(option, value):
    if value is not None:
        opt.text(option, value, max_length=4096, what='an absolute path')
        if not value.startswith('/') or '\0' in value:
            raise opt.OptionError('%s must be an absolute path, not %s' % (option, opt.shown(value)))


def validate(params):
    """The options beyond source and destination (checked by locations.location), before
    anything is read or written: one sentence naming the option (CertError)."""
    try:
        opt.number('renew_before', params['renew_before'], low=0, high=3650, integer=True)
        opt.number('valid_days', params['valid_days'], low=1, high=3650, integer=True)
        if params.get('name') is not None:
            opt.text('name', params['name'], max_length=253)
        if params.get('common_name') is not None:
            opt.text('common_name', params['common_name'], max_length=64)
        for i, san in enumerate(params.get('subject_alt_names') or []):
            opt.text('subject_alt_names[%d]' % i, san, max_length=253, pattern=_SAN,
                     what='a DNS name (ASCII, an internationalized name in its xn-- form) or an IP address')
        acme = params.get('acme') or {}
        if params['provider'] == 'acme':
            opt.text('acme.directory', acme['directory'], max_length=2048, pattern=_HTTPS,
                     what='an https:// (or http://) URL of an ACME directory')
            _abs('acme.account_key_path', acme['account_key_path'])
            for field in ('webroot', 'dns_hook', 'ca_path'):
                _abs('acme.' + field, acme.get(field))
            if acme.get('email') is not None:
                opt.text('acme.email', acme['email'], max_length=254, pattern=_EMAIL, what='an e-mail address')
            opt.text('acme.standalone_address', acme['standalone_address'], max_length=45,
                     what='an IP address to listen on')
            try:
                ipaddress.ip_address(acme['standalone_address'])
            except ValueError:
                raise opt.OptionError('acme.standalone_address must be an IP address to listen on, such as 0.0.0.0, '
                                      'not %s' % opt.shown(acme['standalone_address']))
            opt.number('acme.standalone_port', acme['standalone_port'], low=1, high=65535, integer=True)
            opt.duration('acme.timeout', acme['timeout'], low=1, high=3600)
        if params['provider'] == 'ownca':
            _abs('ownca.cert_path', params['ownca']['cert_path'])
            _abs('ownca.key_path', params['ownca']['key_path'])
        if params['provider'] == 'cert_manager':
            cm = params['cert_manager']
            for field in ('namespace', 'name'):
                opt.text('cert_manager.' + field, cm[field], max_length=253, pattern=_K8S_NAME,
                         what='a Kubernetes name')
            opt.duration('cert_manager.timeout', cm['timeout'], low=1, high=3600)
            opt.duration('cert_manager.poll_interval', cm['poll_interval'], low=0.1, high=60)
    except opt.OptionError as exc:
        raise CertError(str(exc))
    try:
        kube.validate(params)
    except kube.KubeError as exc:
        raise CertError(str(exc))


def run(params, check_mode):
    """Observe, plan, apply. Returns the module result (without private keys)."""
    validate(params)
    source = locations.location(params['source'], k8s_params(params), 'source')
    dest_spec = params.get('destination')
    destination = locations.location(dest_spec, k8s_params(params), 'destination') if dest_spec else None
    if params['provider'] == 'cert_manager':
        if destination is not None:
            raise CertError('provider=cert_manager writes the Certificate\'s own secret: leave destination unset')
    elif destination is None:
        if isinstance(source, locations.EndpointLocation):
            raise CertError('%s is read-only: give a destination for the renewed certificate' % source.name)
        destination = source
    if isinstance(destination, locations.EndpointLocation):
        raise CertError('destination cannot be an endpoint: use a file or a k8s_secret destination')

    chain, key = source.read()
    before = x509.summarize(chain) if chain else None
    reasons = plan(chain, key, params)
    result = {'changed': bool(reasons), 'renewed': False, 'reason': '; '.join(reasons),
              'reasons': reasons, 'before': before, 'after': before,
              'certificate': {'name': params.get('name') or source.name},
              'plan': [{'action': 'renew', 'object': params.get('name') or source.name, 'count': 1,
                        'reason': '; '.join(reasons)}] if reasons else []}
    result['would_renew'] = bool(reasons)
    if not reasons or check_mode:
        return result

    sans = x509.normalize_sans(params.get('subject_alt_names')) or (before or {}).get('subject_alt_names') or []
    if params['provider'] != 'cert_manager' and not sans:
        raise CertError('subject_alt_names is needed: %s has no certificate to take them from' % source.name)
    if params['provider'] == 'cert_manager':
        from ansible_collections.oncall.runbooks.plugins.module_utils.certs import cert_manager
        new_chain = cert_manager.renew(params.get('cert_manager') or {}, k8s_params(params), before)
        result['after'] = x509.summarize(new_chain)
    else:
        key_type = params.get('key_type') or (before or {}).get('key_type') or 'ec256'
        if key_type not in x509.KEY_TYPES:
            key_type = 'ec256'
        new_key = x509.new_key(key_type)
        new_chain = ISSUERS[params['provider']](params, new_key, sans)
        destination.write(new_chain[0], new_chain[1:], new_key)
        # observe again from the source: what is there now (for an endpoint, after a reload)
        if destination is source:
            after_chain, dummy = destination.read()
        else:
            after_chain = new_chain
        result['after'] = x509.summarize(after_chain)
        result['backups'] = list(getattr(destination, 'backups', []))
        result['destination'] = destination.name
    result['renewed'] = True
    result['actions'] = [{'action': 'renew', 'object': params.get('name') or source.name, 'count': 1,
                          'reason': result['reason']}]
    return result
