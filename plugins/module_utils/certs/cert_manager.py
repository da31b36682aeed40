# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renew a cert-manager Certificate the way ``cmctl renew`` does, then wait until it is Ready.

``cmctl renew`` does not delete anything: it adds the condition ``Issuing=True`` (reason
``ManuallyTriggered``) to the Certificate's status; cert-manager's issuing controller then
issues a new certificate into ``spec.secretName`` and sets ``Ready=True`` again.
"""

from __future__ import annotations

import time

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import locations, x509
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import format_duration, parse_duration

GROUP, VERSION, PLURAL = 'cert-manager.io', 'v1', 'certificates'


def _conditions(obj):
    return dict((c.get('type'), c) for c in ((obj.get('status') or {}).get('conditions') or []))


def _now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def renew(cfg, k8s_params, before):
    from kubernetes import client as kclient
    from kubernetes.client.rest import ApiException
    namespace, name = cfg.get('namespace') or 'default', cfg.get('name')
    if not name:
        raise CertError('provider=cert_manager needs cert_manager.name (and namespace) of the Certificate')
    what = 'Certificate %s/%s' % (namespace, name)
    api = kclient.CustomObjectsApi(locations.k8s_client(k8s_params))
    try:
        cert = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            raise CertError('%s does not exist: create it or fix cert_manager.name' % what)
        raise locations.k8s_error(exc, 'reading %s' % what)
    except Exception as exc:  # pylint: disable=broad-except
        raise locations.k8s_error(exc, 'reading %s' % what)
    conditions = [c for c in ((cert.get('status') or {}).get('conditions') or []) if c.get('type') != 'Issuing']
    conditions.append({'type': 'Issuing', 'status': 'True', 'reason': 'ManuallyTriggered',
                       'message': 'Certificate re-issuance manually triggered', 'lastTransitionTime': _now(),
                       'observedGeneration': (cert.get('metadata') or {}).get('generation')})
    status = dict(cert.get('status') or {}, conditions=conditions)
    try:
        api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {'status': status})
    except Exception as exc:  # pylint: disable=broad-except
        raise locations.k8s_error(exc, 'setting the Issuing condition on %s' % what)
    secret = locations.SecretLocation({'namespace': namespace, 'name': cert['spec'].get('secretName')}, k8s_params)
    timeout = parse_duration(cfg.get('timeout') or '5m', 'cert_manager.timeout')
    poll = parse_duration(cfg.get('poll_interval') or '2s', 'cert_manager.poll_interval')
    deadline = time.monotonic() + timeout
    old_serial = (before or {}).get('serial')
    while True:
        try:
            current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except Exception as exc:  # pylint: disable=broad-except
            raise locations.k8s_error(exc, 'reading %s' % what)
        conds = _conditions(current)
        ready = conds.get('Ready', {}).get('status') == 'True'
        if ready and 'Issuing' not in conds:
            chain, dummy = secret.read()
            if chain and x509.summarize(chain)['serial'] != old_serial:
                return chain
        issuing = conds.get('Issuing') or {}
        if issuing.get('status') == 'False' and issuing.get('reason') == 'Failed':
            raise CertError('cert-manager failed to issue %s: %s' % (what, issuing.get('message')))
        if time.monotonic() > deadline:
            raise CertError('%s was not Ready with a new certificate within %s: check cert-manager\'s logs '
                            'and kubectl describe certificate' % (what, format_duration(timeout)))
        time.sleep(poll)
