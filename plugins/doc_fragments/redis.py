# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options shared by every Redis module of oncall.runbooks (the action group
    oncall.runbooks.redis), named as community.general's Redis modules name them."""

    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - The host name or address of the Redis server.
      - Ignored when O(url) is set.
    type: str
    default: localhost
    aliases: [host]
  login_port:
    description:
      - The TCP port of the Redis server.
      - Ignored when O(url) is set.
    type: int
    default: 6379
    aliases: [port]
  db:
    description:
      - The Redis logical database number.
      - Ignored when O(url) is set.
    type: int
    default: 0
  login_user:
    description:
      - The Redis 6 ACL user to authenticate as.
      - Leave unset to authenticate as the C(default) user (with O(login_password) alone).
    type: str
    aliases: [username]
  login_password:
    description:
      - The password to authenticate with (C(requirepass), or the password of O(login_user)).
      - Never logged, never returned.
    type: str
    aliases: [password]
  tls:
    description:
      - Whether to connect over TLS.
      - Unlike community.general's Redis modules, the default is V(false), as most Redis servers
        listen without TLS; a C(rediss://) O(url) turns it on.
    type: bool
    default: false
  validate_certs:
    description:
      - Whether to verify the server certificate when O(tls=true).
      - Turn this off only on a network you control, or with C(localhost) as the server.
    type: bool
    default: true
  ca_certs:
    description:
      - Path to the CA bundle that verifies the server certificate when O(tls=true).
      - When unset, the system's CA certificates are used.
    type: path
    aliases: [ca_cert]
  url:
    description:
      - A C(redis://) or C(rediss://) URL that replaces O(login_host), O(login_port), O(db),
        O(login_user), O(login_password) and O(tls).
      - Treated as a secret because it may carry a password; it is never logged or returned.
    type: str
  connect_timeout:
    description:
      - How long to wait for the TCP (and TLS) connection before failing, up to C(1h).
      - A duration such as C(5s) or C(500ms); a bare number is seconds.
    type: str
    default: 5s
  socket_timeout:
    description:
      - How long to wait for the answer to one Redis command before failing, up to C(1h).
      - Every command the modules send is bounded in size, so this can stay small.
      - A duration such as C(30s) or C(1m); a bare number is seconds.
    type: str
    default: 30s
requirements:
  - redis (Python library) >= 5.0
'''
