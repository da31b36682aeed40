# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The attributes every module of oncall.runbooks documents, described once.

    A module lists the fragments it needs, the most specific first (a fragment listed earlier
    wins over one listed later; the module's own C(attributes) win over all of them):

      extends_documentation_fragment:
        - oncall.runbooks.attributes.info_module        # read-only modules
        - oncall.runbooks.attributes.action_group_redis  # members of an action group
        - oncall.runbooks.attributes

    and states in its own C(attributes) only the support and details that are its own.
    """

    # Every module: what each attribute means. Support is stated by the module or a fragment below.
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return a changed status prediction (the plan) without modifying the target.
  diff_mode:
    description: Returns the state before and after (in C(check_mode) the predicted after) of what it changes, when in diff mode.
  idempotent:
    description:
      - When run twice in a row with the same arguments outside check mode, the second run reports no change
        and changes nothing.
  platform:
    description: Target systems the module can run on.
    support: full
    platforms: posix
    details:
      - Runs where the task runs. Modules that talk to a server (Redis, PostgreSQL, AWS, Kubernetes, Stripe)
        are usually run on the controller or execution environment (C(connection) V(local)), which then
        needs their Python libraries; the host modules run on the host they inspect.
  action_group:
    description: Part of an action group, for setting the connection options once with C(module_defaults).
    support: none
    membership: []
'''

    # Read-only modules: observe and report, never change anything.
    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: N/A
    details: Nothing is changed, so there is nothing to diff.
  idempotent:
    support: full
    details: Read-only; nothing is changed.
'''

    ACTION_GROUP_REDIS = r'''
options: {}
attributes:
  action_group:
    support: full
    membership:
      - oncall.runbooks.redis
'''

    ACTION_GROUP_POSTGRES = r'''
options: {}
attributes:
  action_group:
    support: full
    membership:
      - oncall.runbooks.postgres
'''

    ACTION_GROUP_AWS = r'''
options: {}
attributes:
  action_group:
    support: full
    membership:
      - oncall.runbooks.aws
'''

    ACTION_GROUP_K8S = r'''
options: {}
attributes:
  action_group:
    support: full
    membership:
      - oncall.runbooks.k8s
'''
