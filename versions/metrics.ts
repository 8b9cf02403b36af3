// Server metrics: one prom-client registry per server (several servers share a test process),
// read from plain counters at scrape time so the hot paths only bump numbers.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import { ERROR_CODES, LIMITS, type BackplaneStats, type ErrorCode, type ServerStats } from './protocol.ts';
import type { ServerCounters, Strategy } from './strategy.ts';

/** The window over which /api/stats reports event-loop delay. */
export const LOOP_DELAY_WINDOW_MS = 1000;
/** Sampling period of the event-loop delay monitor; its samples include this period, so it is subtracted. */
const LOOP_RESOLUTION_MS = 10;


export interface HostGauges {
  connections(): number;
  rooms(): number;
  bufferedBytes(): number;
}

export class ServerMetrics {
  readonly registry = new client.Registry();
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private lastLoop = { p50: 0, p99: 0, max: 0 };
  private readonly timer: NodeJS.Timeout;
  private readonly started = process.hrtime.bigint();

  constructor(
    private readonly strategy: Strategy,
    private readonly counters: ServerCounters,
    private readonly host: HostGauges,
  ) {
    this.loop.enable();
    this.timer = setInterval(() => {
      const ms = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
      this.lastLoop = { p50: ms(this.loop.percentile(50)), p99: ms(this.loop.percentile(99)), max: ms(this.loop.max) };
      this.loop.reset();
    }, LOOP_DELAY_WINDOW_MS);
    this.timer.unref();

    const r = this.registry;
    r.setDefaultLabels({ version: strategy.version });
    client.collectDefaultMetrics({ register: r });
    const gauge = (name: string, help: string, read: () => number): void => {
      new client.Gauge({ name, help, registers: [r], collect() { this.set(read()); } });
    };
    const counter = (name: string, help: string, read: () => number): void => {
      new client.Counter({ name, help, registers: [r], collect() { this.reset(); this.inc(read()); } });
    };
    gauge('chat_connections_open', 'Open WebSocket connections.', () => host.connections());
    gauge('chat_pool_size', 'Connections the version holds, dead ones included.', () => strategy.stats().poolSize);
    gauge('chat_rooms', 'Rooms with at least one member.', () => host.rooms());
    gauge('chat_queue_depth', 'Messages waiting: in per-client queues, summed (v3); broadcasts waiting for the lock (v2).', () => strategy.stats().queueDepth);
    gauge('chat_queue_depth_max', 'Deepest single queue (v3: a client\'s; v2: the lock\'s).', () => strategy.stats().queueDepthMax);
    gauge('chat_buffered_bytes', 'Bytes waiting in user-space socket send buffers, summed.', () => host.bufferedBytes());
    counter('chat_messages_received_total', 'Chat messages accepted from WebSocket and HTTP.', () => counters.received);
    counter('chat_deliveries_total', 'Chat and direct messages handed to a client socket.', () => counters.deliveries);
    counter('chat_direct_messages_total', 'Direct messages accepted (each once, however many connections it reached).', () => counters.directs);
    counter('chat_drops_total', 'Chat messages not delivered to a slow client (v3 drop, kick).', () => counters.drops);
    counter('chat_kicks_total', 'Clients closed for being slow (v3 kick).', () => counters.kicks);
    counter('chat_control_frames_total', 'Non-chat frames sent: joined, presence, error, dropped.', () => counters.controlFrames);
    counter('chat_socket_writes_total', 'Socket writes: one per frame in v1 and v2, one per queue flush in v3.', () => counters.writes);
    if (strategy.backplaneStats) this.backplaneSeries(strategy.backplaneStats.bind(strategy));
    new client.Counter({
      name: 'chat_bad_input_total',
      help: 'Bad input from clients, by error code.',
      labelNames: ['code'],
      registers: [r],
      collect() {
        this.reset();
        for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) this.inc({ code }, counters.badInput.get(code) ?? 0);
      },
    });
    new client.Counter({
      name: 'chat_limit_refusals_total',
      help: "What the server's limits refused or cut off, by limit.",
      labelNames: ['limit'],
      registers: [r],
      collect() {
        this.reset();
        for (const limit of LIMITS) this.inc({ limit }, counters.refusals.get(limit) ?? 0);
      },
    });
  }

  /** v4: what the node's backplane does, beside what its sockets do. */
  private backplaneSeries(read: () => BackplaneStats): void {
    const r = this.registry;
    const gauge = (name: string, help: string, get: (b: BackplaneStats) => number): void => {
      new client.Gauge({ name, help, registers: [r], collect() { this.set(get(read())); } });
    };
    const counter = (name: string, help: string, get: (b: BackplaneStats) => number): void => {
      new client.Counter({ name, help, registers: [r], collect() { this.reset(); this.inc(get(read())); } });
    };
    gauge('chat_backplane_up', '1 while the node can publish to its backplane, 0 while it cannot.', (b) => (b.state === 'up' ? 1 : 0));
    gauge('chat_backplane_in_flight', 'Appends sent to the backplane and not yet answered: the backlog while it is slow.', (b) => b.inFlight);
    gauge('chat_backplane_publish_rtt_p50_seconds', 'Round trip of an append, median over the last second.', (b) => b.publishRttMs.p50 / 1000);
    gauge('chat_backplane_publish_rtt_p99_seconds', 'Round trip of an append, 99th percentile over the last second.', (b) => b.publishRttMs.p99 / 1000);
    counter('chat_backplane_published_total', 'Messages this node appended to the backplane.', (b) => b.published);
    counter('chat_backplane_received_total', 'Entries this node took from the backplane live.', (b) => b.received);
    counter('chat_backplane_refused_total', 'Sends refused with BACKPLANE_DOWN.', (b) => b.refused);
    counter('chat_backplane_reconnects_total', 'Times the node got its backplane back after losing it.', (b) => b.reconnects);
    counter('chat_backplane_outage_seconds_total', 'Seconds the backplane was down, in all.', (b) => b.outageS);
    counter('chat_backplane_replayed_total', 'Messages replayed to clients that resumed.', (b) => b.replayed);
    counter('chat_backplane_gaps_total', 'Gap notices sent: history no longer held what a client missed.', (b) => b.gaps);
    counter('chat_backplane_resets_total', 'Reset notices sent: a stream the client knew is gone.', (b) => b.resets);
    counter('chat_backplane_refetched_total', 'Entries fetched from history because the live feed skipped them.', (b) => b.refetched);
  }

  snapshot(): ServerStats {
    const s = this.strategy.stats();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      version: this.strategy.version,
      describe: this.strategy.describe,
      connections: this.host.connections(),
      poolSize: s.poolSize,
      rooms: this.host.rooms(),
      received: this.counters.received,
      deliveries: this.counters.deliveries,
      directs: this.counters.directs,
      drops: this.counters.drops,
      kicks: this.counters.kicks,
      controlFrames: this.counters.controlFrames,
      writes: this.counters.writes,
      queueDepth: s.queueDepth,
      queueDepthMax: s.queueDepthMax,
      bufferedBytes: this.host.bufferedBytes(),
      badInput: Object.fromEntries(this.counters.badInput),
      refusals: Object.fromEntries(this.counters.refusals),
      loopDelayMs: this.lastLoop,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      uptimeS: Number(process.hrtime.bigint() - this.started) / 1e9,
      ...(this.strategy.node ? { node: this.strategy.node } : {}),
      ...(this.strategy.backplaneStats ? { backplane: this.strategy.backplaneStats() } : {}),
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.loop.disable();
  }
}
