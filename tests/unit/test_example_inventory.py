# -*- coding: utf-8 -*-
"""inventories/example documents every ``oncall_*`` variable the roles and playbooks read.

The rule, applied to every YAML file and Jinja template under roles/ and playbooks/:

* **Read** means referenced by a Jinja expression: inside ``{{ }}`` / ``{% %}`` in any string
  value (this covers ``x | default(...)`` lookups, role defaults and module arguments), in the
  bare expressions of ``when``, ``that``, ``failed_when``, ``changed_when`` and ``until``, in a
  ``.j2`` template, or named as a string to ``lookup()``/``query()`` or as a subscript
  (``vars['oncall_x']``, ``hostvars[host]['oncall_x']``). Names are found by parsing the
  expressions with Jinja2 (comments, prose and SQL text such as ``pg_temp.oncall_delete_older``
  are not expressions, so they do not count).
* **Set by the collection** - a key of ``set_fact``, ``vars`` (play, block, task,
  include_role/import_role) or a ``register`` name anywhere under roles/ or playbooks/ - is an
  output (``oncall_verdict``, ``oncall_report``), not an input, and needs no inventory entry.
  Role defaults (``defaults/main.yml``) are not "set": they read the inventory.
* **Documented** means the example inventory (any file under inventories/example) has a line
  ``oncall_x:``, as a variable or commented out (``# oncall_x: ...``: optional or per-run
  variables such as ``oncall_alert`` or a vaulted password).

The test fails naming every variable read but not documented, and where it is read.
"""

from __future__ import annotations

import os
import re

import yaml
from jinja2 import Environment, nodes

from helpers import ROOT

BARE = {'when', 'that', 'failed_when', 'changed_when', 'until'}
NAME = re.compile(r'^oncall_[a-z0-9_]+$')
DOCUMENTED = re.compile(r'^\s*(?:#\s*)?(oncall_[a-z0-9_]+)\s*:', re.MULTILINE)
ENV = Environment()


class _Loader(yaml.SafeLoader):
    """Ansible's YAML: !unsafe and !vault values are strings (not expressions to read)."""


_Loader.add_constructor('!unsafe', lambda loader, node: None)
_Loader.add_constructor('!vault', lambda loader, node: None)


def _expressions(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _expressions(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _expressions(v, key)
    elif isinstance(node, str):
        if key in BARE and '{{' not in node and '{%' not in node:
            yield '{{ %s }}' % node
        elif '{{' in node or '{%' in node:
            yield node


def _set_names(node):
    """Names the collection sets itself: set_fact/vars keys and register names."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ('ansible.builtin.set_fact', 'set_fact', 'vars') and isinstance(v, dict):
                yield from v.keys()
            elif k == 'register' and isinstance(v, str):
                yield v
            yield from _set_names(v)
    elif isinstance(node, list):
        for v in node:
            yield from _set_names(v)


def names_in(source):
    """oncall_* names an expression or template reads."""
    ast = ENV.parse(source)
    names = {n.name for n in ast.find_all(nodes.Name) if n.ctx == 'load'}
    for call in ast.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in ('lookup', 'query', 'q'):
            names |= {a.value for a in call.args if isinstance(a, nodes.Const) and isinstance(a.value, str)}
    for item in ast.find_all(nodes.Getitem):
        if isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            names.add(item.arg.value)
    return {n for n in names if NAME.match(n)}


def used_variables(root, tops=('roles', 'playbooks')):
    """{name: [relative paths that read it]} for the oncall_* variables read and not set."""
    read, set_ = {}, set()
    for top in tops:
        for dirpath, _dirs, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding='utf-8') as f:
                    text = f.read()
                if name.endswith(('.yml', '.yaml')):
                    docs = list(yaml.load_all(text, Loader=_Loader))
                    sources = list(_expressions(docs))
                    set_.update(n for n in _set_names(docs) if isinstance(n, str))
                elif name.endswith('.j2'):
                    sources = [text]
                else:
                    continue
                for source in sources:
                    for var in names_in(source):
                        read.setdefault(var, []).append(rel)
    return {k: sorted(set(v)) for k, v in read.items() if k not in set_}


def documented_variables(inventory):
    out = set()
    for dirpath, _dirs, files in os.walk(inventory):
        for name in files:
            with open(os.path.join(dirpath, name), encoding='utf-8') as f:
                out.update(DOCUMENTED.findall(f.read()))
    return out


def test_every_oncall_variable_read_is_documented_in_the_example_inventory():
    used = used_variables(ROOT)
    documented = documented_variables(os.path.join(ROOT, 'inventories', 'example'))
    # the scan sees the variables of every kind of reference (not a vacuous pass)
    for known in ('oncall_orders', 'oncall_http_checks', 'oncall_processes', 'oncall_stripe_api_key',
                  'oncall_redis_host', 'oncall_pg_db', 'oncall_alert', 'oncall_fail_on'):
        assert known in used, known
    missing = ['%s (read in %s)' % (var, ', '.join(paths[:3])) for var, paths in sorted(used.items())
               if var not in documented]
    assert not missing, ('variables the roles and playbooks read that inventories/example does not document '
                         '(add a line "oncall_x: ..." or "# oncall_x: ..." with what it is and its default): '
                         + '; '.join(missing))


def test_the_rule_reads_expressions_and_ignores_outputs_prose_and_sql(tmp_path):
    role = tmp_path / 'roles' / 'demo'
    (role / 'defaults').mkdir(parents=True)
    (role / 'tasks').mkdir()
    (role / 'templates').mkdir()
    (role / 'defaults' / 'main.yml').write_text(
        '---\n# oncall_in_a_comment is prose\n'
        'demo_host: "{{ oncall_a | default(\'x\') }}"\n'
        'demo_fail_on: critical\n')
    (role / 'tasks' / 'main.yml').write_text(
        '---\n'
        '- name: Use\n'
        '  ansible.builtin.debug:\n'
        '    msg: "{{ lookup(\'vars\', \'oncall_b\') }} {{ hostvars[inventory_hostname][\'oncall_c\'] }}"\n'
        '  when: oncall_d | default(false)\n'
        '- name: Output\n'
        '  ansible.builtin.set_fact:\n'
        '    oncall_verdict_demo: "{{ demo_host }}"\n'
        '- name: Read back an output\n'
        '  ansible.builtin.debug:\n'
        '    msg: "{{ oncall_verdict_demo }}"\n'
        '  register: oncall_registered\n'
        '- name: SQL is not an expression\n'
        '  ansible.builtin.debug:\n'
        '    msg: SELECT pg_temp.oncall_delete_older(1)\n'
        '- name: Unsafe stays data\n'
        '  ansible.builtin.debug:\n'
        '    msg: !unsafe "{{ oncall_unsafe }}"\n')
    (role / 'templates' / 'plan.j2').write_text('{% if oncall_e %}{{ oncall_registered }}{% endif %}\n')
    used = used_variables(str(tmp_path))
    assert sorted(used) == ['oncall_a', 'oncall_b', 'oncall_c', 'oncall_d', 'oncall_e']
    assert used['oncall_e'] == ['roles/demo/templates/plan.j2']

    inventory = tmp_path / 'inventory'
    inventory.mkdir()
    (inventory / 'all.yml').write_text('---\noncall_a: 1\n# oncall_b: x   # optional\n#   oncall_c is mentioned in prose\n')
    assert documented_variables(str(inventory)) == {'oncall_a', 'oncall_b'}
