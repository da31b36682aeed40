# -*- coding: utf-8 -*-
"""localstripe (PyPI), a stateful fake Stripe, extended here with what the tests need.

localstripe speaks PaymentIntents, refunds and pagination with the official SDK but rejects
``created`` filters on list endpoints (real Stripe accepts them, and stripe_reconcile must use
them), accepts any API key, and never fails. This harness adds, in front of its app:

* ``created[gte]`` / ``created[lt]`` on ``GET /v1/payment_intents``, served from its store;
* a revoked key (``sk_test_revoked_...``) answered with Stripe's 401;
* ``POST /_harness/fail`` to make the next N API requests answer a given status (429, 500);
* ``GET /_harness/stats`` counting requests per method and path, ``POST /_harness/reset``.

Run: python tests/helpers/stripe_api.py --port N (binds 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import json

from aiohttp import web
from localstripe import resources
from localstripe.server import app

STATS = {'requests': {}, 'fail': [], 'after': None}


def _api_key(request):
    auth = request.headers.get('Authorization', '')
    return auth[7:] if auth.startswith('Bearer ') else ''


def _list_payment_intents(request):
    q = request.query
    lo = int(q.get('created[gte]', 0))
    hi = int(q.get('created[lt]', 2 ** 62))
    limit = int(q.get('limit', 10))
    items = [obj for key, obj in resources.store.items()
             if key.startswith('payment_intent:') and lo <= obj.created < hi]
    items.sort(key=lambda o: (-o.created, o.id))  # newest first, as Stripe lists
    after = q.get('starting_after')
    if after:
        ids = [o.id for o in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return web.json_response({'object': 'list', 'url': '/v1/payment_intents',
                              'has_more': len(items) > limit, 'data': [o._export() for o in page]})


@web.middleware
async def harness(request, handler):
    if request.path.startswith('/_harness/'):
        if request.path == '/_harness/stats':
            return web.json_response(STATS['requests'])
        if request.path == '/_harness/reset':
            STATS['requests'].clear()
            STATS['fail'] = []
            STATS['after'] = None
            return web.json_response({})
        if request.path == '/_harness/fail':
            body = await request.json()
            STATS['fail'] = [int(body['status'])] * int(body['count'])
            return web.json_response({})
        if request.path == '/_harness/bulk':
            # {"count": N, "prefix": "o-"}: N PaymentIntents, made by localstripe's own
            # code in-process (for benchmarks; 10,000 HTTP creates would take minutes)
            body = await request.json()
            ids = []
            for i in range(int(body['count'])):
                pi = resources.PaymentIntent._api_create(
                    amount=int(body.get('amount', 1000)), currency=body.get('currency', 'eur'),
                    metadata={'order_id': '%s%d' % (body.get('prefix', 'o-'), i)})
                # Not confirmed: localstripe's confirm path slows down with every charge it
                # holds (4 minutes for 1,000); a benchmark only needs objects to list.
                ids.append(pi.id)
            return web.json_response({'ids': ids})
        if request.path == '/_harness/after':
            # {"path": "/v1/refunds", "do": "500"|"hang"}: the request is carried out, then
            # the answer is lost (an error, or no answer until the client gives up)
            STATS['after'] = await request.json()
            return web.json_response({})
    key = '%s %s' % (request.method, request.path)
    STATS['requests'][key] = STATS['requests'].get(key, 0) + 1
    if STATS['fail']:
        status = STATS['fail'].pop(0)
        return web.json_response({'error': {'type': 'api_error', 'message': 'injected %d' % status}},
                                 status=status)
    if _api_key(request).startswith('sk_test_revoked'):
        return web.json_response({'error': {'type': 'invalid_request_error',
                                            'message': 'Invalid API Key provided: sk_test_****'}}, status=401)
    after = STATS['after']
    if after and request.method == 'POST' and request.path == after['path']:
        STATS['after'] = None
        await handler(request)
        if after['do'] == 'hang':
            import asyncio
            await asyncio.sleep(60)
        return web.json_response({'error': {'type': 'api_error', 'message': 'lost answer'}}, status=500)
    if request.method == 'GET' and request.path == '/v1/payment_intents' and any(
            k.startswith('created') for k in request.query):
        return _list_payment_intents(request)
    return await handler(request)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args()
    app.middlewares.insert(0, harness)
    web.run_app(app, host='127.0.0.1', port=args.port, print=lambda *a: print(json.dumps({'ready': args.port}), flush=True))


if __name__ == '__main__':
    main()
