# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way a module of the collection runs and ends (DESIGN.md, "One module runner").

``run(module, body)`` calls ``body(module)`` and exits with the dictionary it returns. An
``OncallError`` (every domain error of the collection derives from it) ends as
``fail_json(msg=<its one sentence>, **<its partial results>)``. A failure of the world the module
talks to (a psycopg2 or redis-py error) is phrased by the module's ``describe`` function. Any
other exception is a bug in this collection: it ends as ``internal error in
oncall.runbooks.<module>: <type>: <text>; please report it`` with the traceback in
``exception``, never as a sentence that blames the server.

``check_library`` is the one dependency check: the library is importable and at least the
version the collection needs, or one sentence naming the library, the version found and the
version needed, with the ``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib
import platform
import re
import sys
import traceback

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import (
    DependencyError, OncallError)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import shaped

COLLECTION = 'oncall.runbooks'

# import name -> (distribution to pip install, the oldest version the collection supports:
# the lower bound of requirements.txt, the version the tests run with)
LIBRARIES = {
    'redis': ('redis', '7.4'),
    'bullmq': ('bullmq', '2.26'),
    'psycopg2': ('psycopg2-binary', '2.9.13'),
    'stripe': ('stripe', '16.1'),
    'boto3': ('boto3', '1.44.8'),
    'kafka': ('kafka-python', '2.2.15'),
    'cryptography': ('cryptography', '50.0.2'),
    'kubernetes': ('kubernetes', '36.0.3'),
}

_state = {'name': None}


def module_name(module=None):
    """oncall.runbooks.<module> for messages: the name the task used, else the running one."""
    for name in (getattr(module, '_name', None), _state['name']):
        name = re.sub(r'\.py$', '', str(name or ''))
        short = name.rsplit('.', 1)[-1]
        if short and short not in ('basic', '__main__'):
            return '%s.%s' % (COLLECTION, short)
    return '%s.<module>' % COLLECTION


def internal_error(exc, module=None):
    """The one sentence for an exception that is a bug in the collection."""
    text = ' '.join(str(exc).split())
    if len(text) > 500:
        text = text[:497] + '...'
    return 'internal error in %s: %s%s; please report it' % (
        module_name(module), type(exc).__name__, (': ' + text) if text else '')


def version_tuple(version):
    """'2.9.13 (dt dec pq3)' -> (2, 9, 13); the leading numeric part of a version string."""
    match = re.match(r'\s*v?(\d+(?:\.\d+)*)', str(version or ''))
    if not match:
        return ()
    return tuple(int(part) for part in match.group(1).split('.'))


def _found_version(imported, distribution):
    version = getattr(imported, '__version__', None)
    if not isinstance(version, str):
        version = getattr(imported, 'VERSION', None)
        version = version if isinstance(version, str) else None
    if not version:
        try:
            from importlib import metadata
            version = metadata.version(distribution)
        except Exception:  # pylint: disable=broad-except  # no metadata: version unknown
            version = None
    return version


def check_library(library, minimum=None, distribution=None, name=None):
    """Import library (its import name) and check its version; returns the module imported.

    minimum and distribution default to the entry of LIBRARIES. Raises DependencyError with one
    sentence (and the import traceback in ``exception``) when it is missing or older."""
    known_dist, known_min = LIBRARIES.get(library, (library, None))
    distribution = distribution or known_dist
    minimum = minimum if minimum is not None else known_min
    who = name or module_name()
    wanted = '%s>=%s' % (distribution, minimum) if minimum else distribution
    where = "%s's Python %s" % (platform.node() or 'this host', sys.executable or 'python')
    try:
        imported = importlib.import_module(library)
    except ImportError:
        raise DependencyError(
            '%s needs the Python library %s%s, which is not installed for %s: install it with '
            "pip install '%s' (or point ansible_python_interpreter at a Python that has it)"
            % (who, distribution, (' %s or newer' % minimum) if minimum else '', where, wanted),
            exception=traceback.format_exc())
    if minimum:
        found = _found_version(imported, distribution)
        if found and version_tuple(found) < version_tuple(minimum):
            raise DependencyError(
                "%s needs the Python library %s %s or newer, but %s has %s: upgrade it with "
                "pip install --upgrade '%s'" % (who, distribution, minimum, where, found.split()[0], wanted))
    return imported


def run(module, body, describe=None, requires=()):
    """Run body(module) and exit with its result (a dict); never returns.

    requires: import names checked with check_library first. describe(exc): one sentence for
    an exception of the world the module talks to (a database or server error), or None when
    exc is not one of those. An OncallError ends as fail_json(msg=its sentence, **its partial
    results); any other exception as an internal error with the traceback in ``exception``.
    A result (or partial result) with a plan has every key of the applied-result shape
    (plan, actions, skipped_items, findings, msg: common/plan.py)."""
    # the name the task used; else the module the body is defined in (a module run in-process)
    _state['name'] = getattr(module, '_name', None) or getattr(body, '__module__', None)
    try:
        for library in requires:
            if isinstance(library, (tuple, list)):
                check_library(*library, name=module_name(module))
            else:
                check_library(library, name=module_name(module))
        result = body(module)
    except OncallError as exc:
        results = dict(exc.results)
        if 'plan' in results:
            results = shaped(dict(results, msg=exc.msg))
        results.pop('msg', None)
        module.fail_json(msg=exc.msg or internal_error(exc, module), **results)
    except Exception as exc:  # pylint: disable=broad-except  # the one place bugs are reported
        sentence = None
        if describe is not None:
            try:
                sentence = describe(exc)
            except Exception:  # pylint: disable=broad-except  # a bug in describe: report exc
                sentence = None
        if sentence:
            module.fail_json(msg=sentence)
        module.fail_json(msg=internal_error(exc, module), exception=traceback.format_exc())
    result = dict(result or {})
    if 'plan' in result:  # a module that plans returns the one applied-result shape
        shaped(result)
    module.exit_json(**result)
