// Node BullMQ's own Queue.clean over a whole failed set, in batches of --batch jobs,
// timed around the clean calls only. Prints one JSON line.
// The lab's node_modules hold the pinned BullMQ.
const { Queue } = require(require.resolve('bullmq', { paths: [`${__dirname}/../lab/node`] }));

const arg = (name, dflt) => {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : dflt;
};

(async () => {
  const queue = new Queue(arg('queue', 'bench'), {
    connection: { host: '127.0.0.1', port: Number(arg('port', 6379)) },
  });
  const batch = Number(arg('batch', 10000));
  const started = process.hrtime.bigint();
  let removed = 0;
  let calls = 0;
  for (;;) {
    const ids = await queue.clean(0, batch, 'failed');
    calls += 1;
    removed += ids.length;
    if (ids.length < batch) break;
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.log(JSON.stringify({ removed, calls, ms }));
  await queue.close();
})();
