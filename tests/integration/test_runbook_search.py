# -*- coding: utf-8 -*-
"""playbooks/runbooks/search.yml (runbook 004 "Full-Text Search") against the lab: real
PostgreSQL 15 with the seeded products and their to_tsvector GIN index, the lab app's real
/api/search (Redis-cached), the app's real rebuild command (lab/app/rebuild-search-index.js),
pgstattuple's pgstatginindex, and a real session blocked by a real lock.

One lab for the module, driven through one scenario: healthy, broken (index dropped, a
blocked session, an injection attempt in the term), dry-run remediation, remediation,
fragmented GIN pending list, and the idempotent second run."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.runbooks import ok_run, report, verdicts, worst

RB = 'runbooks/search.yml'
INJECTION = 'pasta\'); DROP TABLE marketplace."Product"; --'


@pytest.fixture(scope='module')
def search_lab(lab_session):
    seeded = lab_session.sh('seed')
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    return lab_session


def server_state(conn):
    """What the runbook could change: the search indexes (name, valid, definition), the rows,
    the GIN pending list when pgstattuple is there."""
    with conn.cursor() as cur:
        cur.execute("""SELECT i.relname, x.indisvalid, pg_get_indexdef(i.oid), i.oid FROM pg_index x
                       JOIN pg_class i ON i.oid = x.indexrelid WHERE i.relname LIKE '%%search%%' ORDER BY 1""")
        indexes = cur.fetchall()
        cur.execute('SELECT count(*) FROM marketplace."Product"')
        rows = cur.fetchone()[0]
    return indexes, rows


def wait_for_value(conn, sql, good, timeout=30):
    """The first value of sql that good() accepts, polled every 0.2 s (each poll its own
    transaction, so the statistics are read afresh)."""
    deadline = time.monotonic() + timeout
    while True:
        with conn.cursor() as cur:
            cur.execute(sql)
            value = cur.fetchone()[0]
        if good(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def pending_pages(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT pending_pages FROM pgstatginindex('marketplace.idx_products_search_gin')")
        return cur.fetchone()[0]


def test_search_runbook(search_lab):
    lab = search_lab
    admin = lab.pg()

    # healthy: the API answers with results, the index is used; pgstattuple is not installed
    healthy = lab.playbook(RB)
    assert ok_run(healthy)['changed'] == 0
    rep = report(lab.report_dir, 'search')
    v = verdicts(rep)
    assert worst(rep) == 'ok', healthy.stdout[-3000:]
    assert v['search API'] == v['search indexes'] == v['search query plan'] == 'ok'
    plan = [f for f in rep['findings'] if f['object'] == 'search query plan'][0]
    assert 'Bitmap Index Scan' in plan['figure'] or 'Index Scan' in plan['figure']
    gin = [f for f in rep['findings'] if f['object'] == 'GIN pending list'][0]
    assert gin['verdict'] == 'unknown' and 'CREATE EXTENSION pgstattuple' in gin['note']
    indexes = [t for t in rep['tables'] if t['title'] == 'Search indexes'][0]['rows']
    assert [(r['index'], r['method'], r['valid']) for r in indexes] == [('idx_products_search_gin', 'gin', True)]
    assert indexes[0]['size_bytes'] > 0

    # broken: the GIN index dropped (the planner can only scan the table), a session blocked
    # behind a real lock, and an injection attempt as the search term
    with admin.cursor() as cur:
        cur.execute('DROP INDEX marketplace.idx_products_search_gin')
    locker = lab.pg()
    locker.autocommit = False
    with locker.cursor() as cur:
        cur.execute('LOCK TABLE scenes IN ACCESS EXCLUSIVE MODE')
    waiter = lab.pg()
    blocked = threading.Thread(target=lambda: waiter.cursor().execute('SELECT count(*) FROM scenes'), daemon=True)
    blocked.start()
    try:
        time.sleep(0.5)
        broken = lab.playbook(RB, extra_vars={'search_term': INJECTION})
        ok_run(broken)
        assert 'search: plan Seq Scan' in broken.stdout
        rep = report(lab.report_dir, 'search')
        v = verdicts(rep)
        assert v['search query plan'] == 'critical' and v['search indexes'] == 'critical'
        assert v['sessions blocked by locks'] == 'warning'
        assert ' waits for ' in [f for f in rep['findings'] if f['object'] == 'sessions blocked by locks'][0]['note']
        assert rep['verdict'] == 'critical'
    finally:
        locker.rollback()
        blocked.join(10)
        locker.close()
        waiter.close()
    # the term was data: the table is still there, with every row
    before = server_state(admin)
    assert before[1] == 8000 and before[0] == []

    # --check: the plan, and nothing changed on the server
    dry = lab.playbook(RB, tags='remediate', check=True, extra_vars={'search_rebuild': True, 'search_reindex': True})
    assert ok_run(dry)['changed'] == 0
    assert server_state(admin) == before

    # remediation: the application's rebuild command recreates the index, counted before and after
    fix = lab.playbook(RB, tags='remediate', extra_vars={'search_rebuild': True})
    assert ok_run(fix)['changed'] >= 1
    indexes, rows = server_state(admin)
    assert [(n, valid) for n, valid, _d, _o in indexes] == [('idx_products_search_gin', True)] and rows == 8000
    assert 'USING gin (to_tsvector' in indexes[0][2]
    rep = report(lab.report_dir, 'search')
    after = verdicts(rep, when='after remediation')
    assert after == {'search indexes': 'ok', 'search query plan': 'ok', 'search index rebuild': 'ok'}, after
    counts = [t for t in rep['tables'] if t['title'].startswith('Rows of the search tables')][0]['rows']
    assert counts == [{'table': 'marketplace.Product', 'before': 8000, 'after': 8000, 'lost': False}]

    # a long GIN pending list (fastupdate): measured with pgstatginindex, rebuilt CONCURRENTLY.
    # Autovacuum off on the table, as the seed does for its bloat: its analyze would merge the
    # pending list by itself while the runbook starts.
    with admin.cursor() as cur:
        cur.execute('CREATE EXTENSION IF NOT EXISTS pgstattuple')
        cur.execute('ALTER TABLE marketplace."Product" SET (autovacuum_enabled = false)')
        cur.execute("""INSERT INTO marketplace."Product" (name, description)
                       SELECT 'massa ' || g, 'farinha de trigo ' || g FROM generate_series(1, 3000) g""")
        # This connection's counts of those rows reach the shared statistics when it next goes
        # idle, or up to 10 s later: flush them now. Late, they would land after the runbook's
        # ANALYZE and make the second run see 3,000 rows modified since it.
        cur.execute('SELECT pg_stat_force_next_flush()')
    modified = wait_for_value(admin, """SELECT n_mod_since_analyze FROM pg_stat_user_tables
                                        WHERE relid = 'marketplace."Product"'::regclass""", lambda n: n >= 3000)
    assert modified >= 3000
    assert pending_pages(admin) >= 5
    oid_before = server_state(admin)[0][0][3]
    tight = {'search_reindex': True, 'search_rebuild': True, 'search_gin_pending_pages_warning': 5}
    reindex = lab.playbook(RB, tags='remediate', extra_vars=tight)
    assert ok_run(reindex)['changed'] >= 1
    rep = report(lab.report_dir, 'search')
    assert verdicts(rep)['GIN pending list of marketplace.idx_products_search_gin (pages)'] == 'warning'
    assert pending_pages(admin) == 0
    assert server_state(admin)[0][0][3] != oid_before  # REINDEX CONCURRENTLY built a new relation
    done = rep['steps'][0]['results'][0]['applied']
    assert [d['statement'] for d in done] == ['REINDEX INDEX CONCURRENTLY "marketplace"."idx_products_search_gin"']

    # second run, every switch on: nothing left to do
    state = server_state(admin)
    again = lab.playbook(RB, tags='remediate', extra_vars=tight)
    assert ok_run(again)['changed'] == 0
    assert server_state(admin) == state
    assert worst(report(lab.report_dir, 'search')) == 'ok'
    admin.close()
