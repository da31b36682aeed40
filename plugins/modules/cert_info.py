#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cert_info
short_description: Expiry, SANs, issuer and chain of many TLS certificates (files, Kubernetes secrets, endpoints)
version_added: 0.1.0
description:
  - Read-only. Reads each listed certificate - a PEM file, a C(kubernetes.io/tls) secret, or what a
    TLS endpoint serves - and returns its expiry, days left, subject alternative names, issuer,
    serial, key type and whether its chain verifies up to a trusted root.
  - Each certificate becomes a finding with a verdict against O(warn_days) and O(critical_days),
    the thresholds of a Prometheus-style C(SSLCertificateExpiringSoon) alert. A certificate that
    cannot be read, whose chain does not verify, or whose key does not match is V(critical).
  - Private keys are read only to check that they match; they are never returned.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.kube
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  certificates:
    description:
      - One entry per certificate, with C(name) (for reports) and C(type).
      - V(file) - C(path) (the certificate, optionally followed by its chain), optional
        C(chain_path) and C(key_path) (checked to match).
      - V(k8s_secret) - C(namespace), C(name) of a C(kubernetes.io/tls) secret (C(tls.crt), C(tls.key));
        C(name) is then the secret's name.
      - V(endpoint) - C(host), C(port) (443), C(server_name) (SNI, defaults to C(host)), C(timeout).
      - An entry may also be shaped like the inventory's C(oncall_certificates) - C(name) and a
        C(source) holding the location - so the same list feeds M(oncall.runbooks.cert_renew).
      - C(verify_chain=false) reports the chain without letting it make the verdict critical
        (self-signed internal certificates).
    type: list
    elements: dict
    required: true
  warn_days:
    description: Fewer days left than this is a V(warning).
    type: int
    default: 30
  critical_days:
    description: Fewer days left than this is V(critical).
    type: int
    default: 7
  ca_path:
    description: PEM bundle of trusted roots for chain verification; the system bundle when not set.
    type: path
  fail_on_critical:
    description: Fail the task when any certificate is V(critical) (after reading all of them).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Certificates of the API, its ingress secret and the internal CA-signed file
  oncall.runbooks.cert_info:
    certificates:
      - name: api endpoint
        type: endpoint
        host: api.festivals.app
      - type: k8s_secret
        namespace: festivals
        name: festivals-tls
      - name: nginx
        type: file
        path: /etc/nginx/tls/fullchain.pem
        key_path: /etc/nginx/tls/privkey.pem
    warn_days: 30
    critical_days: 7
  register: certs
'''

RETURN = r'''
certificates:
  description:
    - Each certificate - C(name), C(location), C(not_after), C(days_remaining), C(subject_alt_names),
      C(issuer), C(subject), C(serial), C(key_type), C(chain_verified), C(chain_error),
      C(key_matches) (when a key was read), C(verdict), C(why); or C(error) when it could not be read.
  returned: always
  type: list
  elements: dict
  sample: [{name: nginx, not_after: "2026-02-01T00:00:00Z", days_remaining: 12.5, verdict: warning,
            subject_alt_names: ["DNS:api.festivals.app"], chain_verified: true}]
findings:
  description: One finding per certificate (object, figure, threshold, verdict).
  returned: always
  type: list
  elements: dict
critical:
  description: Names of the certificates with a V(critical) verdict.
  returned: always
  type: list
  elements: str
warning:
  description: Names of the certificates with a V(warning) verdict.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import info, x509
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.renew import k8s_params


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certificates=dict(type='list', elements='dict', required=True),
            warn_days=dict(type='int', default=30),
            critical_days=dict(type='int', default=7),
            ca_path=dict(type='path'),
            fail_on_critical=dict(type='bool', default=False),
            kubeconfig=dict(type='path'),
            context=dict(type='str'),
            host=dict(type='str'),
            api_key=dict(type='str', no_log=True),
            validate_certs=dict(type='bool', default=True),
            ca_cert=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    if not x509.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=str(x509.CRYPTOGRAPHY_ERROR))
    p = module.params
    try:
        roots = x509.load_trust(p['ca_path'])
    except x509.CertError as exc:
        module.fail_json(msg=str(exc))
    items = [info.inspect(spec, k8s_params(p), roots, p['warn_days'], p['critical_days'])
             for spec in p['certificates']]
    findings = [info.finding(i, p['warn_days'], p['critical_days']) for i in items]
    critical = [i['name'] for i in items if i['verdict'] == 'critical']
    warning = [i['name'] for i in items if i['verdict'] == 'warning']
    result = dict(changed=False, certificates=items, findings=findings, critical=critical, warning=warning)
    if critical and p['fail_on_critical']:
        module.fail_json(msg='%d of %d certificate(s) critical: %s' % (len(critical), len(items), '; '.join(
            '%s (%s)' % (i['name'], i.get('error') or i.get('why')) for i in items if i['verdict'] == 'critical')),
            **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
