// Records as the Node services of the fleet write them: `JSON.stringify` of
// plain objects (Dates become `toISOString()`, `Date.now()` stays a
// number), stored with `redis.setex(key, ttl, json)`. Used by the tests
// through run.js (`require('./fleet')`) and by seed_ages.js.
'use strict';

// Numbers whose text JSON.stringify and naive writers disagree on.
const EDGE_NUMBERS = [
  0.1, 1e21, 1e-7, -0, 2 ** 53 + 1, 123456789012345680000, 1.5e300, 5e-324,
  1.0, 100, -1e-7, 0.000001, 1e20, 1.7976931348623157e308, 2 ** 31, -(2 ** 63), 4.35,
];

// One record of each kind a Node service may write, keyed by Redis key.
function fleetRecords(at) {
  return {
    'age_verification:iso': { customerId: 'iso', verified: true, method: 'id_document', verifiedAt: at },
    'age_verification:epoch': { verified: false, customerId: 'epoch', verifiedAt: at.getTime(), ageOver: 21 },
    'age_verification:float': { customerId: 'float', verified: true, verifiedAt: at.getTime() + 0.25 },
    'age_verification:offset': { customerId: 'offset', verified: true, verifiedAt: '2026-11-26T13:34:56.789+01:00' },
    'age_verification:nofrac': { customerId: 'nofrac', verified: true, verifiedAt: '2026-11-26T12:34:56Z' },
    'age_verification:extra': {
      customerId: 'extra',
      note: 'ünïcode ✓ 🎉 "quoted" \\ \n\t\u0001\u007f\u2028',
      verified: true,
      nested: { list: [1, { deep: null }], 2: 'two', 1: 'one', empty: {} },
      numbers: EDGE_NUMBERS,
      method: null,
      verifiedAt: at,
      skipped: undefined,
    },
    'customer_profile:p1': {
      customerId: 'p1', name: 'Zoë', loyaltyPoints: 120, updatedAt: at, address: { city: 'Zürich' },
    },
    'reasoning_job:j1': { jobId: 'j1', status: 'delayed', data: { prompt: 'why?' }, attempts: 2 },
  };
}

// Stores every record as a Node service would; returns key -> JSON text.
async function storeFleetRecords(redis, at) {
  const texts = {};
  for (const [key, record] of Object.entries(fleetRecords(at))) {
    texts[key] = JSON.stringify(record);
    await redis.setex(key, 3600, texts[key]);
  }
  return texts;
}

module.exports = { EDGE_NUMBERS, fleetRecords, storeFleetRecords };
