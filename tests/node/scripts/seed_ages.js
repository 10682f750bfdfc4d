// Seeds age verifications as a Node service stores them, for the HTTP
// load comparison (benches/http_records_load.sh):
//
//   node seed_ages.js   (env REDIS_PORT, COUNT = 10000)
//
// Writes `age_verification:c1` .. `c{COUNT}` with `setex` (365 days) of
// `JSON.stringify` of a record with a Date (written as toISOString), extra
// and nested fields; prints {"seeded": COUNT} when done.
'use strict';
const Redis = require('ioredis');

async function main() {
  const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT) });
  const count = Number(process.env.COUNT || 10000);
  const base = Date.UTC(2026, 0, 1);
  const methods = ['id_document', 'credit_card', 'bank_id'];
  for (let start = 1; start <= count; start += 1000) {
    const batch = redis.pipeline();
    for (let i = start; i < Math.min(start + 1000, count + 1); i++) {
      const record = {
        customerId: `c${i}`,
        verified: i % 10 !== 0,
        method: methods[i % methods.length],
        verifiedAt: new Date(base + i * 60000),
        ageOver: i % 3 === 0 ? 21 : 18,
        source: { channel: 'checkout', store: `store-${i % 40}`, score: (i % 100) / 8 },
      };
      batch.setex(`age_verification:c${i}`, 365 * 24 * 3600, JSON.stringify(record));
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
