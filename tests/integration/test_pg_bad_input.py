# -*- coding: utf-8 -*-
"""Bad input to pg_maintenance and pg_health_info: one sentence naming the option, nothing changed.

Every value is refused before anything is touched, against a database where a valid run would
vacuum, reindex and terminate (so a check made too late would show). The cases run as one
playbook (one task each, errors ignored) to keep the test fast.
"""

from __future__ import annotations

import json
import math
import time

import yaml

from helpers import run_module, run_playbook
from test_pg_maintenance import conn_args, ensure_role
from test_pg_stats_reference import fill, sql


def maint(**operations_or_options):
    """pg_maintenance args: valid operations, with the bad value put in."""
    ops = {'vacuum': {}, 'analyze': {}, 'reindex': {},
           'terminate': {'idle_for': '1s', 'users': ['idler']}}
    out = {}
    for key, value in operations_or_options.items():
        if '.' in key:
            op, setting = key.split('.', 1)
            ops[op] = dict(ops[op], **{setting: value})
        else:
            out[key] = value
    out.setdefault('operations', ops)
    return out


LONG = 'x' * 100000

MAINTENANCE_CASES = [
    # (module args, the option the sentence must name)
    (dict(operations='vacuum'), 'operations'),
    (dict(operations={}), 'operations'),
    (dict(operations={'vaccum': {}}), 'operations'),
    (dict(operations={u'вакуум': {}}), 'operations'),
    (dict(operations={'vacuum': 'abc'}), 'operations.vacuum'),
    (dict(operations={'vacuum': {'bogus': 1}}), 'operations.vacuum'),
    (maint(**{'vacuum.min_dead_ratio': 'abc'}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': None}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': ''}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': -0.1}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': float('nan')}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': float('inf')}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': 'inf'}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': u'\u0660.\u0665'}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_ratio': [0.1]}), 'operations.vacuum.min_dead_ratio'),
    (maint(**{'vacuum.min_dead_tuples': -1}), 'operations.vacuum.min_dead_tuples'),
    (maint(**{'vacuum.min_dead_tuples': 1e30}), 'operations.vacuum.min_dead_tuples'),
    (maint(**{'vacuum.min_dead_tuples': 1.5}), 'operations.vacuum.min_dead_tuples'),
    (maint(**{'vacuum.min_dead_tuples': True}), 'operations.vacuum.min_dead_tuples'),
    (maint(**{'vacuum.min_dead_tuples': LONG}), 'operations.vacuum.min_dead_tuples'),
    (maint(**{'vacuum.freeze_min_xid_age': 2 ** 40}), 'operations.vacuum.freeze_min_xid_age'),
    (maint(**{'vacuum.full': 'maybe'}), 'operations.vacuum.full'),
    (maint(**{'analyze.min_modified_ratio': []}), 'operations.analyze.min_modified_ratio'),
    (maint(**{'analyze.max_stats_age': 'forever'}), 'operations.analyze.max_stats_age'),
    (maint(**{'analyze.max_stats_age': LONG}), 'operations.analyze.max_stats_age'),
    (maint(**{'analyze.max_stats_age': -60}), 'operations.analyze.max_stats_age'),
    (maint(**{'reindex.min_bloat_ratio': 0}), 'operations.reindex.min_bloat_ratio'),
    (maint(**{'reindex.min_bloat_ratio': '30%'}), 'operations.reindex.min_bloat_ratio'),
    (maint(**{'reindex.min_bloat_ratio': None}), 'operations.reindex.min_bloat_ratio'),
    (maint(**{'reindex.min_size': 'infMB'}), 'operations.reindex.min_size'),
    (maint(**{'reindex.min_size': 'nanMB'}), 'operations.reindex.min_size'),
    (maint(**{'reindex.min_size': '-1MB'}), 'operations.reindex.min_size'),
    (maint(**{'reindex.min_size': -1048576}), 'operations.reindex.min_size'),
    (maint(**{'reindex.min_size': u'\uff11MB'}), 'operations.reindex.min_size'),
    (maint(**{'reindex.min_size': '9' * 400 + 'TB'}), 'operations.reindex.min_size'),
    (maint(**{'reindex.min_size': True}), 'operations.reindex.min_size'),
    (maint(**{'reindex.invalid': 'sometimes'}), 'operations.reindex.invalid'),
    (maint(**{'terminate.idle_for': 'inf'}), 'operations.terminate.idle_for'),
    (maint(**{'terminate.idle_for': -5}), 'operations.terminate.idle_for'),
    (maint(**{'terminate.idle_for': float('nan')}), 'operations.terminate.idle_for'),
    (maint(**{'terminate.users': 'idler'}), 'operations.terminate.users'),
    (maint(**{'terminate.users': [1, 2]}), 'operations.terminate.users'),
    (maint(**{'terminate.include_superusers': 'perhaps'}), 'operations.terminate.include_superusers'),
    (maint(lock_timeout='0'), 'lock_timeout'),
    (maint(lock_timeout='nan'), 'lock_timeout'),
    (maint(lock_timeout='1000d'), 'lock_timeout'),
    (maint(lock_timeout=''), 'lock_timeout'),
    (maint(statement_timeout='-1s'), 'statement_timeout'),
    (maint(max_runtime='9999999d'), 'max_runtime'),
    (maint(max_runtime=LONG), 'max_runtime'),
    (maint(measure_max_size='-1'), 'measure_max_size'),
    (maint(measure_max_size='infGB'), 'measure_max_size'),
    (maint(login_port=0), 'login_port'),
    (maint(login_port=70000), 'login_port'),
    (maint(connect_timeout=-1), 'connect_timeout'),
]

HEALTH_CASES = [
    (dict(checks=[{'name': 'c', 'sql': 'SELECT 1', 'max': 'abc'}]), 'checks[0].max'),
    (dict(checks=[{'name': 'c', 'sql': 'SELECT 1', 'max': -1}]), 'checks[0].max'),
    (dict(checks=[{'name': 'c', 'sql': 'SELECT 1', 'max': float('nan')}]), 'checks[0].max'),
    (dict(checks=[{'name': 'c', 'sql': 'SELECT 1'}, {'name': 'd', 'sql': 'SELECT 1', 'max': 1.5}]),
     'checks[1].max'),
    (dict(thresholds={'xid_warning': 'nan'}), 'thresholds.xid_warning'),
    (dict(thresholds={'dead_ratio_warning': 'inf'}), 'thresholds.dead_ratio_warning'),
    (dict(thresholds={'connections_warning': 2}), 'thresholds.connections_warning'),
    (dict(thresholds={'connections_warning': 0.95, 'connections_critical': 0.9}), 'thresholds.connections_warning'),
    (dict(thresholds={'long_query_after': '-5s'}), 'thresholds.long_query_after'),
    (dict(thresholds={'long_query_seconds': 'soon'}), 'thresholds.long_query_after'),
    (dict(thresholds={'xid_critical': 'abc'}), 'xid_critical'),
    (dict(limit=-1), 'limit'),
    (dict(limit=10 ** 12), 'limit'),
    (dict(migrations={'limit': 0}), 'migrations.limit'),
]


def server_state(conn):
    """What a run that got past validation would change: counters, index files, sessions."""
    return (sql(conn, 'SELECT relname, vacuum_count, analyze_count FROM pg_stat_user_tables ORDER BY 1'),
            sql(conn, "SELECT relname, relfilenode FROM pg_class WHERE relkind = 'i' AND relnamespace = "
                      "'public'::regnamespace ORDER BY 1"),
            sql(conn, "SELECT pid FROM pg_stat_activity WHERE usename = 'idler'"))


def test_bad_input_is_one_sentence_naming_the_option_and_changes_nothing(pgdb, tmp_path):
    server, db, conn = pgdb
    fill(conn, 'orders', 60000, 0.8, index=True)  # dead tuples, and bloat once vacuumed
    ensure_role(conn, 'idler', 'idler-pw')
    idle = server.connect(db=db, user='idler', password='idler-pw')
    time.sleep(1.2)
    before = server_state(conn)

    cases = [('pg_maintenance', args, option) for args, option in MAINTENANCE_CASES]
    cases += [('pg_health_info', args, option) for args, option in HEALTH_CASES]
    tasks = []
    for n, (module, args, option) in enumerate(cases):
        tasks.append({'name': 'case %d' % n, 'oncall.runbooks.' + module: dict(conn_args(server, db), **args),
                      'register': 'case_%d' % n, 'ignore_errors': True})
    results = str(tmp_path / 'results.json')
    tasks.append({'name': 'results', 'ansible.builtin.copy': {
        'dest': results, 'content': '{{ [%s] | to_json }}' % ', '.join('case_%d' % n for n in range(len(cases)))}})
    playbook = tmp_path / 'bad_input.yml'
    playbook.write_text(yaml.safe_dump([{'name': 'bad input', 'hosts': 'localhost', 'connection': 'local',
                                         'gather_facts': False, 'tasks': tasks}], allow_unicode=True))
    proc = run_playbook(str(playbook), inventory='localhost,')
    assert 'results' in proc.stdout and json.load(open(results)), proc.stdout[-3000:] + proc.stderr[-3000:]
    problems = []
    for (module, args, option), res in zip(cases, json.load(open(results))):
        msg = res.get('msg', '')
        shown = json.dumps(args, default=str)[:120]
        if not res.get('failed'):
            problems.append('%s %s: accepted' % (module, shown))
        elif option not in msg or '\n' in msg or 'module_stderr' in res or 'Traceback' in res.get('exception', ''):
            problems.append('%s %s: %r %s' % (module, shown, msg[:300], sorted(res)))
        elif len(msg) > 400:
            problems.append('%s %s: a sentence of %d characters' % (module, shown, len(msg)))
    assert not problems, '\n'.join(problems)
    assert server_state(conn) == before
    sql(idle, 'SELECT 1')  # the idle session the valid operations would terminate is alive

    # the same operations, valid, do change this server: the checks above were not vacuous
    res = run_module('pg_maintenance', conn_args(server, db, operations=maint()['operations']))
    assert not res.failed and res['changed'], res.result
    assert server_state(conn) != before
    idle.close()
    assert math.isnan(MAINTENANCE_CASES[10][0]['operations']['vacuum']['min_dead_ratio'])
