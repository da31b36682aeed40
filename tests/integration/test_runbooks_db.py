# -*- coding: utf-8 -*-
"""The PostgreSQL incident runbooks (playbooks/runbooks/) against the lab: real PostgreSQL 15
with pg_stat_statements, real sessions and queries opened by the test."""

from __future__ import annotations

import time

from helpers.runbooks import Sessions, ok_run, report, verdicts, worst

APP_ROLE = 'festivals_app'


def app_role(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
        if not cur.fetchone():
            cur.execute('CREATE ROLE %s LOGIN' % APP_ROLE)


def app_pids(conn):
    with conn.cursor() as cur:
        cur.execute('SELECT pid FROM pg_stat_activity WHERE usename = %s ORDER BY pid', (APP_ROLE,))
        return [r[0] for r in cur.fetchall()]


def test_database_connections_pool_exhausted_idle_sessions_terminated_once(lab):
    admin = lab.pg()
    app_role(admin)
    rb = 'runbooks/database_connections.yml'

    healthy = lab.playbook(rb)
    ok_run(healthy)
    assert verdicts(report(lab.report_dir, 'database_connections'))['connections'] == 'ok'

    # 92 real idle sessions of the application role: 92+ of max_connections 100 in use
    sessions = Sessions(lab.pg_port, APP_ROLE, 'payment_sandbox', 92)
    try:
        broken = lab.playbook(rb)
        ok_run(broken)
        assert 'connection pool exhausted' in broken.stdout
        rep = report(lab.report_dir, 'database_connections')
        assert verdicts(rep)['connections'] == 'critical'

        # remediation with the runbook's 10 minutes: these sessions are younger, none terminated
        young = lab.playbook(rb, tags='remediate', extra_vars={'database_connections_terminate_idle': True})
        assert ok_run(young)['changed'] == 0
        assert sessions.alive() == 92

        time.sleep(3)  # the sessions have now been idle for more than 2 s
        fast = {'database_connections_terminate_idle': True, 'database_connections_idle_for': '2s'}
        # switch off: nothing terminated, the command to run is printed
        off = lab.playbook(rb, tags='remediate', extra_vars={'database_connections_idle_for': '2s'})
        assert ok_run(off)['changed'] == 0 and 'database_connections_terminate_idle=true' in off.stdout

        pids = app_pids(admin)
        check = lab.playbook(rb, tags='remediate', extra_vars=fast, check=True)
        ok_run(check)
        assert app_pids(admin) == pids and len(pids) == 92, 'check mode terminated sessions'

        fix = lab.playbook(rb, tags='remediate', extra_vars=fast)
        assert ok_run(fix)['changed'] >= 1
        assert sessions.alive() == 0 and app_pids(admin) == []
        rep = report(lab.report_dir, 'database_connections')
        assert verdicts(rep)['connections'] == 'critical'  # as diagnosed
        assert worst(rep, when='after remediation') == 'ok'
        assert len(rep['steps'][0]['results'][0]['applied']) == 92

        again = lab.playbook(rb, tags='remediate', extra_vars=fast)
        assert ok_run(again)['changed'] == 0
        assert worst(report(lab.report_dir, 'database_connections')) == 'ok'
    finally:
        sessions.close()
        admin.close()


def pg_figures(conn):
    """What slow_queries' remediation may change: sessions, vacuum/analyze counters, dead
    tuples, the statements recorded."""
    with conn.cursor() as cur:
        cur.execute("SELECT pid, state, query_start::text FROM pg_stat_activity WHERE usename = %s ORDER BY pid",
                    (APP_ROLE,))
        sessions = cur.fetchall()
        cur.execute("""SELECT relname, vacuum_count, analyze_count, n_dead_tup FROM pg_stat_user_tables
                       ORDER BY relname""")
        tables = cur.fetchall()
        cur.execute("SELECT count(*) FROM pg_stat_statements WHERE mean_exec_time > 100")
        slow = cur.fetchone()[0]
    return sessions, tables, slow


def test_slow_queries_diagnosis_and_remediation(lab):
    import threading
    import psycopg2
    admin = lab.pg()
    app_role(admin)
    rb = 'runbooks/slow_queries.yml'
    switches = {'slow_queries_terminate_long': True, 'slow_queries_reset_statements': True,
                'slow_queries_long_query_after': '2s'}
    with admin.cursor() as cur:  # healthy: the seed's bloat vacuumed, its bulk load forgotten
        cur.execute('GRANT SELECT ON ALL TABLES IN SCHEMA public TO %s' % APP_ROLE)
        cur.execute('VACUUM ANALYZE generated_cards, card_uniqueness_pool')
        cur.execute('SELECT pg_stat_statements_reset()')
    healthy = lab.playbook(rb, extra_vars={'slow_queries_long_query_after': '2s'})
    ok_run(healthy)
    assert worst(report(lab.report_dir, 'slow_queries')) == 'ok', healthy.stdout[-3000:]

    # broken: a mass delete (dead tuples, autovacuum off on this table), slow statements, and
    # a query that runs for ten minutes
    with admin.cursor() as cur:
        cur.execute('DELETE FROM generated_cards WHERE id % 10 < 8')
        cur.execute('SELECT pg_stat_force_next_flush()')  # statistics now, not within 10 s
        cur.execute('SELECT 1')
    app = psycopg2.connect(host='127.0.0.1', port=lab.pg_port, user=APP_ROLE, dbname='payment_sandbox')
    app.autocommit = True
    with app.cursor() as cur:
        for _round in range(3):
            cur.execute("SELECT pg_sleep(0.15), count(*) FROM generated_cards WHERE cvv LIKE '%9'")
    runaway = psycopg2.connect(host='127.0.0.1', port=lab.pg_port, user=APP_ROLE, dbname='payment_sandbox')
    outcome = {}

    def run_long():
        try:
            with runaway.cursor() as cur:
                cur.execute('SELECT pg_sleep(600)')
            outcome['ended'] = 'finished'
        except psycopg2.Error as exc:
            outcome['ended'] = exc.pgcode or 'connection lost'
    thread = threading.Thread(target=run_long, daemon=True)
    thread.start()
    try:
        time.sleep(3)
        broken = lab.playbook(rb, extra_vars={'slow_queries_long_query_after': '2s'})
        ok_run(broken)
        v = verdicts(report(lab.report_dir, 'slow_queries'))
        assert v['queries running longer than 2s'] == 'warning'
        assert v['statements with mean time > 100 ms'] == 'warning'
        assert v['tables with >= 20% dead tuples'] == 'warning'
        rep = report(lab.report_dir, 'slow_queries')
        hints = [t for t in rep['tables'] if t['title'].startswith('Missing-index')][0]['rows']
        assert 'generated_cards' in [h['name'] for h in hints]

        before = pg_figures(admin)
        check = lab.playbook(rb, tags='remediate', extra_vars=switches, check=True)
        ok_run(check)
        assert pg_figures(admin) == before, 'check mode changed the server'
        assert thread.is_alive()

        fix = lab.playbook(rb, tags='remediate', extra_vars=switches)
        assert ok_run(fix)['changed'] >= 3, fix.stdout[-6000:]
        thread.join(10)
        assert outcome.get('ended') in ('57P01', 'connection lost')  # admin_shutdown: terminated
        rep = report(lab.report_dir, 'slow_queries')
        assert worst(rep, when='after remediation') == 'ok'
        vacuumed = [d['object'] for d in rep['steps'][1]['results'][0]['applied']]
        assert 'public.generated_cards' in vacuumed

        again = lab.playbook(rb, tags='remediate', extra_vars=switches)
        assert ok_run(again)['changed'] == 0, again.stdout[-3000:]
        assert worst(report(lab.report_dir, 'slow_queries')) == 'ok'
    finally:
        with admin.cursor() as cur:  # a connection busy in another thread cannot be closed
            cur.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s', (APP_ROLE,))
        thread.join(10)
        admin.close()
        app.close()
        runaway.close()


MIGRATION = '''#!/bin/sh
# the application's "npm run migrate": one pending migration, a unique index on the card key
psql() {{ "{pg_bin}/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {port} -U postgres -d payment_sandbox "$@"; }}
if ! psql -c "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS generated_cards_card_uq
              ON generated_cards (card_number, expiry_date, cvv)" 2>>"{log}"; then
    echo "ERROR migration 20261124000000 add_generated_cards_card_uq failed" >>"{log}"
    exit 1
fi
psql -c "INSERT INTO schema_migrations (version, name) VALUES ('20261124000000', 'add_generated_cards_card_uq')
         ON CONFLICT DO NOTHING"
echo "INFO migration 20261124000000 applied" >>"{log}"
'''


def test_database_migration_issues_duplicates_fixed_index_rebuilt_migration_rerun(lab, tmp_path):
    import subprocess
    from helpers import PG_BIN
    admin = lab.pg()
    log = str(tmp_path / 'migration.log')
    script = tmp_path / 'migrate.sh'
    script.write_text(MIGRATION.format(pg_bin=PG_BIN, port=lab.pg_port, log=log))
    script.chmod(0o755)
    rb = 'runbooks/database_migration_issues.yml'
    xv = {'database_migration_command': str(script), 'database_migration_log': log}
    dup = 'check duplicate groups in generated_cards (card_number, expiry_date, cvv)'

    healthy = lab.playbook(rb, extra_vars=xv)
    ok_run(healthy)
    v = verdicts(report(lab.report_dir, 'database_migration_issues'))
    assert v[dup] == 'ok' and v['invalid indexes'] == 'ok'

    # broken: an earlier release dropped the key, duplicates came in, the migration that puts
    # the key back as a unique index fails on them and leaves the index invalid
    with admin.cursor() as cur:
        cur.execute('ALTER TABLE generated_cards DROP CONSTRAINT generated_cards_card_number_expiry_date_cvv_key')
        cur.execute("""INSERT INTO generated_cards (card_number, expiry_date, cvv)
                       SELECT card_number, expiry_date, cvv FROM generated_cards ORDER BY id LIMIT 5""")
    failed = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    broken = lab.playbook(rb, extra_vars=xv)
    ok_run(broken)
    rep = report(lab.report_dir, 'database_migration_issues')
    v = verdicts(rep)
    assert v[dup] == 'critical' and v['invalid indexes'] == 'warning'
    assert v['errors in %s' % log] == 'warning'
    newest = [t for t in rep['tables'] if t['title'] == 'Newest migrations'][0]['rows'][0]
    assert newest['version'] == '20261101000000'

    def db_state():
        with admin.cursor() as cur:
            cur.execute('SELECT count(*), max(id) FROM generated_cards')
            rows = cur.fetchone()
            cur.execute("""SELECT indisvalid, c.oid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                           WHERE c.relname = 'generated_cards_card_uq'""")
            index = cur.fetchone()
            cur.execute('SELECT version FROM schema_migrations ORDER BY version')
            return rows, index, cur.fetchall()

    switches = dict(xv, database_migration_fix_duplicates=True, database_migration_rerun=True)
    before = db_state()
    check = lab.playbook(rb, extra_vars=switches, tags='remediate', check=True)
    ok_run(check)
    assert db_state() == before, 'check mode changed the database'

    fix = lab.playbook(rb, extra_vars=switches, tags='remediate')
    assert ok_run(fix)['changed'] >= 2, fix.stdout[-5000:]
    rows, index, versions = db_state()
    assert rows[0] == before[0][0] - 5 and rows[1] < before[0][1]  # the five copies went, not the originals
    assert index[0] is True
    assert ('20261124000000',) in versions
    after = verdicts(report(lab.report_dir, 'database_migration_issues'), when='after remediation')
    assert after[dup] == 'ok' and after['invalid indexes'] == 'ok'

    again = lab.playbook(rb, extra_vars=switches, tags='remediate')
    assert ok_run(again)['changed'] == 0, again.stdout[-4000:]
    v = verdicts(report(lab.report_dir, 'database_migration_issues'))
    assert v[dup] == 'ok' and v['invalid indexes'] == 'ok'
    admin.close()


def test_uniqueness_check_failures_pool_cleaned_bloom_synced_once(lab, tmp_path):
    from helpers import PG_BIN
    admin = lab.pg()
    log = tmp_path / 'worker.log'
    log.write_text('INFO card generated\n' * 20)
    sync = [PG_BIN + '/psql', '-X', '-q', '-h', '127.0.0.1', '-p', str(lab.pg_port), '-U', 'postgres',
            '-d', 'payment_sandbox', '-c', 'UPDATE bloom_filter_cards SET updated_at = now()']
    xv = {'uniqueness_worker_log': str(log), 'uniqueness_bloom_sync_command': sync}
    rb = 'runbooks/uniqueness_check_failures.yml'
    stale = 'check stale reservations in card_uniqueness_pool (older than 24h)'
    bloom = 'check bloom filter bloom_filter_cards missing or not synchronised within 24h'

    healthy = lab.playbook(rb, extra_vars=xv)
    ok_run(healthy)
    assert worst(report(lab.report_dir, 'uniqueness_check_failures')) == 'ok', healthy.stdout[-3000:]

    # broken: reservations that were never released, a bloom filter not synchronised for days,
    # the worker logging uniqueness failures
    with admin.cursor() as cur:
        cur.execute("UPDATE card_uniqueness_pool SET reserved_at = now() - interval '2 days' WHERE card_hash < '4'")
        stale_rows = cur.rowcount
        cur.execute("UPDATE bloom_filter_cards SET updated_at = now() - interval '3 days'")
    with open(str(log), 'a') as handle:
        handle.write('ERROR uniqueness check failed: card rejected as duplicate\n' * 3)
    broken = lab.playbook(rb, extra_vars=xv)
    ok_run(broken)
    v = verdicts(report(lab.report_dir, 'uniqueness_check_failures'))
    assert v[stale] == 'warning' and v[bloom] == 'warning'
    assert v['errors in %s' % log] == 'warning' and v['redis PING'] == 'ok'
    assert v['check duplicate cards in generated_cards'] == 'ok'

    def db_state():
        with admin.cursor() as cur:
            cur.execute('SELECT count(*), min(reserved_at)::text FROM card_uniqueness_pool')
            pool = cur.fetchone()
            cur.execute('SELECT updated_at::text FROM bloom_filter_cards')
            return pool, cur.fetchall()

    switches = dict(xv, uniqueness_clean_pool=True, uniqueness_bloom_sync=True)
    before = db_state()
    check = lab.playbook(rb, extra_vars=switches, tags='remediate', check=True)
    ok_run(check)
    assert db_state() == before, 'check mode changed the database'

    fix = lab.playbook(rb, extra_vars=switches, tags='remediate')
    assert ok_run(fix)['changed'] == 2, fix.stdout[-4000:]
    assert db_state()[0][0] == before[0][0] - stale_rows
    after = verdicts(report(lab.report_dir, 'uniqueness_check_failures'), when='after remediation')
    assert after[stale] == 'ok' and after[bloom] == 'ok'

    again = lab.playbook(rb, extra_vars=switches, tags='remediate')
    assert ok_run(again)['changed'] == 0, again.stdout[-4000:]
    admin.close()
