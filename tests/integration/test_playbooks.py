# -*- coding: utf-8 -*-
"""The playbooks against the lab (lab/lab.sh on free ports): real Redis, real PostgreSQL,
queues made by the real BullMQ and Bull libraries."""

from __future__ import annotations

import glob
import json
import os
import subprocess

from helpers import recap, dump_keys


def test_lab_up_twice_is_harmless_and_down_leaves_nothing(lab_session):
    again = lab_session.sh('up')
    assert again.returncode == 0 and 'already up' in again.stdout
    assert lab_session.sh('status').returncode == 0
    pids = subprocess.run(['pgrep', '-f', 'redis-server 127.0.0.1:%d' % lab_session.redis_port],
                          capture_output=True, text=True, check=False).stdout.split()
    assert len(pids) == 1


def pg_state(lab):
    conn = lab.pg()
    with conn.cursor() as cur:
        cur.execute("""SELECT relname, vacuum_count, analyze_count, n_dead_tup FROM pg_stat_user_tables
                       ORDER BY relname""")
        tables = cur.fetchall()
        cur.execute("SELECT relname, oid FROM pg_class WHERE relkind = 'i' ORDER BY 1")
        indexes = cur.fetchall()
    conn.close()
    return tables, indexes


def log_files(lab):
    out = []
    for dirpath, _dirs, names in os.walk(os.path.join(lab.env['LAB_DIR'], 'logs')):
        out += [os.path.join(dirpath, n) for n in names]
    return sorted(out)


def test_weekly_maintenance_cleans_old_jobs_once_and_check_mode_touches_nothing(lab):
    r = lab.redis()
    before = dump_keys(r)
    pg_before, logs_before = pg_state(lab), log_files(lab)
    check = lab.playbook('weekly_maintenance.yml', check=True, diff=True)
    assert recap(check)['failed'] == 0
    assert dump_keys(r) == before, 'check mode changed Redis'
    assert pg_state(lab) == pg_before, 'check mode changed PostgreSQL'
    assert log_files(lab) == logs_before, 'check mode removed logs'
    assert 'check (dry run' in check.stdout

    first = lab.playbook('weekly_maintenance.yml')
    assert recap(first)['failed'] == 0 and recap(first)['changed'] >= 1, first.stdout[-3000:]
    # seeded: per queue 20 of 40 completed and 25 of 30 failed are older than 24h
    for name in ('ai-analysis', 'notifications', 'card-generation', 'email'):
        assert r.zcard('bull:%s:completed' % name) == 20
        assert r.zcard('bull:%s:failed' % name) == 5
        assert r.llen('bull:%s:wait' % name) == 25  # waiting jobs are never cleaned by age here
    vacuumed = dict((t[0], t[1]) for t in pg_state(lab)[0])
    assert vacuumed['generated_cards'] == 1 and vacuumed['card_uniqueness_pool'] == 1
    assert sum(vacuumed.values()) == 2  # only the two bloated tables
    kept = [os.path.basename(f) for f in log_files(lab)]
    assert sorted(kept) == ['api.log', 'api.log.1', 'api.log.2', 'worker.log.1', 'worker.log.2']

    second = lab.playbook('weekly_maintenance.yml')
    assert recap(second)['changed'] == 0, second.stdout[-3000:]

    reports = sorted(glob.glob(os.path.join(lab.report_dir, 'weekly_maintenance-2*.json')))
    assert len(reports) == 2  # the dry run's report is weekly_maintenance-check-*, never -latest
    dry = glob.glob(os.path.join(lab.report_dir, 'weekly_maintenance-check-2*.json'))
    assert len(dry) == 1 and json.load(open(dry[0]))['mode'].startswith('check')
    first_report = json.load(open(reports[0]))
    assert first_report['mode'] == 'apply'
    assert first_report['summary']['applied'] == 8 + 2 + 8  # queue cleans, vacuums, log files
    assert os.path.exists(os.path.join(lab.report_dir, 'weekly_maintenance-latest.md'))


def test_weekly_maintenance_with_postgresql_down_reports_the_queue_and_log_work_it_did(lab):
    """Issue 14 defect 3: PostgreSQL down in the middle of the window. The queue jobs already
    cleaned and the logs removed are in the report, the database part is named as failed, the
    job fails on the critical verdict after the report is written."""
    r = lab.redis()
    run = lab.playbook('weekly_maintenance.yml', extra_vars={'oncall_pg_port': closed_port()})
    counts = recap(run)
    assert run.returncode != 0 and counts['failed'] == 0 and counts['rescued'] == 1 and counts['verdict_failed'], run.stdout[-3000:]
    for name in ('ai-analysis', 'notifications', 'card-generation', 'email'):
        assert r.zcard('bull:%s:completed' % name) == 20  # the queue part did its work
    kept = [os.path.basename(f) for f in log_files(lab)]
    assert sorted(kept) == ['api.log', 'api.log.1', 'api.log.2', 'worker.log.1', 'worker.log.2']
    report = json.load(open(os.path.join(lab.report_dir, 'weekly_maintenance-latest.json')))
    assert report['verdict'] == 'critical' and report['started']
    failed = [f for f in report['findings'] if f['object'].startswith('database maintenance on lab failed')]
    assert failed and failed[0]['verdict'] == 'critical', report['findings']
    steps = dict((st['name'], st) for st in report['steps'])
    cleaned = sum(len(e['applied']) for e in steps['Clean old queue jobs']['results'])
    assert cleaned == 8, steps['Clean old queue jobs']
    assert sum(len(e['applied']) for e in steps['Remove old logs']['results']) == 8
    out = ' '.join(run.stdout.split())
    assert 'VERDICT CRITICAL - report ' in out


def test_built_collection_installs_and_runs_the_same_way(lab, tmp_path):
    """ansible-galaxy collection build, install it elsewhere, run its playbook by FQCN."""
    from helpers import ROOT, ansible_bin
    env = dict(lab.env, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'collections'))
    env.pop('ANSIBLE_CONFIG', None)
    build = subprocess.run([ansible_bin('ansible-galaxy'), 'collection', 'build', '--output-path',
                            str(tmp_path), ROOT], cwd=str(tmp_path), env=env, capture_output=True,
                           text=True, check=False)
    assert build.returncode == 0, build.stderr
    tarball = glob.glob(str(tmp_path / 'oncall-runbooks-*.tar.gz'))[0]
    install = subprocess.run([ansible_bin('ansible-galaxy'), 'collection', 'install', '-p',
                              str(tmp_path / 'collections'), tarball], cwd=str(tmp_path), env=env,
                             capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr
    assert (tmp_path / 'collections' / 'ansible_collections' / 'oncall' / 'runbooks' / 'MANIFEST.json').exists()
    run = subprocess.run([ansible_bin('ansible-playbook'), '-i', os.path.join(ROOT, 'inventories', 'lab'),
                          'oncall.runbooks.weekly_maintenance', '--check'], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, check=False)
    assert recap(run)['failed'] == 0, run.stdout[-3000:]
    # a dry run's report is weekly_maintenance-check-*, never -latest
    dry = max(glob.glob(os.path.join(lab.report_dir, 'weekly_maintenance-check-2*.json')), key=os.path.getmtime)
    report = json.load(open(dry))
    assert report['summary']['planned'] == 8 + 2 + 8 and report['mode'].startswith('check')


def test_monthly_maintenance_backs_up_reindexes_once_and_check_mode_touches_nothing(lab):
    backups = os.path.join(lab.env['LAB_DIR'], 'backups')
    pg_before = pg_state(lab)
    check = lab.playbook('monthly_maintenance.yml', check=True)
    assert recap(check)['failed'] == 0, check.stdout[-3000:]
    assert pg_state(lab) == pg_before and not os.path.exists(backups)

    first = lab.playbook('monthly_maintenance.yml')
    assert recap(first)['failed'] == 0 and recap(first)['changed'] >= 1, first.stdout[-3000:]
    dumps = glob.glob(os.path.join(backups, 'payment_sandbox-*.dump'))
    assert len(dumps) == 1 and os.path.exists(dumps[0] + '.sha256')
    manifest = json.load(open(dumps[0] + '.json'))
    assert 'public.generated_cards' in manifest['tables_with_data']
    report = json.load(open(os.path.join(lab.report_dir, 'monthly_maintenance-latest.json')))
    assert [t['title'] for t in report['tables']][:2] == [
        'Slowest statements (pg_stat_statements, mean time)', 'Unused indexes (never scanned, not unique)']

    second = lab.playbook('monthly_maintenance.yml')
    assert recap(second)['changed'] == 0, second.stdout[-3000:]
    assert len(glob.glob(os.path.join(backups, 'payment_sandbox-*.dump'))) == 1


class Health(object):
    """A real HTTP server on loopback with /health (ok), /slow (300 ms) and /broken (500)."""

    def __init__(self):
        import http.server
        import threading
        import time

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                if self.path == '/slow':
                    time.sleep(0.3)
                code = 500 if self.path == '/broken' else 200
                body = b'{"status":"ok","redis":"up"}' if code == 200 else b'{"status":"error"}'
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def test_http_check_status_body_and_latency():
    from helpers import run_module
    server = Health()
    try:
        res = run_module('http_check', {'checks': [
            # a latency bound the loaded CI machine always meets: the slow case below is the one that must trip
            {'name': 'health', 'url': server.url + '/health', 'body_contains': '"status":"ok"', 'max_latency': '10s'},
            {'name': 'slow', 'url': server.url + '/slow', 'max_latency': '100ms'},
            {'name': 'broken', 'url': server.url + '/broken'},
            {'name': 'wrong body', 'url': server.url + '/health', 'body_contains': 'degraded'},
        ]})
    finally:
        server.stop()
    by = dict((c['name'], c) for c in res['checks'])
    assert by['health']['ok'] and by['health']['status'] == 200
    assert not by['slow']['ok'] and 'ms > 100 ms' in by['slow']['why']
    assert not by['broken']['ok'] and by['broken']['why'] == 'status 500, expected 200'
    assert not by['wrong body']['ok'] and "lacks 'degraded'" in by['wrong body']['why']
    assert res['failed_checks'] == ['slow', 'broken', 'wrong body'] and not res.failed


def test_daily_health_check_passes_on_the_lab_and_fails_on_a_failing_check(lab):
    server = Health()
    try:
        ok = lab.playbook('daily_health_check.yml', extra_vars={
            'oncall_http_checks': [{'name': 'api health', 'url': server.url + '/health', 'max_latency': '1s'}]})
        assert recap(ok)['failed'] == 0, ok.stdout[-3000:]
        report = json.load(open(os.path.join(lab.report_dir, 'daily_health_check-latest.json')))
        objects = [f['object'] for f in report['findings']]
        assert 'http api health' in objects and 'process redis-server' in objects
        assert any(o.startswith('redis 127.0.0.1') for o in objects)
        assert any(o.startswith('database payment_sandbox') for o in objects)
        # the lab's seeded queues are past the runbook's warning marks (100 waiting, 5% failed):
        # warnings, reported, that do not fail the day (oncall_fail_on: critical)
        warned = [f for f in report['findings'] if f['verdict'] != 'ok']
        # and the lab's certificate (10 days left) is inside its renewal threshold (30 days)
        assert all(f['verdict'] == 'warning' and f['object'].startswith(('ai-analysis', 'notifications', 'card-generation', 'email',
                                                                        'festivals', 'certificate lab-tls'))
                   for f in warned), warned
        assert report['verdict'] == ('warning' if warned else 'ok')

        bad = lab.playbook('daily_health_check.yml', extra_vars={
            'oncall_processes': ['redis-server', 'no-such-daemon-xyz'],
            'oncall_http_checks': [{'name': 'api health', 'url': server.url + '/broken'}]})
    finally:
        server.stop()
    assert bad.returncode != 0
    out = ' '.join((bad.stdout + bad.stderr).split())
    assert 'verdict critical (http api health; process no-such-daemon-xyz)' in out
    report = json.load(open(os.path.join(lab.report_dir, 'daily_health_check-latest.json')))
    failing = sorted(f['object'] for f in report['findings'] if f['verdict'] == 'critical')
    assert failing == ['http api health', 'process no-such-daemon-xyz']
    assert report['verdict'] == 'critical'
    assert 'VERDICT CRITICAL - report %s' % report_md(lab, 'daily_health_check') in out


def report_md(lab, name):
    return sorted(glob.glob(os.path.join(lab.report_dir, name + '-2*.md')))[-1]


def closed_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_daily_health_check_with_redis_down_or_refusing_still_checks_the_database_and_reports(lab):
    """Issue 14 defect 2: Redis down, or a wrong Redis password: the queue part is a finding,
    the database check still runs, the report is written, the job fails on the critical verdict."""
    for case, extra in (('down', {'oncall_redis_port': closed_port()}),
                        ('wrong password', {'oncall_redis_password': 'not-the-password'})):
        for name in glob.glob(os.path.join(lab.report_dir, 'daily_health_check-*')):
            os.remove(name)
        run = lab.playbook('daily_health_check.yml', extra_vars=extra)
        assert run.returncode != 0, case
        report = json.load(open(os.path.join(lab.report_dir, 'daily_health_check-latest.json')))
        by = dict((f['object'], f) for f in report['findings'])
        redis = [f for o, f in by.items() if o.startswith('redis 127.0.0.1')]
        assert redis and redis[0]['verdict'] == 'critical', (case, by)
        assert by['database payment_sandbox SELECT 1']['verdict'] == 'ok', (case, by)
        assert report['verdict'] == 'critical' and report['started'], case
        out = ' '.join(run.stdout.split())
        assert 'VERDICT CRITICAL - report ' in out and 'next: ansible-playbook playbooks/runbooks/redis_failure.yml' in out, case
        # never a secret in the report or the output
        assert 'not-the-password' not in out and 'not-the-password' not in json.dumps(report), case


def migrations(lab):
    conn = lab.pg()
    with conn.cursor() as cur:
        cur.execute('SELECT version FROM schema_migrations ORDER BY version')
        rows = [r[0] for r in cur.fetchall()]
    conn.close()
    return rows


def test_migrate_reports_applied_migrations_and_rolls_back_on_failure(lab):
    psql = 'psql -X -q -h 127.0.0.1 -p %d -U postgres -d payment_sandbox -c' % lab.pg_port
    add = psql + " \"INSERT INTO schema_migrations (version, name) VALUES ('20261122000000', 'add_x') ON CONFLICT DO NOTHING\""
    before = migrations(lab)
    first = lab.playbook('migrate.yml', extra_vars={'postgres_migrate_command': add})
    assert recap(first)['failed'] == 0 and recap(first)['changed'] == 1, first.stdout[-3000:]
    assert '1 migration(s) applied' in first.stdout
    assert migrations(lab) == sorted(before + ['20261122000000'])
    second = lab.playbook('migrate.yml', extra_vars={'postgres_migrate_command': add})
    assert recap(second)['changed'] == 0

    broken = "sh -c \"%s \\\"INSERT INTO schema_migrations (version, name) VALUES ('20261122999999', 'half') \\\" && exit 3\"" % psql
    rollback = psql + " \"DELETE FROM schema_migrations WHERE version = '20261122999999'\""
    res = lab.playbook('migrate.yml', extra_vars={
        'postgres_migrate_command': broken, 'postgres_migrate_rollback_command': rollback})
    assert res.returncode != 0
    assert 'the rollback command ran' in ' '.join((res.stdout + res.stderr).split())
    assert migrations(lab) == sorted(before + ['20261122000000'])
