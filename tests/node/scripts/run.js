// Runs a snippet of JavaScript with a connected ioredis client, for tests
// that need a few lines of real Node (JSON.stringify, setex, del, ...).
//
//   node run.js '<async body>'   (env REDIS_PORT, optional REDIS_DB)
//
// The body sees `redis` (an ioredis client), `out(value)`, which prints
// one JSON line to stdout, and `require` (this package's modules, e.g.
// `require('./fleet')`, `require('node:assert')`). The process exits 0 when the body resolves, 1
// with the error on stderr when it throws.
'use strict';
const Redis = require('ioredis');

async function main() {
  const redis = new Redis({
    host: '127.0.0.1',
    port: Number(process.env.REDIS_PORT),
    db: Number(process.env.REDIS_DB || 0),
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  await redis.connect();
  const out = (value) => process.stdout.write(JSON.stringify(value) + '\n');
  const body = new Function('redis', 'out', 'require', `return (async () => { ${process.argv[2]} })();`);
  try {
    await body(redis, out, require);
  } finally {
    redis.disconnect();
  }
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
