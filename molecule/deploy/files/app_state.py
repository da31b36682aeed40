# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print, as JSON, the state a deploy may change on the scenario's app host.

Run inside the container by tasks/app_state.yml with the image's virtualenv Python; the one
argument is a JSON object: app_port, app_dir, pm2_bin, pm2_home, node_dir, redis_port, prefix,
queues [{name, flavor}], lock_key, pg {host, port, user, db}, backups (dir).

- the app: what /version answers (status, version) and /health's status, the live release
  (the `current` link), the release directories, and pm2's processes (id, status, restarts);
- queues: per queue what the real library says (BullMQ's or Bull's isPaused and getJobCounts,
  through lab/node/qtool.js), and whether the deploy lock exists;
- the database: applied migrations (schema_migrations) and whether release 2's table exists;
- backups: the files in the backup directory.
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import psycopg2
import redis


def get(port, path):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path), timeout=5) as resp:
            return resp.status, resp.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as exc:
        return exc.code, ''
    except OSError as exc:
        return 0, str(exc)


def app_state(conf):
    port = int(conf['app_port'])
    status, body = get(port, '/version')
    try:
        version = json.loads(body).get('version') if status == 200 else None
    except ValueError:
        version = None
    current = os.path.join(conf['app_dir'], 'current')
    releases = os.path.join(conf['app_dir'], 'releases')
    jlist = subprocess.run([conf['pm2_bin'], 'jlist'], env=dict(os.environ, PM2_HOME=conf['pm2_home']),
                           capture_output=True, text=True, check=True, timeout=60).stdout
    processes = [{'name': p['name'], 'id': p['pm_id'], 'status': p['pm2_env']['status'],
                  'restarts': p['pm2_env'].get('restart_time', 0), 'pid': p.get('pid')}
                 for p in json.loads(jlist[jlist.index('['):])]
    return {
        'version_status': status,
        'version': version,
        'health_status': get(port, '/health')[0],
        'live_release': os.path.basename(os.readlink(current)) if os.path.islink(current) else None,
        'releases': sorted(os.listdir(releases)) if os.path.isdir(releases) else [],
        'pm2': processes,
    }


def queue_state(conf, queue):
    out = subprocess.run(['node', os.path.join(conf['node_dir'], 'qtool.js'), queue['flavor'], 'counts',
                          '--queue', queue['name'], '--port', str(conf['redis_port']), '--prefix', conf['prefix']],
                         cwd=conf['node_dir'], capture_output=True, text=True, check=True, timeout=60).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    counts.pop('elapsed_ms', None)
    return counts


def db_state(conf):
    pg = conf['pg']
    conn = psycopg2.connect(host=pg['host'], port=int(pg['port']), user=pg['user'], dbname=pg['db'])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
            migrations = []
            if cur.fetchone()[0]:
                cur.execute('SELECT version FROM schema_migrations ORDER BY version')
                migrations = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT to_regclass('public.app_notes') IS NOT NULL")
            notes = cur.fetchone()[0]
    finally:
        conn.close()
    return {'migrations': migrations, 'app_notes': notes}


def main():
    conf = json.loads(sys.argv[1])
    client = redis.Redis(host='127.0.0.1', port=int(conf['redis_port']))
    backups = conf['backups']
    print(json.dumps({
        'app': app_state(conf),
        'queues': dict((q['name'], queue_state(conf, q)) for q in conf['queues']),
        'lock': bool(client.exists(conf['lock_key'])),
        'db': db_state(conf),
        'backups': sorted(os.listdir(backups)) if os.path.isdir(backups) else [],
    }, sort_keys=True))


if __name__ == '__main__':
    main()
