# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place PostgreSQL connections are made and their failures phrased."""

from __future__ import annotations

import math
import os
import traceback

from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import (
    DurationError, parse_duration)
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

PSYCOPG_IMP_ERR = None
try:
    import psycopg2
    import psycopg2.extensions
    import psycopg2.extras
    # psycopg2.sql as pgc.sql: names in SQL go through sql.Identifier
    from psycopg2 import sql  # pylint: disable=unused-import
    HAS_PSYCOPG = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_PSYCOPG = False
    PSYCOPG_IMP_ERR = traceback.format_exc()

APPLICATION_NAME = 'oncall.runbooks'


def postgres_argument_spec():
    return dict(
        login_host=dict(type='str', default=''),
        login_port=dict(type='int', default=5432),
        login_user=dict(type='str', default='postgres'),
        login_password=dict(type='str', no_log=True),
        login_unix_socket=dict(type='str', default=''),
        # community.postgresql's name; db stays an alias (they are removing it, we keep it)
        login_db=dict(type='str', required=True, aliases=['db']),
        ssl_mode=dict(type='str', default='prefer',
                      choices=['allow', 'disable', 'prefer', 'require', 'verify-ca', 'verify-full']),
        ca_cert=dict(type='path', aliases=['ssl_rootcert']),
        # client certificate authentication: paths only, the key's content is never read here
        ssl_cert=dict(type='path'),
        ssl_key=dict(type='path', no_log=False),
        connect_timeout=dict(type='str', default='10s'),
        # nested libpq parameters can carry secrets (password, sslpassword): never logged
        connect_params=dict(type='dict', default={}, no_log=True),
    )


class PgConnectionError(OncallError):
    """A connection failure, or a connection option that cannot be used, phrased for the operator."""


# libpq waits in whole seconds; more than an hour for a connection is a mistake, not a wish
CONNECT_TIMEOUT_MAX_S = 3600


def connect_timeout_seconds(params):
    """connect_timeout (a duration) as the whole seconds libpq takes; 0 waits without limit.

    Raises PgConnectionError with one sentence naming the option."""
    value = params.get('connect_timeout')
    if value is None or value == '':
        return None
    try:
        seconds = parse_duration(value, 'connect_timeout')
    except DurationError as exc:
        raise PgConnectionError(str(exc))
    if not math.isfinite(seconds) or seconds > CONNECT_TIMEOUT_MAX_S:
        raise PgConnectionError('connect_timeout must be at most 1h, not %r' % (value,))
    return int(math.ceil(seconds))


def check_params(params):
    """Validate the connection options before anything connects (one sentence naming the option)."""
    port = params.get('login_port')
    if port is not None and not 1 <= port <= 65535:
        raise PgConnectionError('login_port must be a port number from 1 to 65535, not %r' % (port,))
    connect_timeout_seconds(params)
    if params.get('ssl_key') and not params.get('ssl_cert'):
        raise PgConnectionError('ssl_key needs ssl_cert, the client certificate that goes with the key')
    for option in ('ssl_cert', 'ssl_key'):
        path = params.get(option)
        # libpq silently sends no certificate when the file is missing: say so before connecting
        if path and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise PgConnectionError('%s %s is not a file this user can read' % (option, path))


def where(params):
    host = params.get('login_host') or params.get('login_unix_socket') or 'local socket'
    return '%s:%s/%s' % (host, params.get('login_port'), params.get('login_db'))


# The settings of a read-only session (pg_health_info): given at connection time, after any
# options of connect_params, so they win; a statement can only change them inside its own
# transaction, which the module rolls back.
READ_ONLY_OPTIONS = '-c default_transaction_read_only=on -c standard_conforming_strings=on'


def dsn_kwargs(params, read_only=False):
    kwargs = dict(
        dbname=params['login_db'],
        user=params.get('login_user'),
        port=params.get('login_port'),
        sslmode=params.get('ssl_mode'),
        connect_timeout=connect_timeout_seconds(params),
        application_name=APPLICATION_NAME,
    )
    host = params.get('login_host') or params.get('login_unix_socket')
    if host:
        kwargs['host'] = host
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    if params.get('ca_cert'):
        kwargs['sslrootcert'] = params['ca_cert']
    if params.get('ssl_cert'):
        kwargs['sslcert'] = params['ssl_cert']
    if params.get('ssl_key'):
        kwargs['sslkey'] = params['ssl_key']
    kwargs.update(params.get('connect_params') or {})
    if read_only:
        kwargs['options'] = ' '.join(o for o in (kwargs.get('options'), READ_ONLY_OPTIONS) if o)
    return kwargs


def describe_error(exc, params):
    """One sentence from a psycopg2 error: the server, and the first line of its message."""
    text = (getattr(exc, 'pgerror', None) or str(exc) or exc.__class__.__name__).strip()
    first = text.splitlines()[0] if text else exc.__class__.__name__
    extra = params.get('connect_params') or {}
    for secret in (params.get('login_password'), extra.get('password'), extra.get('sslpassword')):
        if secret and isinstance(secret, str):
            first = first.replace(secret, '********')
    return first.replace('FATAL:  ', '').replace('ERROR:  ', '')


def failure(exc, params):
    """The one sentence a module fails with when a statement fails."""
    return 'PostgreSQL at %s failed: %s' % (where(params), describe_error(exc, params))


def failure_of(exc, params):
    """failure() for a psycopg2 error (the runner's describe), None for anything else: an
    exception that is not the database's is a bug of the collection and reported as one."""
    if HAS_PSYCOPG and isinstance(exc, psycopg2.Error):
        return failure(exc, params)
    return None


def connect(params, autocommit=True, read_only=False):
    """A connection in autocommit mode (VACUUM and REINDEX CONCURRENTLY need it).

    read_only: every transaction of the session is READ ONLY (default_transaction_read_only
    given at connection time and SET SESSION CHARACTERISTICS), so that nothing a statement
    ends, not even a COMMIT, leaves a transaction that can write."""
    check_params(params)
    try:
        conn = psycopg2.connect(**dsn_kwargs(params, read_only))
    except psycopg2.OperationalError as exc:
        cause = describe_error(exc, params)
        if 'requires a valid client certificate' in cause or 'certificate authentication failed' in cause:
            raise PgConnectionError('PostgreSQL at %s wants a client certificate it trusts for role %s: '
                                    'check ssl_cert and ssl_key (%s)'
                                    % (where(params), params.get('login_user'),
                                       'none given' if not params.get('ssl_cert') else cause))
        if 'password authentication failed' in cause:
            raise PgConnectionError('PostgreSQL at %s refused the credentials of role %s: check '
                                    'login_user and login_password'
                                    % (where(params), params.get('login_user')))
        if 'does not exist' in cause and 'database' in cause:
            raise PgConnectionError('database %s does not exist on %s'
                                    % (params['login_db'], where(params)))
        raise PgConnectionError('cannot connect to PostgreSQL at %s: %s' % (where(params), cause))
    conn.autocommit = autocommit
    if read_only:
        with conn.cursor() as cur:
            cur.execute('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY')
        if not autocommit:
            conn.commit()
    return conn


def query(conn, sql, args=None):
    """Rows as dicts."""
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(sql, args)
        if cur.description is None:
            return []
        return [dict(row) for row in cur.fetchall()]


def quote_ident(*parts):
    """The parts as one quoted, dot-joined SQL identifier, with no connection: each part in
    double quotes with its double quotes doubled, which is what libpq's PQescapeIdentifier makes
    (psycopg2.extensions.quote_ident; tests/integration/test_pg_quote.py compares the two on a
    real server). A NUL cannot be in a PostgreSQL name and is refused."""
    out = []
    for part in parts:
        if not isinstance(part, str):
            raise TypeError('an SQL identifier must be a string, not %s' % type(part).__name__)
        if '\x00' in part:
            raise ValueError('an SQL identifier cannot contain a NUL character')
        out.append('"%s"' % part.replace('"', '""'))
    return '.'.join(out)
