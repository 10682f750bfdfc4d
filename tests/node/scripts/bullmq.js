// A real BullMQ queue and worker for warmcache's tests, against the test's
// own redis-server (env REDIS_PORT). One of three commands (env BULLMQ_CMD):
//
//   worker  runs a Worker on QUEUE until killed; prints {"ready":true},
//           then one line per 'completed' / 'failed' event, and
//           {"returning":id,"atUs":t} just before a 'gated' job returns.
//   add     adds JOBS (JSON [{name, data, opts}]) and prints {"id"} each.
//   report  prints what BullMQ says of IDS (JSON [id]): Job.fromId and
//           getState(), field by field, or {"id","missing":true}.
//
// Job names the worker knows: 'ok' returns {answer: data.n * 2}; 'progress'
// reports 50 then {stage:'half'} and returns 'done'; 'flaky' always throws;
// 'gated' waits until the key gate:{id} exists, then returns {gated:true}.
'use strict';
const { Queue, Worker, Job } = require('bullmq');
const Redis = require('ioredis');

const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null };
const queueName = process.env.QUEUE || 'reasoning';
const out = (value) => process.stdout.write(JSON.stringify(value) + '\n');
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

async function worker() {
  const gates = new Redis(connection);
  const worker = new Worker(
    queueName,
    async (job) => {
      switch (job.name) {
        case 'ok':
          return { answer: (job.data.n || 0) * 2 };
        case 'progress':
          await job.updateProgress(50);
          await job.updateProgress({ stage: 'half' });
          return 'done';
        case 'flaky':
          throw new Error(`boom on attempt ${job.attemptsMade + 1}`);
        case 'gated':
          while (!(await gates.exists(`gate:${job.id}`))) {
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
          out({ returning: job.id, atUs: nowUs() });
          return { gated: true };
        default:
          throw new Error(`unknown job name ${job.name}`);
      }
    },
    { connection, concurrency: 50 },
  );
  worker.on('completed', (job) => out({ event: 'completed', id: job.id, finishedOn: job.finishedOn }));
  worker.on('failed', (job) => out({ event: 'failed', id: job.id, attemptsMade: job.attemptsMade }));
  worker.on('error', () => {}); // reconnects by itself (a Redis restart in a test)
  await worker.waitUntilReady();
  out({ ready: true });
}

async function add() {
  const queue = new Queue(queueName, { connection });
  for (const { name, data, opts } of JSON.parse(process.env.JOBS)) {
    const job = await queue.add(name, data || {}, opts || {});
    out({ id: job.id });
  }
  await queue.close();
}

async function report() {
  const queue = new Queue(queueName, { connection });
  for (const id of JSON.parse(process.env.IDS)) {
    const job = await Job.fromId(queue, id);
    if (!job) {
      out({ id, missing: true });
      continue;
    }
    out({
      id,
      state: await job.getState(),
      progress: job.progress,
      returnvalue: job.returnvalue,
      failedReason: job.failedReason === undefined ? null : job.failedReason,
      attemptsMade: job.attemptsMade,
      timestamp: job.timestamp,
      processedOn: job.processedOn === undefined ? null : job.processedOn,
      finishedOn: job.finishedOn === undefined ? null : job.finishedOn,
    });
  }
  await queue.close();
}

const commands = { worker, add, report };
const command = commands[process.env.BULLMQ_CMD];
if (!command) {
  process.stderr.write(`BULLMQ_CMD must be one of ${Object.keys(commands).join(', ')}\n`);
  process.exit(2);
}
command().then(
  () => { if (process.env.BULLMQ_CMD !== 'worker') process.exit(0); },
  (e) => { process.stderr.write(String(e && e.stack ? e.stack : e) + '\n'); process.exit(1); },
);
