# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis Cluster state as data, and a failover to an in-sync replica (runbook 000 "Redis
Cluster Failures").

A manual failover is CLUSTER FAILOVER sent to the replica: the replica asks its primary to stop
accepting writes, waits until it has caught up with the primary's replication offset, then
takes over the slots; the old primary becomes its replica. Nothing is lost, which is why the
replica must be connected and in sync first. FORCE (primary unreachable) skips the hand-shake
with the primary and can lose the writes the replica has not received; it needs confirmation.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.oncall.runbooks.plugins.module_utils.common import options as opt
from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import finding
from ansible_collections.oncall.runbooks.plugins.module_utils.common.plan import Action
from ansible_collections.oncall.runbooks.plugins.module_utils.redis import connection as rconn
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError


class ClusterError(OncallError):
    """A refusal or failure, already phrased for the operator."""


# host:port, [v6]:port or a 40-character node id, as CLUSTER NODES writes them
NODE_NAME = re.compile(r'[A-Za-z0-9_.:\[\]-]{1,300}', re.ASCII)
# a DNS name, an IPv4 or an IPv6 address (ASCII: a Redis host is not an internationalized name)
HOST_NAME = re.compile(r'(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?|[0-9A-Fa-f:.]{2,45}|'
                       r'\[[0-9A-Fa-f:.]{2,45}\]', re.ASCII)
MAX_TIMEOUT = 3600


def check_server_options(params, error=ClusterError):
    """login_host, login_port, db and ca_certs of the shared Redis options, before any connection
    (one sentence; the timeouts and url are checked by connection.check_params)."""
    try:
        if not params.get('url'):
            opt.text('login_host', params.get('login_host'), max_length=253, pattern=HOST_NAME,
                     what='a host name or address')
            opt.number('login_port', params.get('login_port'), low=1, high=65535, integer=True)
        opt.number('db', params.get('db'), low=0, high=2 ** 31 - 1, integer=True)
        if params.get('ca_certs') is not None:
            opt.text('ca_certs', params['ca_certs'], max_length=4096, what='a CA bundle file')
            if not os.path.isfile(params['ca_certs']):
                raise opt.OptionError('ca_certs: no file at %s' % opt.shown(params['ca_certs'], 200))
    except opt.OptionError as exc:
        raise error(str(exc))


def validate(params):
    """Every option of redis_cluster, before anything is read or sent."""
    check_server_options(params)
    try:
        for option in ('promote', 'failover_from'):
            if params.get(option) is not None:
                opt.text(option, params[option], max_length=300, pattern=NODE_NAME,
                         what='a node as host:port or a node id')
        seconds = opt.duration('timeout', params['timeout'], low=1, high=MAX_TIMEOUT)
    except opt.OptionError as exc:
        raise ClusterError(str(exc))
    params['timeout_s'] = seconds


def _info_dict(text):
    out = {}
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    if isinstance(text, dict):
        return dict((str(k), v) for k, v in text.items())
    for line in (text or '').splitlines():
        if ':' in line:
            key, _sep, value = line.strip().partition(':')
            out[key] = int(value) if value.lstrip('-').isdigit() else value
    return out


def _replication(params, node):
    """INFO replication of one node, or None when it cannot be reached."""
    client = rconn.node_client(params, node.host, node.port)
    try:
        return client.info('replication')
    except rconn.redis_exc.RedisError:
        return None
    finally:
        client.close()


def observe(params):
    """The cluster as data: CLUSTER INFO, every node with its role, flags, link, slots and,
    for replicas, whether they are connected to their primary and how far behind they are."""
    seed = rconn.connect(params)
    try:
        enabled = rconn.is_cluster(seed)
        if not enabled:
            repl = seed.info('replication')
            return dict(enabled=False, info={}, nodes=[dict(
                name=rconn.where(params).split('/')[0], role=repl.get('role'),
                connected_replicas=repl.get('connected_slaves', 0))])
        info = _info_dict(seed.execute_command('CLUSTER', 'INFO'))
        nodes = rconn.parse_cluster_nodes(rconn.cluster_nodes_text(seed))
    finally:
        seed.close()
    by_id = dict((n.node_id, n) for n in nodes)
    out = []
    for node in nodes:
        entry = node.to_dict()
        entry['failed'] = 'fail' in node.flags
        entry['suspected'] = 'fail?' in node.flags
        repl = None if entry['failed'] else _replication(params, node)
        entry['reachable'] = repl is not None
        if node.role == 'primary':
            entry['replicas'] = sorted(n.name for n in nodes if n.primary_id == node.node_id)
            entry['repl_offset'] = (repl or {}).get('master_repl_offset')
        elif node.role == 'replica':
            primary = by_id.get(node.primary_id)
            entry['primary'] = primary.name if primary else None
            entry['link_up'] = bool(repl) and repl.get('master_link_status') == 'up'
            entry['syncing'] = bool(repl) and bool(repl.get('master_sync_in_progress'))
            entry['repl_offset'] = (repl or {}).get('slave_repl_offset')
        out.append(entry)
    names = dict((e['name'], e) for e in out)
    for entry in out:
        if entry['role'] == 'replica':
            primary = names.get(entry['primary'])
            p_off = primary and primary.get('repl_offset')
            entry['lag_bytes'] = (p_off - entry['repl_offset']) if (
                p_off is not None and entry['repl_offset'] is not None) else None
            entry['in_sync'] = bool(entry['link_up'] and not entry['syncing'] and primary
                                    and not primary['failed'])
    return dict(enabled=True, info=info, nodes=out)


def findings(state):
    """The runbook's questions as verdicts: is the cluster ok, which node failed, which primary
    has no replica left, which replica is not in sync."""
    if not state['enabled']:
        return [finding('redis cluster', 'disabled', 'standalone server', 'ok')]
    info = state['info']
    out = [finding('cluster_state', info.get('cluster_state'), 'ok',
                   'ok' if info.get('cluster_state') == 'ok' else 'critical'),
           finding('slots served', info.get('cluster_slots_ok'), '16384',
                   'ok' if info.get('cluster_slots_ok') == 16384 else 'critical')]
    for node in state['nodes']:
        if node['failed'] or node['suspected'] or not node['reachable']:
            out.append(finding('node %s (%s)' % (node['name'], node['role']),
                               ','.join(node['flags']) or 'unreachable', 'reachable, no fail flag',
                               'critical' if node['role'] == 'primary' and node['slots'] else 'warning'))
    for node in state['nodes']:
        if node['role'] == 'primary' and node['slots'] and not node['failed']:
            healthy = [r for r in state['nodes'] if r['name'] in node['replicas'] and r.get('in_sync')]
            out.append(finding('replicas in sync of %s' % node['name'], len(healthy), '>= 1',
                               'ok' if healthy else 'warning'))
    return out


def find(state, name, option='promote'):
    for node in state['nodes']:
        if node['name'] == name or node.get('id') == name:
            return node
    raise ClusterError('%s: node %s is not in the cluster (CLUSTER NODES lists %s): give host:port or a '
                       'node id' % (option, opt.shown(name, 80), opt.shown(', '.join(n['name'] for n in state['nodes']), 200)))


def plan(state, params):
    """At most one failover: to params['promote'] (a replica), or away from
    params['failover_from'] (a primary) to its in-sync replica with the most data."""
    if not (params.get('promote') or params.get('failover_from')):
        return []
    if not state['enabled']:
        raise ClusterError('%s: the server at %s is not a Redis Cluster node: there is nothing to fail '
                           'over' % ('promote' if params.get('promote') else 'failover_from', rconn.where(params)))
    force = params.get('force')
    if params.get('promote'):
        target = find(state, params['promote'])
        if target['role'] == 'primary':
            return []
        primary = target.get('primary')
    else:
        old = find(state, params['failover_from'], 'failover_from')
        if old['role'] != 'primary':
            return []
        candidates = [n for n in state['nodes'] if n['name'] in old['replicas'] and not n['failed']
                      and n['reachable'] and (n.get('in_sync') or force)]
        if not candidates:
            raise ClusterError('primary %s has no connected, in-sync replica to fail over to: check '
                               'its replicas with CLUSTER NODES (force: true promotes an unsynced one '
                               'and may lose writes)' % old['name'])
        target = max(candidates, key=lambda n: n.get('repl_offset') or 0)
        primary = old['name']
    if not target['reachable']:
        raise ClusterError('replica %s cannot be reached: it cannot be promoted' % target['name'])
    if not target.get('in_sync') and not force:
        raise ClusterError('replica %s is not in sync with its primary %s (link %s%s): wait until it '
                           'is, or set force: true with confirm: true'
                           % (target['name'], primary, 'up' if target.get('link_up') else 'down',
                              ', full sync running' if target.get('syncing') else ''))
    if force and not params.get('confirm'):
        raise ClusterError('force: true promotes replica %s without its primary agreeing and can '
                           'lose writes: set confirm: true' % target['name'])
    reason = ('%s becomes primary in place of %s (replica in sync, lag %s bytes)'
              % (target['name'], primary, target.get('lag_bytes')))
    return [Action('failover', target['name'], reason, count=1, destructive=bool(force),
                   params=dict(replica=target['name'], host=target['host'], port=target['port'],
                               primary=primary, force=bool(force)))]


def apply(params, action, timeout, sleep=time.sleep):
    """CLUSTER FAILOVER [FORCE] sent to the replica, then wait until it is primary and the
    cluster is ok again. Returns the seconds it took."""
    started = time.monotonic()
    client = rconn.node_client(params, action.params['host'], action.params['port'])
    try:
        args = ['CLUSTER', 'FAILOVER'] + (['FORCE'] if action.params['force'] else [])
        client.execute_command(*args)
        while True:
            nodes = rconn.parse_cluster_nodes(rconn.cluster_nodes_text(client))
            me = [n for n in nodes if n.name == action.params['replica']]
            info = _info_dict(client.execute_command('CLUSTER', 'INFO'))
            old = [n for n in nodes if n.name == action.params['primary']]
            swapped = me and me[0].role == 'primary' and info.get('cluster_state') == 'ok'
            if swapped and old and not action.params['force'] and 'fail' not in old[0].flags:
                # the roles have swapped: the new primary sees the old one as its replica, and
                # the old primary knows it is one
                repl = _replication(params, old[0])
                swapped = old[0].role == 'replica' and (repl is None or repl.get('role') == 'slave')
            if swapped:
                return round(time.monotonic() - started, 3)
            if time.monotonic() - started > timeout:
                raise ClusterError('replica %s did not become primary within %gs after CLUSTER '
                                   'FAILOVER: check CLUSTER NODES and the nodes\' logs'
                                   % (action.params['replica'], timeout))
            sleep(0.1)
    finally:
        client.close()
