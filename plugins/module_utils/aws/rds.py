# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rds_recovery: runbook 002 "Database Issues" steps 3 and 4 (RDS status, reboot, cluster
failover) as observe, plan, apply.

Desired state: the cluster's writer is available (a failover to an available reader when it
is not), stopped instances are started. A reboot is never inferred from the API (an instance
that answers no query still says "available"): it is planned only when asked for.
"""

from __future__ import annotations

import time

from ansible_collections.oncall.runbooks.plugins.module_utils.aws.common import AwsError, call


def _instance(rds, ident):
    found = call('describe DB instance %s' % ident, rds.describe_db_instances,
                 DBInstanceIdentifier=ident)['DBInstances']
    if not found:
        raise AwsError('DB instance %s not found' % ident)
    i = found[0]
    endpoint = i.get('Endpoint') or {}
    return {'id': i['DBInstanceIdentifier'], 'status': i.get('DBInstanceStatus'), 'engine': i.get('Engine'),
            'class': i.get('DBInstanceClass'), 'multi_az': bool(i.get('MultiAZ')),
            'cluster': i.get('DBClusterIdentifier'),
            'endpoint': '%s:%s' % (endpoint.get('Address'), endpoint.get('Port')) if endpoint else None}


def observe(rds, instance_id=None, cluster_id=None):
    obs = {'instances': {}, 'cluster': None}
    if cluster_id:
        clusters = call('describe DB cluster %s' % cluster_id, rds.describe_db_clusters,
                        DBClusterIdentifier=cluster_id)['DBClusters']
        if not clusters:
            raise AwsError('DB cluster %s not found' % cluster_id)
        c = clusters[0]
        members = [{'id': m['DBInstanceIdentifier'], 'writer': bool(m.get('IsClusterWriter'))}
                   for m in c.get('DBClusterMembers', [])]
        obs['cluster'] = {'id': c['DBClusterIdentifier'], 'status': c.get('Status'), 'engine': c.get('Engine'),
                          'writer': next((m['id'] for m in members if m['writer']), None),
                          'members': [m['id'] for m in members]}
        for m in members:
            obs['instances'][m['id']] = dict(_instance(rds, m['id']), role='writer' if m['writer'] else 'reader')
    if instance_id and instance_id not in obs['instances']:
        obs['instances'][instance_id] = dict(_instance(rds, instance_id), role='instance')
    return obs


def findings(obs):
    out = []
    c = obs['cluster']
    if c:
        writer = obs['instances'].get(c['writer']) if c['writer'] else None
        status = writer['status'] if writer else 'no writer'
        out.append({'object': 'cluster %s writer' % c['id'],
                    'figure': '%s %s' % (c['writer'] or '-', status), 'threshold': 'available',
                    'verdict': 'ok' if status == 'available' else 'critical'})
    for i in sorted(obs['instances'].values(), key=lambda x: x['id']):
        out.append({'object': 'DB instance %s (%s)' % (i['id'], i['role']), 'figure': i['status'],
                    'threshold': 'available',
                    'verdict': 'ok' if i['status'] == 'available' else
                    'warning' if i['status'] in ('rebooting', 'modifying', 'backing-up', 'starting') else 'critical'})
    return out


def plan(obs, p):
    items, not_planned = [], []
    c = obs['cluster']
    if c and p['failover']:
        writer = obs['instances'].get(c['writer']) if c['writer'] else None
        if not writer or writer['status'] != 'available':
            readers = [i for i in obs['instances'].values() if i['role'] == 'reader' and i['status'] == 'available']
            target = p.get('target_db_instance_identifier')
            if target:
                chosen = next((r for r in readers if r['id'] == target), None)
            else:
                chosen = sorted(readers, key=lambda r: r['id'])[0] if readers else None
            why = 'writer %s is %s' % (c['writer'] or '-', writer['status'] if writer else 'missing')
            if chosen:
                items.append({'operation': 'failover', 'action': 'failover', 'count': 1, 'object': c['id'], 'target': chosen['id'],
                              'reason': '%s; promote reader %s (available)' % (why, chosen['id'])})
            else:
                not_planned.append({'operation': 'failover', 'action': 'failover', 'count': 1, 'object': c['id'],
                                    'why': '%s and no %s reader is available' % (why, target or 'other')})
    for i in sorted(obs['instances'].values(), key=lambda x: x['id']):
        if i['status'] == 'stopped' and p['start_stopped']:
            items.append({'operation': 'start', 'action': 'start', 'count': 1, 'object': i['id'], 'reason': 'instance is stopped'})
    if p['reboot']:
        for ident in p['reboot_instances']:
            i = obs['instances'].get(ident)
            if i and i['status'] == 'available':
                items.append({'operation': 'reboot', 'action': 'reboot', 'count': 1, 'object': ident,
                              'force_failover': bool(p['reboot_force_failover'] and i['multi_az']),
                              'reason': 'reboot asked for (database not answering)'})
            else:
                not_planned.append({'operation': 'reboot', 'action': 'reboot', 'count': 1, 'object': ident,
                                    'why': 'instance is %s, not available' % (i['status'] if i else 'unknown')})
    return items, not_planned


def apply(rds, items):
    done = []
    for item in items:
        t0 = time.monotonic()
        if item['operation'] == 'failover':
            call('failover of DB cluster %s' % item['object'], rds.failover_db_cluster,
                 DBClusterIdentifier=item['object'], TargetDBInstanceIdentifier=item['target'])
        elif item['operation'] == 'start':
            call('start of DB instance %s' % item['object'], rds.start_db_instance,
                 DBInstanceIdentifier=item['object'])
        elif item['operation'] == 'reboot':
            kwargs = {'DBInstanceIdentifier': item['object']}
            if item.get('force_failover'):
                kwargs['ForceFailover'] = True
            call('reboot of DB instance %s' % item['object'], rds.reboot_db_instance, **kwargs)
        done.append(dict(item, seconds=round(time.monotonic() - t0, 3)))
    return done


def wait_available(rds, instance_id, cluster_id, idents, timeout, clock=time.monotonic, sleep=time.sleep):
    """Poll until the instances acted on (idents) are available again."""
    deadline = clock() + timeout
    while True:
        obs = observe(rds, instance_id, cluster_id)
        if all(obs['instances'].get(i, {}).get('status') == 'available' for i in idents):
            return obs, True
        if clock() >= deadline:
            return obs, False
        sleep(5)
