# -*- coding: utf-8 -*-
"""The PostgreSQL incident runbooks (playbooks/runbooks/) against the lab: real PostgreSQL 15
with pg_stat_statements, real sessions and queries opened by the test."""

from __future__ import annotations

import time

from runbooks_harness import Sessions, ok_run, report, verdicts, worst

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
