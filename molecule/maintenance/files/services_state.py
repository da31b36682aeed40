# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print, as JSON, the state of the services in the scenario's container.

Run inside the container by tasks/services_state.yml with the image's virtualenv Python; the one
argument is a JSON object: redis_port, prefix, queues [{name, flavor}], pg {host, port, user,
db}, logs [dirs], backups (dir).

It records what a maintenance window may change, and nothing that changes on its own, so that two
readings around a run that must change nothing are equal:

- Redis: per queue the job count of each state and how many finished jobs are over 24 hours old;
  list lengths; a digest of the DUMP of every persistent key, so that any write shows, and one
  per key, so that a difference names the key. Keys with a TTL (the caches) expire by themselves
  and are left out.
- PostgreSQL: per table the dead tuples and the counters and times of manual VACUUM and ANALYZE
  (autovacuum's own run whenever it likes); per index its file node, which REINDEX renews.
- Files: size and mtime of each log and backup file.
"""

import hashlib
import json
import os
import sys
import time

import psycopg2
import redis

QUEUE_STATES = ('wait', 'paused', 'active', 'delayed', 'prioritized', 'priority', 'waiting-children',
                'completed', 'failed')
DAY_MS = 86400 * 1000


def queue_state(client, prefix, name):
    counts = {}
    for state in QUEUE_STATES:
        key = '%s:%s:%s' % (prefix, name, state)
        kind = client.type(key)
        if kind == b'list':
            counts[state] = client.llen(key)
        elif kind == b'zset':
            counts[state] = client.zcard(key)
    cutoff = int(time.time() * 1000) - DAY_MS
    for state in ('completed', 'failed'):
        counts['%s_over_24h' % state] = client.zcount('%s:%s:%s' % (prefix, name, state), '-inf', cutoff)
    return counts


def redis_state(conf):
    client = redis.Redis(host='127.0.0.1', port=int(conf['redis_port']))
    digest = hashlib.sha256()
    persistent = 0
    values = {}  # key -> digest of its DUMP, so that a change names the key
    for key in sorted(client.scan_iter(count=1000)):
        if client.ttl(key) != -1:
            continue
        persistent += 1
        dumped = client.dump(key) or b''
        digest.update(key + b'\0' + dumped + b'\0')
        values[key.decode('utf-8', 'replace')] = hashlib.sha256(dumped).hexdigest()[:16]
    queues = [q for q in conf['queues'] if q['flavor'] != 'list']
    lists = [q for q in conf['queues'] if q['flavor'] == 'list']
    return {
        'persistent_keys': persistent,
        'persistent_digest': digest.hexdigest(),
        'persistent_values': values,
        'queues': dict((q['name'], queue_state(client, conf['prefix'], q['name'])) for q in queues),
        'lists': dict((q['name'], client.llen(q['name'])) for q in lists),
    }


def pg_state(conf):
    conn = psycopg2.connect(host=conf['host'], port=int(conf['port']), user=conf['user'], dbname=conf['db'])
    try:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT schemaname || '.' || relname, n_dead_tup, vacuum_count, analyze_count,
                       last_vacuum::text, last_analyze::text
                FROM pg_stat_user_tables""")
            tables = dict((row[0], dict(zip(('dead_tuples', 'vacuum_count', 'analyze_count', 'last_vacuum',
                                             'last_analyze'), row[1:])))
                          for row in cur.fetchall())
            cur.execute("""
                SELECT schemaname || '.' || indexrelname, schemaname || '.' || relname,
                       pg_relation_filenode(indexrelid)
                FROM pg_stat_user_indexes""")
            indexes = dict((row[0], {'table': row[1], 'filenode': row[2]}) for row in cur.fetchall())
    finally:
        conn.close()
    return {'tables': tables, 'indexes': indexes}


def files_state(dirs):
    found = {}
    for top in dirs:
        for parent, _dirs, names in os.walk(top):
            for name in names:
                path = os.path.join(parent, name)
                st = os.lstat(path)
                found[path] = {'size': st.st_size, 'mtime': int(st.st_mtime)}
    return found


def main():
    conf = json.loads(sys.argv[1])
    state = {
        'redis': redis_state(conf),
        'postgres': pg_state(conf['pg']),
        'logs': files_state(conf['logs']),
        'backups': files_state([conf['backups']]),
    }
    json.dump(state, sys.stdout, sort_keys=True)


if __name__ == '__main__':
    main()
