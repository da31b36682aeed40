# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watch period after a deploy (runbook 001 8.2 step 8): health polled every interval,
error rate from the /metrics counters over the period; a verdict and the figures."""

from __future__ import annotations

import time

from ansible_collections.oncall.runbooks.plugins.module_utils.services import health as hc
from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError


class WatchError(OncallError):
    """The watch could not read what it needs (the metrics endpoint), phrased for the operator."""


def read_counters(url, names, timeout):
    ans = hc.probe(url, timeout=timeout, option='metrics_url')
    if not ans['ok']:
        raise WatchError('cannot read metrics at %s: %s' % (hc.redact(url), ans['why']))
    # the probe keeps 500 characters; read the whole page for counters
    text = hc.open_http(url, 'metrics_url', timeout=timeout).read().decode('utf-8', 'replace')
    return hc.counters(text, names)


def watch(params, sleep=time.sleep, clock=time.monotonic):
    for option in ('health_url', 'metrics_url'):
        if params.get(option) is not None:
            try:
                hc.check_http_url(params[option], option)
            except hc.UrlError as exc:
                raise WatchError(str(exc))
    names = (params['requests_metric'], params['errors_metric'])
    start = read_counters(params['metrics_url'], names, params['timeout']) if params['metrics_url'] else None
    began = clock()
    samples, failed = 0, []
    while True:
        ans = hc.probe(params['health_url'], timeout=params['timeout'], option='health_url')
        samples += 1
        if not ans['ok']:
            failed.append({'at_s': round(clock() - began, 1), 'why': ans['why']})
        if len(failed) > params['max_failed_checks']:
            break
        if clock() - began >= params['period']:
            break
        sleep(params['interval'])
    result = {'seconds': round(clock() - began, 1), 'health_checks': samples, 'failed_checks': failed,
              'requests': None, 'errors': None, 'error_rate': None}
    if start is not None:
        end = read_counters(params['metrics_url'], names, params['timeout'])
        requests = end[names[0]] - start[names[0]]
        errors = end[names[1]] - start[names[1]]
        if requests < 0 or errors < 0:  # the process restarted during the watch: counters reset
            requests, errors = end[names[0]], end[names[1]]
            result['counters_reset'] = True
        result.update(requests=int(requests), errors=int(errors),
                      error_rate=round(errors / requests, 4) if requests else 0.0)
    why = []
    if len(failed) > params['max_failed_checks']:
        why.append('%d failed health check(s) on %s (last: %s), %d allowed'
                   % (len(failed), hc.redact(params['health_url']), failed[-1]['why'], params['max_failed_checks']))
    if result.get('counters_reset'):
        why.append('the application restarted during the watch (its counters went back)')
    if result['error_rate'] is not None and result['error_rate'] > params['max_error_rate']:
        why.append('error rate %.2f%% (%s of %s requests) above %.2f%%'
                   % (result['error_rate'] * 100, result['errors'], result['requests'],
                      params['max_error_rate'] * 100))
    result['degraded'] = bool(why)
    result['why'] = '; '.join(why)
    return result
