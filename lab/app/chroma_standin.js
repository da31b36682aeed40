// The lab's vector database (issue 19): a minimal stand-in for ChromaDB's HTTP API, because the
// real server (`pip install chromadb`, 1.5.9: a 23 MB wheel plus onnxruntime, grpcio, kubernetes,
// opentelemetry, tokenizers ...) is too heavy for the lab. It speaks the routes the vector
// database runbook reads, as ChromaDB 1.x serves them (chromadb/server/fastapi):
//   GET  /api/v2/heartbeat (and /api/v1/heartbeat)  {"nanosecond heartbeat": <ns>}
//   GET  /api/v2/version   (and /api/v1/version)    "<version>"
//   GET  /api/v2/tenants/{tenant}/databases/{database}/collections_count   <n>
//   GET  /api/v2/tenants/{tenant}/databases/{database}/collections         [{id, name, metadata}]
//   POST /api/v2/tenants/{tenant}/databases/{database}/collections         {"name": ...} creates one
// Collections are kept in $CHROMA_DATA/collections.json, so a restart keeps them.
// Environment: CHROMA_PORT (default 18000), CHROMA_DATA (default this directory).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const dataFile = path.join(process.env.CHROMA_DATA || __dirname, 'collections.json');
const VERSION = '1.5.9-lab-standin';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$/;
let db = {};
try { db = JSON.parse(fs.readFileSync(dataFile, 'utf8')); } catch (e) { db = {}; }

function save() {
  fs.writeFileSync(dataFile + '.tmp', JSON.stringify(db));
  fs.renameSync(dataFile + '.tmp', dataFile);
}

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const COLLECTIONS = /^\/api\/v2\/tenants\/([^/]+)\/databases\/([^/]+)\/(collections|collections_count)$/;

const server = http.createServer((req, res) => {
  const url = req.url.split('?')[0];
  if (req.method === 'GET' && (url === '/api/v2/heartbeat' || url === '/api/v1/heartbeat')) {
    // nanoseconds since the epoch, as a JSON number (as ChromaDB sends it)
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(`{"nanosecond heartbeat":${BigInt(Date.now()) * 1000000n}}`);
    return;
  }
  if (req.method === 'GET' && (url === '/api/v2/version' || url === '/api/v1/version')) return reply(res, 200, VERSION);
  const m = COLLECTIONS.exec(url);
  if (!m) return reply(res, 404, { error: 'NotFoundError', message: `no route ${url}` });
  const key = `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`;
  const list = db[key] || [];
  if (req.method === 'GET' && m[3] === 'collections_count') return reply(res, 200, list.length);
  if (req.method === 'GET' && m[3] === 'collections') return reply(res, 200, list);
  if (req.method === 'POST' && m[3] === 'collections') {
    let body = '';
    req.on('data', (c) => { body += c; if (body.length > 65536) req.destroy(); });
    req.on('end', () => {
      let doc;
      try { doc = JSON.parse(body); } catch (e) { return reply(res, 400, { error: 'InvalidArgumentError', message: 'body is not JSON' }); }
      if (!doc || typeof doc.name !== 'string' || !NAME_RE.test(doc.name)) {
        return reply(res, 400, { error: 'InvalidArgumentError', message: 'invalid collection name' });
      }
      let col = list.find((c) => c.name === doc.name);
      if (!col) {
        col = { id: crypto.randomUUID(), name: doc.name, metadata: doc.metadata || null };
        db[key] = list.concat([col]);
        save();
      }
      return reply(res, 200, col);
    });
    return;
  }
  return reply(res, 405, { error: 'MethodNotAllowed', message: `${req.method} ${url}` });
});

server.listen(Number(process.env.CHROMA_PORT || 18000), '127.0.0.1', () => {
  console.log(`chroma stand-in ${VERSION} listening on 127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => { server.close(); process.exit(0); });
process.on('SIGINT', () => { server.close(); process.exit(0); });
