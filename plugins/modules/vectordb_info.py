#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: vectordb_info
short_description: Heartbeat, version and collection count of a ChromaDB vector database
version_added: 0.1.0
description:
  - >-
    Read-only. Runbook 003 "Vector Database Issues" - "Check vector DB health" - over ChromaDB's
    HTTP API as ChromaDB 1.x serves it - C(GET /api/v2/heartbeat) (C({"nanosecond heartbeat": N})),
    C(GET /api/v2/version) and C(GET /api/v2/tenants/TENANT/databases/DATABASE/collections_count);
    with O(api_version=v1) the old routes C(/api/v1/heartbeat) and C(/api/v1/collections).
  - A server that does not answer is a V(critical) finding, not a failure of the task.
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
extends_documentation_fragment:
  - oncall.runbooks.attributes.info_module
  - oncall.runbooks.attributes
options:
  url:
    description: Base URL of the server (C(http://chromadb:8000)); C(http) or C(https) only.
    type: str
    required: true
  api_version:
    description: The API generation to speak.
    type: str
    choices: [v1, v2]
    default: v2
  tenant:
    description: Tenant whose collections are counted (v2).
    type: str
    default: default_tenant
  database:
    description: Database whose collections are counted (v2).
    type: str
    default: default_database
  min_collections:
    description: Fewer collections than this is a V(warning) (an index lost or never built).
    type: int
    default: 1
  token:
    description: A token sent as C(X-Chroma-Token) when the server requires authentication.
    type: str
  timeout:
    description: Timeout of each request, a duration (C(5s)).
    type: str
    default: 5s
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Vector DB health
  oncall.runbooks.vectordb_info:
    url: http://chromadb.holdwall.svc:8000
    min_collections: 3
  register: vectordb
'''

RETURN = r'''
heartbeat_ns:
  description: The server's C(nanosecond heartbeat), null when it did not answer.
  returned: always
  type: int
version:
  description: The server's version, null when unknown.
  returned: always
  type: str
collections:
  description: Number of collections, null when it could not be read.
  returned: always
  type: int
errors:
  description: What could not be read, one sentence each.
  returned: always
  type: list
  elements: str
findings:
  description: The heartbeat and the collection count, each with a verdict.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oncall.runbooks.plugins.module_utils.common import runner
from ansible_collections.oncall.runbooks.plugins.module_utils.common.options import OptionError, ansible_module
from ansible_collections.oncall.runbooks.plugins.module_utils.common.urls import UrlError
from ansible_collections.oncall.runbooks.plugins.module_utils.host import vectordb


def main():
    module = ansible_module(AnsibleModule, argument_spec=dict(
        url=dict(type='str', required=True),
        api_version=dict(type='str', choices=['v1', 'v2'], default='v2'),
        tenant=dict(type='str', default='default_tenant'),
        database=dict(type='str', default='default_database'),
        min_collections=dict(type='int', default=1),
        token=dict(type='str', no_log=True),
        timeout=dict(type='str', default='5s'),
        validate_certs=dict(type='bool', default=True),
    ), supports_check_mode=True)
    runner.run(module, run)


def run(module):
    p = module.params
    try:
        timeout = vectordb.validate(p)
    except (OptionError, UrlError) as exc:
        module.fail_json(msg=str(exc))
    headers = {'X-Chroma-Token': p['token']} if p.get('token') else {}
    obs = vectordb.observe(p, timeout, headers)
    return dict(changed=False, findings=vectordb.findings(obs, p), **obs)


if __name__ == '__main__':
    main()
