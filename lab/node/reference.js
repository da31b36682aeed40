// Reference harness for redis_queue (tests/integration/test_queue_reference.py): builds a queue
// that holds every kind of job the real libraries make, and runs the libraries' OWN operations,
// so that a test can put the module's result beside the library's on identical copies.
//   node reference.js build --flavor bullmq|bull --queue Q [--db N] [--no-active] [--paused]
//                              [--no-every]
//   node reference.js op --flavor bullmq|bull --queue Q --db N --op OP [--state S] [--delayed]
// build: completed and failed jobs (with logs, made by a real worker with metrics on), jobs
// deduplicated ("debounced") whose key is still in force, whose key now belongs to another
// waiting job, waiting jobs (one with a log, one debounced without expiry), prioritized and
// delayed jobs (one debounced), an active job held by a worker's lock (unless --no-active);
// for BullMQ also two job schedulers (cron and every) and a flow parent waiting on a failed
// child (--no-every leaves out the scheduler whose job waits). --paused pauses the queue at the
// end. Prints the library's counts as JSON.
// op: clean (grace 0, no limit; --state completed|failed|delayed|wait, where wait also cleans
// paused), retry (--state failed|completed), pause, resume, drain (--delayed), drain-clean
// (BullMQ: clean of wait, paused, prioritized and with --delayed delayed), obliterate.
'use strict';

const { args, connection, exit } = require('./lib');

const a = args();
const [command] = a._;
const flavor = a.flavor;
const prefix = a.prefix || 'bull';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MINUTES_10 = 600000;
const DAY = 86400000;

function open(extra = {}) {
  if (flavor === 'bullmq') {
    const { Queue } = require('bullmq');
    return new Queue(a.queue, { connection: connection(a), prefix, ...extra });
  }
  const Bull = require('bull');
  return new Bull(a.queue, { redis: connection(a), prefix, ...extra });
}

// Bull's add takes (data, opts); BullMQ's (name, data, opts). Dedup is "debounce" in Bull and
// "deduplication" in BullMQ (its old "debounce" option is the same thing).
function add(q, name, data, opts = {}) {
  const o = { ...opts };
  if (o.dedup) {
    if (flavor === 'bullmq') o.deduplication = o.dedup; else o.debounce = o.dedup;
    delete o.dedup;
  }
  return flavor === 'bullmq' ? q.add(name, data, o) : q.add(data, { ...o });
}

async function processor(job) {
  await job.log(`processing ${job.id}`);
  if (job.data.hang) return new Promise(() => {});
  if (job.data.fail) throw new Error('made to fail by reference.js');
  return { ok: true };
}

// Run a worker until `count` jobs reached completed or failed; metrics on.
async function finishAll(count) {
  let done = 0;
  let resolve;
  const all = new Promise((r) => { resolve = r; });
  const note = () => { done += 1; if (done >= count) resolve(); };
  if (flavor === 'bullmq') {
    const { Worker } = require('bullmq');
    const w = new Worker(a.queue, processor, { connection: connection(a), prefix, concurrency: 5,
      metrics: { maxDataPoints: 100 } });
    w.on('completed', note); w.on('failed', note);
    await all; await w.close();
  } else {
    const q = open({ metrics: { maxDataPoints: 100 } });
    q.on('completed', note); q.on('failed', note);
    q.process(5, processor);
    await all; await q.close();
  }
}

// A worker that takes one job and never finishes it: the job stays active, locked for 10 min.
async function holdOneActive(q) {
  const job = await add(q, 'hang', { hang: true });
  let started;
  const took = new Promise((r) => { started = r; });
  const hang = (j) => { started(j.id); return new Promise(() => {}); };
  if (flavor === 'bullmq') {
    const { Worker } = require('bullmq');
    // eslint-disable-next-line no-new
    new Worker(a.queue, hang, { connection: connection(a), prefix, concurrency: 1,
      lockDuration: MINUTES_10 });
  } else {
    const w = open({ settings: { lockDuration: MINUTES_10 } });
    w.process(1, hang);
  }
  await took;
  return String(job.id);
}

async function build() {
  let q = open();
  // finished jobs: made by a real worker (logs, metrics, dedup keys released on finish)
  await add(q, 'ok', { n: 1 });
  await add(q, 'ok', { n: 2 }, { dedup: { id: 'de-inforce', ttl: MINUTES_10 } });
  await add(q, 'ok', { n: 3 }, { dedup: { id: 'de-shared', ttl: 300 } });
  await add(q, 'ok', { n: 4 }, { priority: 3 });
  await add(q, 'fail', { fail: true }, { attempts: 1 });
  await add(q, 'fail', { fail: true }, { attempts: 1, dedup: { id: 'de-failed' } });
  await add(q, 'fail', { fail: true }, { attempts: 1 });
  let finished = 7;
  if (flavor === 'bullmq') {
    const { FlowProducer } = require('bullmq');
    const flow = new FlowProducer({ connection: connection(a), prefix });
    await flow.add({ name: 'parent', queueName: a.queue, data: { flow: true },
      children: [{ name: 'child', queueName: a.queue, data: { fail: true }, opts: { attempts: 1 } }] });
    await flow.close();
    finished += 1;
  }
  await q.close();
  await finishAll(finished);
  await sleep(400); // de-shared's 300 ms expire: the next job with that id owns the key
  q = open();
  const out = {};
  if (!a['no-active']) out.active = await holdOneActive(q);
  await add(q, 'wait', { n: 5 }, { dedup: { id: 'de-shared' } });
  const logged = await add(q, 'wait', { n: 6 });
  await logged.log('a line logged while waiting');
  await add(q, 'wait', { n: 7 }, { dedup: { id: 'de-wait' } });
  await add(q, 'wait', { n: 8 });
  await add(q, 'prio', { n: 9 }, { priority: 1 });
  await add(q, 'prio', { n: 10 }, { priority: 5 });
  await add(q, 'later', { n: 11 }, { delay: DAY });
  await add(q, 'later', { n: 12 }, { delay: DAY, dedup: { id: 'de-delayed', ttl: MINUTES_10 } });
  // a duplicate: the libraries drop it (its key is in force)
  await add(q, 'ok', { n: 13 }, { dedup: { id: 'de-inforce', ttl: MINUTES_10 } });
  if (flavor === 'bullmq') {
    await q.upsertJobScheduler('sched-cron', { pattern: '0 0 1 1 *' }, { name: 'tick', data: { cron: true } });
    if (!a['no-every']) {
      // its first job waits at once (in the wait list, where BullMQ's drain mishandles it)
      await q.upsertJobScheduler('sched-every', { every: 3600000 }, { name: 'tock', data: { every: true } });
    }
  }
  if (a.paused) await q.pause();
  out.counts = await q.getJobCounts();
  out.isPaused = await q.isPaused();
  await q.close();
  return out;
}

async function op() {
  const q = open();
  const state = a.state;
  const out = {};
  switch (a.op) {
    case 'clean': {
      const states = state === 'wait' ? ['wait', 'paused'] : [state];
      out.removed = [];
      for (const s of states) {
        out.removed.push(...(flavor === 'bullmq' ? await q.clean(0, 0, s) : await q.clean(0, s, 0)));
      }
      break;
    }
    case 'retry':
      if (flavor === 'bullmq') await q.retryJobs({ state, count: 1000 });
      else if (state === 'failed') await q.retryJobs({ count: 1000 });
      else throw new Error('Bull retries failed jobs only');
      break;
    case 'pause': await q.pause(); break;
    case 'resume': await q.resume(); break;
    case 'drain':
      if (flavor === 'bullmq') await q.drain(Boolean(a.delayed));
      else {
        // Bull's empty() is not the reference: it un-pauses the queue (deletes meta-paused),
        // drops the delayed set while keeping the delayed jobs' hashes, and keeps every
        // dedup key. Bull's clean of each waiting state removes the jobs the way Bull does.
        out.removed = [];
        for (const s of ['paused', 'wait'].concat(a.delayed ? ['delayed'] : [])) {
          out.removed.push(...(await q.clean(0, s, 0)));
        }
      }
      break;
    case 'drain-clean': {
      // BullMQ: the library's clean of every state drain empties (see redis_queue's drain
      // when a job scheduler's job waits in a list)
      const states = ['wait', 'paused', 'prioritized'].concat(a.delayed ? ['delayed'] : []);
      out.removed = [];
      for (const s of states) out.removed.push(...(await q.clean(0, 0, s)));
      break;
    }
    case 'obliterate': await q.obliterate(); break;
    default: throw new Error(`unknown op ${a.op}`);
  }
  await q.close();
  return out;
}

(command === 'build' ? build() : op()).then((out) => {
  process.stdout.write(`${JSON.stringify(out)}\n`);
  exit(0);
}, (err) => {
  process.stderr.write(`reference: ${err.stack || err}\n`);
  process.exit(1);
});
