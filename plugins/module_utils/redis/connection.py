# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place Redis connections are made and their failures turned into sentences."""

from __future__ import annotations

import traceback

REDIS_IMP_ERR = None
try:
    import redis
    from redis import exceptions as redis_exc
    HAS_REDIS = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_REDIS = False
    REDIS_IMP_ERR = traceback.format_exc()

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover
    from urlparse import urlsplit  # type: ignore


def redis_argument_spec():
    """Argument spec of the shared connection options (doc fragment oncall.runbooks.redis)."""
    return dict(
        host=dict(type='str', default='localhost'),
        port=dict(type='int', default=6379),
        db=dict(type='int', default=0),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        tls=dict(type='bool', default=False),
        ca_cert=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        url=dict(type='str', no_log=True),
        connect_timeout=dict(type='float', default=5),
        socket_timeout=dict(type='float', default=30),
    )


class RedisConnectionError(Exception):
    """A connection or authentication failure, already phrased for the operator."""


def where(params):
    """host:port/db of the server, never with credentials (for messages)."""
    if params.get('url'):
        parts = urlsplit(params['url'])
        path = (parts.path or '/0').lstrip('/') or '0'
        return '%s:%s/%s' % (parts.hostname or 'localhost', parts.port or 6379, path)
    return '%s:%s/%s' % (params.get('host'), params.get('port'), params.get('db'))


def client_kwargs(params):
    """Keyword arguments for redis.Redis (or redis.asyncio.Redis) from module params."""
    kwargs = dict(
        socket_connect_timeout=params.get('connect_timeout'),
        socket_timeout=params.get('socket_timeout'),
        decode_responses=True,
        retry_on_timeout=False,
    )
    tls = params.get('tls')
    if params.get('url'):
        tls = tls or params['url'].startswith('rediss://')
    else:
        kwargs.update(
            host=params.get('host'),
            port=params.get('port'),
            db=params.get('db'),
            username=params.get('username'),
            password=params.get('password'),
        )
    if tls:
        kwargs['ssl'] = True
        kwargs['ssl_cert_reqs'] = 'required' if params.get('validate_certs', True) else 'none'
        if params.get('ca_cert'):
            kwargs['ssl_ca_certs'] = params['ca_cert']
    return kwargs


def describe_error(exc, params):
    """Turn a redis-py exception into one sentence that names the server and the cause."""
    loc = where(params)
    if HAS_REDIS:
        if isinstance(exc, redis_exc.AuthenticationError) or (
                isinstance(exc, redis_exc.ResponseError) and 'WRONGPASS' in str(exc)):
            return 'Redis at %s refused the credentials: check username and password' % loc
        if isinstance(exc, redis_exc.AuthorizationError) or (
                isinstance(exc, redis_exc.ResponseError) and 'NOPERM' in str(exc)):
            return 'Redis at %s denied a command to this user: %s' % (loc, exc)
        if isinstance(exc, redis_exc.ResponseError) and 'NOAUTH' in str(exc):
            return 'Redis at %s requires a password: set password (or url)' % loc
        if isinstance(exc, redis_exc.TimeoutError):
            return 'Redis at %s did not answer in time (%s)' % (loc, exc)
        if isinstance(exc, redis_exc.ConnectionError):
            cause = str(exc).split('. ', 1)[-1].rstrip('.') or exc.__class__.__name__
            return 'cannot reach Redis at %s: %s' % (loc, cause)
    return 'Redis at %s failed: %s' % (loc, exc)


def _make_client(factory, from_url, params):
    kwargs = client_kwargs(params)
    if params.get('url'):
        return from_url(params['url'], **kwargs)
    return factory(**kwargs)


def connect(params):
    """A connected, authenticated synchronous client, or RedisConnectionError."""
    client = _make_client(redis.Redis, redis.Redis.from_url, params)
    try:
        client.ping()
    except redis_exc.RedisError as exc:
        raise RedisConnectionError(describe_error(exc, params))
    return client


def async_client(params):
    """An asyncio client with the same settings (for the BullMQ library)."""
    import redis.asyncio as aredis
    return _make_client(aredis.Redis, aredis.Redis.from_url, params)
