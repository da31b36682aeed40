# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the AWX catalog (awx/catalog.yml); documented in awx_objects.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.oncall.runbooks.plugins.module_utils.awx.catalog import CatalogError, expand


def awx_objects(catalog, secrets=None):
    """The catalog expanded into awx.awx module arguments."""
    try:
        return expand(catalog, secrets)
    except (CatalogError, KeyError, TypeError) as exc:
        raise AnsibleFilterError('awx catalog: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'awx_objects': awx_objects}
