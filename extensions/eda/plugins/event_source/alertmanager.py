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
  - Answers 202 with the number of alerts queued, 400 to a body that is not an Alertmanager
    notification, and 401 when O(token) is set and the request's bearer token differs.
options:
  host:
    description: Address to listen on.
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
      - Bearer token Alertmanager sends (C(http_config.authorization.credentials)).
      - When empty, requests are not authenticated.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Alertmanager alerts
  hosts: all
  sources:
    - oncall.runbooks.alertmanager:
        host: 0.0.0.0
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
from typing import Any

from aiohttp import web

LOG = logging.getLogger('oncall.runbooks.alertmanager')


def split_alerts(payload: Any, path: str) -> list:
    """The events of one Alertmanager notification (ValueError when it is not one)."""
    if not isinstance(payload, dict) or not isinstance(payload.get('alerts'), list):
        raise ValueError('not an Alertmanager notification: no "alerts" list')
    common_labels = payload.get('commonLabels') or {}
    common_annotations = payload.get('commonAnnotations') or {}
    meta = {'endpoint': path, 'receiver': payload.get('receiver', ''), 'group_key': payload.get('groupKey', ''),
            'notification_status': payload.get('status', ''), 'external_url': payload.get('externalURL', '')}
    events = []
    for alert in payload['alerts']:
        if not isinstance(alert, dict):
            raise ValueError('not an Alertmanager notification: an alert is not an object')
        merged = dict(alert)
        merged['labels'] = dict(common_labels, **(alert.get('labels') or {}))
        merged['annotations'] = dict(common_annotations, **(alert.get('annotations') or {}))
        merged.setdefault('status', payload.get('status', 'firing'))
        events.append({'alert': merged, 'meta': dict(meta)})
    return events


async def main(queue: asyncio.Queue, args: dict) -> None:
    host = args.get('host') or '127.0.0.1'
    port = int(args.get('port') or 9095)
    path = args.get('path') or '/alerts'
    token = args.get('token') or ''

    async def receive(request: web.Request) -> web.Response:
        if token and not hmac.compare_digest(request.headers.get('Authorization', ''), 'Bearer ' + token):
            return web.json_response({'error': 'missing or wrong bearer token'}, status=401)
        try:
            events = split_alerts(json.loads(await request.read()), path)
        except ValueError as exc:
            return web.json_response({'error': str(exc)}, status=400)
        for event in events:
            await queue.put(event)
        LOG.info('queued %d alert(s) from %s', len(events), request.remote)
        return web.json_response({'queued': len(events)}, status=202)

    app = web.Application()
    app.router.add_post(path, receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == '__main__':
    # python alertmanager.py: prints the events of POSTed notifications (for trying it out)
    class _PrintQueue(object):
        async def put(self, event):
            print(json.dumps(event))

    asyncio.run(main(_PrintQueue(), {'port': 9095}))
