# -*- coding: utf-8 -*-
"""Every name a plugin reads from a module_utils module it imported as a module exists there.

A module_utils file that stops exporting a name its callers read (`health.check_http_url`)
fails only when that line runs: on a module's error path, or in one backend. This reads every
plugin's source (ast, so names inside strings do not count) and checks each
``<alias>.<name>`` against the imported module.
"""

from __future__ import annotations

import ast
import glob
import importlib
import os
import types

from helpers.paths import ROOT  # noqa: E402
PACKAGE = 'ansible_collections.oncall.runbooks.plugins.module_utils'


def module_aliases(tree):
    """{alias: module} for `from <PACKAGE>... import <module> [as alias]` and
    `import <PACKAGE>....<module> as alias`, where the imported name is a module."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith(PACKAGE):
            for name in node.names:
                try:  # a submodule, else a name the module defines
                    imported = importlib.import_module('%s.%s' % (node.module, name.name))
                except ImportError:
                    imported = getattr(importlib.import_module(node.module), name.name, None)
                if isinstance(imported, types.ModuleType):
                    out[name.asname or name.name] = imported
        elif isinstance(node, ast.Import):
            for name in node.names:
                if name.name.startswith(PACKAGE) and name.asname:
                    out[name.asname] = importlib.import_module(name.name)
    return out


def test_every_name_read_from_a_module_utils_module_exists():
    missing = []
    paths = glob.glob(os.path.join(ROOT, 'plugins', '**', '*.py'), recursive=True)
    assert len(paths) > 50
    for path in paths:
        with open(path) as handle:
            tree = ast.parse(handle.read(), path)
        aliases = module_aliases(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and not hasattr(aliases[node.value.id], node.attr)):
                missing.append('%s:%d %s.%s' % (os.path.relpath(path, ROOT), node.lineno, node.value.id, node.attr))
    assert missing == []
