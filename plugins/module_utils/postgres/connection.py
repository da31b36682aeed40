# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place PostgreSQL connections are made and their failures phrased."""

from __future__ import annotations

import traceback

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
        db=dict(type='str', required=True),
        ssl_mode=dict(type='str', default='prefer',
                      choices=['allow', 'disable', 'prefer', 'require', 'verify-ca', 'verify-full']),
        ca_cert=dict(type='path'),
        connect_timeout=dict(type='int', default=10),
        # nested libpq parameters can carry secrets (password, sslpassword): never logged
        connect_params=dict(type='dict', default={}, no_log=True),
    )


class PgConnectionError(OncallError):
    """A connection failure, phrased for the operator."""


def where(params):
    host = params.get('login_host') or params.get('login_unix_socket') or 'local socket'
    return '%s:%s/%s' % (host, params.get('login_port'), params.get('db'))


# The settings of a read-only session (pg_health_info): given at connection time, after any
# options of connect_params, so they win; a statement can only change them inside its own
# transaction, which the module rolls back.
READ_ONLY_OPTIONS = '-c default_transaction_read_only=on -c standard_conforming_strings=on'


def dsn_kwargs(params, read_only=False):
    kwargs = dict(
        dbname=params['db'],
        user=params.get('login_user'),
        port=params.get('login_port'),
        sslmode=params.get('ssl_mode'),
        connect_timeout=params.get('connect_timeout'),
        application_name=APPLICATION_NAME,
    )
    host = params.get('login_host') or params.get('login_unix_socket')
    if host:
        kwargs['host'] = host
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    if params.get('ca_cert'):
        kwargs['sslrootcert'] = params['ca_cert']
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
    try:
        conn = psycopg2.connect(**dsn_kwargs(params, read_only))
    except psycopg2.OperationalError as exc:
        cause = describe_error(exc, params)
        if 'password authentication failed' in cause:
            raise PgConnectionError('PostgreSQL at %s refused the credentials of role %s: check '
                                    'login_user and login_password'
                                    % (where(params), params.get('login_user')))
        if 'does not exist' in cause and 'database' in cause:
            raise PgConnectionError('database %s does not exist on %s'
                                    % (params['db'], where(params)))
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


def quote_ident(conn, *parts):
    return '.'.join(psycopg2.extensions.quote_ident(p, conn) for p in parts)
