// Shared by seed_ages.js and seed_jobs.js: writes `{prefix}{n}` for n in
// 1..COUNT (env, default 10000) with `setex ttl JSON.stringify(make(n))`,
// in pipelines of 1000, to the Redis on 127.0.0.1:$REDIS_PORT, as a Node
// service stores its records; prints {"seeded": COUNT} when done.
'use strict';
const Redis = require('ioredis');

async function seed(prefix, ttlSeconds, make) {
  const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT) });
  const count = Number(process.env.COUNT || 10000);
  for (let start = 1; start <= count; start += 1000) {
    const batch = redis.pipeline();
    for (let i = start; i < Math.min(start + 1000, count + 1); i++) {
      batch.setex(`${prefix}${i}`, ttlSeconds, JSON.stringify(make(i)));
    }
    await batch.exec();
  }
  process.stdout.write(JSON.stringify({ seeded: count }) + '\n');
  redis.disconnect();
}

function run(prefix, ttlSeconds, make) {
  seed(prefix, ttlSeconds, make).catch((e) => {
    process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
    process.exit(1);
  });
}

module.exports = { run };
