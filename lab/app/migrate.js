// The sample application's migrations (lab/app): SQL files in the release's migrations/
// directory, named <version>_<name>.up.sql and .down.sql, recorded in schema_migrations.
//   node migrate.js up                  apply this release's pending migrations, in order
//   node migrate.js down --keep DIR     revert the applied migrations of this release that the
//                                       release in DIR does not have (rollback to DIR)
//   node migrate.js status              print applied and pending versions as JSON
// Connection from PG_HOST, PG_PORT, PG_USER, PG_PASSWORD, PG_DB (as server.js).
'use strict';

const fs = require('fs');
const path = require('path');
const { Client } = require('pg');

const env = process.env;

function migrations(dir) {
  const d = path.join(dir, 'migrations');
  if (!fs.existsSync(d)) return [];
  return fs.readdirSync(d).filter((f) => f.endsWith('.up.sql')).sort().map((f) => {
    const base = f.slice(0, -'.up.sql'.length);
    const i = base.indexOf('_');
    return { version: base.slice(0, i), name: base.slice(i + 1), up: path.join(d, f),
      down: path.join(d, `${base}.down.sql`) };
  });
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const client = new Client({ host: env.PG_HOST || '127.0.0.1', port: Number(env.PG_PORT || 15432),
    user: env.PG_USER || 'postgres', password: env.PG_PASSWORD || undefined,
    database: env.PG_DB || 'payment_sandbox' });
  await client.connect();
  const applied = new Set((await client.query('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
  const mine = migrations(__dirname);
  const done = [];
  try {
    if (cmd === 'up') {
      for (const m of mine.filter((x) => !applied.has(x.version))) {
        await client.query('BEGIN');
        await client.query(fs.readFileSync(m.up, 'utf8'));
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
        done.push(m.version);
      }
    } else if (cmd === 'down') {
      const keepDir = rest[rest.indexOf('--keep') + 1];
      if (rest.indexOf('--keep') < 0 || !keepDir) throw new Error('down needs --keep DIR (the release to roll back to)');
      const keep = new Set(migrations(keepDir).map((x) => x.version));
      for (const m of mine.filter((x) => applied.has(x.version) && !keep.has(x.version)).reverse()) {
        await client.query('BEGIN');
        await client.query(fs.readFileSync(m.down, 'utf8'));
        await client.query('DELETE FROM schema_migrations WHERE version = $1', [m.version]);
        await client.query('COMMIT');
        done.push(m.version);
      }
    } else if (cmd !== 'status') {
      throw new Error(`unknown command ${cmd} (up, down --keep DIR, status)`);
    }
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    await client.end();
    console.error(`migration failed: ${e.message}`);
    process.exit(1);
  }
  console.log(JSON.stringify({ command: cmd, done,
    pending: mine.filter((x) => !applied.has(x.version) && !done.includes(x.version)).map((x) => x.version) }));
  await client.end();
}

main().catch((e) => { console.error(`migration failed: ${e.message}`); process.exit(1); });
