// Shared by the lab's Node tools: argument parsing and queue construction for both
// libraries (npm bullmq 5.x and bull 4.x), so that every tool speaks to Redis the same way.
'use strict';

function args(argv = process.argv.slice(2)) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i].startsWith('--')) {
      const key = argv[i].slice(2);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) out[key] = true;
      else { out[key] = next; i += 1; }
    } else out._.push(argv[i]);
  }
  return out;
}

function connection(a) {
  return { host: a.host || '127.0.0.1', port: Number(a.port || 16379), db: Number(a.db || 0), maxRetriesPerRequest: null };
}

function openQueue(flavor, name, a) {
  const prefix = a.prefix || 'bull';
  if (flavor === 'bullmq') {
    const { Queue } = require('bullmq');
    return new Queue(name, { connection: connection(a), prefix });
  }
  if (flavor === 'bull') {
    const Bull = require('bull');
    return new Bull(name, { redis: connection(a), prefix });
  }
  throw new Error(`unknown flavor ${flavor} (bullmq or bull)`);
}

// Run a processor over a queue until `count` jobs reached a final state; resolves with the
// ids seen. For bullmq a Worker, for bull queue.process on a dedicated Queue object.
async function processUntil(flavor, name, a, count, processor, concurrency = 50) {
  const seen = new Set();
  let resolve;
  const finished = new Promise((r) => { resolve = r; });
  const note = (job) => { seen.add(String(job.id)); if (seen.size >= count) resolve(); };
  if (flavor === 'bullmq') {
    const { Worker } = require('bullmq');
    const worker = new Worker(name, processor, { connection: connection(a), prefix: a.prefix || 'bull', concurrency });
    worker.on('completed', note);
    worker.on('failed', note);
    if (count > 0) await finished;
    await worker.close();
  } else {
    const q = openQueue('bull', name, a);
    q.on('completed', note);
    q.on('failed', note);
    q.process(concurrency, processor);
    if (count > 0) await finished;
    await q.close();
  }
  return [...seen];
}

// Make finished jobs look older, the way both libraries record a finish (their moveToFinished
// scripts): finishedOn in the job hash and the same millisecond timestamp as the job's score in
// the completed/failed set. Ids not in that set are left alone; resolves with those changed.
async function backdate(redis, keyPrefix, state, ids, ts) {
  const scores = await Promise.all(ids.map((id) => redis.zscore(keyPrefix + state, id)));
  const found = ids.filter((_, i) => scores[i] !== null);
  const multi = redis.multi();
  for (const id of found) {
    multi.hset(keyPrefix + id, 'finishedOn', ts, 'processedOn', ts);
    multi.zadd(keyPrefix + state, 'XX', ts, id);
  }
  await multi.exec();
  return found;
}

// process.exit drops whatever a piped stdout has not taken yet (100,000 ids are 1 MB): exit
// once the last write is out.
function exit(code) {
  process.stdout.write('', () => process.exit(code));
}

module.exports = { args, backdate, connection, exit, openQueue, processUntil };
