// The lab application's search index rebuild (runbook 004 "Rebuild Search Index", standing in
// for `npm run scripts:rebuild-search-index --service marketplace`). Zero-downtime, by the
// dual-index strategy: the new GIN index is built CONCURRENTLY next to the live one, then swapped
// in by name in one short transaction; an invalid leftover of an interrupted run is dropped first.
// Prints one JSON line: {"service", "index", "rebuilt", "seconds"} (rebuilt = rows indexed).
// Environment: PG_HOST, PG_PORT, PG_USER, PG_PASSWORD, PG_DB (as the app's server.js).
'use strict';

const { Client } = require('pg');

const env = process.env;
const INDEX = 'idx_products_search_gin';
const NEXT = INDEX + '_next';
const TABLE = 'marketplace."Product"';
const EXPR = "to_tsvector('portuguese', name || ' ' || description)";

async function main() {
  const started = Date.now();
  const db = new Client({ host: env.PG_HOST || '127.0.0.1', port: Number(env.PG_PORT || 15432),
    user: env.PG_USER || 'postgres', password: env.PG_PASSWORD || undefined,
    database: env.PG_DB || 'payment_sandbox', application_name: 'rebuild-search-index' });
  await db.connect();
  try {
    await db.query('SET lock_timeout = 5000');
    await db.query(`DROP INDEX CONCURRENTLY IF EXISTS marketplace.${NEXT}`);
    await db.query(`CREATE INDEX CONCURRENTLY ${NEXT} ON ${TABLE} USING gin (${EXPR})`);
    await db.query('BEGIN');
    await db.query(`DROP INDEX IF EXISTS marketplace.${INDEX}`);
    await db.query(`ALTER INDEX marketplace.${NEXT} RENAME TO ${INDEX}`);
    await db.query('COMMIT');
    await db.query(`ANALYZE ${TABLE}`);
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${TABLE}`);
    console.log(`Rebuilt ${rows[0].n} products`);
    console.log(JSON.stringify({ service: 'marketplace', index: `marketplace.${INDEX}`, rebuilt: rows[0].n,
      seconds: (Date.now() - started) / 1000 }));
  } finally {
    await db.end();
  }
}

main().catch((e) => { console.error(`rebuild-search-index: ${e.message}`); process.exit(1); });
