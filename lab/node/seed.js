// Seeds the lab's Redis with queues made by the real libraries, shaped like the runbooks':
// BullMQ queues ai-analysis and notifications, Bull (v3) queues card-generation and email,
// each with waiting, delayed, completed and failed jobs; some finished jobs are backdated so
// that a maintenance window has work (8 days, and 2 days, old). Plain list queues
// festivals:queue:* and cache keys gemini:analysis:scene:* / project:*.
//   node seed.js [--port 16379] [--host 127.0.0.1] [--prefix bull]
'use strict';

const IORedis = require('ioredis');
const { args, backdate, connection, exit, openQueue, processUntil } = require('./lib');

const a = args();
const DAY = 86400 * 1000;

async function seedQueue(flavor, name) {
  const add = async (queue, n, opts, data) => {
    const jobs = Array.from({ length: n }, (_, i) => ({ name: 'job', data: { ...data, n: i }, opts }));
    return flavor === 'bullmq' ? queue.addBulk(jobs) : queue.addBulk(jobs.map((j) => ({ data: j.data, opts: j.opts })));
  };
  let queue = openQueue(flavor, name, a);
  await queue.obliterate({ force: true }); // re-runnable without lab.sh's FLUSHDB
  await add(queue, 40, { attempts: 1 }, {});
  await add(queue, 30, { attempts: 1 }, { fail: true });
  await queue.close();
  await processUntil(flavor, name, a, 70, async (job) => {
    if (job.data.fail) throw new Error('upstream API returned 503');
    return { ok: true };
  }, 20);
  // Half of the finished jobs 8 days old, and a third of the failed ones 2 days old.
  const redis = new IORedis(connection(a));
  const prefix = `${a.prefix || 'bull'}:${name}:`;
  for (const state of ['completed', 'failed']) {
    const ids = await redis.zrange(prefix + state, 0, -1);
    const half = Math.floor(ids.length / 2);
    await backdate(redis, prefix, state, ids.slice(0, half), Date.now() - 8 * DAY);
    if (state === 'failed') await backdate(redis, prefix, state, ids.slice(half, half + ids.length / 3), Date.now() - 2 * DAY);
  }
  await redis.quit();
  queue = openQueue(flavor, name, a);
  await add(queue, 25, {}, {});
  await add(queue, 5, { delay: DAY }, {});
  const counts = await queue.getJobCounts();
  await queue.close();
  return counts;
}

async function main() {
  const summary = { queues: {}, lists: {}, cache: {} };
  for (const [flavor, name] of [['bullmq', 'ai-analysis'], ['bullmq', 'notifications'],
    ['bull', 'card-generation'], ['bull', 'email']]) {
    summary.queues[name] = { flavor, ...(await seedQueue(flavor, name)) };
  }
  const redis = new IORedis(connection(a));
  const lists = { 'festivals:queue:critical': 12, 'festivals:queue:default': 150, 'festivals:queue:low': 40, 'festivals:queue:failed': 8 };
  for (const [key, n] of Object.entries(lists)) {
    await redis.del(key);
    await redis.lpush(key, ...Array.from({ length: n }, (_, i) => JSON.stringify({ type: 'notify', id: `${key}-${i}` })));
    summary.lists[key] = await redis.llen(key);
  }
  const multi = redis.multi();
  for (let i = 0; i < 500; i += 1) multi.set(`gemini:analysis:scene:${i}`, JSON.stringify({ scene: i }), 'EX', 3600 * (1 + (i % 24)));
  for (let i = 0; i < 200; i += 1) multi.set(`project:${i}`, JSON.stringify({ id: i }), 'EX', 900);
  for (let i = 200; i < 220; i += 1) multi.set(`project:${i}`, JSON.stringify({ id: i })); // no TTL: a finding
  await multi.exec();
  for (let i = 0; i < 300; i += 1) await redis.get(`gemini:analysis:scene:${i % 600}`); // hits and misses
  summary.cache = { 'gemini:analysis:scene:* (TTL 1-24 h)': 500, 'project:* (TTL 15 min)': 200, 'project:* (no TTL)': 20 };
  await redis.quit();
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().then(() => exit(0), (err) => {
  process.stderr.write(`seed: ${err.stack || err}\n`);
  process.exit(1);
});
