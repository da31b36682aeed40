// A real worker for tests: prints {"event":"ready"} once connected, then one JSON line per
// job it finishes ({"event":"processed"|"failed","id":..}). Stops on SIGTERM.
//   node worker.js --flavor bullmq|bull --queue Q [--concurrency N] [--delay-ms N]
//                  [--fail-when-data-has KEY] [--port 16379] [--prefix bull]
'use strict';

const { args, connection, exit, openQueue } = require('./lib');

const a = args();
const say = (obj) => process.stdout.write(`${JSON.stringify({ ...obj, ts: Date.now() })}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function processor(job) {
  if (a['delay-ms']) await sleep(Number(a['delay-ms']));
  const key = a['fail-when-data-has'];
  if (key && job.data && job.data[key]) throw new Error(`data has ${key}`);
  return { ok: true };
}

async function main() {
  const concurrency = Number(a.concurrency || 1);
  let stop;
  if (a.flavor === 'bullmq') {
    const { Worker } = require('bullmq');
    // --lock-ms: a short job lock, so that a killed worker leaves a stuck job quickly (tests)
    const lock = a['lock-ms'] ? { lockDuration: Number(a['lock-ms']) } : {};
    const worker = new Worker(a.queue, processor, { connection: connection(a), prefix: a.prefix || 'bull', concurrency, ...lock });
    worker.on('completed', (job) => say({ event: 'processed', id: job.id, name: job.name }));
    worker.on('failed', (job) => say({ event: 'failed', id: job && job.id, name: job && job.name }));
    await worker.waitUntilReady();
    stop = () => worker.close(true);
  } else {
    const queue = openQueue('bull', a.queue, a);
    queue.on('completed', (job) => say({ event: 'processed', id: job.id, name: job.name }));
    queue.on('failed', (job) => say({ event: 'failed', id: job.id, name: job.name }));
    queue.process(concurrency, processor);
    await queue.isReady();
    stop = () => queue.close(true);
  }
  say({ event: 'ready' });
  const shutdown = () => Promise.race([stop(), sleep(3000)]).then(() => exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err) => {
  process.stderr.write(`worker: ${err.stack || err}\n`);
  process.exit(1);
});
