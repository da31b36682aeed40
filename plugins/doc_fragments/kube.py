# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Kubernetes connection options, named, typed and aliased as kubernetes.core's
    k8s_auth_options; their argument spec is plugins/module_utils/kube.py (a unit test keeps
    both alike)."""

    DOCUMENTATION = r'''
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file; the client's default (C(~/.kube/config)) when not set.
      - Without O(kubeconfig), O(context) and O(host), inside a pod the pod's service account is used.
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
      - Unlike kubernetes.core, a kubeconfig given as a dictionary is not taken.
    type: path
  context:
    description:
      - The kubeconfig context to use; the kubeconfig's current context when not set.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server (C(https://kubernetes.example.com:6443)).
      - With O(api_key) or O(client_cert) and O(client_key), no kubeconfig is read; alone, it is
        used as is unless O(kubeconfig) or O(context) is given (then it overrides their server).
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token that authenticates to the API server. Never logged, never returned.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  validate_certs:
    description:
      - Verify the API server's TLS certificate. When not set, the kubeconfig decides (verified
        unless it says C(insecure-skip-tls-verify)), and with O(host) alone it is verified.
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - CA bundle (PEM) that signs the API server's certificate; the full chain must be there.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Client certificate (PEM) that authenticates to the API server, with O(client_key).
      - Can also be set with the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Private key (PEM) of O(client_cert).
      - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  proxy:
    description:
      - URL of an HTTP proxy to the API server (C(http://proxy.example.com:3128)); the usual
        E(HTTPS_PROXY) variables are not read.
      - Can also be set with the E(K8S_AUTH_PROXY) environment variable.
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains and networks reached without O(proxy).
      - Can also be set with the E(K8S_AUTH_NO_PROXY) environment variable.
    type: str
notes:
  - These options are those of kubernetes.core's modules, so one dictionary (the inventory's
    C(oncall_k8s)) can be given to both through C(module_defaults) -
    C(group/oncall.runbooks.k8s) and C(group/kubernetes.core.k8s).
requirements:
  - kubernetes (Python package) for Kubernetes sources and destinations
'''
