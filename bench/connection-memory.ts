// `npm run bench:connections`: what an idle connection costs a server, apart from what V8 and
// malloc keep after a connection storm. The server runs in this process (started with
// --expose-gc); a child process connects the clients in two halves. After each half the heap is
// collected fully, so live heap per added connection is what the server really holds for one;
// RSS per added connection and the connect rate are read beside it. `ws` is a bare ws server
// that greets each client with one small frame: the floor the versions build on. Apart from any
// server, each version's own per-client state (v1's pool entry, v3's pump and its places in the
// hub's maps) is weighed on STATE_CLIENTS connections that have no peer: steady to about ten bytes,
// where the heap of a real storm varies by a tenth of a KB from run to run.
import { fork, type ChildProcess } from 'node:child_process';
import { Socket, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { WebSocketServer, type WebSocket } from 'ws';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { WireClient } from '../auto-client/wire-client.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { fmt, localAddressOf } from '../common/helpers.ts';
import { ServerCounters, type Connection } from '../versions/strategy.ts';
import { createStrategy, isOneProcessVersion, startVersion, type OneProcessVersion } from '../versions/versions.ts';

const IN_FLIGHT = 256;
const STEP_TIMEOUT_MS = 120_000;
/** Connections the versions' own state is weighed on: the connections scenario's 19,900 idle connections. */
const STATE_CLIENTS = 19_900;
const WS_SOCKET = Symbol('ws');
const ignore = (): void => {};

type ToClients = { connect: number };

if (process.argv[2] === '--clients') await clients(process.argv[3] as string);
else await main();

/** The child: connects as many clients as it is told, from spread source addresses; says when done. */
async function clients(url: string): Promise<void> {
  const held: WireClient[] = [];
  process.on('message', (m: ToClients) => {
    void (async () => {
      const target = held.length + m.connect;
      let next = held.length;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < target) {
            const i = next++;
            held.push(await WireClient.connect({ url: `${url}?name=c${i}`, localAddress: localAddressOf(i), onText: () => {} }));
          }
        }),
      );
      process.send?.({ connected: held.length, seconds: (performance.now() - started) / 1000 });
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

interface Row {
  server: string;
  clients: number;
  heapKBPerAdded: number;
  rssKBPerAdded: number;
  connectsPerSecond: number;
  /** What the version itself keeps per client, in bytes (null for bare ws). */
  stateBytesPerClient: number | null;
}

/** A socket as ws leaves it after the upgrade: its WebSocket under a symbol, four listeners (ws/lib/websocket.js, setSocket). */
function likeWsSocket(): Socket {
  const socket = Object.assign(new Socket(), { [WS_SOCKET]: true });
  for (const event of ['close', 'data', 'end', 'error']) socket.on(event, ignore);
  return socket;
}

/**
 * Live heap the version's own structures take per client: STATE_CLIENTS connections (a real,
 * unconnected net.Socket each, as ws leaves it) added to a bare strategy, heap read after full
 * GCs before and after. What a version adds to the socket itself (a listener, a property) counts.
 */
async function stateBytesPerClient(name: OneProcessVersion, settle: () => Promise<NodeJS.MemoryUsage>): Promise<number> {
  const strategy = createStrategy(name, new ServerCounters());
  const open = { readyState: 1 } as WebSocket; // all a version reads of ws before it sends
  const conns: Connection[] = Array.from({ length: STATE_CLIENTS }, (_, i) => ({ id: i + 1, ws: open, socket: likeWsSocket(), name: `c${i}`, room: 'lobby' }));
  const before = await settle();
  for (const c of conns) await strategy.add(c);
  const after = await settle();
  strategy.close();
  return Math.round((after.heapUsed - before.heapUsed) / STATE_CLIENTS);
}

async function main(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench:connections does)');
  const argv = await yargs(hideBin(process.argv))
    .scriptName('npm run bench:connections --')
    .options({
      servers: { type: 'string', array: true, default: ['ws', 'v1', 'v3'], describe: 'ws (bare), v1, v1.1, v2 or v3' },
      clients: { type: 'number', default: 9000, describe: 'clients in all, in two halves (under 10,000: this process holds a socket for each)' },
      json: { type: 'boolean', default: false, describe: 'print the results as JSON on stdout' },
    })
    .strict()
    .help()
    .parseAsync();
  if (!(argv.clients >= 1000 && argv.clients < 10_000)) throw new RangeError('--clients must be from 1,000 to 9,999');
  const rows: Row[] = [];
  for (const name of argv.servers) {
    const settle = async (): Promise<NodeJS.MemoryUsage> => {
      for (let i = 0; i < 3; i++) {
        gc();
        await sleep(200);
      }
      return process.memoryUsage();
    };
    // Weighed first, with no server up: nothing else in this process allocates meanwhile.
    const state = isOneProcessVersion(name) ? await stateBytesPerClient(name, settle) : null;
    let close: () => Promise<void>;
    let wsUrl: string;
    if (name === 'ws') {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, backlog: 4096, perMessageDeflate: false, clientTracking: true });
      wss.on('connection', (ws) => ws.send('{"type":"joined"}'));
      await new Promise((r) => wss.once('listening', r));
      wsUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/chatroom`;
      close = async () => {
        for (const c of wss.clients) c.terminate();
        await new Promise((r) => wss.close(r));
      };
    } else if (isOneProcessVersion(name)) {
      const server = await startVersion(name, { port: 0 });
      wsUrl = server.wsUrl;
      close = () => server.close();
    } else throw new RangeError(`--servers: unknown "${name}"`);
    let child: ChildProcess | null = null;
    try {
      child = fork(fileURLToPath(import.meta.url), ['--clients', wsUrl], { execArgv: process.execArgv.filter((a) => a !== '--expose-gc'), stdio: 'inherit' });
      const step = (n: number): Promise<{ connected: number; seconds: number }> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${name}: clients did not connect in time`)), STEP_TIMEOUT_MS);
          child!.once('message', (m: { connected: number; seconds: number }) => {
            clearTimeout(timer);
            resolve(m);
          });
          child!.send({ connect: n } satisfies ToClients);
        });
      const half = Math.floor(argv.clients / 2);
      await step(half);
      const m1 = await settle();
      const second = await step(argv.clients - half);
      const m2 = await settle();
      const added = second.connected - half;
      rows.push({
        server: name,
        clients: second.connected,
        heapKBPerAdded: round((m2.heapUsed - m1.heapUsed) / added / 1024),
        rssKBPerAdded: round((m2.rss - m1.rss) / added / 1024),
        connectsPerSecond: Math.round(added / second.seconds),
        stateBytesPerClient: state,
      });
    } finally {
      child?.kill();
      await close();
    }
  }
  if (argv.json) process.stdout.write(JSON.stringify({ node: process.version, rows }) + '\n');
  else {
    const table = new Table({
      head: ['server', 'clients', 'live heap KB per added connection', 'RSS KB per added connection', 'connects/s (second half)', `the version's own state, B per client (${fmt(STATE_CLIENTS)}, no peers)`],
    });
    for (const r of rows) table.push([r.server, fmt(r.clients), r.heapKBPerAdded, r.rssKBPerAdded, fmt(r.connectsPerSecond), r.stateBytesPerClient ?? '-']);
    process.stderr.write(`idle connections, server in this process, clients in a child; heap after a full GC:\n${table.toString()}\n`);
  }
  process.exit(0);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
