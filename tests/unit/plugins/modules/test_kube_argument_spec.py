# -*- coding: utf-8 -*-
"""The Kubernetes options: the doc fragment (plugins/doc_fragments/kube.py) and the argument-spec
helper (plugins/module_utils/kube.py) declare the same options, types, defaults, aliases and
no_log; the names are kubernetes.core's (its k8s_auth_options, installed with the dev
requirements); every module documenting the fragment builds its spec from the helper and is in
the action group k8s, and nothing else is."""

from __future__ import annotations

import importlib
import os

import pytest
import yaml

from ansible_collections.oncall.runbooks.plugins.doc_fragments.kube import ModuleDocFragment
from ansible_collections.oncall.runbooks.plugins.module_utils import kube

from helpers.paths import ROOT  # noqa: E402

DOC = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options']
SPEC = kube.kube_argument_spec()


def test_the_fragment_and_the_helper_declare_the_same_options():
    assert sorted(DOC) == sorted(SPEC)
    for name, doc in DOC.items():
        spec = SPEC[name]
        assert doc.get('type', 'str') == spec.get('type', 'str'), name
        assert doc.get('default') == spec.get('default'), name
        assert sorted(doc.get('aliases') or []) == sorted(spec.get('aliases') or []), name
        # each falls back to the K8S_AUTH_* variable the fragment names
        env = spec['fallback'][1][0]
        assert 'E(%s)' % env in ' '.join(doc['description']), name


def test_only_the_token_is_no_log_and_the_fragment_says_so():
    assert sorted(n for n, s in SPEC.items() if s.get('no_log')) == ['api_key']
    assert 'Never logged' in ' '.join(DOC['api_key']['description'])


def test_names_types_and_aliases_are_kubernetes_cores():
    core = pytest.importorskip('ansible_collections.kubernetes.core.plugins.module_utils.args_common')
    ours = dict(SPEC)
    # kubernetes.core's kubeconfig is raw (a path or a dictionary); ours is a path only (the fragment says so)
    assert core.AUTH_ARG_SPEC['kubeconfig']['type'] == 'raw' and ours.pop('kubeconfig')['type'] == 'path'
    for name, spec in ours.items():
        theirs = core.AUTH_ARG_SPEC[name]
        assert spec.get('type', 'str') == theirs.get('type', 'str'), name
        assert sorted(spec.get('aliases') or []) == sorted(theirs.get('aliases') or []), name
        assert bool(spec.get('no_log')) == bool(theirs.get('no_log')), name


def _spec_of(module_name):
    captured = {}

    class Stop(Exception):
        pass

    def fake(*args, **kwargs):
        captured.update(kwargs.get('argument_spec') or args[0])
        raise Stop()

    mod = importlib.import_module('ansible_collections.oncall.runbooks.plugins.modules.' + module_name)
    original = mod.AnsibleModule
    mod.AnsibleModule = fake
    try:
        mod.main()
    except Stop:
        pass
    finally:
        mod.AnsibleModule = original
    return captured


def test_the_modules_of_the_fragment_use_the_helper_and_are_the_group_k8s():
    with open(os.path.join(ROOT, 'meta', 'runtime.yml')) as f:
        group = yaml.safe_load(f)['action_groups']['k8s']
    documented = []
    for name in sorted(os.listdir(os.path.join(ROOT, 'plugins', 'modules'))):
        if not name.endswith('.py'):
            continue
        mod = importlib.import_module('ansible_collections.oncall.runbooks.plugins.modules.' + name[:-3])
        doc = yaml.safe_load(mod.DOCUMENTATION)
        if 'oncall.runbooks.kube' in (doc.get('extends_documentation_fragment') or []):
            documented.append(name[:-3])
            spec = _spec_of(name[:-3])
            for option, desc in SPEC.items():
                assert spec[option] == desc, (name, option)
    assert sorted(group) == documented == ['cert_info', 'cert_renew']
