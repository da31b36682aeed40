# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options shared by every Redis module of oncall.runbooks."""

    DOCUMENTATION = r'''
options:
  host:
    description:
      - Redis server host name or address.
      - Ignored when O(url) is set.
    type: str
    default: localhost
  port:
    description:
      - Redis server TCP port.
      - Ignored when O(url) is set.
    type: int
    default: 6379
  db:
    description:
      - Redis logical database number.
      - Ignored when O(url) is set.
    type: int
    default: 0
  username:
    description:
      - User name for Redis 6 ACL authentication.
      - Leave unset for the C(default) user.
    type: str
  password:
    description:
      - Password for Redis authentication (C(requirepass) or the ACL user's password).
      - Never logged, never returned.
    type: str
  tls:
    description:
      - Connect over TLS.
    type: bool
    default: false
  ca_cert:
    description:
      - Path to a CA bundle used to verify the server certificate when O(tls=true).
    type: path
  validate_certs:
    description:
      - Verify the server certificate when O(tls=true).
      - Setting this to V(false) should only be done on a trusted network.
    type: bool
    default: true
  url:
    description:
      - A C(redis://) or C(rediss://) URL that replaces O(host), O(port), O(db), O(username), O(password) and O(tls).
      - Treated as a secret because it may carry a password; it is never logged or returned.
    type: str
  connect_timeout:
    description:
      - Seconds to wait for the TCP (and TLS) connection before failing.
    type: float
    default: 5
  socket_timeout:
    description:
      - Seconds to wait for the answer to one Redis command before failing.
      - Every command the modules send is bounded in size, so this can stay small.
    type: float
    default: 30
requirements:
  - redis (Python library) >= 5.0
'''
