# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes connection options (named, typed and aliased as kubernetes.core's
k8s_auth_options) and the one place a kubernetes ApiClient is made from them.

The options are documented by the doc fragment ``oncall.runbooks.kube``
(plugins/doc_fragments/kube.py); tests/unit/plugins/modules/test_kube_argument_spec.py checks that both declare the
same options, types, defaults, aliases and no_log. Modules build their argument spec with
``kube_argument_spec()`` and belong to the action group ``k8s`` (meta/runtime.yml), so one
inventory dictionary (``oncall_k8s``) reaches them and kubernetes.core's modules alike through
``module_defaults``.
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.basic import env_fallback

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

from urllib.parse import urlsplit


class KubeError(OncallError):
    """A Kubernetes connection option or client failure, phrased as one sentence."""


def kube_argument_spec():
    """The Kubernetes connection options; each falls back to kubernetes.core's K8S_AUTH_*
    environment variable."""
    def env(name):
        return (env_fallback, ['K8S_AUTH_' + name])
    return dict(
        kubeconfig=dict(type='path', fallback=env('KUBECONFIG')),
        context=dict(type='str', fallback=env('CONTEXT')),
        host=dict(type='str', fallback=env('HOST')),
        api_key=dict(type='str', no_log=True, fallback=env('API_KEY')),
        validate_certs=dict(type='bool', aliases=['verify_ssl'], fallback=env('VERIFY_SSL')),
        ca_cert=dict(type='path', aliases=['ssl_ca_cert'], fallback=env('SSL_CA_CERT')),
        client_cert=dict(type='path', aliases=['cert_file'], fallback=env('CERT_FILE')),
        client_key=dict(type='path', aliases=['key_file'], no_log=False, fallback=env('KEY_FILE')),
        proxy=dict(type='str', fallback=env('PROXY')),
        no_proxy=dict(type='str', fallback=env('NO_PROXY')),
    )


KUBE_OPTIONS = tuple(kube_argument_spec())

_URL_TEXT = re.compile(r'[!-~]+', re.ASCII)  # visible ASCII, no spaces
_CONTEXT = re.compile(r'[!-~]{1,253}', re.ASCII)
_NO_PROXY = re.compile(r'[A-Za-z0-9_.:/*\[\],-]+', re.ASCII)


def kube_params(params):
    """The Kubernetes options of a module's params, by their primary names."""
    return dict((k, params.get(k)) for k in KUBE_OPTIONS)


def _url(option, value, example):
    opt.text(option, value, max_length=2048, pattern=_URL_TEXT, what='a URL such as %s' % example)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ('http', 'https') or not parts.hostname:
        raise opt.OptionError('%s must be an http:// or https:// URL with a host, such as %s, not %s'
                              % (option, example, opt.shown(value)))
    if port is not None and not 0 < port < 65536:
        raise opt.OptionError('%s has port %d, outside 1 to 65535' % (option, port))
    if parts.username or parts.password:
        raise opt.OptionError('%s must not carry user:password@ (use api_key or a client certificate)' % option)


def validate(params):
    """The Kubernetes options, before anything is read (one sentence naming the option)."""
    p = kube_params(params)
    try:
        if p['host'] is not None:
            _url('host', p['host'], 'https://kubernetes.example.com:6443')
        if p['proxy'] is not None:
            _url('proxy', p['proxy'], 'http://proxy.example.com:3128')
        if p['context'] is not None:
            opt.text('context', p['context'], max_length=253, pattern=_CONTEXT, what='a kubeconfig context name')
        if p['api_key'] is not None:
            opt.text('api_key', p['api_key'], max_length=16384, pattern=_URL_TEXT, what='a bearer token')
        if p['no_proxy'] is not None:
            opt.text('no_proxy', p['no_proxy'], max_length=4096, pattern=_NO_PROXY,
                     what='a comma-separated list of hosts, domains and networks')
        for name in ('kubeconfig', 'ca_cert', 'client_cert', 'client_key'):
            if p[name] is not None:
                opt.text(name, p[name], max_length=4096, what='a file path')
                if '\0' in p[name]:
                    raise opt.OptionError('%s must be a file path, not %s' % (name, opt.shown(p[name])))
        if bool(p['client_cert']) != bool(p['client_key']):
            raise opt.OptionError('client_cert and client_key go together: give both or neither')
    except opt.OptionError as exc:
        raise KubeError(str(exc))


def _authenticated_by_options(p):
    return bool(p['host']) and bool(p['api_key'] or (p['client_cert'] and p['client_key']))


def api_client(params):
    """A kubernetes ApiClient configured as kubernetes.core configures its own:

    - O(host) with O(api_key) or a client certificate: nothing else is loaded;
    - otherwise O(kubeconfig) (or the client's default, C(~/.kube/config)) with O(context) is
      loaded - inside a pod with neither O(kubeconfig) nor O(context), the pod's service account
      is used; O(host) alone is taken as is (no kubeconfig) unless O(kubeconfig) or O(context)
      is given;
    - then every option that is set overrides what was loaded.
    """
    try:
        from kubernetes import client as kclient, config as kconfig
    except ImportError:
        raise KubeError('the kubernetes Python package is needed for Kubernetes access: pip install kubernetes')
    p = kube_params(params)
    validate(p)
    cfg = kclient.Configuration()
    named = p['kubeconfig'] or p['context']
    if _authenticated_by_options(p) or (p['host'] and not named):
        pass
    elif not named and os.environ.get('KUBERNETES_SERVICE_HOST'):
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except Exception as exc:  # pylint: disable=broad-except  # ConfigException, OSError
            raise KubeError('cannot load the in-cluster Kubernetes configuration (service account): %s' % exc)
    else:
        try:
            kconfig.load_kube_config(config_file=p['kubeconfig'], context=p['context'], client_configuration=cfg)
        except Exception as exc:  # pylint: disable=broad-except  # ConfigException, OSError
            raise KubeError('cannot load the kubeconfig %s%s: %s' % (
                p['kubeconfig'] or '~/.kube/config', ' (context %s)' % p['context'] if p['context'] else '', exc))
    if p['host']:
        cfg.host = p['host'].rstrip('/')
    if p['api_key']:
        cfg.api_key = {'authorization': 'Bearer %s' % p['api_key']}
        cfg.api_key_prefix = {}
    if p['validate_certs'] is not None:
        cfg.verify_ssl = p['validate_certs']
    if p['ca_cert']:
        cfg.ssl_ca_cert = p['ca_cert']
    if p['client_cert']:
        cfg.cert_file = p['client_cert']
        cfg.key_file = p['client_key']
    if p['proxy']:
        cfg.proxy = p['proxy']
    if p['no_proxy']:
        cfg.no_proxy = p['no_proxy']
    return kclient.ApiClient(cfg)
