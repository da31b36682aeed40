# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import a library without the optional packages it would load and the collection never uses.

Some libraries import every optional back-end they find at import time: kafka-python loads
botocore (for AWS MSK IAM authentication, about 250 ms) and stripe loads aiohttp (for its async
client, about 140 ms). The modules use neither (kafka_consumer_lag_info offers PLAIN and SCRAM
only; stripe_reconcile is synchronous), so those packages are hidden while the library is
imported: the library's own ``try: import ... except ImportError`` takes its fallback. They are
importable again afterwards. bench/fixed_cost.py measures the difference.
"""

from __future__ import annotations

import importlib
import sys


def import_without(name, hidden):
    """importlib.import_module(*name*) with the top-level packages *hidden* not importable
    during the import (those already imported are left alone)."""
    placed = [h for h in hidden if h not in sys.modules]
    for h in placed:
        sys.modules[h] = None  # the import system raises ImportError for a None entry
    try:
        return importlib.import_module(name)
    finally:
        for h in placed:
            if h in sys.modules and sys.modules[h] is None:
                del sys.modules[h]
