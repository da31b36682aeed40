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
  login_db:
    description:
      - Database to connect to (the database the module works on).
      - O(db) is the former name, kept as an alias.
    type: str
    required: true
    aliases: [db]
  ssl_mode:
    description: libpq C(sslmode).
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - CA bundle to verify the server certificate with (libpq C(sslrootcert)); with O(ssl_mode)
        V(verify-ca) or V(verify-full) the server's certificate must be signed by one of them.
    type: path
    aliases: [ssl_rootcert]
  ssl_cert:
    description:
      - Client certificate (PEM) presented to the server (libpq C(sslcert)), for certificate
        authentication (a C(hostssl ... cert) line of C(pg_hba.conf)) or C(clientcert=verify-full).
      - Must be a file the module's user can read; the module fails before connecting otherwise.
    type: path
  ssl_key:
    description:
      - Private key of O(ssl_cert) (libpq C(sslkey)). Only the path is passed on; the module never
        reads, logs or returns the key.
      - libpq refuses a key file that its group or others can read (mode C(0600) or stricter).
        An encrypted key needs C(sslpassword) in O(connect_params).
    type: path
  connect_timeout:
    description:
      - How long to wait for the connection, a duration such as V(10s) or V(1m); a bare number is
        seconds. libpq counts whole seconds (rounded up, at least 2); V(0) waits without limit.
        At most V(1h).
    type: str
    default: 10s
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
