# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_info's logic: read many certificates, summarize each, verify its chain, give verdicts."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import locations, x509
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError


def verdict_for(days, warn_days, critical_days):
    """Expiry verdict: fewer days left is worse (findings.verdict's scale, inverted)."""
    if days < critical_days:
        return 'critical'
    if days < warn_days:
        return 'warning'
    return 'ok'


def inspect(spec, k8s_params, roots, warn_days, critical_days):
    """One certificate as plain data; a problem becomes ``error`` with verdict critical.

    *spec* is a location (``type`` and its fields), or an entry of ``oncall_certificates``
    (``name`` and a ``source`` location), as the certificates role passes them.
    """
    where = spec['source'] if isinstance(spec.get('source'), dict) else spec
    name = spec.get('name') if (where is not spec or where.get('type') != 'k8s_secret') else None
    out = {'name': name, 'type': where.get('type')}
    try:
        loc = locations.location(where, k8s_params, 'certificates[]')
        out['name'] = name or loc.name
        out['location'] = loc.name
        chain, key = loc.read()
        if chain is None:
            raise CertError('no certificate at %s' % loc.name)
    except CertError as exc:
        out.update(error=str(exc), verdict='critical', days_remaining=None, chain_verified=False)
        return out
    out.update(x509.summarize(chain))
    ok, why = x509.verify_chain(chain, roots)
    out['chain_verified'] = ok
    out['chain_error'] = why
    if key is not None:
        out['key_matches'] = x509.key_matches(chain[0], key)
    out['verdict'] = verdict_for(out['days_remaining'], warn_days, critical_days)
    out['why'] = '' if out['verdict'] == 'ok' else '%.1f days left' % out['days_remaining']
    if not ok and spec.get('verify_chain', True) is not False:
        out['verdict'] = 'critical'
        out['why'] = (out['why'] + '; ' if out['why'] else '') + 'chain does not verify: ' + why
    if out.get('key_matches') is False:
        out['verdict'] = 'critical'
        out['why'] = (out['why'] + '; ' if out['why'] else '') + 'the private key does not match the certificate'
    return out


def finding(item, warn_days, critical_days):
    if item.get('error'):
        figure, threshold = item['error'], 'readable certificate'
    else:
        figure = '%.1f days left (%s)' % (item['days_remaining'], item['not_after'])
        threshold = 'warn < %s d, critical < %s d' % (warn_days, critical_days)
        if not item['chain_verified']:
            figure += '; chain: %s' % item['chain_error']
        if item.get('key_matches') is False:
            figure += '; key does not match'
    return {'object': 'certificate %s' % item['name'], 'figure': figure, 'threshold': threshold,
            'verdict': item['verdict']}
