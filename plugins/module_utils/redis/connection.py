# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place Redis connections are made and their failures turned into sentences."""

from __future__ import annotations

import re
import traceback

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError
from ansible_collections.oncall.runbooks.plugins.module_utils.common.runner import internal_error

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt

REDIS_IMP_ERR = None
try:
    import redis
    from redis import exceptions as redis_exc
    HAS_REDIS = True
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_REDIS = False
    REDIS_IMP_ERR = traceback.format_exc()

from urllib.parse import urlsplit


def redis_argument_spec():
    """Argument spec of the shared connection options (doc fragment oncall.runbooks.redis)."""
    return dict(
        login_host=dict(type='str', default='localhost', aliases=['host']),
        login_port=dict(type='int', default=6379, aliases=['port']),
        db=dict(type='int', default=0),
        login_user=dict(type='str', aliases=['username']),
        login_password=dict(type='str', no_log=True, aliases=['password']),
        tls=dict(type='bool', default=False),
        ca_certs=dict(type='path', aliases=['ca_cert']),
        validate_certs=dict(type='bool', default=True),
        url=dict(type='str', no_log=True),
        connect_timeout=dict(type='str', default='5s'),
        socket_timeout=dict(type='str', default='30s'),
    )


class RedisConnectionError(OncallError):
    """A connection or authentication failure, already phrased for the operator."""


URL_SCHEMES = ('redis', 'rediss', 'unix')
MAX_TIMEOUT = 3600


def timeouts(params):
    """(connect_timeout, socket_timeout) in seconds, parsed by the collection's one duration
    parser (common/options.duration); each from 1ms to 1h. Raises RedisConnectionError."""
    out = []
    for option in ('connect_timeout', 'socket_timeout'):
        value = params.get(option)
        if value is None:
            out.append(None)
            continue
        try:
            out.append(opt.duration(option, value, low=0.001, high=MAX_TIMEOUT))
        except opt.OptionError as exc:
            raise RedisConnectionError(str(exc))
    return tuple(out)


def check_params(params):
    """Refuse timeouts and a url that redis-py would crash on, with one sentence naming the
    option (never the url itself: it may hold a password). Raises RedisConnectionError."""
    timeouts(params)
    url = params.get('url')
    if url is None:
        return
    if not isinstance(url, str) or not url.strip():
        raise RedisConnectionError('url must be a Redis URL such as redis://host:6379/0, '
                                   'not an empty value')
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RedisConnectionError('url has a malformed host or port: give redis://[user:password@]'
                                   'host[:port][/db]')
    if parts.scheme not in URL_SCHEMES:
        raise RedisConnectionError('url must start with redis://, rediss:// or unix://, got %s'
                                   % ('%s://' % parts.scheme if parts.scheme else 'no scheme'))
    if parts.scheme != 'unix' and not parts.hostname:
        raise RedisConnectionError('url names no host: give redis://[user:password@]host[:port][/db]')
    if port is not None and not 0 < port < 65536:
        raise RedisConnectionError('url port must be between 1 and 65535')
    path = (parts.path or '').lstrip('/')
    if parts.scheme != 'unix' and path and not path.isdigit():
        raise RedisConnectionError('url database (the path after the host) must be a number, '
                                   'such as redis://host:6379/0')


def where(params):
    """host:port/db of the server, never with credentials (for messages)."""
    if params.get('url'):
        try:
            parts = urlsplit(params['url'])
            port = parts.port
        except ValueError:
            return 'the server of url (malformed)'
        path = (parts.path or '/0').lstrip('/') or '0'
        return '%s:%s/%s' % (parts.hostname or 'localhost', port or 6379, path)
    return '%s:%s/%s' % (params.get('login_host'), params.get('login_port'), params.get('db'))


def client_kwargs(params):
    """Keyword arguments for redis.Redis (or redis.asyncio.Redis) from module params."""
    connect_timeout, socket_timeout = timeouts(params)
    kwargs = dict(
        socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout,
        decode_responses=True,
        retry_on_timeout=False,
    )
    tls = params.get('tls')
    if params.get('url'):
        tls = tls or params['url'].startswith('rediss://')
    else:
        kwargs.update(
            host=params.get('login_host'),
            port=params.get('login_port'),
            db=params.get('db'),
            username=params.get('login_user'),
            password=params.get('login_password'),
        )
    if tls:
        kwargs['ssl'] = True
        kwargs['ssl_cert_reqs'] = 'required' if params.get('validate_certs', True) else 'none'
        if params.get('ca_certs'):
            kwargs['ssl_ca_certs'] = params['ca_certs']
    return kwargs


# What to grant for each command the modules send (docs/redis.md, "the ACL each module needs").
# INFO, FLUSHDB and the CLUSTER subcommands are in @dangerous or @admin: they are granted one by one.
ACL_GRANT = dict(
    (cmd, '+@read') for cmd in (
        'scan', 'type', 'exists', 'llen', 'lrange', 'zcard', 'zcount', 'zrange', 'zrevrange',
        'zrangebyscore', 'zscore', 'hget', 'hmget', 'hexists', 'hgetall', 'get', 'pttl', 'dbsize'))
ACL_GRANT.update(
    (cmd, '+@write') for cmd in (
        'set', 'del', 'unlink', 'rename', 'hset', 'hdel', 'hmset', 'lpush', 'rpush', 'rpop',
        'lpop', 'ltrim', 'lrem', 'rpoplpush', 'lmove', 'zadd', 'zrem', 'xadd', 'xtrim', 'incr'))
ACL_GRANT.update(
    (cmd, '+@scripting') for cmd in ('eval', 'evalsha', 'script', 'script|load'))
ACL_GRANT.update(ping='+ping', info='+info', flushdb='+flushdb', publish='+publish',
                 cluster='+cluster|info +cluster|nodes',
                 **{'cluster|info': '+cluster|info', 'cluster|nodes': '+cluster|nodes',
                    'cluster|failover': '+cluster|failover'})


def _is_noperm(text):
    return ('NOPERM' in text or 'no permissions to' in text.lower()
            or 'The user executing the script can' in text)


def describe_noperm(text, loc):
    """One sentence for an ACL denial: the command, key or channel refused and what to grant."""
    found = re.search(r"run the '([^']+)' command", text)
    if found:
        cmd = found.group(1).lower()
        return ('Redis at %s denied the %s command to this user: grant %s in its ACL (see docs/redis.md)'
                % (loc, cmd.upper(), ACL_GRANT.get(cmd, '+' + cmd)))
    in_script = 'script' in text
    where_ = ' inside a Lua script' if in_script else ''
    if 'channel' in text:
        return ('Redis at %s denied this user publishing to a channel%s: grant +publish and a channel '
                'pattern such as &bull:* in its ACL (see docs/redis.md)' % (loc, where_))
    if 'key' in text:
        return ('Redis at %s denied this user a key outside its key patterns%s: add a key pattern such '
                'as ~bull:* (the queue prefix) or ~oncall:lock:* to its ACL (see docs/redis.md)'
                % (loc, where_))
    if in_script:
        return ('Redis at %s denied this user a command inside a Lua script: '
                'the scripts change keys, so grant +@write (with +@read and +@scripting) '
                'in its ACL (see docs/redis.md)' % loc)
    return 'Redis at %s denied a command to this user: %s (see docs/redis.md)' % (loc, text)


def describe_error(exc, params):
    """Turn a redis-py exception into one sentence that names the server and the cause."""
    loc = where(params)
    if HAS_REDIS:
        if isinstance(exc, redis_exc.AuthenticationError) and 'Authentication required' in str(exc):
            return 'Redis at %s requires a password: set login_password (or url)' % loc
        if isinstance(exc, redis_exc.AuthenticationError) or (
                isinstance(exc, redis_exc.ResponseError) and 'WRONGPASS' in str(exc)):
            return 'Redis at %s refused the credentials: check login_user and login_password (or url)' % loc
        if isinstance(exc, (redis_exc.AuthorizationError,
                            getattr(redis_exc, 'NoPermissionError', redis_exc.AuthorizationError))) or (
                isinstance(exc, redis_exc.ResponseError) and _is_noperm(str(exc))):
            return describe_noperm(str(exc), loc)
        if isinstance(exc, redis_exc.ResponseError) and 'NOAUTH' in str(exc):
            return 'Redis at %s requires a password: set login_password (or url)' % loc
        if isinstance(exc, redis_exc.ResponseError) and 'SELECT is not allowed in cluster mode' in str(exc):
            return 'Redis at %s is a Redis Cluster node, which only has database 0: set db: 0' % loc
        if isinstance(exc, redis_exc.TimeoutError):
            return 'Redis at %s did not answer in time (%s)' % (loc, exc)
        if isinstance(exc, redis_exc.ConnectionError):
            cause = str(exc).split('. ', 1)[-1].rstrip('.') or exc.__class__.__name__
            return 'cannot reach Redis at %s: %s' % (loc, cause)
        if isinstance(exc, redis_exc.RedisError):
            return 'Redis at %s failed: %s' % (loc, exc)
    # not an error of Redis: a bug of the collection, never blamed on the server
    return internal_error(exc)


def failure(exc, params):
    """The sentence for a redis-py error (the runner's describe), None for anything else: an
    exception that is not Redis's is a bug of the collection and reported as one."""
    if HAS_REDIS and isinstance(exc, redis_exc.RedisError):
        return describe_error(exc, params)
    return None


def _make_client(factory, from_url, params, decode_responses=True):
    check_params(params)
    kwargs = client_kwargs(params)
    kwargs['decode_responses'] = decode_responses
    if params.get('url'):
        return from_url(params['url'], **kwargs)
    return factory(**kwargs)


def connect(params, decode_responses=True):
    """A connected, authenticated synchronous client, or RedisConnectionError."""
    client = _make_client(redis.Redis, redis.Redis.from_url, params, decode_responses)
    try:
        client.ping()
    except redis_exc.RedisError as exc:
        raise RedisConnectionError(describe_error(exc, params))
    return client


def async_client(params):
    """An asyncio client with the same settings (for the BullMQ library)."""
    import redis.asyncio as aredis
    return _make_client(aredis.Redis, aredis.Redis.from_url, params)


# ---- Redis Cluster ---------------------------------------------------------------------------

CLUSTER_MODES = ('auto', 'cluster', 'standalone')


def cluster_argument_spec():
    """The cluster option of modules that work on a standalone server and on a Redis Cluster."""
    return dict(cluster_mode=dict(type='str', default='auto', choices=list(CLUSTER_MODES)))


class Node(object):
    """One server of a deployment: its address as the cluster announces it, role and client."""

    __slots__ = ('host', 'port', 'node_id', 'role', 'primary_id', 'flags', 'link', 'slots',
                 'client')

    def __init__(self, host, port, node_id=None, role='primary', primary_id=None, flags=(),
                 link='connected', slots=0, client=None):
        self.host, self.port = host, int(port)
        self.node_id, self.role, self.primary_id = node_id, role, primary_id
        self.flags, self.link, self.slots, self.client = list(flags), link, slots, client

    @property
    def name(self):
        return '%s:%d' % (self.host, self.port)

    def to_dict(self):
        return dict(name=self.name, host=self.host, port=self.port, id=self.node_id,
                    role=self.role, primary_id=self.primary_id, flags=list(self.flags),
                    link=self.link, slots=self.slots)


def parse_cluster_nodes(text):
    """CLUSTER NODES output as a list of Node (no clients), in the server's order."""
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    nodes = []
    for line in (text or '').splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split('@', 1)[0]
        host, _sep, port = addr.rpartition(':')
        flags = [f for f in parts[2].split(',') if f != 'myself']
        role = 'primary' if 'master' in flags else ('replica' if 'slave' in flags else 'unknown')
        slots = 0
        for rng in parts[8:]:
            if rng.startswith('['):
                continue  # a slot being migrated or imported
            lo, _sep, hi = rng.partition('-')
            slots += (int(hi) - int(lo) + 1) if hi else 1
        nodes.append(Node(host or '127.0.0.1', port or 0, node_id=parts[0], role=role,
                          primary_id=None if parts[3] == '-' else parts[3],
                          flags=[f for f in flags if f not in ('master', 'slave')],
                          link=parts[7], slots=slots))
    return nodes


def cluster_nodes_text(client):
    """CLUSTER NODES as the server wrote it (redis-py would parse the single-word form)."""
    return client.execute_command('CLUSTER', 'NODES')


def is_cluster(client):
    """Whether the server runs with cluster-enabled yes."""
    return str(client.info('cluster').get('cluster_enabled', 0)) == '1'


def node_client(params, host, port, decode_responses=True):
    """A client to one node, with the credentials and TLS settings of params."""
    kwargs = client_kwargs(dict(params, url=None, login_host=host, login_port=port, db=0))
    if params.get('url'):
        parts = urlsplit(params['url'])
        kwargs.update(username=parts.username or None, password=parts.password or None)
        if params['url'].startswith('rediss://'):
            kwargs['ssl'] = True
            kwargs['ssl_cert_reqs'] = 'required' if params.get('validate_certs', True) else 'none'
    kwargs['decode_responses'] = decode_responses
    return redis.Redis(**kwargs)


def primaries(params, decode_responses=True):
    """(clustered, [Node]): every primary that serves slots, each with a connected client.

    On a standalone server (or with cluster_mode standalone) this is the one server of params.
    On a Redis Cluster every primary is read from CLUSTER NODES and connected to; a primary
    marked failed or unreachable is an error, since its keys cannot be reached.
    """
    seed = connect(params, decode_responses=decode_responses)
    mode = params.get('cluster_mode') or 'auto'
    clustered = mode == 'cluster' or (mode == 'auto' and is_cluster(seed))
    if not clustered:
        host, port = where(params).split('/')[0].rsplit(':', 1)
        return False, [Node(host, port, client=seed)]
    try:
        nodes = parse_cluster_nodes(cluster_nodes_text(seed))
    except redis_exc.ResponseError as exc:
        raise RedisConnectionError('Redis at %s is not a cluster node (%s): set cluster_mode to '
                                   'standalone or auto' % (where(params), exc))
    finally:
        seed.close()
    out = []
    for node in nodes:
        if node.role != 'primary' or not node.slots:
            continue
        if 'fail' in node.flags or 'fail?' in node.flags:
            raise RedisConnectionError('cluster primary %s (%s) is marked %s: fail over to its '
                                       'replica first (redis_failure runbook)'
                                       % (node.name, node.node_id, ','.join(node.flags)))
        node.client = node_client(params, node.host, node.port, decode_responses)
        try:
            node.client.ping()
        except redis_exc.RedisError as exc:
            raise RedisConnectionError(describe_error(
                exc, dict(params, url=None, login_host=node.host, login_port=node.port, db=0)))
        out.append(node)
    if not out:
        raise RedisConnectionError('the Redis Cluster at %s has no primary serving slots: run '
                                   'the redis_failure runbook' % where(params))
    return True, out
