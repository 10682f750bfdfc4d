// Seeds age verifications as a Node service stores them, for the HTTP
// load comparison (benches/http_records_load.sh):
//
//   node seed_ages.js   (env REDIS_PORT, COUNT = 10000)
//
// Writes `age_verification:c1` .. `c{COUNT}` with `setex` (365 days) of
// `JSON.stringify` of a record with a Date (written as toISOString), extra
// and nested fields; prints {"seeded": COUNT} when done.
'use strict';
const { run } = require('./seed');

const base = Date.UTC(2026, 0, 1);
const methods = ['id_document', 'credit_card', 'bank_id'];
run('age_verification:c', 365 * 24 * 3600, (i) => ({
  customerId: `c${i}`,
  verified: i % 10 !== 0,
  method: methods[i % methods.length],
  verifiedAt: new Date(base + i * 60000),
  ageOver: i % 3 === 0 ? 21 : 18,
  source: { channel: 'checkout', store: `store-${i % 40}`, score: (i % 100) / 8 },
}));
