// A foreign writer: a Node service's ioredis client, driven line by line.
//
// stdin, one JSON command a line:
//   {"op":"setex","key":"k","ttl":60,"value":{...}}  -> SETEX k 60 JSON.stringify(value)
//   {"op":"del","key":"k"}                            -> DEL k
// stdout, one JSON answer a line, in order: {"ok":true} or {"error":"..."}.
// Env: REDIS_PORT. Each command is bounded by ioredis' commandTimeout.
'use strict';
const readline = require('readline');
const Redis = require('ioredis');

const redis = new Redis({
  host: '127.0.0.1',
  port: Number(process.env.REDIS_PORT),
  maxRetriesPerRequest: 0,
  commandTimeout: Number(process.env.COMMAND_TIMEOUT_MS || 500),
  enableOfflineQueue: false,
  retryStrategy: () => 50,
});
redis.on('error', () => {});

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  const command = JSON.parse(line);
  queue = queue.then(async () => {
    try {
      if (command.op === 'setex') {
        await redis.setex(command.key, command.ttl, JSON.stringify(command.value));
      } else if (command.op === 'del') {
        await redis.del(command.key);
      } else {
        throw new Error(`unknown op ${command.op}`);
      }
      process.stdout.write('{"ok":true}\n');
    } catch (e) {
      process.stdout.write(JSON.stringify({ error: String(e.message || e) }) + '\n');
    }
  });
});
lines.on('close', () => queue.then(() => redis.disconnect()));
