# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Kubernetes connection options, named as kubernetes.core names them."""

    DOCUMENTATION = r'''
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file; the client's default (C(~/.kube/config)) when not set.
      - Ignored when O(host) is set.
    type: path
  context:
    description: The kubeconfig context to use.
    type: str
  host:
    description: URL of the Kubernetes API server; with it, O(api_key) authenticates.
    type: str
  api_key:
    description: Bearer token for O(host).
    type: str
  validate_certs:
    description: Verify the API server's TLS certificate.
    type: bool
    default: true
  ca_cert:
    description: CA bundle that signs the API server's certificate (with O(host)).
    type: path
requirements:
  - kubernetes (Python package) for Kubernetes sources and destinations
'''
