// A foreign writer: a Node service's ioredis client, driven line by line.
//
// stdin, one JSON command a line:
//   {"op":"setex","key":"k","ttl":60,"value":{...}}  -> SETEX k 60 JSON.stringify(value)
//   {"op":"del","key":"k"}                            -> DEL k
//   {"op":"ready"}                                    -> nothing (answered once
//                                                        the client is ready)
// stdout, one JSON answer a line, in order: {"ok":true} or {"error":"..."}.
//
// Env, named as warmcache's own settings:
//   REDIS_MODE unset or standalone: REDIS_PORT on 127.0.0.1.
//   REDIS_MODE=cluster: an ioredis Cluster (follows MOVED and ASK, refreshes
//     its slot map) seeded with REDIS_CLUSTER_NODES (host:port,...).
//   REDIS_MODE=sentinel: ioredis asks the sentinels REDIS_SENTINELS
//     (host:port,...) for REDIS_SENTINEL_MASTER (default mymaster) and checks
//     the role of what they name; it asks again when its connection drops
//     and when a write meets READONLY (a demoted primary). Not ioredis's
//     failoverDetector: a +switch-master that arrives while it is asking a
//     sentinel ends the client for good (5.11.1: the connector's disconnect
//     makes the pending connect() reject, and Redis#connect sets "end";
//     every later command fails with "Connection is closed.").
// Each command is bounded by ioredis' commandTimeout (COMMAND_TIMEOUT_MS,
// default 500), and fails at once while disconnected (no offline queue). In
// cluster and sentinel modes commands wait (up to 10 s) until the client is
// first ready, so a slow start is not a burst of failures; send "ready"
// first to wait for that without timing a command.
'use strict';
const readline = require('readline');
const Redis = require('ioredis');

const mode = process.env.REDIS_MODE || 'standalone';
const commandTimeout = Number(process.env.COMMAND_TIMEOUT_MS || 500);
const addresses = (list) =>
  list.split(',').map((address) => {
    const [host, port] = address.split(':');
    return { host, port: Number(port) };
  });

let redis;
let ready = Promise.resolve();
if (mode === 'cluster') {
  redis = new Redis.Cluster(addresses(process.env.REDIS_CLUSTER_NODES), {
    // The nodes' own connections keep ioredis's offline queue (the cluster
    // client needs it to reach a node it has not connected to yet); the
    // command timeout bounds a command from its first send, retries included.
    redisOptions: { commandTimeout, maxRetriesPerRequest: 0 },
    enableOfflineQueue: false,
    clusterRetryStrategy: () => 100,
  });
} else if (mode === 'sentinel') {
  redis = new Redis({
    sentinels: addresses(process.env.REDIS_SENTINELS),
    name: process.env.REDIS_SENTINEL_MASTER || 'mymaster',
    // The failing command is not sent again (it was not applied).
    reconnectOnError: (e) => e.message.startsWith('READONLY'),
    maxRetriesPerRequest: 0,
    commandTimeout,
    enableOfflineQueue: false,
    retryStrategy: () => 50,
  });
} else {
  redis = new Redis({
    host: '127.0.0.1',
    port: Number(process.env.REDIS_PORT),
    maxRetriesPerRequest: 0,
    commandTimeout,
    enableOfflineQueue: false,
    retryStrategy: () => 50,
  });
}
redis.on('error', () => {});
if (mode !== 'standalone') {
  ready = new Promise((resolve) => {
    redis.once('ready', resolve);
    setTimeout(resolve, 10000);
  });
}

const lines = readline.createInterface({ input: process.stdin });
let queue = ready;
lines.on('line', (line) => {
  const command = JSON.parse(line);
  queue = queue.then(async () => {
    try {
      if (command.op === 'setex') {
        await redis.setex(command.key, command.ttl, JSON.stringify(command.value));
      } else if (command.op === 'del') {
        await redis.del(command.key);
      } else if (command.op !== 'ready') {
        throw new Error(`unknown op ${command.op}`);
      }
      process.stdout.write('{"ok":true}\n');
    } catch (e) {
      process.stdout.write(JSON.stringify({ error: String(e.message || e) }) + '\n');
    }
  });
});
lines.on('close', () => queue.then(() => redis.disconnect()));
