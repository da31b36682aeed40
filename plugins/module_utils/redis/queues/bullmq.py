# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BullMQ (v2+) flavor. Observation is our own read-only pipeline (the library's
``getCounts`` script may rewrite a legacy marker, so it is not read-only); every change goes
through the BullMQ Python package, whose Lua scripts are the ones the Node library runs."""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.redis.queues.base import (
    BULLMQ_STATES, BaseQueue, Observation, QueueError, _raise_first_error, now_ms)


class BullMQQueue(BaseQueue):
    flavor = 'bullmq'
    LIST_STATES = ('wait', 'paused', 'active')

    def observe(self):
        pipe = self.client.pipeline(transaction=False)
        for state in BULLMQ_STATES:
            if state in self.LIST_STATES:
                pipe.llen(self.key(state))
            else:
                pipe.zcard(self.key(state))
        pipe.hget(self.key('meta'), 'paused')
        pipe.exists(self.key('meta'), self.key('id'), self.key('events'))
        type_keys = [self.key(s) for s in BULLMQ_STATES] + [self.key('meta'), self.key('events')]
        for k in type_keys:
            pipe.type(k)
        # Types are checked before any count is used: a key of the wrong type makes its
        # LLEN/ZCARD fail, and the operator should hear which key, not WRONGTYPE.
        res = pipe.execute(raise_on_error=False)
        n = len(BULLMQ_STATES)
        types = dict(zip(type_keys, res[n + 2:]))
        expected = dict((self.key(s), 'list' if s in self.LIST_STATES else 'zset')
                        for s in BULLMQ_STATES)
        expected[self.key('meta')] = 'hash'
        expected[self.key('events')] = 'stream'
        self._check_types(expected, types)
        _raise_first_error(res)
        counts = dict(zip([s.replace('-', '_') for s in BULLMQ_STATES], res[:n]))
        exists = bool(res[n + 1]) or any(counts.values())
        return Observation(exists, bool(res[n]), counts, types)

    def protected_jobs(self):
        """A job scheduler's current job: BullMQ's clean and drain skip it (isJobSchedulerJob:
        the job's ``rjk`` names a scheduler of the ``repeat`` set, and its id is
        ``repeat:<scheduler>:<the scheduler's score>``). {job id: scheduler id}."""
        out = {}
        for member, score in self.client.zrange(self.key('repeat'), 0, -1, withscores=True,
                                                score_cast_func=str):
            out['repeat:%s:%s' % (member, score)] = member
        return out

    # The BullMQ package is asyncio-only; each apply opens one client and closes it.
    def _run(self, coro_factory):
        import asyncio
        from bullmq import Queue
        from ansible_collections.oncall.runbooks.plugins.module_utils.redis.connection import (
            async_client)

        async def runner():
            client = async_client(self.conn_params)
            queue = Queue(self.name, {'connection': client, 'prefix': self.prefix,
                                      'skipVersionCheck': True})
            try:
                return await coro_factory(queue)
            finally:
                await client.aclose()
        return asyncio.run(runner())

    def set_paused(self, paused):
        self._run(lambda q: q.pause() if paused else q.resume())

    def run_action(self, action):
        step = getattr(self, '_' + action.kind)
        return self._run(lambda q: step(q, action.params))

    # Clean calls kept in flight at once on a finished set: while Redis runs one batch's script
    # the next one is already on its way, so the server never waits for a round trip. Each
    # script re-checks and removes its own jobs (the first ones at or before the cut-off), so
    # two calls never take the same job.
    CLEAN_IN_FLIGHT = 2

    async def _clean_finished(self, q, p):
        import asyncio
        state, limit = p['status'], p['limit']
        expected = p.get('expected') or 0
        shared = {'asked': 0, 'removed': 0, 'done': False, 'ids': [], 'flying': 0}
        errors = []  # the first failure of a call; raised once every lane stopped

        async def lane():
            while not shared['done'] and not errors:
                # a second call goes out only while the plan's jobs are not all asked for; past
                # them the calls go one at a time until a short batch (as the library's loop),
                # so a small clean makes exactly the calls (and events) the library makes
                if shared['asked'] >= expected and shared['flying']:
                    return
                batch = self.batch_size
                if limit:
                    batch = min(batch, limit - shared['asked'])
                    if batch <= 0:
                        return
                shared['asked'] += batch
                shared['flying'] += 1
                try:
                    # the library turns grace into a cut-off with its own clock: hand it the
                    # grace that gives the cut-off fixed at plan time
                    got = await q.clean(max(0, now_ms() - p['cutoff']), batch, state)
                except Exception as exc:  # re-raised once every lane stopped; pylint: disable=broad-except
                    errors.append(exc)
                    return
                finally:
                    shared['flying'] -= 1
                shared['removed'] += len(got)
                self.progress = shared['removed']
                shared['asked'] -= batch - len(got)
                if len(shared['ids']) < 100:
                    shared['ids'].extend(got[:100 - len(shared['ids'])])
                if len(got) < batch:
                    shared['done'] = True  # a short batch: nothing left up to the cut-off

        async def second():
            await asyncio.sleep(0)  # the first lane's call is on its way first
            await lane()

        await asyncio.gather(lane(), *[second() for _lane in range(self.CLEAN_IN_FLIGHT - 1)])
        if errors:
            raise errors[0]
        return shared['removed'], shared['ids']

    async def _clean(self, q, p):
        if p['status'] in ('completed', 'failed'):
            return await self._clean_finished(q, p)
        removed, ids = 0, []
        planned = p.get('planned') or {}
        states = [p['status']] if p['status'] != 'wait' else ['wait', 'paused']
        for state in states:
            here = 0
            while not p['limit'] or removed < p['limit']:
                batch = self.batch_size
                if p['limit']:
                    batch = min(batch, p['limit'] - removed)
                # The library turns grace into a cut-off with its own clock: hand it the
                # grace that gives the cut-off fixed at plan time.
                grace = max(0, now_ms() - p['cutoff'])
                got = await q.clean(grace, batch, state)
                removed += len(got)
                here += len(got)
                self.progress = removed
                ids.extend(got[:100 - len(ids)] if len(ids) < 100 else [])
                if len(got) == batch:
                    continue
                # A short batch ends a finished set (every job up to the cut-off qualifies).
                # In a list or the delayed set the library looks at the first `batch` jobs
                # only and skips a scheduler's job and those newer than the cut-off: go on
                # while it still removes some and the plan expects more.
                if not got or here >= planned.get(state, 0):
                    break
        return removed, ids

    async def _retry(self, q, p):
        moved = 0
        while moved < p['limit']:
            batch = min(self.batch_size, p['limit'] - moved)
            # Jobs that fail meanwhile score after the cut-off, so this count is exact.
            before = await q.client.zcount(self.key(p['status']), 0, p['cutoff'])
            await q.scripts.retryJobs(p['status'], batch, p['cutoff'])
            after = await q.client.zcount(self.key(p['status']), 0, p['cutoff'])
            step = before - after
            moved += step
            self.progress = moved
            if step < batch:
                break
        return moved, []

    async def _drain(self, q, p):
        before = await self._waiting_async(q, p['delayed'])
        if p.get('kept_in_lists'):
            await self._drain_by_clean(q, p['delayed'], p.get('kept') or {})
        else:
            await q.drain(p['delayed'])
        after = await self._waiting_async(q, p['delayed'])
        return before - after, []

    async def _drain_by_clean(self, q, delayed, kept):
        """Drain with the library's clean when a job scheduler's current job waits in a list.

        BullMQ's drain skips that job but then trims the list by the number of jobs it
        removed, counted from the head: the scheduler's job leaves the list (the scheduler
        never fires again) and the id of a deleted job stays behind. Its clean removes the
        same jobs the same way (removeJob, deduplication keys included) and keeps the
        scheduler's job where it is.
        """
        for state in ('wait', 'paused', 'prioritized') + (('delayed',) if delayed else ()):
            while True:
                got = await q.clean(0, self.batch_size, state)
                self.progress += len(got)
                # a batch that was full but for the jobs kept may be followed by more
                if not got or len(got) + kept.get(state, 0) < self.batch_size:
                    break

    async def _waiting_async(self, q, delayed):
        total = await q.client.llen(self.key('wait')) + await q.client.llen(self.key('paused'))
        total += await q.client.zcard(self.key('prioritized'))
        if delayed:
            total += await q.client.zcard(self.key('delayed'))
        return total

    async def _remove(self, q, p):
        removed = []
        for job_id in p['ids']:
            if await q.remove(job_id):
                removed.append(job_id)
        return len(removed), removed

    async def _obliterate(self, q, _params):
        try:
            await q.obliterate(force=False)
        except Exception as exc:  # the library raises a bare Exception with a code
            text = str(exc)
            if 'active' in text.lower() or '-2' in text:
                raise QueueError('queue %s has active jobs: stop its workers before removing it'
                                 % self.name)
            raise
        return 1, []
