// Seeds reasoning-job records as the Node reasoning gateway stores them, for
// the HTTP load comparison (benches/http_records_load.sh with RECORDS=jobs):
//
//   node seed_jobs.js   (env REDIS_PORT, COUNT = 10000)
//
// Writes `reasoning_job:j1` .. `j{COUNT}` with `setex` (24 h) of
// `JSON.stringify` of a finished job: status, a nested result, Dates
// (written as toISOString) and attempts; prints {"seeded": COUNT} when done.
'use strict';
const Redis = require('ioredis');

async function main() {
  const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT) });
  const count = Number(process.env.COUNT || 10000);
  const base = Date.UTC(2026, 0, 1);
  for (let start = 1; start <= count; start += 1000) {
    const batch = redis.pipeline();
    for (let i = start; i < Math.min(start + 1000, count + 1); i++) {
      const record = {
        jobId: `j${i}`,
        status: 'completed',
        result: {
          answer: `recommendation ${i % 97}`,
          confidence: (i % 100) / 100,
          reasons: ['purchase history', 'age verified', `segment ${i % 12}`],
        },
        attemptsMade: 1 + (i % 3),
        addedAt: new Date(base + i * 1000),
        startedAt: new Date(base + i * 1000 + 250),
        finishedAt: new Date(base + i * 1000 + 1900),
      };
      batch.setex(`reasoning_job:j${i}`, 24 * 3600, JSON.stringify(record));
    }
    await batch.exec();
  }
  process.stdout.write(JSON.stringify({ seeded: count }) + '\n');
  redis.disconnect();
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
