# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mitogen's linear strategy without its CPU pinning (bench/fleet.py --unpinned; docs/scaling.md).

Not part of the collection: a strategy plugin for a controller that runs mitogen 0.3.x (needs
`ansible_mitogen` importable, e.g. PYTHONPATH=DIR after `pip install --target DIR mitogen`).

mitogen pins its processes to CPUs (ansible_mitogen/affinity.py). On a machine with two or three
CPUs it keeps CPU 0 for its connection multiplexer and puts the top-level process, every worker
and every interpreter that runs the modules on CPU 1, so a run never uses more than about one
CPU for the work. On the 2-core bench machine that made the 50-host window slower than the
default strategy (docs/scaling.md has the figures). This plugin is mitogen_linear with the
placement left to the kernel: the same strategy, only no process is pinned.
"""

from __future__ import annotations

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy

# Every process mitogen starts (multiplexer, workers, module interpreters) asks this object
# where to run; the base class places nothing. Replaced before any of them is started.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

Base = ansible_mitogen.loaders.strategy_loader.get('linear', class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    """mitogen_linear, unpinned."""
