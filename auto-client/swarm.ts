// A swarm: thousands of measuring clients in one process. Senders follow a precomputed open-model
// schedule; every receiver measures one-way latency from the intended send time (and, beside it,
// from the actual send time), and per-sender sequence numbers give lost, duplicate and reordered
// deliveries. The swarm polices itself: event-loop delay, CPU and schedule lag.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DeliveryMeter, leakedTo, meteredClient, type ClientKind, type MeteredClient } from './delivery-meter.ts';
import { createHistogram, encodeHistogram, recordUs } from './histogram.ts';
import { rng, waitUntil } from '../common/helpers.ts';
import { encodeClientFrame } from '../versions/protocol.ts';
import { encodeProbe, nowUs } from './probe.ts';
import { WireClient } from './wire-client.ts';
import { SendFate } from './send-fate.ts';
import { Senders } from './senders.ts';
import { Switches } from './switches.ts';
import { Rotation } from './rotation.ts';
import { keepClaim, keepTail, nextResumeUrl, noteRecovery, type Resumable } from './resume.ts';
import { applySlow, type SlowReader } from './slow-reader.ts';
import { parseJsonLines, peekType } from './control-frames.ts';
import type { ClientSpec, ConnectFailure, SwarmPlan, SwarmResult, SwarmTiming } from './swarm-plan.ts';

interface LiveClient extends MeteredClient, Resumable, SlowReader {
  spec: ClientSpec;
  wire: WireClient | null;
  joined: boolean;
  connectedAtUs: number;
  /** Resolves the connect that waits for this client's `joined`. */
  onJoined: (() => void) | null;
  /** Which connection of this client is current: a churn client's last one closes after the next has begun. */
  generation: number;
  /** The spec's URL with this client's room and name in its query. */
  joinUrl: string;
  /** When it lost its last connection (µs), with a resume plan. */
  lostAtUs: number;
}

const TICK_MS = 1;
/** A switcher asks this often. */
const SWITCH_EVERY_US = 1_000_000;
/** Connect failures and unparsed frames kept with their text; beyond these only the count grows. */
const MAX_FAILURES_KEPT = 20;
const MAX_UNPARSED_SAMPLES = 3;
/** Characters of an unparsed frame kept as its sample. */
const UNPARSED_SAMPLE_CHARS = 80;
/** How long a client waits for the server's `joined` after the upgrade. */
const JOIN_TIMEOUT_MS = 15_000;

export class Swarm {
  private readonly epoch: bigint;
  private readonly clients: LiveClient[];
  /** The clients with a slow-reader spec: the only ones the per-tick slow logic needs to visit. */
  private readonly slowClients: LiveClient[];
  private readonly meter: DeliveryMeter;
  private readonly connectHist = createHistogram();
  private ramp = { startUs: 0, endUs: 0, connected: 0 };
  private readonly connectFailures: ConnectFailure[] = [];
  /** Clients connectAll has finished with, joined or failed. */
  private connectsDone = 0;
  private connectFailureCount = 0;
  private readonly unparsed = { count: 0, samples: [] as string[] };
  /** The run is over and the swarm closes its clients: closes from here on are its own. */
  private closing = false;
  private readonly loop = monitorEventLoopDelay({ resolution: 10 });
  private timing: SwarmTiming | null = null;
  private churn = { joins: 0, leaves: 0 };
  private readonly switches = new Switches();

  constructor(private readonly plan: SwarmPlan) {
    this.epoch = BigInt(plan.epochNs);
    this.meter = new DeliveryMeter(this.epoch, plan.stallThresholdUs, plan.sizeBytes, plan.behindUs);
    this.clients = plan.clients.map((spec) => ({
      ...meteredClient(spec.id, spec.room, spec.kind),
      spec,
      wire: null,
      joined: false,
      connectedAtUs: 0,
      onJoined: null,
      generation: 0,
      throttleBytes: 0,
      joinUrl: joinUrl(spec),
      lastTail: '',
      urlIndex: Math.max(0, plan.resume?.urls.indexOf(spec.url) ?? 0),
      lostAtUs: 0,
      fate: plan.resume && spec.sends ? new SendFate() : null,
      claim: null,
    }));
    if (plan.resume) for (const c of this.clients) c.report.recovery = { reconnects: 0, reconnectMs: [], replayed: 0, gapMissed: 0, resets: 0, refused: 0, refusedButDelivered: 0, uncertain: 0, resent: 0, uncertainArrived: 0, lostWithNode: 0 };
    this.slowClients = this.clients.filter((c) => c.spec.slow);
  }

  get size(): number {
    return this.clients.length;
  }

  connectedCount(): number {
    return this.clients.filter((c) => c.joined).length;
  }

  receivedCount(): number {
    let n = 0;
    for (const c of this.clients) n += c.report.received;
    return n;
  }

  /** How far connectAll has got: connects finished (joined or failed), and clients connected. */
  connectProgress(): { done: number; connected: number } {
    return { done: this.connectsDone, connected: this.connectedCount() };
  }

  /** Connects every client (churn clients too), a bounded number at a time. */
  async connectAll(): Promise<void> {
    const started = nowUs(this.epoch);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < this.clients.length) {
        const c = this.clients[next++] as LiveClient;
        await this.connect(c);
        this.connectsDone++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.plan.connectConcurrency, this.clients.length) }, worker));
    this.ramp = { startUs: started, endUs: nowUs(this.epoch), connected: this.connectedCount() };
  }

  private async connect(c: LiveClient): Promise<void> {
    const started = nowUs(this.epoch);
    const generation = ++c.generation;
    try {
      c.wire = await WireClient.connect({
        url: c.joinUrl,
        ...(c.spec.authorization ? { authorization: c.spec.authorization } : {}),
        ...(c.spec.localAddress ? { localAddress: c.spec.localAddress } : {}),
        onText: (buf, start, end) => {
          if (c.generation !== generation) return; // still arriving on a connection this client left
          if (!this.meter.onText(c, buf, start, end)) this.onControl(c, buf, start, end);
          else if (c.report.recovery) {
            keepTail(c, c.report.recovery, buf, start, end);
          }
        },
        onBinary: (_buf, start, end) => {
          if (c.generation === generation) this.noteUnparsed(`<a binary frame of ${end - start} bytes>`);
        },
        onChunk: () => this.meter.beginChunk(),
        onClose: (code) => {
          if (c.generation !== generation) return; // a connection this client already left
          c.report.closeCode = code;
          // Before the greeting it is a failed connect (below); after it, the server let a client go.
          const letGo = c.joined && !this.closing;
          if (letGo) c.report.closedByServer ??= { code, atUs: nowUs(this.epoch) };
          c.joined = false;
          c.onJoined?.();
          if (letGo && this.plan.resume) {
            c.lostAtUs = nowUs(this.epoch);
            this.resumeLater(c);
          }
        },
      });
      if (this.plan.awaitJoined) await this.joined(c);
      else c.joined = true;
      if (!c.joined) throw new Error(`closed before joined (${c.wire?.closeCode ?? 'timed out'})`);
      c.connectedAtUs = nowUs(this.epoch);
      if (c.lostAtUs > 0 && c.report.recovery) {
        c.report.recovery.reconnects++;
        c.report.recovery.reconnectMs.push(Math.round((c.connectedAtUs - c.lostAtUs) / 100) / 10);
        c.lostAtUs = 0;
      }
      recordUs(this.connectHist, c.connectedAtUs - started);
    } catch (err) {
      c.wire?.destroy();
      c.wire = null;
      this.connectFailureCount++;
      const e = err as NodeJS.ErrnoException;
      if (this.connectFailures.length < MAX_FAILURES_KEPT) this.connectFailures.push({ atUs: nowUs(this.epoch), message: e.message, code: e.code ?? null });
    }
  }

  /** Resolves when the server greets `c` with `joined`, the connection closes, or JOIN_TIMEOUT_MS pass. */
  private joined(c: LiveClient): Promise<void> {
    if (c.joined || c.wire?.closeCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => c.onJoined?.(), JOIN_TIMEOUT_MS);
      c.onJoined = () => {
        clearTimeout(timer);
        c.onJoined = null;
        resolve();
      };
    });
  }

  private onControl(c: LiveClient, buf: Buffer, start: number, end: number): void {
    const type = peekType(buf, start, end);
    if (c.spec.switches && (type === 'joined' || type === 'error')) this.switches.answered(c.spec.id, nowUs(this.epoch), type === 'error');
    if (type !== null && c.report.recovery && (type === 'gap' || type === 'reset' || type === 'error')) return noteRecovery(c, c.report.recovery, buf.toString('utf8', start, end), nowUs(this.epoch));
    if (type === 'joined' && c.report.recovery) keepClaim(c, buf.toString('utf8', start, end));
    if (type !== null && type !== 'dropped') return this.onMessage(c, type, undefined);
    const text = buf.toString('utf8', start, end);
    const messages = parseJsonLines(text);
    if (messages === null) return this.noteUnparsed(text);
    for (const m of messages) {
      const msg = m as { type?: unknown; total?: unknown } | null;
      this.onMessage(c, typeof msg?.type === 'string' ? msg.type : null, msg?.total);
    }
  }

  /** Connects `c` again, to the next URL, with where it left the stream; retries until the drain ends. */
  private resumeLater(c: LiveClient): void {
    const resume = this.plan.resume;
    if (!resume) return;
    setTimeout(() => {
      const drainEndUs = this.timing?.drainEndUs ?? Infinity;
      if (this.closing || c.joined || nowUs(this.epoch) >= drainEndUs) return;
      c.joinUrl = nextResumeUrl(c, resume.urls);
      void this.connect(c).then(() => {
        if (!c.joined) this.resumeLater(c); // that node refused it too: the next one
      });
    }, resume.delayMs);
  }

  /** One probe from `c`; with a resume plan it carries its seq as its id, so the server's answers name it. */
  private sendProbe(c: LiveClient, seq: number, dueUs: number, now: number): void {
    const content = encodeProbe({ sender: c.spec.id, seq, intendedUs: dueUs, sentUs: now }, this.plan.sizeBytes);
    if (c.spec.directTo !== undefined) return c.wire?.sendText(encodeClientFrame({ type: 'direct', to: c.spec.directTo, content }));
    c.wire?.sendText(encodeClientFrame(c.fate ? { type: 'chat', content, id: String(seq) } : { type: 'chat', content }));
  }

  /** An external server may send anything; what the swarm cannot read is counted, never ignored. */
  private noteUnparsed(text: string): void {
    this.unparsed.count++;
    if (this.unparsed.samples.length < MAX_UNPARSED_SAMPLES) this.unparsed.samples.push(text.slice(0, UNPARSED_SAMPLE_CHARS));
  }

  private onMessage(c: LiveClient, type: string | null, total: unknown): void {
    if (type === 'joined') {
      c.joined = true;
      c.onJoined?.();
    } else if (type === 'dropped' && typeof total === 'number') c.report.droppedByServer = total;
  }

  /** Sends on schedule and measures until drainEnd; resolves with the result. */
  async run(timing: SwarmTiming): Promise<SwarmResult> {
    this.timing = timing;
    this.meter.start(timing);
    this.loop.enable();
    const cpuStart = process.cpuUsage();
    const wallStart = nowUs(this.epoch);
    const senders = new Senders(this.clients, this.plan, timing, rng(this.plan.seed + this.plan.workerId * 7919));
    const ledger = senders.ledger;
    const stayedAtStart = new Set(this.clients.filter((c) => c.joined && c.spec.kind !== 'churn'));
    const churners = new Rotation(this.clients.filter((c) => c.spec.kind === 'churn' && !c.spec.switches), this.plan.churnPeriodMs * 1000, timing.sendStartUs);
    const switchers = new Rotation(this.clients.filter((c) => c.spec.switches), SWITCH_EVERY_US, timing.sendStartUs);

    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = nowUs(this.epoch);
        senders.tick(now, (c, seq, dueUs, at) => this.sendProbe(c, seq, dueUs, at));
        applySlow(this.slowClients, now - timing.sendStartUs);
        if (now < timing.measureEndUs) {
          // One churn client at a time leaves and comes back; one switcher at a time asks (each once a second).
          const leaving = churners.due(now);
          if (leaving) void this.reconnect(leaving);
          const asking = switchers.due(now);
          const frame = asking?.joined && asking.wire?.isOpen ? this.switches.next(asking.spec.id, asking.spec.room, now) : null;
          if (frame) asking?.wire?.sendText(encodeClientFrame(frame));
        }
        if (now >= timing.drainEndUs) return resolve();
        setTimeout(tick, TICK_MS);
      };
      tick();
    });
    this.meter.stop();
    const cpu = process.cpuUsage(cpuStart);
    const wallUs = nowUs(this.epoch) - wallStart;
    this.loop.disable();

    for (const c of this.clients) {
      // A receiver that never heard again after a stall, or never heard at all: the silence up to the end of sending counts.
      // (A bystander of the direct scenario is owed nothing: its silence is right.)
      if (c.spec.kind !== 'churn' && c.spec.peers?.length !== 0) this.meter.finish(c, timing);
      if (c.spec.peers) {
        c.report.peers = c.spec.peers;
        c.report.leaked = leakedTo(c.seen, c.spec.peers);
      }
      c.report.stayed = stayedAtStart.has(c) && c.joined && c.wire?.closeCode === null;
    }
    senders.finish(this.plan.clients.some((c) => c.peers));
    this.closing = true;
    const enc = (k: ClientKind): { corrected: string; uncorrected: string } => ({
      corrected: this.meter.latency[k].corrected.encode(),
      uncorrected: this.meter.latency[k].uncorrected.encode(),
    });
    return {
      workerId: this.plan.workerId,
      clients: this.clients.map((c) => c.report),
      sentByRoom: ledger.byRoom,
      latency: { healthy: enc('healthy'), slow: enc('slow'), churn: enc('churn') },
      connectUs: encodeHistogram(this.connectHist),
      ramp: this.ramp,
      connectFailures: this.connectFailures,
      connectFailureCount: this.connectFailureCount,
      offered: ledger.offered,
      sentBeforeResumeByRoom: ledger.beforeResumeByRoom,
      sentTimeline: ledger.sentTimeline(),
      healthyTimeline: Array.from(this.meter.healthyTimeline, (v) => v ?? 0),
      unparsed: this.unparsed,
      churn: this.churn,
      switches: this.switches.result(),
      deliveriesPerSecond: Array.from(this.meter.perSecond, (v) => v ?? 0),
      healthyLatencyBySecond: Array.from(this.meter.healthyBySecond, (r) => (r ? r.encode() : null)),
      framesReceived: this.meter.framesReceived,
      health: {
        cpuPct: Math.round(((cpu.user + cpu.system) / wallUs) * 1000) / 10,
        loopDelayP99Ms: Math.max(0, this.loop.percentile(99) / 1e6 - 10),
        loopDelayMaxMs: Math.max(0, this.loop.max / 1e6 - 10),
        scheduleLagP99Ms: ledger.lag.totalCount ? ledger.lag.getValueAtPercentile(99) / 1000 : 0,
        scheduleLagMaxMs: ledger.lag.totalCount ? ledger.lag.maxValue / 1000 : 0,
      },
    };
  }

  private async reconnect(c: LiveClient): Promise<void> {
    if (c.wire) {
      c.wire.close();
      this.churn.leaves++;
    }
    c.wire = null;
    c.joined = false;
    await this.connect(c);
    if (c.joined) this.churn.joins++;
  }

  /** Closes every client. */
  async close(): Promise<void> {
    for (const c of this.clients) c.wire?.close();
    await waitUntil(() => this.clients.every((c) => !c.wire || c.wire.closeCode !== null), 3_000);
    for (const c of this.clients) c.wire?.destroy();
  }
}

function joinUrl(spec: ClientSpec): string {
  const url = new URL(spec.url);
  url.searchParams.set('room', spec.room);
  url.searchParams.set('name', spec.user ?? `c${spec.id}`);
  return url.toString();
}
