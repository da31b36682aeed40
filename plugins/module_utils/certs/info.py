# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cert_info's logic: read many certificates, summarize each, verify its chain, give verdicts."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils import kube
from ansible_collections.oncall.runbooks.plugins.module_utils.certs import locations, x509
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError
from ansible_collections.oncall.runbooks.plugins.module_utils.common import findings
from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt

# what to run for a certificate inside its renewal threshold
RENEW_COMMAND = 'ansible-playbook playbooks/runbooks/ssl_certificate_expiry.yml --tags remediate'


MAX_DAYS = 3650


def validate(p):
    """Every option and entry before any certificate is read (one sentence, CertError)."""
    try:
        warn = opt.number('warn_days', p['warn_days'], low=0, high=MAX_DAYS, integer=True)
        crit = opt.number('critical_days', p['critical_days'], low=0, high=MAX_DAYS, integer=True)
        opt.ordered('warn_days', warn, 'critical_days', crit, higher_is_worse=False)
        if p.get('renew_before') is not None:
            opt.number('renew_before', p['renew_before'], low=0, high=MAX_DAYS)
        if p.get('ca_path') is not None:
            opt.text('ca_path', p['ca_path'], max_length=4096, what='a PEM bundle file')
            if not p['ca_path'].startswith('/'):
                raise opt.OptionError('ca_path must be an absolute path, not %s' % opt.shown(p['ca_path']))
        kube.validate(p)
    except (opt.OptionError, kube.KubeError) as exc:
        raise CertError(str(exc))
    for i, spec in enumerate(p['certificates']):
        locations.check_spec(spec, 'certificates[%d]' % i)


def verdict_for(days, warn_days, critical_days, renew_before=None):
    """Expiry verdict by the collection's rule for figures where lower is worse
    (findings.verdict_below: fewer days than a threshold, not as many): expired or fewer than
    *critical_days* is critical; fewer than *warn_days*, or inside *renew_before* (the renewal
    threshold: a certificate that is due is never ok), is a warning."""
    if days < 0:
        return 'critical'
    verdict = findings.verdict_below(days, warn_days, critical_days)
    if verdict == 'ok' and renew_before is not None and findings.verdict_below(days, renew_before, None) != 'ok':
        return 'warning'
    return verdict


def _add(out, verdict, why):
    order = ('ok', 'unknown', 'warning', 'critical')
    if order.index(verdict) > order.index(out['verdict']):
        out['verdict'] = verdict
    out['why'] = (out['why'] + '; ' if out['why'] else '') + why


def anchors_for(spec, chain, roots):
    """The trust anchors for one entry: *roots* (ca_path or the system bundle), plus the
    self-signed certificate at the end of the entry's own chain with ``trust_chain_root``."""
    if spec.get('trust_chain_root') and chain and chain[-1].issuer == chain[-1].subject:
        return list(roots) + [chain[-1]]
    return list(roots)


def inspect(spec, k8s_params, roots, warn_days, critical_days, renew_before=None):
    """One certificate as plain data; a problem becomes ``error`` with verdict critical.

    *spec* is a location (``type`` and its fields), or an entry of ``oncall_certificates``
    (``name`` and a ``source`` location), as the certificates role passes them. The entry's own
    ``renew_before`` wins over *renew_before*.
    """
    where = spec['source'] if isinstance(spec.get('source'), dict) else spec
    name = spec.get('name') if (where is not spec or where.get('type') != 'k8s_secret') else None
    out = {'name': name, 'type': where.get('type')}
    try:
        if spec.get('renew_before') not in (None, ''):
            try:
                renew_before = float(spec['renew_before'])
            except (TypeError, ValueError):
                raise CertError('renew_before must be a number of days, not %r' % (spec['renew_before'],))
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
    ok, why = x509.verify_chain(chain, anchors_for(spec, chain, roots))
    out['chain_verified'] = ok
    out['chain_error'] = why
    out['renew_before'] = renew_before
    if key is not None:
        out['key_matches'] = x509.key_matches(chain[0], key)
    days = out['days_remaining']
    out['verdict'], out['why'] = 'ok', ''
    expiry = verdict_for(days, warn_days, critical_days, renew_before)
    if days < 0:
        _add(out, 'critical', 'expired %.1f days ago: renew it now (%s)' % (-days, RENEW_COMMAND))
    elif expiry != 'ok':
        inside = ''
        if renew_before is not None and days < renew_before:
            inside = ', inside the renewal threshold (renew_before %g d): renew it (%s)' % (renew_before, RENEW_COMMAND)
        _add(out, expiry, '%.1f days left%s' % (days, inside))
    # what to run next: renewal, when the certificate is due (cert_renew's own rule) or, without
    # a renewal threshold, when its expiry is not ok
    due = (days < renew_before) if renew_before is not None else expiry != 'ok'
    out['next'] = RENEW_COMMAND if due else ''
    if not ok and spec.get('verify_chain', True) is not False:
        _add(out, 'critical', 'chain does not verify: ' + why)
    server_name = getattr(loc, 'verify_name', None)
    if server_name:
        matches, name_why = x509.check_name(chain, server_name)
        out['hostname'] = server_name
        out['hostname_matches'] = matches
        out['hostname_error'] = name_why
        if not matches:
            _add(out, 'critical', name_why)
    if out.get('key_matches') is False:
        _add(out, 'critical', 'the private key does not match the certificate')
    return out


def unknown(spec, why):
    """An entry that could not be looked at (this host's Python lacks what the module needs)."""
    where = spec['source'] if isinstance(spec.get('source'), dict) else spec
    name = spec.get('name') or '%s %s' % (where.get('type'), where.get('path') or where.get('name') or where.get('host'))
    return {'name': name, 'type': where.get('type'), 'error': why, 'verdict': 'unknown', 'why': why,
            'days_remaining': None, 'chain_verified': None}


def finding(item, warn_days, critical_days, renew_before=None):
    if item.get('error'):
        figure, threshold = item['error'], 'readable certificate'
    else:
        renew_before = item.get('renew_before', renew_before)
        days = item['days_remaining']
        figure = '%.1f days left (%s)' % (days, item['not_after'])
        threshold = 'warn < %s d, critical < %s d' % (warn_days, critical_days)
        if renew_before is not None:
            threshold += ', renew < %g d' % renew_before
            if 0 <= days < renew_before:
                figure += '; inside the renewal threshold: run %s' % RENEW_COMMAND
        if days < 0:
            figure += '; expired: run %s' % RENEW_COMMAND
        if not item['chain_verified']:
            figure += '; chain: %s' % item['chain_error']
        if item.get('hostname_matches') is False:
            figure += '; %s' % item['hostname_error']
        if item.get('key_matches') is False:
            figure += '; key does not match'
    out = {'object': 'certificate %s' % item['name'], 'figure': figure, 'threshold': threshold,
           'verdict': item['verdict']}
    if item.get('next'):
        out['next'] = item['next']
    return out
