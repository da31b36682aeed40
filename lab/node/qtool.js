// Test and bench helper: makes real jobs with the real libraries and reads them back.
//   node qtool.js <bullmq|bull> <command> --queue Q [--port 16379] [--prefix bull] ...
// Commands (each prints one JSON line):
//   add --count N [--delay-ms D] [--data JSON]   add N jobs, prints their ids
//   make-failed --count N                         add N jobs and fail them with a real worker
//   make-completed --count N                      add N jobs and complete them with a real worker
//   backdate --state completed|failed --ids 1,2 --age-ms MS
//                                                 make finished jobs look MS old (finishedOn,
//                                                 processedOn and their score in the state set)
//   counts                                        the library's getJobCounts and isPaused
//   clean --state S --grace-ms G --limit L        the library's own queue.clean, timed
'use strict';

const IORedis = require('ioredis');
const { args, connection, openQueue, processUntil } = require('./lib');

const a = args();
const [flavor, command] = a._;

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

async function finish(queue, name, count, fail) {
  const opts = { attempts: 1 };
  const ids = await addJobs(queue, count, opts);
  await queue.close();
  const processor = async () => {
    if (fail) throw new Error('made to fail by qtool');
    return { ok: true };
  };
  await processUntil(flavor, name, a, count, processor, Number(a.concurrency || 100));
  return ids;
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
      out = { ids: await finish(queue, name, Number(a.count || 1), true) };
      break;
    case 'make-completed':
      out = { ids: await finish(queue, name, Number(a.count || 1), false) };
      break;
    case 'backdate': {
      const redis = new IORedis(connection(a));
      const ts = Date.now() - Number(a['age-ms']);
      const prefix = `${a.prefix || 'bull'}:${name}:`;
      const multi = redis.multi();
      for (const id of String(a.ids).split(',').filter(Boolean)) {
        multi.hset(prefix + id, 'finishedOn', ts, 'processedOn', ts);
        multi.zadd(prefix + a.state, 'XX', ts, id);
      }
      await multi.exec();
      await redis.quit();
      out = { backdated: String(a.ids).split(',').length, ts };
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

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`qtool: ${err.stack || err}\n`);
  process.exit(1);
});
