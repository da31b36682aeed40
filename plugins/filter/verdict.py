# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdict filters for roles and playbooks; documented in worst_verdict.yml and verdict_fails.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import fails, worst


def worst_verdict(findings):
    """The worst verdict of a list of findings (or verdict strings): critical, warning, unknown, ok."""
    if findings is None:
        return 'ok'
    if not isinstance(findings, (list, tuple)):
        raise AnsibleFilterError('worst_verdict takes a list of findings, not %s' % type(findings).__name__)
    return worst(findings)


def verdict_fails(verdict, fail_on='critical'):
    """Whether a run with this verdict fails its job under oncall_fail_on (critical, warning, never)."""
    try:
        return fails(str(verdict), fail_on)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'worst_verdict': worst_verdict, 'verdict_fails': verdict_fails}
