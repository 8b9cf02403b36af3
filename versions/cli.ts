// `npm run v1|v2|v3|v4 -- [flags]`: starts one version in the foreground (v4: a cluster of node
// processes, or with --node one node of it). The only module here that touches argv, signals and
// process.exit (v4's launcher, cluster.ts, reports on the output streams too).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_LIMITS, formatListening } from './protocol.ts';
import { DEFAULT_HOST_OPTIONS, DEFAULT_PING_INTERVAL_MS } from './host-options.ts';
import { DEFAULT_RATE_LIMIT } from './rate-limit.ts';
import { AUTH_MODES, type AuthMode } from './auth.ts';
import { DEFAULT_LOG_KEEP, DEFAULT_LOG_MAX_BYTES } from './message-log.ts';
import { DEFAULT_PORTS, startVersion } from './versions.ts';
import { DEFAULT_VERSION_OPTIONS } from './version-options.ts';
import { ON_FULL_POLICIES } from './v3/hub.ts';
import { runCluster, type ClusterHandle } from './v4/cluster.ts';
import { DEFAULT_NODE_TIMEOUT_MS } from '../common/redis-cluster.ts';
import { DEFAULT_ACK_TIMEOUT_MS, DEFAULT_HISTORY, DEFAULT_HISTORY_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_REPLAY_BYTES, DEFAULT_ROOM_TTL_MS } from './v4/redis-backplane.ts';

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run <v1|v2|v3|v4|v5> --')
  .version(false) // "version" is our positional: which chatroom version
  .command('$0 <version>', 'start one chatroom version')
  .positional('version', { type: 'string', choices: ['v1', 'v2', 'v3', 'v4', 'v5'], demandOption: true, describe: 'which version' })
  .options({
    host: { type: 'string', default: '127.0.0.1', describe: 'interface to listen on' },
    port: { type: 'number', describe: 'TCP port (0: a free one). Default 8081, 8082, 8083 for v1, v2, v3; v4: 8084 for its first node, +1 for each next; v5: 8094, +1 for each next' },
    prune: { type: 'boolean', default: false, describe: 'v1 only: v1.1, remove closed sockets and defer the broadcast' },
    'hold-ms': { type: 'number', default: DEFAULT_VERSION_OPTIONS.holdMs, describe: 'v2 only: ms to sleep under the lock per broadcast (the article\'s sleep)' },
    queue: { type: 'number', default: DEFAULT_VERSION_OPTIONS.queue, describe: 'v3 only: per-client queue length, in messages' },
    'on-full': { choices: ON_FULL_POLICIES, default: DEFAULT_VERSION_OPTIONS.onFull, describe: 'v3 only: block (the article\'s bug), drop (v3.1), kick (close 4008)' },
    'flush-pacing': { type: 'number', default: DEFAULT_VERSION_OPTIONS.flushPacing, describe: 'v3 only: after a sweep that spent d ms writing, rest pacing × d ms (0: never rest)' },
    'flush-rest-max': { type: 'number', default: DEFAULT_VERSION_OPTIONS.flushRestMaxMs, describe: 'v3 only: the longest rest between sweeps, in ms' },
    'flush-slice': { type: 'number', default: DEFAULT_VERSION_OPTIONS.flushSliceMs, describe: 'v3 only: ms of writing after which a sweep lets the server read (0: whole sweeps)' },
    'max-frame': { type: 'number', default: DEFAULT_LIMITS.maxFrameBytes, describe: 'largest frame in bytes (larger: close 1009)' },
    'max-content': { type: 'number', default: DEFAULT_LIMITS.maxContentChars, describe: 'largest chat content in characters' },
    'ping-ms': { type: 'number', default: DEFAULT_PING_INTERVAL_MS, describe: 'heartbeat period in ms (v3)' },
    'allow-origin': { type: 'string', array: true, default: [] as string[], describe: 'extra browser origin allowed to connect and post (\'*\' for any)' },
    'max-connections': { type: 'number', default: DEFAULT_HOST_OPTIONS.maxConnections, describe: 'open connections past which an upgrade gets 503 (0: no cap)' },
    'max-per-ip': { type: 'number', default: DEFAULT_HOST_OPTIONS.maxPerIp, describe: 'open connections one remote address may hold; past it, 503 (0: no cap)' },
    'idle-timeout-ms': { type: 'number', default: DEFAULT_HOST_OPTIONS.idleTimeoutMs, describe: 'close a socket with no traffic either way for this long, with 4001 (0: never)' },
    'close-grace-ms': { type: 'number', default: DEFAULT_HOST_OPTIONS.closeGraceMs, describe: 'cut off a client the server closed that has not answered the close in this long' },
    'headers-timeout-ms': { type: 'number', default: DEFAULT_HOST_OPTIONS.headersTimeoutMs, describe: "an HTTP request's headers must arrive within this (408 after)" },
    'frame-timeout-ms': { type: 'number', default: DEFAULT_HOST_OPTIONS.frameTimeoutMs, describe: 'a frame or fragmented message must end within this of its first bytes (1008 after; 0: no limit)' },
    'request-timeout-ms': { type: 'number', default: DEFAULT_HOST_OPTIONS.requestTimeoutMs, describe: 'a whole HTTP request must arrive within this (408 after)' },
    'max-msgs-per-s': { type: 'number', describe: `frames one connection may send per second; past it they are dropped (RATE_LIMITED). Default ${DEFAULT_RATE_LIMIT.msgsPerS} for v3 and v4, no limit for v1 and v2; 0: no limit` },
    burst: { type: 'number', default: DEFAULT_HOST_OPTIONS.burst, describe: 'frames one connection may send at once above --max-msgs-per-s' },
    auth: { choices: AUTH_MODES, default: 'none' as AuthMode, describe: 'how connections sign in: none; dev (any name, from the page; loopback only); jwt (a token checked before the upgrade)' },
    'jwt-secret': { type: 'string', describe: 'HS256 secret for --auth jwt or dev (at least 32 bytes; default: $CHAT_JWT_SECRET; dev without one makes one up)' },
    'jwt-public-key': { type: 'string', describe: 'RS256/ES256: a PEM public key file for --auth jwt' },
    'jwks-file': { type: 'string', describe: 'RS256/ES256: a JWKS file for --auth jwt (the token\'s kid picks the key)' },
    'jwt-issuer': { type: 'string', describe: 'the iss a token must have' },
    'jwt-audience': { type: 'string', describe: 'the aud a token must have' },
    'jwt-name-claim': { type: 'string', default: 'name', describe: 'the claim that holds the display name (else the sub)' },
    'api-key': { type: 'string', describe: 'the key that lets POST /api/send push to a user (Authorization: Bearer <key>; default: $CHAT_API_KEY)' },
    'message-log': { type: 'string', describe: 'record every accepted message: stdout, or jsonl:FILE (rotated by size)' },
    'message-log-content': { type: 'boolean', default: false, describe: 'record the content too (by default: time, id, from, room or user, size)' },
    'message-log-max-bytes': { type: 'number', default: DEFAULT_LOG_MAX_BYTES, describe: 'rotate the log file past this size' },
    'message-log-keep': { type: 'number', default: DEFAULT_LOG_KEEP, describe: 'rotated log files kept' },
    nodes: { type: 'number', default: 2, describe: 'v4 only: node processes to start' },
    restart: { type: 'boolean', default: true, describe: 'v4 only: start a node that died again on its port, after 1 s, doubling to 30 s (--no-restart: leave it dead)' },
    redis: { type: 'string', describe: 'v4 only: redis://host:port of the backplane (default: a private redis-server on a free loopback port)' },
    history: { type: 'number', default: DEFAULT_HISTORY, describe: 'v4 only: messages of history kept per room, for clients that resume' },
    'max-in-flight': { type: 'number', default: DEFAULT_MAX_IN_FLIGHT, describe: 'v4 only: sends waiting for Redis past which a send is refused (BACKPLANE_DOWN)' },
    'room-ttl': { type: 'number', default: DEFAULT_ROOM_TTL_MS / 1000, describe: "v4 only: seconds without a send after which a room's keys expire in Redis" },
    'history-bytes': { type: 'number', default: DEFAULT_HISTORY_BYTES, describe: 'v4 only: bytes of history kept per room, beside --history messages' },
    'replay-bytes': { type: 'number', default: DEFAULT_REPLAY_BYTES, describe: 'v4 only: bytes one replay sends at most; what it leaves out is announced as a gap' },
    'allow-eviction': { type: 'boolean', default: false, describe: 'v4 only: run on a Redis whose maxmemory-policy evicts keys (its losses reach members as gap or reset)' },
    node: { type: 'string', describe: 'v4 and v5: run one node of a cluster, with this name, in this process (needs --redis or --redis-cluster); the launcher sets it' },
    'redis-cluster': { type: 'string', describe: 'v5 only: host:port,… of members of a Redis Cluster (default: a private one, --shards masters and a replica each, on free loopback ports)' },
    shards: { type: 'number', default: 3, describe: "v5 only: masters of the private Redis Cluster, each with one replica" },
    'cluster-node-timeout': { type: 'number', default: DEFAULT_NODE_TIMEOUT_MS, describe: "v5 only: the private cluster's cluster-node-timeout (ms): how long a master may be silent before its replica is elected" },
    ack: { type: 'string', choices: ['master', 'replica'], default: 'master', describe: "v5 (and v4 on a Redis with replicas): acknowledge a send once its master has it, or once a replica has it too (WAIT 1; a master's failover then loses no acknowledged send)" },
    'ack-timeout-ms': { type: 'number', default: DEFAULT_ACK_TIMEOUT_MS, describe: 'with --ack replica: how long a replica may take to confirm; past it the send is answered SEND_UNKNOWN' },
  })
  .strict()
  .help()
  .parseAsync();

const requested = argv.version as 'v1' | 'v2' | 'v3' | 'v4' | 'v5';
if ((requested === 'v4' || requested === 'v5') && argv.node === undefined) {
  if (!Number.isInteger(argv.nodes) || argv.nodes < 1) {
    console.error(`chatroom ${requested}: --nodes must be an integer >= 1`);
    process.exit(1);
  }
  let cluster: ClusterHandle;
  try {
    cluster = await runCluster({ version: requested, nodes: argv.nodes, port: argv.port ?? DEFAULT_PORTS[requested], redis: argv.redis, redisCluster: argv['redis-cluster'], shards: argv.shards, clusterNodeTimeoutMs: argv['cluster-node-timeout'], argv: hideBin(process.argv), restart: argv.restart });
  } catch (err) {
    console.error(`chatroom ${requested}: cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log(`chatroom ${requested}: ${signal}, stopping ${cluster.nodes.length} nodes${cluster.privateRedis ? ` and ${cluster.privateRedis}` : ''}`);
      void cluster.stop().then(() => process.exit(0));
    });
  }
  void cluster.ended.then((code) => process.exit(code));
} else await startOne(requested);

async function startOne(requested: 'v1' | 'v2' | 'v3' | 'v4' | 'v5'): Promise<void> {
  const version = requested === 'v1' && argv.prune ? 'v1.1' : requested;
  const options = {
    host: argv.host,
    holdMs: argv['hold-ms'],
    queue: argv.queue,
    onFull: argv['on-full'],
    flushPacing: argv['flush-pacing'],
    flushRestMaxMs: argv['flush-rest-max'],
    flushSliceMs: argv['flush-slice'],
    limits: { maxFrameBytes: argv['max-frame'], maxContentChars: argv['max-content'] },
    pingIntervalMs: argv['ping-ms'],
    allowOrigins: argv['allow-origin'].map(String),
    maxConnections: argv['max-connections'],
    maxPerIp: argv['max-per-ip'],
    idleTimeoutMs: argv['idle-timeout-ms'],
    closeGraceMs: argv['close-grace-ms'],
    headersTimeoutMs: argv['headers-timeout-ms'],
    requestTimeoutMs: argv['request-timeout-ms'],
    frameTimeoutMs: argv['frame-timeout-ms'],
    maxMsgsPerS: argv['max-msgs-per-s'] ?? null,
    burst: argv.burst,
    auth: {
      mode: argv.auth,
      ...definedOnly({ jwtSecret: argv['jwt-secret'] ?? (argv.auth !== 'none' && !argv['jwt-public-key'] && !argv['jwks-file'] ? process.env.CHAT_JWT_SECRET : undefined), jwtPublicKeyFile: argv['jwt-public-key'], jwksFile: argv['jwks-file'], issuer: argv['jwt-issuer'], audience: argv['jwt-audience'] }),
      nameClaim: argv['jwt-name-claim'],
    },
    apiKey: argv['api-key'] ?? process.env.CHAT_API_KEY ?? null,
    messageLog: argv['message-log'] ? { target: argv['message-log'], content: argv['message-log-content'], maxBytes: argv['message-log-max-bytes'], keep: argv['message-log-keep'] } : null,
  };
  // (v4 here is one node, which the launcher starts on a port of its choosing)
  const v4 = { ...(argv.redis ? { redis: argv.redis } : {}), ...(argv['redis-cluster'] ? { redisCluster: argv['redis-cluster'].split(',') } : {}), ack: argv.ack as 'master' | 'replica', ackTimeoutMs: argv['ack-timeout-ms'], ...(argv.node ? { node: argv.node } : {}), history: argv.history, maxInFlight: argv['max-in-flight'], roomTtlMs: argv['room-ttl'] * 1000, historyBytes: argv['history-bytes'], replayBytes: argv['replay-bytes'], allowEviction: argv['allow-eviction'] };
  let server;
  try {
    server = await startVersion(version, { ...options, ...v4, port: argv.port ?? (version === 'v4' || version === 'v5' ? 0 : DEFAULT_PORTS[version]) });
  } catch (err) {
    console.error(`chatroom ${version}${argv.node ? ` node ${argv.node}` : ''}: cannot start: ${(err as Error).message}`);
    process.exit(1);
  }

  console.log(`chatroom ${server.strategy.describe}`);
  console.log(`  page:      ${server.url}`);
  console.log(`  websocket: ${server.wsUrl}`);
  console.log(`  metrics:   ${server.url}metrics`);
  // One machine-readable line for harnesses: everything after the tag is JSON.
  console.log(formatListening({ version, describe: server.strategy.describe, port: server.port, url: server.url, wsUrl: server.wsUrl, pid: process.pid, ...(server.strategy.node ? { node: server.strategy.node } : {}) }));

  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      console.log(`chatroom ${version}: ${signal}, closing sockets with 1001`);
      server
        .close()
        .then(() => process.exit(0))
        .catch((err: unknown) => {
          console.error(err);
          process.exit(1);
        });
    });
  }
}

/** The entries of `o` that have a value: an option not given stays absent, not undefined. */
function definedOnly<T extends Record<string, string | undefined>>(o: T): Partial<Record<keyof T, string>> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<Record<keyof T, string>>;
}
