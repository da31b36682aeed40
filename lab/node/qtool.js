// Test and bench helper: makes real jobs with the real libraries and reads them back.
//   node qtool.js <bullmq|bull> <command> --queue Q [--port 16379] [--host 127.0.0.1] [--prefix bull] ...
//   (or the flavor as --flavor bullmq|bull)
// Commands (each prints one JSON line, with elapsed_ms):
//   add --count N [--delay-ms D] [--data JSON]   add N jobs, prints their ids
//   make-failed --count N [--concurrency 100]     add N jobs and fail them with a real worker
//   make-completed --count N [--concurrency 100]  add N jobs and complete them with a real worker
//   backdate --state completed|failed --ids 1,2 --age-ms MS
//                                                 make finished jobs look MS old (finishedOn,
//                                                 processedOn and their score in the state set)
//   counts                                        the library's getJobCounts and isPaused
//   clean --state S --grace-ms G --limit L        the library's own queue.clean, timed
'use strict';

const IORedis = require('ioredis');
const { args, backdate, connection, exit, openQueue, processUntil } = require('./lib');

const a = args();
// The flavor is the first word or --flavor: `qtool.js bull counts` or `qtool.js counts --flavor bull`.
const [flavor, command] = a.flavor ? [a.flavor, a._[0]] : a._;

async function addJobs(queue, count, opts = {}) {
  const data = a.data ? JSON.parse(a.data) : {};
  const ids = [];
  for (let start = 0; start < count; start += 1000) {
    const n = Math.min(1000, count - start);
    const batch = Array.from({ length: n }, (_, i) => ({ name: 'job', data: { ...data, n: start + i }, opts }));
    const jobs = flavor === 'bullmq'
      ? await queue.addBulk(batch)
      : await queue.addBulk(batch.map((j) => ({ data: j.data, opts: j.opts })));
    ids.push(...jobs.map((j) => String(j.id)));
  }
  return ids;
}

// Adds `count` jobs while a real worker already consumes them, so adding and processing overlap.
async function finish(queue, name, count, fail) {
  const processor = async () => {
    if (fail) throw new Error('made to fail by qtool');
    return { ok: true };
  };
  const t0 = Date.now();
  const processed = processUntil(flavor, name, a, count, processor, Number(a.concurrency || 100));
  const ids = await addJobs(queue, count, { attempts: 1 });
  const addMs = Date.now() - t0;
  await queue.close();
  await processed;
  return { ids, add_ms: addMs };
}

async function main() {
  const name = a.queue;
  if (!name) throw new Error('--queue is required');
  const started = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
  const queue = openQueue(flavor, name, a);
  let out;
  switch (command) {
    case 'add': {
      const opts = a['delay-ms'] ? { delay: Number(a['delay-ms']) } : {};
      out = { ids: await addJobs(queue, Number(a.count || 1), opts) };
      break;
    }
    case 'make-failed':
      out = await finish(queue, name, Number(a.count || 1), true);
      break;
    case 'make-completed':
      out = await finish(queue, name, Number(a.count || 1), false);
      break;
    case 'backdate': {
      const redis = new IORedis(connection(a));
      const ts = Date.now() - Number(a['age-ms']);
      const ids = String(a.ids).split(',').filter(Boolean);
      const done = await backdate(redis, `${a.prefix || 'bull'}:${name}:`, a.state, ids, ts);
      await redis.quit();
      out = { backdated: done.length, missing: ids.filter((id) => !done.includes(id)), ts };
      break;
    }
    case 'counts': {
      const counts = await queue.getJobCounts();
      out = { ...counts, isPaused: await queue.isPaused() };
      break;
    }
    case 'clean': {
      const grace = Number(a['grace-ms'] || 0);
      const limit = Number(a.limit || 0);
      const t0 = process.hrtime.bigint();
      const ids = flavor === 'bullmq'
        ? await queue.clean(grace, limit, a.state)
        : await queue.clean(grace, a.state, limit);
      out = { removed: ids.length, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
      break;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
  if (command !== 'make-failed' && command !== 'make-completed') await queue.close();
  out.elapsed_ms = Math.round(ms());
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(() => exit(0), (err) => {
  process.stderr.write(`qtool: ${err.stack || err}\n`);
  process.exit(1);
});
