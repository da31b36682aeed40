# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A compile cache for the module_utils that Ansible's AnsiballZ imports from a zip: tests only.

Every module run unpacks a new zip (a new temporary path) and Python's zipimport compiles each
module_utils source it imports from it, with no bytecode cache: on this project's 2-core CI that
compiling was about half of a module run's CPU (py-spy, 40 `ping` tasks). tests/helpers/paths.py puts
this directory on PYTHONPATH and names a cache directory in ONCALL_ZIPIMPORT_CACHE; with both,
zipimport's compile step keeps the code object of each (path inside the zip, source) and gives
it back on the next run with the new zip's file name. The code run is the same code: the key is
the source itself (SHA-256, with the interpreter's bytecode magic number), and nothing is cached
without the variable. Users' runs never load this file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import zipimport

_CACHE = os.environ.get('ONCALL_ZIPIMPORT_CACHE')
_COMPILE = getattr(zipimport, '_compile_source', None)


def _renamed(code, filename):
    """The code object, and every code object inside it, with filename as co_filename."""
    consts = tuple(_renamed(c, filename) if hasattr(c, 'co_filename') else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _compile_cached(pathname, source):
    inner = pathname.rpartition('.zip' + os.sep)[2]
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER + inner.encode('utf-8') + b'\0' + source).hexdigest()
    path = os.path.join(_CACHE, digest)
    try:
        with open(path, 'rb') as f:
            return _renamed(marshal.load(f), pathname)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = _COMPILE(pathname, source)
    tmp = '%s.%d.tmp' % (path, os.getpid())
    try:
        os.makedirs(_CACHE, exist_ok=True)
        with open(tmp, 'wb') as f:
            marshal.dump(code, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return code


if _CACHE and _COMPILE is not None:
    zipimport._compile_source = _compile_cached
