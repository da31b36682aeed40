# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incidents scenario's broken state, and the state the runbooks may change, inside the
app container (lab/lab.sh up has started Redis and PostgreSQL and seeded them).

Run with the image's virtualenv Python; first argument ``break``, ``state`` or ``hold``; second a
JSON object: redis_port, prefix, queues [{name, flavor}], lists [names], node_dir, backlog,
trim_lists, cache {cold, stale_prefix, stale_count, patterns}, pg {host, port, user, db}, app_role, sessions, logs_dir, old_logs_mb, new_logs_mb,
work_dir.

``break`` (once; writes ``<work_dir>/broken`` last):
  - database: ``sessions`` real idle sessions of the application role ``app_role`` (created
    when missing), held open by a process of its own (``hold``) that outlives the run: the
    connection pool is past its threshold;
  - disk: ``logs_dir`` (a small tmpfs, molecule.yml) filled with logs 30 days old
    (``old_logs_mb``) and a day old (``new_logs_mb``): past the warning;
  - cache: every ``cache.cold`` key deleted (a cold cache) and ``cache.stale_count`` stale
    keys ``<cache.stale_prefix>N`` without TTL;
  - queues: ``backlog`` {queue, flavor, count} real jobs added to one queue (past the critical
    length); the lab's seed already left failed jobs in every queue and a stale list; the
    lists in ``trim_lists`` {name: length} are cut to that length so that they are within the
    thresholds (this incident is not about them).
``state`` prints, as JSON: per queue what the real library says (isPaused, getJobCounts through
lab/node/qtool.js), the lists' lengths, the cache's keys per pattern (and how many have a TTL), the application
role's sessions (pids), the log files (size, mtime) and the file system's used share.
"""

import json
import os
import subprocess
import sys
import time

import psycopg2
import redis

DAY = 86400


def pg_connect(conf, user=None):
    pg = conf['pg']
    return psycopg2.connect(host=pg['host'], port=int(pg['port']), user=user or pg['user'], dbname=pg['db'])


def hold(conf):
    """Open the sessions and keep them idle until they are terminated or this is killed."""
    conns = [pg_connect(conf, conf['app_role']) for dummy in range(int(conf['sessions']))]
    with open(os.path.join(conf['work_dir'], 'holding'), 'w') as f:
        f.write('%d\n' % len(conns))
    while True:
        time.sleep(3600)


def app_pids(conf):
    conn = pg_connect(conf)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT pid FROM pg_stat_activity WHERE usename = %s ORDER BY pid', (conf['app_role'],))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def write_logs(directory, prefix, megabytes, age_days):
    chunk = ('x' * 1023 + '\n').encode()
    stamp = time.time() - age_days * DAY
    for i in range(int(megabytes)):
        path = os.path.join(directory, '%s-%02d.log' % (prefix, i))
        with open(path, 'wb') as f:
            for dummy in range(1024):
                f.write(chunk)
        os.utime(path, (stamp, stamp))


def do_break(conf):
    work = conf['work_dir']
    os.makedirs(work, exist_ok=True)
    if os.path.exists(os.path.join(work, 'broken')):
        print(json.dumps({'changed': False}))
        return
    conn = pg_connect(conf)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (conf['app_role'],))
        if not cur.fetchone():
            cur.execute('CREATE ROLE %s LOGIN' % conf['app_role'])
    conn.close()
    with open(os.path.join(work, 'hold.log'), 'ab') as log:
        subprocess.Popen([sys.executable, os.path.abspath(__file__), 'hold', json.dumps(conf)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while len(app_pids(conf)) < int(conf['sessions']):
        if time.time() > deadline:
            raise SystemExit('the %s sessions did not open (see %s/hold.log)' % (conf['sessions'], work))
        time.sleep(0.2)
    backlog = conf['backlog']
    subprocess.run(['node', os.path.join(conf['node_dir'], 'qtool.js'), backlog['flavor'], 'add', '--queue', backlog['queue'],
                    '--count', str(backlog['count']), '--port', str(conf['redis_port']), '--prefix', conf['prefix']],
                   cwd=conf['node_dir'], capture_output=True, text=True, check=True, timeout=120)
    client = redis.Redis(host='127.0.0.1', port=int(conf['redis_port']))
    for name, length in conf['trim_lists'].items():
        client.ltrim(name, 0, int(length) - 1)
    cache = conf['cache']
    for key in list(client.scan_iter(match=cache['cold'], count=1000)):
        client.delete(key)
    pipe = client.pipeline(transaction=False)
    for i in range(int(cache['stale_count'])):
        pipe.set('%s%d' % (cache['stale_prefix'], i), 'old analysis')
    pipe.execute()
    write_logs(conf['logs_dir'], 'old', conf['old_logs_mb'], 30)
    write_logs(conf['logs_dir'], 'new', conf['new_logs_mb'], 1)
    with open(os.path.join(work, 'broken'), 'w') as f:
        f.write('%d\n' % time.time())
    print(json.dumps({'changed': True}))


def queue_counts(conf, queue):
    out = subprocess.run(['node', os.path.join(conf['node_dir'], 'qtool.js'), queue['flavor'], 'counts',
                          '--queue', queue['name'], '--port', str(conf['redis_port']), '--prefix', conf['prefix']],
                         cwd=conf['node_dir'], capture_output=True, text=True, check=True, timeout=60).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    counts.pop('elapsed_ms', None)
    return counts


def cache_keys(client, pattern):
    keys = list(client.scan_iter(match=pattern, count=1000))
    return {'total': len(keys), 'with_ttl': sum(1 for k in keys if client.ttl(k) > 0)}


def state(conf):
    client = redis.Redis(host='127.0.0.1', port=int(conf['redis_port']))
    logs = conf['logs_dir']
    files = {}
    for name in sorted(os.listdir(logs)):
        st = os.stat(os.path.join(logs, name))
        files[name] = {'size': st.st_size, 'mtime': int(st.st_mtime)}
    fs = os.statvfs(logs)
    print(json.dumps({
        'queues': dict((q['name'], queue_counts(conf, q)) for q in conf['queues']),
        'lists': dict((name, client.llen(name)) for name in conf['lists']),
        'sessions': app_pids(conf),
        'logs': files,
        'disk_used': round(1 - float(fs.f_bavail) / fs.f_blocks, 4),
        'cache': dict((pattern, cache_keys(client, pattern)) for pattern in conf['cache']['patterns']),
    }, sort_keys=True))


def main():
    action, conf = sys.argv[1], json.loads(sys.argv[2])
    {'break': do_break, 'state': state, 'hold': hold}[action](conf)


if __name__ == '__main__':
    main()
