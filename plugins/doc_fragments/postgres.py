# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options shared by every PostgreSQL module (names as community.postgresql)."""

    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Database server host. Empty means the local Unix socket (see O(login_unix_socket)).
    type: str
    default: ''
  login_port:
    description: Database server port.
    type: int
    default: 5432
  login_user:
    description: Role to connect as.
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Never logged, never returned.
    type: str
  login_unix_socket:
    description: Directory of the server's Unix socket, for local connections.
    type: str
    default: ''
  db:
    description: Database to connect to.
    type: str
    required: true
  ssl_mode:
    description: libpq C(sslmode).
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA bundle to verify the server certificate with (libpq C(sslrootcert)).
    type: path
  connect_timeout:
    description: Seconds to wait for the connection before failing.
    type: int
    default: 10
  connect_params:
    description:
      - Further libpq connection parameters, such as C(application_name) or C(options).
      - These take precedence over the options above.
      - Never logged (they may hold C(password) or C(sslpassword)).
    type: dict
    default: {}
requirements:
  - psycopg2 (Python library)
'''
