# -*- coding: utf-8 -*-
"""Helpers for the incident runbook tests (database, host, AWS, Kafka): the play recap, the
report a runbook wrote, and real PostgreSQL sessions held open by the test."""

from __future__ import annotations

import json
import os
import re


def recap(proc, host='lab'):
    m = re.search(r'%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)' % re.escape(host),
                  proc.stdout)
    assert m, proc.stdout[-4000:] + proc.stderr[-4000:]
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, m.groups())))


def ok_run(proc, host='lab'):
    """The recap of a run that must not have failed."""
    counts = recap(proc, host)
    assert counts['failed'] == 0 and counts['unreachable'] == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return counts


def report(report_dir, name):
    with open(os.path.join(report_dir, '%s-latest.json' % name)) as handle:
        return json.load(handle)


def verdicts(rep, when=None):
    """{object: verdict} of a report's findings (those of the diagnosis, or those tagged when)."""
    return dict((f['object'], f['verdict']) for f in rep['findings'] if f.get('when') == when)


def worst(rep, when=None):
    values = set(verdicts(rep, when).values())
    return 'critical' if 'critical' in values else 'warning' if 'warning' in values else 'ok'


class Sessions(object):
    """Real client sessions to a PostgreSQL server, opened and held by the test."""

    def __init__(self, port, user, db, count, password=None):
        import psycopg2
        self.conns = []
        for _ in range(count):
            conn = psycopg2.connect(host='127.0.0.1', port=port, user=user, dbname=db, password=password,
                                    application_name='festivals-api')
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute('SELECT 1')
            self.conns.append(conn)

    def alive(self):
        out = 0
        for conn in self.conns:
            try:
                with conn.cursor() as cur:
                    cur.execute('SELECT 1')
                out += 1
            except Exception:  # terminated by the server
                pass
        return out

    def close(self):
        for conn in self.conns:
            try:
                conn.close()
            except Exception:
                pass
