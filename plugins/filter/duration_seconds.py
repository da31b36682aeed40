# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's duration parser as a filter, for roles; documented in duration_seconds.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)


def duration_seconds(value, option='duration'):
    """A duration (C(30s), C(2m), C(1h30m) or seconds) as seconds."""
    try:
        return parse_duration(value, option)
    except DurationError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {'duration_seconds': duration_seconds}
