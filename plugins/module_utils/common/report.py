# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report building: one shape for every runbook and maintenance window.

A step's result is what a plan-then-apply module returned, in the collection's one
applied-result shape (``plan``, ``actions``, ``skipped_items``, ``findings``, ``msg``; items with
``object``, ``action``, ``count``, ``reason``: common/plan.py, docs/plan.md), or a loop of them
(``results``). The report keeps the data (JSON) and renders a Markdown page shaped after the
incident log template of runbook 004.
"""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import worst

INCIDENT_FIELDS = (
    ('start_time', 'Start Time'),
    ('resolution_time', 'Resolution Time'),
    ('duration', 'Duration'),
    ('impact', 'Impact'),
    ('root_cause', 'Root Cause'),
    ('fix_applied', 'Fix Applied'),
    ('prevention', 'Prevention'),
)


def _results(result):
    """Flatten a result, a loop's result, or a list of them (one per host) into results."""
    if isinstance(result, list):
        return [r for item in result for r in _results(item)]
    if isinstance(result, dict) and isinstance(result.get('results'), list):
        return _results(result['results'])
    return [result] if isinstance(result, dict) else []


def _target(res):
    for key in ('queue', 'database', 'certificate', 'target'):
        value = res.get(key)
        if isinstance(value, dict) and value.get('name'):
            return value['name']
    invocation = (res.get('invocation') or {}).get('module_args') or {}
    for key in ('login_db', 'db', 'name', 'paths', 'dest'):
        if invocation.get(key):
            value = invocation[key]
            return ', '.join(value) if isinstance(value, list) else str(value)
    item = res.get('item')
    if isinstance(item, dict):
        return item.get('name') or ''
    return str(item) if item else ''


def _items(value):
    """The items (dicts) of a plan, actions or skipped_items list; anything else is no item."""
    return [dict(i) for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def failure_findings(failures):
    """A part of the run that failed (a play's rescue caught it) as a critical finding."""
    out = []
    for item in failures or []:
        if not isinstance(item, dict):
            item = {'msg': str(item)}
        part = item.get('part') or 'a part of the run'
        task = item.get('task')
        out.append({'object': '%s failed%s' % (part, (' at "%s"' % task) if task else ''),
                    'figure': ' '.join(str(item.get('msg') or 'no message').split())[:500],
                    'threshold': 'completes', 'verdict': 'critical'})
    return out


def build_report(name, title, steps, findings, incident, check_mode, started, finished, tables=None,
                 failures=None, diagnosis_only=False):
    out_steps = []
    planned = applied = failed = 0
    findings = list(findings or []) + failure_findings(failures)
    for step in steps or []:
        entries = []
        if diagnosis_only and step.get('remediation'):
            # a remediation step of a diagnosis run did not run, whatever placeholder it carries
            out_steps.append({'name': step.get('name', ''), 'results': [], 'not_run': 'diagnosis only'})
            continue
        for res in _results(step.get('result')):
            if res.get('skipped'):
                continue
            plan = _items(res.get('plan'))
            done = _items(res.get('actions'))
            entry = {
                'target': _target(res),
                'failed': bool(res.get('failed')),
                'msg': res.get('msg', '') if res.get('failed') else '',
                'changed': bool(res.get('changed')),
                'plan': plan,
                'applied': done,
                'skipped': _items(res.get('skipped_items')),
            }
            for key in ('before', 'queue'):
                if key in res:
                    entry[key] = res[key]
            planned += len(plan)
            applied += len(done)
            failed += entry['failed']
            entries.append(entry)
        out_steps.append({'name': step.get('name', ''), 'results': entries})
    verdicts = {}
    for f in findings or []:
        v = str(f.get('verdict', 'ok'))
        verdicts[v] = verdicts.get(v, 0) + 1
    overall = worst([f.get('verdict', 'ok') for f in findings if isinstance(f, dict)]
                    + (['critical'] if failed else []))
    return {
        'name': name,
        'title': title,
        'verdict': overall,
        'mode': 'check (dry run: nothing was changed)' if check_mode else 'apply',
        'started': started,
        'finished': finished,
        'summary': {'planned': planned, 'applied': 0 if check_mode else applied,
                    'failed_steps': failed, 'findings': verdicts},
        'findings': findings,
        'steps': out_steps,
        'incident': dict(incident or {}),
        'tables': [{'title': t.get('title', ''), 'rows': list(t.get('rows') or [])} for t in tables or []],
    }


def _cell(value):
    text = str(value if value is not None else '')
    return text.replace('|', '\\|').replace('\n', ' ')


def _table(headers, rows):
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    for row in rows:
        lines.append('| ' + ' | '.join(_cell(c) for c in row) + ' |')
    return lines


def render_markdown(report):
    s = report['summary']
    lines = ['# %s' % report['title'], '',
             '- **Verdict:** %s' % report.get('verdict', 'ok'),
             '- **Mode:** %s' % report['mode'],
             '- **Started:** %s' % (report['started'] or 'n/a'),
             '- **Finished:** %s' % report['finished'],
             '- **Actions:** %d planned, %d applied, %d failed step(s)'
             % (s['planned'], s['applied'], s['failed_steps']), '']
    if report['findings']:
        lines += ['## Findings', '']
        lines += _table(['Object', 'Figure', 'Threshold', 'Verdict'],
                        [(f.get('object', ''), f.get('figure', ''), f.get('threshold', ''),
                          f.get('verdict', '')) for f in report['findings']])
        lines.append('')
    if report['steps']:
        lines += ['## Steps', '']
    for step in report['steps']:
        lines += ['### %s' % step['name'], '']
        if not step['results']:
            lines += ['Not run (%s).' % step['not_run'] if step.get('not_run') else 'Nothing ran.', '']
            continue
        rows = []
        for entry in step['results']:
            if entry['failed']:
                rows.append((entry['target'], 'FAILED', '', entry['msg']))
            elif not entry['plan']:
                rows.append((entry['target'], 'nothing to do', '', ''))
            done = dict(((a.get('action'), a.get('object')), a) for a in entry['applied'])
            for item in entry['plan']:
                applied = done.get((item.get('action'), item.get('object')))
                count = item.get('count', '')
                if applied is not None:
                    count = '%s (planned %s)' % (applied.get('count'), item.get('count'))
                rows.append((item.get('object') or entry['target'], item.get('action'), count,
                             item.get('reason', '')))
            for item in entry['skipped']:
                rows.append((item.get('object', ''), 'SKIPPED %s' % item.get('action', ''), '',
                             item.get('why') or item.get('reason', '')))
        lines += _table(['Object', 'Action', 'Count', 'Reason'], rows)
        lines.append('')
    for table in report.get('tables') or []:
        lines += ['## %s' % table['title'], '']
        rows = [r for r in table['rows'] if isinstance(r, dict)]
        if not rows:
            lines += ['None.', '']
            continue
        headers = []
        for row in rows:
            headers += [k for k in row if k not in headers]
        lines += _table(headers, [[row.get(h, '') for h in headers] for row in rows])
        lines.append('')
    if report['incident']:
        lines += ['## Incident log', '']
        for key, label in INCIDENT_FIELDS:
            lines.append('**%s:** %s' % (label, report['incident'].get(key) or '_to be filled in_'))
            lines.append('')
    return '\n'.join(lines).rstrip() + '\n'
