// Seeds reasoning-job records as the Node reasoning gateway stores them, for
// the HTTP load comparison (benches/http_records_load.sh with RECORDS=jobs):
//
//   node seed_jobs.js   (env REDIS_PORT, COUNT = 10000)
//
// Writes `reasoning_job:j1` .. `j{COUNT}` with `setex` (24 h) of
// `JSON.stringify` of a finished job: status, a nested result, Dates
// (written as toISOString) and attempts; prints {"seeded": COUNT} when done.
'use strict';
const { run } = require('./seed');

const base = Date.UTC(2026, 0, 1);
run('reasoning_job:j', 24 * 3600, (i) => ({
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
}));
