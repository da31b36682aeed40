# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base exception of the collection (DESIGN.md, "One module runner").

Every refusal and every failure of the world a module expects (a server that does not answer,
a value it refuses, a library that is missing) is an ``OncallError``: one sentence for the
operator, plus the results gathered before it happened (what was already done, the plan, the
findings). ``runner.run`` turns it into ``fail_json(msg=sentence, **partial_results)``; anything
else that escapes a module is a bug in the collection and is reported as one.
"""

from __future__ import annotations


class OncallError(Exception):
    """An expected failure: ``msg`` is one sentence, ``results`` what the module had done or
    found before it (returned with the failure)."""

    def __init__(self, msg='', **partial_results):
        Exception.__init__(self, msg)
        self.msg = str(msg)
        self.results = partial_results

    def __str__(self):
        return self.msg


class DependencyError(OncallError):
    """A Python library the module needs is missing or too old."""
