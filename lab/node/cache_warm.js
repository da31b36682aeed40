// The lab's stand-in for the application's `npm run cache:warm` (runbook 001, 3.3): puts the
// critical projects back in the cache, each with a 15 minute TTL, and prints what it set.
//   node cache_warm.js [--port 16379] [--host 127.0.0.1] [--count 200]
'use strict';

const IORedis = require('ioredis');
const { args, connection } = require('./lib');

async function main() {
  const a = args();
  const count = Number(a.count || 200);
  const redis = new IORedis(connection(a));
  const multi = redis.multi();
  for (let i = 0; i < count; i += 1) multi.set(`project:${i}`, JSON.stringify({ id: i, warmed: true }), 'EX', 900);
  await multi.exec();
  await redis.quit();
  process.stdout.write(`${JSON.stringify({ warmed: count, pattern: 'project:*', ttl: 900 })}\n`);
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`cache_warm: ${err.stack || err}\n`);
  process.exit(1);
});
