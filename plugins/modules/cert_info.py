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
    serial, key type and whether its chain verifies up to a trust anchor.
  - The chain is verified as a TLS B(server) certificate by C(cryptography.x509.verification)
    (RFC 5280 path validation with the CA/Browser Forum server profile), the decision of
    C(openssl verify -purpose sslserver) at the security level TLS clients use - an issuer that
    is not a CA, a violated C(pathlen), a CA without C(keyCertSign), a leaf whose
    extendedKeyUsage lacks C(serverAuth), a SHA-1 signature, or no DNS/IP subjectAltName fail
    it - and C(chain_error) says why in one sentence.
  - An V(endpoint) is also checked for the name it was asked for (C(server_name), else
    C(host)) - a DNS or IP subjectAltName, as C(openssl s_client -verify_hostname) /
    C(-verify_ip) - and a certificate for another name is V(critical) (C(hostname mismatch)).
  - Each certificate becomes a finding with a verdict against O(warn_days) and O(critical_days),
    the thresholds of a Prometheus-style C(SSLCertificateExpiringSoon) alert, and the renewal
    threshold O(renew_before) (or the entry's C(renew_before)). Fewer days left than a threshold
    (not as many) crosses it. A certificate inside its renewal threshold is at least a
    V(warning) whose finding names the command to run; expired is V(critical). A certificate
    that cannot be read, whose chain does not verify, that is served for another name, or whose
    key does not match is V(critical).
  - When this host's Python lacks cryptography 42.0.0 or newer, every certificate is
    V(unknown) with one sentence naming the version found and the one needed (the run goes on).
  - Private keys are read only to check that they match; they are never returned.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
requirements:
  - cryptography >= 42.0.0 (its C(x509.verification) API) for the Python that runs the module
extends_documentation_fragment:
  - oncall.runbooks.kube
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes.action_group_k8s
  - oncall.runbooks.attributes
options:
  certificates:
    description:
      - One entry per certificate, with C(name) (for reports) and C(type).
      - V(file) - C(path) (the certificate, optionally followed by its chain), optional
        C(chain_path) and C(key_path) (checked to match).
      - V(k8s_secret) - C(namespace), C(name) of a C(kubernetes.io/tls) secret (C(tls.crt), C(tls.key));
        C(name) is then the secret's name.
      - V(endpoint) - C(host), C(port) (443), C(server_name) (SNI, defaults to C(host)),
        C(timeout) (a duration such as V(10s), the default; a bare number is seconds).
      - An entry may also be shaped like the inventory's C(oncall_certificates) - C(name) and a
        C(source) holding the location - so the same list feeds M(oncall.runbooks.cert_renew).
      - C(verify_chain=false) reports the chain without letting it make the verdict critical
        (self-signed internal certificates).
      - C(trust_chain_root=true) makes the self-signed root at the end of the entry's own chain a
        trust anchor besides O(ca_path) (an internal CA whose root is shipped with the chain).
      - C(renew_before) - this entry's renewal threshold in days (wins over O(renew_before)).
    type: list
    elements: dict
    required: true
  warn_days:
    description: Fewer days left than this is a V(warning); above O(critical_days) (0 to 3650).
    type: int
    default: 30
  critical_days:
    description: Fewer days left than this is V(critical).
    type: int
    default: 7
  renew_before:
    description:
      - Renewal threshold in days, as M(oncall.runbooks.cert_renew) takes it. Fewer days left is
        at least a V(warning) naming what to run. Not set - only O(warn_days) and O(critical_days).
    type: float
  ca_path:
    description:
      - PEM bundle of trust anchors for chain verification; the system bundle
        (C(/etc/ssl/certs/ca-certificates.crt)) when not set.
      - Every certificate in it is an anchor (a chain may end at an intermediate listed here).
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

- name: The cluster's options set once for every module of the group (kubernetes.core's names)
  module_defaults:
    group/oncall.runbooks.k8s: "{{ oncall_k8s | default({}) }}"
  block:
    - name: Certificates in Kubernetes secrets
      oncall.runbooks.cert_info:
        certificates:
          - {type: k8s_secret, namespace: festivals, name: festivals-tls}
'''

RETURN = r'''
certificates:
  description:
    - Each certificate - C(name), C(location), C(not_after), C(days_remaining), C(subject_alt_names),
      C(issuer), C(subject), C(serial), C(key_type), C(chain_verified), C(chain_error),
      C(key_matches) (when a key was read), C(verdict), C(why); or C(error) when it could not be read.
    - C(subject_alt_names) lists the DNS and IP names (C(DNS:), C(IP:)), sorted, as before.
    - C(all_subject_alt_names) (new) lists every subject alternative name in the certificate's
      order - C(DNS:), C(IP:), C(URI:), C(email:), C(RID:), C(dirName:), C(otherName:OID;HEX).
    - C(chain_error) (one sentence) is empty when the chain verifies.
    - C(hostname), C(hostname_matches), C(hostname_error) (new, endpoints) - the name asked for
      and whether the served certificate is for it.
    - C(renew_before) (new) - the renewal threshold applied; C(next) (new) - the command to run
      when the certificate is due or expired, else empty.
  returned: always
  type: list
  elements: dict
  sample: [{name: nginx, not_after: "2026-02-01T00:00:00Z", days_remaining: 12.5, verdict: warning,
            subject_alt_names: ["DNS:api.festivals.app"], chain_verified: true, chain_error: "",
            all_subject_alt_names: ["DNS:api.festivals.app", "URI:spiffe://festivals/api"],
            renew_before: 30, next: "ansible-playbook playbooks/runbooks/ssl_certificate_expiry.yml --tags remediate"}]
findings:
  description:
    - One finding per certificate (object, figure, threshold, verdict); C(next) - the command to
      run - when it is due for renewal or expired.
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
unknown:
  description: Names of the certificates that could not be looked at (V(unknown)), with C(msg) saying why.
  returned: always
  type: list
  elements: str
msg:
  description: Why nothing could be looked at (this host's cryptography is missing or too old).
  returned: when the certificates are V(unknown)
  type: str
  sample: "cryptography 38.0.4 is installed for /usr/bin/python3 but 42.0.0 or newer is needed (its x509.verification API): ..."
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import info, x509
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.renew import k8s_params
from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.kube import kube_argument_spec
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import ansible_module


def main():
    module = ansible_module(
        AnsibleModule,
        argument_spec=dict(
            certificates=dict(type='list', elements='dict', required=True),
            warn_days=dict(type='int', default=30),
            critical_days=dict(type='int', default=7),
            renew_before=dict(type='float'),
            ca_path=dict(type='path'),
            fail_on_critical=dict(type='bool', default=False),
            **kube_argument_spec()
        ),
        supports_check_mode=True,
    )
    runner.run(module, run)


def run(module):
    p = module.params
    try:
        info.validate(p)
    except x509.CertError as exc:
        module.fail_json(msg=str(exc))
    problem = x509.cryptography_problem()
    if problem:
        # a missing dependency is a finding (unknown: nothing was looked at), never a crash
        items = [info.unknown(spec, problem) for spec in p['certificates']]
        findings = [info.finding(i, p['warn_days'], p['critical_days']) for i in items]
        return dict(changed=False, certificates=items, findings=findings, critical=[], warning=[],
                    unknown=[i['name'] for i in items], msg=problem)
    try:
        roots = x509.load_trust(p['ca_path'])
    except x509.CertError as exc:
        module.fail_json(msg=str(exc))
    items = [info.inspect(spec, k8s_params(p), roots, p['warn_days'], p['critical_days'], p['renew_before'])
             for spec in p['certificates']]
    findings = [info.finding(i, p['warn_days'], p['critical_days'], p['renew_before']) for i in items]
    critical = [i['name'] for i in items if i['verdict'] == 'critical']
    warning = [i['name'] for i in items if i['verdict'] == 'warning']
    result = dict(changed=False, certificates=items, findings=findings, critical=critical, warning=warning,
                  unknown=[])
    if critical and p['fail_on_critical']:
        module.fail_json(msg='%d of %d certificate(s) critical: %s' % (len(critical), len(items), '; '.join(
            '%s (%s)' % (i['name'], i.get('error') or i.get('why')) for i in items if i['verdict'] == 'critical')),
            **result)
    return result


if __name__ == '__main__':
    main()
