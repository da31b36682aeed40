#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cert_renew
short_description: Make sure a TLS certificate is valid for long enough, renewing it only when needed
version_added: 0.1.0
description:
  - Runbook 002 "SSL Certificate Renewal" as one idempotent step that can run every day.
  - Reads the current certificate from O(source) and plans. It renews when fewer than
    O(renew_before) days are left, when the wanted O(subject_alt_names) or O(key_type) differ,
    when the private key at the source does not match the certificate, when nothing is there yet,
    or with O(force=true). Otherwise it does nothing and reports C(changed=false).
  - A renewal gets a new key and certificate from O(provider) and puts them in O(destination)
    (by default the source), then reads the source again for C(after). Files are replaced
    atomically with the previous ones kept as C(<file>.<UTC time>.bak); a Kubernetes TLS secret
    is updated in place. Nothing is written unless the new certificate was issued, so a refused
    ACME order or a failed challenge leaves the old certificate in place and served.
  - O(provider=cert_manager) renews a cert-manager Certificate the way C(cmctl renew) does (the
    C(Issuing) status condition, not a delete) and waits until it is C(Ready) with a new
    certificate in its secret.
  - The private key is never returned, logged or shown in a diff.
  - Reloading the server that uses the certificate is the caller's job (the
    C(oncall.runbooks.certificates) role reloads nginx or restarts the ingress controller when
    C(renewed) is true).
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
requirements:
  - cryptography >= 42.0.0 for the Python that runs the module (checked at start; an older one is
    refused with one sentence naming the version found and the one needed)
extends_documentation_fragment:
  - oncall.runbooks.kube
  - oncall.runbooks.attributes.action_group_k8s
  - oncall.runbooks.attributes
attributes:
  check_mode:
    support: full
    details: Says whether and why it would renew (C(changed), C(reason)); touches nothing.
  diff_mode:
    support: full
    details: Shows the certificate's summary (expiry, serial, SANs, issuer) before and after; never the key.
  idempotent:
    support: full
    details: Renews only inside O(renew_before) of the expiry (or with O(force)); the renewed certificate is then outside it.
options:
  name:
    description: A name for plans and reports; defaults to the source's description.
    type: str
  source:
    description:
      - Where the current certificate lives. C(type) is V(file) (C(path), C(key_path),
        C(chain_path)), V(k8s_secret) (C(namespace), C(name)) or V(endpoint) (C(host), C(port),
        C(server_name), C(timeout) - a duration such as V(10s)).
      - For V(file), C(path) holds the certificate followed by its chain unless C(chain_path) is
        given.
    type: dict
    required: true
  destination:
    description:
      - Where a renewed certificate goes; defaults to O(source) (required when the source is an
        endpoint).
      - V(file) - C(path), C(key_path) (required), C(chain_path), C(owner), C(group), C(mode)
        (default C(0644)), C(key_mode) (default C(0600)), C(backup) (default true).
      - V(k8s_secret) - C(namespace), C(name); created as C(kubernetes.io/tls) when missing.
    type: dict
  renew_before:
    description: Renew when fewer than this many days are left (0 to 3650).
    type: int
    default: 30
  subject_alt_names:
    description:
      - Names the certificate must carry (C(api.example.com), C(DNS:api.example.com), C(IP:10.0.0.1)).
      - Defaults to those of the current certificate.
    type: list
    elements: str
  common_name:
    description: Subject common name of a new certificate; the first name when not set.
    type: str
  key_type:
    description: Wanted key type; when not set the current key type is kept (V(ec256) for a first certificate).
    type: str
    choices: [rsa2048, rsa3072, rsa4096, ec256, ec384]
  force:
    description: Renew even when the certificate is good enough.
    type: bool
    default: false
  provider:
    description:
      - V(acme) - an ACME v2 CA (Let's Encrypt by default) through O(acme).
      - V(selfsigned) and V(ownca) - for internal endpoints, valid O(valid_days).
      - V(cert_manager) - a cert-manager Certificate through O(cert_manager); O(source) is its secret.
    type: str
    required: true
    choices: [acme, selfsigned, ownca, cert_manager]
  valid_days:
    description: Validity of V(selfsigned) and V(ownca) certificates, in days (1 to 3650).
    type: int
    default: 90
  ownca:
    description: The CA for O(provider=ownca).
    type: dict
    suboptions:
      cert_path:
        description: CA certificate (PEM); its chain, if any, follows it in the file.
        type: path
        required: true
      key_path:
        description: CA private key (PEM).
        type: path
        required: true
      key_passphrase:
        description: Passphrase of the CA key.
        type: str
  acme:
    description: The ACME CA and challenge for O(provider=acme).
    type: dict
    suboptions:
      directory:
        description: ACME v2 directory URL.
        type: str
        default: https://acme-v02.api.letsencrypt.org/directory
      account_key_path:
        description: The ACME account key (PEM); an EC P-256 key is created (mode 0600) when missing.
        type: path
        required: true
      email:
        description: Contact address of the ACME account.
        type: str
      terms_agreed:
        description: Agree to the CA's terms of service when creating the account.
        type: bool
        default: true
      challenge:
        description: V(http-01) (through O(acme.webroot) or a standalone responder) or V(dns-01) (through O(acme.dns_hook)).
        type: str
        choices: [http-01, dns-01]
        default: http-01
      webroot:
        description: Directory served as C(http://NAME/); challenge files go under C(.well-known/acme-challenge/) and are removed after.
        type: path
      standalone_address:
        description: Address of the standalone http-01 responder (when no O(acme.webroot)).
        type: str
        default: 0.0.0.0
      standalone_port:
        description: Port of the standalone http-01 responder.
        type: int
        default: 80
      dns_hook:
        description:
          - Command run as C(HOOK add DOMAIN VALUE) before and C(HOOK remove DOMAIN VALUE) after a
            dns-01 challenge; it also gets C(ACME_ACTION), C(ACME_DOMAIN), C(ACME_RECORD)
            (C(_acme-challenge.DOMAIN)) and C(ACME_VALUE) in its environment. It must return when
            the TXT record is published.
        type: path
      ca_path:
        description: PEM bundle that signs the ACME server's own TLS certificate (a test CA such as pebble's).
        type: path
      validate_certs:
        description: Verify the ACME server's TLS certificate. V(false) is for test servers only.
        type: bool
        default: true
      timeout:
        description:
          - How long to wait for the order to be validated and the certificate issued (and for a
            C(dns_hook) run), a duration such as V(30s) or V(2m); a bare number is seconds (1s to 1h).
        type: str
        default: 2m
  cert_manager:
    description: The Certificate for O(provider=cert_manager).
    type: dict
    suboptions:
      namespace:
        description: Namespace of the Certificate.
        type: str
        default: default
      name:
        description: Name of the Certificate.
        type: str
        required: true
      timeout:
        description:
          - How long to wait for the Certificate to be Ready with a new certificate, a duration
            such as V(30s) or V(5m); a bare number is seconds (1s to 1h).
        type: str
        default: 5m
      poll_interval:
        description:
          - Time between two reads of the Certificate while waiting, a duration such as V(2s) or
            V(500ms); a bare number is seconds (100ms to 1m).
        type: str
        default: 2s
'''

EXAMPLES = r'''
- name: Renew the API certificate from Let's Encrypt when fewer than 30 days are left
  oncall.runbooks.cert_renew:
    source:
      type: file
      path: /etc/nginx/tls/fullchain.pem
      key_path: /etc/nginx/tls/privkey.pem
    destination:
      type: file
      path: /etc/nginx/tls/fullchain.pem
      key_path: /etc/nginx/tls/privkey.pem
      owner: root
      mode: "0644"
    subject_alt_names: [api.festivals.app, admin.festivals.app]
    provider: acme
    acme:
      account_key_path: /etc/oncall/acme-account.pem
      email: oncall@festivals.app
      webroot: /var/www/acme
  register: api_cert

- name: Renew the ingress certificate through cert-manager (as cmctl renew does)
  oncall.runbooks.cert_renew:
    source: {type: k8s_secret, namespace: festivals, name: festivals-tls}
    provider: cert_manager
    cert_manager: {namespace: festivals, name: festivals-tls, timeout: 10m}
    renew_before: 20
    # the cluster, as kubernetes.core names it (or set once for the group oncall.runbooks.k8s
    # through module_defaults)
    kubeconfig: /etc/oncall/kubeconfig
    context: production
'''

RETURN = r'''
renewed:
  description: Whether a new certificate was put in place (always false in check mode).
  returned: always
  type: bool
would_renew:
  description: Whether the plan renews (true in check mode when a run would renew).
  returned: always
  type: bool
reason:
  description: Why it renews (or would), reasons joined by C(; ); empty when nothing is to do.
  returned: always
  type: str
  sample: 12.0 days left < renew_before 30
reasons:
  description: The same reasons as a list.
  returned: always
  type: list
  elements: str
before:
  description:
    - The current certificate - C(not_after), C(days_remaining), C(serial), C(subject_alt_names),
      C(issuer), C(subject), C(key_type), C(fingerprint_sha256); null when there was none.
  returned: always
  type: dict
after:
  description: The same after a renewal (read back from the source); equal to C(before) otherwise.
  returned: always
  type: dict
plan:
  description: The planned actions (kind, object, count, reason).
  returned: always
  type: list
  elements: dict
backups:
  description: Backup copies of the files that were replaced.
  returned: when files were replaced
  type: list
  elements: str
actions:
  description:
    - What was done, in order, as plan items whose C(count) is what was really handled (docs/plan.md);
      empty in check mode.
  returned: always
  type: list
  elements: dict
skipped_items:
  description: What will not be done, as plan items with C(why) (docs/plan.md).
  returned: always
  type: list
  elements: dict
findings:
  description: Findings (C(object), C(figure), C(threshold), C(verdict)); empty when there is nothing to rate.
  returned: always
  type: list
  elements: dict
msg:
  description: One line saying what was planned and done.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import renew, x509
from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.kube import kube_argument_spec
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import ansible_module, shown


def main():
    module = ansible_module(
        AnsibleModule,
        argument_spec=dict(
            name=dict(type='str'),
            source=dict(type='dict', required=True),
            destination=dict(type='dict'),
            renew_before=dict(type='int', default=30),
            subject_alt_names=dict(type='list', elements='str'),
            common_name=dict(type='str'),
            key_type=dict(type='str', choices=list(x509.KEY_TYPES)),
            force=dict(type='bool', default=False),
            provider=dict(type='str', required=True, choices=list(renew.PROVIDERS)),
            valid_days=dict(type='int', default=90),
            ownca=dict(type='dict', options=dict(
                cert_path=dict(type='path', required=True),
                key_path=dict(type='path', required=True),
                key_passphrase=dict(type='str', no_log=True),
            )),
            acme=dict(type='dict', options=dict(
                directory=dict(type='str', default='https://acme-v02.api.letsencrypt.org/directory'),
                account_key_path=dict(type='path', required=True, no_log=False),
                email=dict(type='str'),
                terms_agreed=dict(type='bool', default=True),
                challenge=dict(type='str', choices=['http-01', 'dns-01'], default='http-01'),
                webroot=dict(type='path'),
                standalone_address=dict(type='str', default='0.0.0.0'),
                standalone_port=dict(type='int', default=80),
                dns_hook=dict(type='path'),
                ca_path=dict(type='path'),
                validate_certs=dict(type='bool', default=True),
                timeout=dict(type='str', default='2m'),
            )),
            cert_manager=dict(type='dict', options=dict(
                namespace=dict(type='str', default='default'),
                name=dict(type='str', required=True),
                timeout=dict(type='str', default='5m'),
                poll_interval=dict(type='str', default='2s'),
            )),
            **kube_argument_spec()
        ),
        required_if=[('provider', 'acme', ['acme']), ('provider', 'ownca', ['ownca']),
                     ('provider', 'cert_manager', ['cert_manager'])],
        supports_check_mode=True,
    )
    runner.run(module, run)


def run(module):
    problem = x509.cryptography_problem()
    if problem:
        module.fail_json(msg=problem, renewed=False)
    params = dict(module.params)
    src = params['source'] or {}
    name = shown(params.get('name') or str(src.get('path') or src.get('name') or src.get('host')), 80) \
        if isinstance(src, dict) else 'source'
    name = name.strip("'")
    try:
        result = renew.run(params, module.check_mode)
    except x509.CertError as exc:
        module.fail_json(msg='certificate %s: %s' % (name, exc), renewed=False)
    if module._diff and result['changed']:
        result['diff'] = {'before': result['before'] or {},
                          'after': result['after'] if result['renewed'] else {'renewal': result['reason']}}
    return result


if __name__ == '__main__':
    main()
