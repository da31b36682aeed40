# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-rulebook event source: Alertmanager webhooks, one event per alert."""

from __future__ import annotations

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager webhook notifications, one event per alert
description:
  - An HTTP endpoint for Alertmanager's C(webhook_configs). Each notification carries a group of
    alerts; every alert becomes one event C({"alert": {...}, "meta": {...}}) so that rules match
    and throttle per alert.
  - The alert's labels are merged over the notification's C(commonLabels), its annotations over
    C(commonAnnotations); C(status), C(startsAt), C(endsAt), C(fingerprint) and
    C(generatorURL) are kept as sent.
  - Every request must carry O(token) as a bearer token (compared in constant time); the source
    refuses to start without one. It listens on the loopback address unless O(host) says otherwise.
  - Answers 202 with the number of alerts queued, 400 to a body that is not an Alertmanager
    notification (labels and annotations must be objects of strings), 401 to a missing or
    wrong bearer token, and 413 to a body larger than O(max_body_size).
  - Label and annotation values are passed on as sent: they are data for the rules and for
    C(playbooks/alert_runbook.yml), which reads them without templating and validates them
    (docs/security.md).
options:
  host:
    description: Address to listen on (the loopback address unless set).
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to listen on.
    type: int
    default: 9095
  path:
    description: URL path of the webhook (Alertmanager's C(url) ends with it).
    type: str
    default: /alerts
  token:
    description:
      - Bearer token Alertmanager sends (C(http_config.authorization.credentials)); required.
      - Generate one with C(openssl rand -hex 32).
    type: str
    required: true
  max_body_size:
    description: Largest request body accepted, in bytes (larger ones are answered 413).
    type: int
    default: 1048576
"""

EXAMPLES = r"""
- name: Alertmanager alerts
  hosts: all
  sources:
    - oncall.runbooks.alertmanager:
        host: 127.0.0.1
        port: 9095
        token: "{{ ONCALL_EDA_TOKEN }}"
  rules:
    - name: Print every firing alert
      condition: event.alert.status == "firing"
      action:
        print_event:
"""

import asyncio
import hmac
import json
import logging
import os
from typing import Any

from aiohttp import web

LOG = logging.getLogger('oncall.runbooks.alertmanager')


def _strings(value, what):
    """An object of strings (ValueError naming what when it is not one)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError('not an Alertmanager notification: %s is not an object of strings' % what)
    return value


def split_alerts(payload: Any, path: str) -> list:
    """The events of one Alertmanager notification (ValueError when it is not one)."""
    if not isinstance(payload, dict) or not isinstance(payload.get('alerts'), list):
        raise ValueError('not an Alertmanager notification: no "alerts" list')
    common_labels = _strings(payload.get('commonLabels'), 'commonLabels')
    common_annotations = _strings(payload.get('commonAnnotations'), 'commonAnnotations')
    meta = {'endpoint': path, 'receiver': payload.get('receiver', ''), 'group_key': payload.get('groupKey', ''),
            'notification_status': payload.get('status', ''), 'external_url': payload.get('externalURL', '')}
    events = []
    for alert in payload['alerts']:
        if not isinstance(alert, dict):
            raise ValueError('not an Alertmanager notification: an alert is not an object')
        merged = dict(alert)
        merged['labels'] = dict(common_labels, **_strings(alert.get('labels'), 'an alert\'s labels'))
        merged['annotations'] = dict(common_annotations, **_strings(alert.get('annotations'), 'an alert\'s annotations'))
        merged.setdefault('status', payload.get('status', 'firing'))
        events.append({'alert': merged, 'meta': dict(meta)})
    return events


def settings(args: dict) -> dict:
    """The source's options, checked (ValueError: one sentence naming the option)."""
    token = args.get('token')
    if not isinstance(token, str) or not token.strip():
        raise ValueError('oncall.runbooks.alertmanager: option token is empty: set it to the bearer token '
                         'Alertmanager sends (http_config.authorization.credentials), for example through '
                         'ONCALL_EDA_TOKEN; the source does not run without one')
    out = {'host': args.get('host') or '127.0.0.1', 'path': args.get('path') or '/alerts', 'token': token}
    for name, default, low, high in (('port', 9095, 1, 65535), ('max_body_size', 1048576, 1024, 1 << 30)):
        value = args.get(name)
        try:
            out[name] = default if value in (None, '') else int(value)
        except (TypeError, ValueError):
            out[name] = None
        if out[name] is None or isinstance(value, bool) or not low <= out[name] <= high:
            raise ValueError('oncall.runbooks.alertmanager: option %s must be a whole number from %d to %d, got %r'
                             % (name, low, high, value))
    return out


async def main(queue: asyncio.Queue, args: dict) -> None:
    opts = settings(args)
    path = opts['path']
    expected = ('Bearer ' + opts['token']).encode('utf-8')

    async def receive(request: web.Request) -> web.Response:
        # bytes, compared in constant time (compare_digest refuses non-ASCII str)
        given = request.headers.get('Authorization', '').encode('utf-8', 'surrogateescape')
        if not hmac.compare_digest(given, expected):
            return web.json_response({'error': 'missing or wrong bearer token'}, status=401)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({'error': 'request body larger than %d bytes' % opts['max_body_size']}, status=413)
        try:
            events = split_alerts(json.loads(body), path)
        except ValueError as exc:
            return web.json_response({'error': str(exc)}, status=400)
        for event in events:
            await queue.put(event)
        LOG.info('queued %d alert(s) from %s', len(events), request.remote)
        return web.json_response({'queued': len(events)}, status=202)

    app = web.Application(client_max_size=opts['max_body_size'])
    app.router.add_post(path, receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, opts['host'], opts['port'])
    await site.start()
    LOG.info('listening on %s:%d%s', opts['host'], opts['port'], path)
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == '__main__':
    # ONCALL_EDA_TOKEN=... python alertmanager.py: prints the events of POSTed notifications (for trying it out)
    class _PrintQueue(object):
        async def put(self, event):
            print(json.dumps(event))

    asyncio.run(main(_PrintQueue(), {'port': 9095, 'token': os.environ.get('ONCALL_EDA_TOKEN', '')}))
