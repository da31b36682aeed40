// The lab's sample application (issue 6): a small HTTP API that uses Redis, PostgreSQL and a
// BullMQ queue, run under pm2. Its release (version, and the fault a deliberately broken
// release carries) comes from release.json next to this file. Faults: "smoke" (/api/stats
// answers 500), "health" (/health answers 503), "crash" (exits at start), "degrade" (/health
// turns 503 after degrade_after checks), "slow" (/api/* answer after slow_ms, default 800 ms).
// Every 5xx answer is logged on stderr ("error: <status> <path>: <message>"), so pm2's error
// log holds the app's errors.
//   GET  /health    200 {"status":"ok"} when Redis and PostgreSQL answer, 503 otherwise
//   GET  /version   {"version": ...}
//   GET  /metrics   Prometheus text: app_requests_total, app_errors_total, app_info,
//                   http_requests_total{method,path,status}, http_request_duration_seconds
//                   (histogram), queue_jobs_{waiting,active,delayed,completed,failed}{queue}
//                   (the app's queue and APP_METRICS_QUEUES, counted as the collection counts
//                   them: waiting = wait + paused + prioritized) and payments_orders_recent{status}
//                   (orders created in the last hour, by status). Alert rules:
//                   extensions/prometheus/rules/oncall.rules.yml.
//   GET  /api/stats the database's applied migrations and the queue's job counts (smoke test)
//   POST /api/events enqueue one job in the BullMQ queue
//   GET  /api/search?q=pasta  full-text search of marketplace."Product" (runbook 004 Story 3.5):
//                   {query, count, results: [{id, name, rank}], cache}. Results are cached in
//                   Redis (search:<sha1 of the query>, 60 s); cache is "hit", "miss" or
//                   "unavailable": without Redis the app answers from the database (the game
//                   day's graceful degradation, playbooks/game_day.yml) and says so.
//   GET  /api/auth/session  (runbook 003 "Authentication Failures") 200 {"authenticated":false,
//                   "sessions":N} (N = keys sess:*), 503 when Redis does not answer or OAUTH_CLIENT_ID
//                   is not set
//   GET  /api/v1/business/analytics/health  (runbook 004 Story 3.7) {"status":"ok",
//                   "last_calculated_at": ISO or null, "age_seconds": N or null}; the time of the
//                   last calculation is the Redis key analytics:last_calculated_at (ms)
//   POST /api/v1/business/analytics/recalculate  counts the orders of the last hour and stores the
//                   time of this calculation (the lab's `npm run scripts:recalculate-analytics --force`)
//   /metrics also has ai_model_timeouts_recent (runbook 003 "AI Model Timeouts": the AI calls that
//                   timed out in the last 5 minutes, the scores of the sorted set ai:model_timeouts,
//                   in ms, that the AI worker writes)
// Environment: APP_PORT, REDIS_HOST, REDIS_PORT, PG_HOST, PG_PORT, PG_USER, PG_PASSWORD,
// PG_DB, APP_QUEUE (BullMQ queue name), QUEUE_PREFIX, APP_METRICS_QUEUES (more Bull/BullMQ
// queue names whose counts /metrics reports, comma-separated).
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const IORedis = require('ioredis');
const { Pool } = require('pg');
const { Queue } = require('bullmq');

const release = JSON.parse(fs.readFileSync(path.join(__dirname, 'release.json'), 'utf8'));
const env = process.env;

// A release built with fault "crash" dies at start: pm2 restarts it until it gives up.
if (release.fault === 'crash') {
  console.error(`release ${release.version}: cannot start (fault: crash)`);
  process.exit(1);
}

const connection = { host: env.REDIS_HOST || '127.0.0.1', port: Number(env.REDIS_PORT || 16379),
  maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false };
const redis = new IORedis(connection);
redis.on('error', () => {}); // reported by /health
const pool = new Pool({ host: env.PG_HOST || '127.0.0.1', port: Number(env.PG_PORT || 15432),
  user: env.PG_USER || 'postgres', password: env.PG_PASSWORD || undefined,
  database: env.PG_DB || 'payment_sandbox', max: 4, connectionTimeoutMillis: 2000 });
pool.on('error', () => {});
const queueName = env.APP_QUEUE || 'app-events';
const queue = new Queue(queueName, { connection: { ...connection, maxRetriesPerRequest: null },
  prefix: env.QUEUE_PREFIX || 'bull' });
queue.on('error', () => {});
// Queues whose counts /metrics reports: the app's own, then APP_METRICS_QUEUES. They are read
// with plain reads of their keys (LLEN of a list, ZCARD of a sorted set), never through a BullMQ
// Queue object: BullMQ writes its own meta keys when it opens a queue, which would turn a Bull 3
// queue into one that looks like BullMQ. Bull 3 and BullMQ keep the same state keys.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const queuePrefix = env.QUEUE_PREFIX || 'bull';
const metricQueues = [queueName].concat((env.APP_METRICS_QUEUES || '').split(',')
  .map((n) => n.trim()).filter((n) => NAME_RE.test(n) && n !== queueName));

async function stateCount(name, state) {
  const key = `${queuePrefix}:${name}:${state}`;
  const type = await redis.type(key);
  if (type === 'list') return redis.llen(key);
  if (type === 'zset') return redis.zcard(key);
  return 0;
}

async function jobCounts(name) {
  const states = ['wait', 'paused', 'prioritized', 'active', 'delayed', 'completed', 'failed'];
  const values = await Promise.all(states.map((st) => stateCount(name, st)));
  return Object.fromEntries(states.map((st, i) => [st, values[i]]));
}

const counters = { requests: 0, errors: 0 };
let healthChecks = 0;

// Per route (known paths only, so a client cannot make new series), method and status.
const ROUTES = new Set(['/health', '/version', '/metrics', '/api/stats', '/api/events', '/api/auth/session',
  '/api/v1/business/analytics/health', '/api/v1/business/analytics/recalculate']);
const BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const byRoute = new Map(); // "method path status" -> count
const latency = { buckets: BUCKETS.map(() => 0), count: 0, sum: 0 };

function observe(method, url, status, seconds) {
  const route = ROUTES.has(url) ? url : 'other';
  const m = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD'].includes(method) ? method : 'OTHER';
  const key = `${m} ${route} ${status}`;
  byRoute.set(key, (byRoute.get(key) || 0) + 1);
  BUCKETS.forEach((le, i) => { if (seconds <= le) latency.buckets[i] += 1; });
  latency.count += 1;
  latency.sum += seconds;
}

async function queueMetrics() {
  const lines = [];
  const rows = await Promise.all(metricQueues.map(async (name) => {
    try {
      return [name, await jobCounts(name)];
    } catch (e) { return [name, null]; }
  }));
  const series = { waiting: [], active: [], delayed: [], completed: [], failed: [] };
  for (const [name, c] of rows) {
    if (!c) continue;
    series.waiting.push([name, (c.wait || 0) + (c.paused || 0) + (c.prioritized || 0)]);
    for (const state of ['active', 'delayed', 'completed', 'failed']) series[state].push([name, c[state] || 0]);
  }
  for (const [state, values] of Object.entries(series)) {
    lines.push(`# TYPE queue_jobs_${state} gauge`);
    for (const [name, v] of values) lines.push(`queue_jobs_${state}{queue="${name}"} ${v}`);
  }
  return lines;
}

// Orders created in the last hour, by status (runbook 002 "Payment Failures"): a status is the
// application's own word, escaped as a label value.
async function paymentMetrics() {
  const lines = ['# TYPE payments_orders_recent gauge'];
  try {
    const { rows } = await pool.query(
      'SELECT status, count(*)::int AS n FROM marketplace."Order" WHERE "createdAt" > now() - interval \'1 hour\' GROUP BY status ORDER BY status');
    for (const r of rows) {
      const status = String(r.status).slice(0, 64).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
      lines.push(`payments_orders_recent{status="${status}"} ${r.n}`);
    }
  } catch (e) { /* no orders table: no series */ }
  return lines;
}

// AI calls that timed out in the last 5 minutes (runbook 003 "AI Model Timeouts").
async function aiMetrics() {
  try {
    const n = await redis.zcount('ai:model_timeouts', Date.now() - 300000, '+inf');
    return ['# TYPE ai_model_timeouts_recent gauge', `ai_model_timeouts_recent ${n}`];
  } catch (e) { return []; }
}

// Sessions live in Redis (sess:<id>); the provider's client id must be configured.
async function authSession() {
  if (!env.OAUTH_CLIENT_ID) throw Object.assign(new Error('auth: OAUTH_CLIENT_ID is not set'), { status: 503 });
  let sessions = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'sess:*', 'COUNT', 1000);
    cursor = next;
    sessions += keys.length;
  } while (cursor !== '0');
  return { authenticated: false, sessions };
}

async function analyticsHealth() {
  const last = Number(await redis.get('analytics:last_calculated_at')) || null;
  return { status: 'ok', last_calculated_at: last ? new Date(last).toISOString() : null,
    age_seconds: last ? Math.round((Date.now() - last) / 1000) : null };
}

async function recalculateAnalytics() {
  const { rows } = await pool.query(
    'SELECT count(*)::int AS n FROM marketplace."Order" WHERE "createdAt" > now() - interval \'1 hour\'');
  const now = Date.now();
  await redis.set('analytics:last_calculated_at', String(now));
  return { calculated_at: new Date(now).toISOString(), orders_last_hour: rows[0].n };
}

async function metrics() {
  const lines = [
    '# TYPE app_requests_total counter', `app_requests_total ${counters.requests}`,
    '# TYPE app_errors_total counter', `app_errors_total ${counters.errors}`,
    '# TYPE app_info gauge', `app_info{version="${release.version}"} 1`,
    '# TYPE http_requests_total counter'];
  for (const [key, n] of byRoute) {
    const [method, route, status] = key.split(' ');
    lines.push(`http_requests_total{method="${method}",path="${route}",status="${status}"} ${n}`);
  }
  lines.push('# TYPE http_request_duration_seconds histogram');
  BUCKETS.forEach((le, i) => lines.push(`http_request_duration_seconds_bucket{le="${le}"} ${latency.buckets[i]}`));
  lines.push(`http_request_duration_seconds_bucket{le="+Inf"} ${latency.count}`);
  lines.push(`http_request_duration_seconds_sum ${latency.sum}`);
  lines.push(`http_request_duration_seconds_count ${latency.count}`);
  const [q, p, a] = await Promise.all([queueMetrics(), paymentMetrics(), aiMetrics()]);
  return lines.concat(q, p, a, ['']).join('\n');
}

function send(res, status, body, type = 'application/json', url = '') {
  counters.requests += 1;
  if (status >= 500) {
    counters.errors += 1;
    console.error(`error: ${status} ${url}: ${(body && (body.error || body.status)) || ''}`);
  }
  res.writeHead(status, { 'Content-Type': type });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

async function health() {
  const out = { status: 'ok', version: release.version, redis: 'ok', database: 'ok' };
  try { await redis.ping(); } catch (e) { out.redis = e.message; out.status = 'degraded'; }
  try { await pool.query('SELECT 1'); } catch (e) { out.database = e.message; out.status = 'degraded'; }
  if (release.fault === 'health') { out.status = 'degraded'; out.error = 'fault: health'; }
  // fault "degrade": healthy for the first degrade_after health checks, then not (a release
  // that passes the restart and the smoke tests and fails during the watch period).
  healthChecks += 1;
  if (release.fault === 'degrade' && healthChecks > (release.degrade_after || 3)) {
    out.status = 'degraded'; out.error = 'fault: degrade';
  }
  return out;
}

async function stats() {
  if (release.fault === 'smoke') throw new Error(`release ${release.version}: /api/stats is broken (fault: smoke)`);
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM schema_migrations');
  const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'completed', 'failed');
  return { version: release.version, migrations: rows[0].n, queue: queueName, counts };
}

// Full-text search with a Redis cache in front of it. Redis failing is not an error for the
// user: the answer comes from the database, marked cache "unavailable".
const crypto = require('crypto');
ROUTES.add('/api/search');
const SEARCH_SQL = `SELECT id::text AS id, name,
    round(ts_rank(to_tsvector('portuguese', name || ' ' || description), q)::numeric, 4)::float AS rank
  FROM marketplace."Product", plainto_tsquery('portuguese', $1) q
  WHERE to_tsvector('portuguese', name || ' ' || description) @@ q
  ORDER BY rank DESC, id LIMIT 20`;

async function search(query) {
  const q = String(query || '').slice(0, 200);
  if (!q.trim()) return { status: 400, body: { error: 'missing query: /api/search?q=<words>' } };
  const key = 'search:' + crypto.createHash('sha1').update(q).digest('hex');
  let cache = 'miss';
  try {
    const hit = await redis.get(key);
    if (hit) return { status: 200, body: Object.assign(JSON.parse(hit), { cache: 'hit' }) };
  } catch (e) { cache = 'unavailable'; }
  const { rows } = await pool.query(SEARCH_SQL, [q]);
  const body = { query: q, count: rows.length, results: rows };
  if (cache === 'miss') {
    try { await redis.set(key, JSON.stringify(body), 'EX', 60); } catch (e) { cache = 'unavailable'; }
  }
  return { status: 200, body: Object.assign(body, { cache }) };
}

const server = http.createServer(async (req, res) => {
  const started = process.hrtime.bigint();
  res.on('finish', () => observe(req.method, req.url.split('?')[0], res.statusCode,
    Number(process.hrtime.bigint() - started) / 1e9));
  try {
    const url = req.url.split('?')[0];
    if (release.fault === 'slow' && url.startsWith('/api/')) {
      await new Promise((resolve) => setTimeout(resolve, release.slow_ms || 800));
    }
    if (req.method === 'GET' && url === '/health') {
      const h = await health();
      send(res, h.status === 'ok' ? 200 : 503, h, 'application/json', url);
    } else if (req.method === 'GET' && url === '/version') {
      send(res, 200, { version: release.version });
    } else if (req.method === 'GET' && url === '/metrics') {
      counters.requests += 1;
      const text = await metrics();
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
      res.end(text);
    } else if (req.method === 'GET' && url === '/api/stats') {
      send(res, 200, await stats());
    } else if (req.method === 'GET' && url === '/api/search') {
      const found = await search(new URL(req.url, 'http://app').searchParams.get('q'));
      send(res, found.status, found.body);
    } else if (req.method === 'GET' && url === '/api/auth/session') {
      try {
        send(res, 200, await authSession());
      } catch (e) { send(res, e.status || 503, { error: e.message }, 'application/json', url); }
    } else if (req.method === 'GET' && url === '/api/v1/business/analytics/health') {
      send(res, 200, await analyticsHealth());
    } else if (req.method === 'POST' && url === '/api/v1/business/analytics/recalculate') {
      send(res, 200, await recalculateAnalytics());
    } else if (req.method === 'POST' && url === '/api/events') {
      const job = await queue.add('event', { at: Date.now() });
      send(res, 201, { id: job.id });
    } else {
      send(res, 404, { error: 'not found' });
    }
  } catch (e) {
    send(res, 500, { error: e.message }, 'application/json', req.url.split('?')[0]);
  }
});

server.listen(Number(env.APP_PORT || 13001), '127.0.0.1', () => {
  console.log(`app ${release.version} listening on 127.0.0.1:${server.address().port}`);
});

function stop() {
  server.close();
  Promise.allSettled([queue.close(), redis.quit(), pool.end()]).then(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
