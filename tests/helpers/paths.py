# -*- coding: utf-8 -*-
"""Where things are, and what every process the tests start inherits.

Imported first by the helpers package: tests/site/sitecustomize.py keeps the code that Python
compiles when a module run imports module_utils from its AnsiballZ zip, keyed by the source, so
the next module run skips compiling it (about a quarter of a module task's CPU here).
ONCALL_ZIPIMPORT_CACHE= (empty) turns it off. The checkout's .collections directory (where
scripts/setup links this collection) goes on sys.path, for the unit tests' imports.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.path.join(ROOT, 'lab', 'node')
PG_BIN = '/usr/lib/postgresql/15/bin'

os.environ.setdefault('ONCALL_ZIPIMPORT_CACHE', os.path.join(ROOT, 'tests', 'output', 'zipimport-cache'))
os.environ['PYTHONPATH'] = os.pathsep.join(
    [os.path.join(ROOT, 'tests', 'site')] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
if os.path.join(ROOT, '.collections') not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, '.collections'))
