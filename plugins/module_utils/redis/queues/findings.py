# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verdict on each queue's counts (waiting jobs, failure ratio, paused) for redis_queue_info."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.common.findings import check_thresholds, verdict


def findings(entries, waiting_warning=100, waiting_critical=500, failure_ratio_warning=0.05):
    """Each queue's backlog and failure share against the runbooks' thresholds.

    Runbook 001 7.3: queue length warning 100, critical 500; 7.1: failed / total 5%. A figure at
    or past its threshold crosses it (the collection's one rule, common/findings.py).
    """
    check_thresholds('waiting', waiting_warning, waiting_critical)
    check_thresholds('failure_ratio', failure_ratio_warning, None, maximum=1.0)
    out = []
    for q in entries:
        if not q.get('exists', True) and q['flavor'] != 'list':
            out.append({'object': '%s missing' % q['name'], 'figure': 'no key',
                        'threshold': 'a configured queue exists',
                        'verdict': 'warning',
                        'reason': 'queue %s (%s) has no key in Redis: a misspelt name, or a queue '
                                  'the application never created' % (q['name'], q['flavor'])})
            continue
        counts = q['counts']
        waiting = counts.get('wait', 0) + counts.get('paused', 0) + counts.get('prioritized', 0)
        out.append({'object': '%s waiting' % q['name'], 'figure': waiting,
                    'threshold': '>= %d warning, >= %d critical' % (waiting_warning, waiting_critical),
                    'verdict': verdict(waiting, waiting_warning, waiting_critical)})
        finished = counts.get('completed', 0) + counts.get('failed', 0)
        if finished and q['flavor'] != 'list':
            ratio = float(counts.get('failed', 0)) / finished
            out.append({'object': '%s failure ratio' % q['name'], 'figure': round(ratio, 3),
                        'threshold': '>= %.2f warning' % failure_ratio_warning,
                        'verdict': verdict(ratio, failure_ratio_warning, None)})
        if q.get('paused'):
            out.append({'object': '%s paused' % q['name'], 'figure': True,
                        'threshold': 'running expected', 'verdict': 'warning'})
    return out
