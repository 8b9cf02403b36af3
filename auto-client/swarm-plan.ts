// What a swarm is asked to do and what it answers: its clients (each one's room, role, address and
// sign-in), its schedule and thresholds, and its result (latency histograms, accounting, its own
// health). Data only: the harness writes plans and reads results, the swarm (swarm.ts) runs them.
import type { ClientKind, ClientReport, MeterTiming } from './delivery-meter.ts';

export type { ClientKind, ClientReport } from './delivery-meter.ts';

export interface SlowSpec {
  /** stuck: stop reading between fromUs and untilUs (µs after sending starts). throttle: read at most bytesPerSec then. */
  mode: 'stuck' | 'throttle';
  fromUs: number;
  untilUs: number;
  bytesPerSec: number;
}

export interface ClientSpec {
  id: number;
  room: string;
  sends: boolean;
  kind: ClientKind;
  slow?: SlowSpec;
  /** Source address to connect from (127.0.0.0/8), to spread connections over 4-tuples. */
  localAddress?: string;
  /** ws URL this client connects to (the harness spreads clients over server ports). */
  url: string;
  /** direct: the user it is (its name, its token's sub), whom it writes to, and whose sends it is owed (client ids). */
  user?: string;
  directTo?: string;
  peers?: number[];
  /** The Authorization header it signs in with ("Bearer <jwt>"). */
  authorization?: string;
  /** A switcher (a churn client that stays): once a second it switches rooms or renames, and waits for the answer. */
  switches?: boolean;
}

export interface SwarmTiming extends MeterTiming {
  /** Receivers stop counting here and the swarm reports. */
  drainEndUs: number;
}

export interface SwarmPlan {
  workerId: number;
  epochNs: string;
  clients: ClientSpec[];
  /** Messages per second per sender. */
  ratePerSender: number;
  /** Exponential inter-arrival times instead of a fixed period. */
  poisson: boolean;
  /** Messages sent together at each scheduled instant, at the same average rate (1: steady). */
  burst: number;
  seed: number;
  /** Content size in bytes (probe plus padding). */
  sizeBytes: number;
  /** Our servers greet with `joined`; an external target may not. */
  awaitJoined: boolean;
  /** A gap between deliveries longer than this, at a receiver, is a stall. */
  stallThresholdUs: number;
  /** A message delivered more than this after it was due puts its receiver behind. */
  behindUs: number;
  /** Churn clients reconnect every this many ms (0: no churn). */
  churnPeriodMs: number;
  /** At most this many connects in flight. */
  connectConcurrency: number;
  /**
   * When the slow readers read again, in µs after sendStart (null: none). Every worker counts what
   * its senders sent before it, so the harness can tell how far behind a stuck reader fell.
   */
  slowResumeUs: number | null;
  /**
   * v4's recovery: a client the server lets go (its node died) connects again to the next of
   * `urls`, after `delayMs`, with the `since` and `epoch` of the last message it got, until the
   * drain ends. Null: a client let go stays gone.
   */
  resume?: { urls: string[]; delayMs: number } | null;
}

/** A connect that did not end in a greeted client: when, what, and the errno code if it had one. */
export interface ConnectFailure {
  atUs: number;
  message: string;
  code: string | null;
}

/** What the senders were asked to send and what they could: a sender whose connection died sends nothing. */
export interface OfferedLoad {
  senders: number;
  /** Sends the schedule asked for until the end of the measured window. */
  planned: number;
  sent: number;
  /** Senders that never connected or whose connection the server closed. */
  sendersLost: number;
}

export interface WorkerHealth {
  cpuPct: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  scheduleLagP99Ms: number;
  scheduleLagMaxMs: number;
}

export interface SwarmResult {
  workerId: number;
  clients: ClientReport[];
  /** Messages sent, by room (all phases). */
  sentByRoom: Record<string, number>;
  /** Healthy receivers' corrected latency per second of intended send time, encoded (null: no message that second). */
  healthyLatencyBySecond: Array<string | null>;
  /** Encoded histograms (µs): latency from intended and from actual send time, per kind. */
  latency: Record<ClientKind, { corrected: string; uncorrected: string }>;
  connectUs: string;
  /** The ramp: when connecting began and ended (µs since the epoch), and how many clients it greeted. */
  ramp: { startUs: number; endUs: number; connected: number };
  /** The first MAX_FAILURES_KEPT connect failures, ramp and churn alike; connectFailureCount counts them all. */
  connectFailures: ConnectFailure[];
  connectFailureCount: number;
  offered: OfferedLoad;
  /** Messages sent, by room, before the slow readers read again (plan.slowResumeUs). */
  sentBeforeResumeByRoom: Record<string, number>;
  /** Messages sent per TIMELINE_STEP_MS since sendStart. */
  sentTimeline: number[];
  /** Probes healthy receivers got per TIMELINE_STEP_MS since sendStart. */
  healthyTimeline: number[];
  /** Text frames that were neither a probe nor JSON (nor lines of JSON): counted, with their first bytes. */
  unparsed: { count: number; samples: string[] };
  churn: { joins: number; leaves: number };
  /** The switchers' requests: asked, answered with joined or refused with an error, never answered, and the slowest answer (ms). */
  switches: SwitchFigures;
  /** Deliveries per second since sendStart. */
  deliveriesPerSecond: number[];
  framesReceived: number;
  health: WorkerHealth;
}

export interface SwitchFigures {
  asked: number;
  joined: number;
  refused: number;
  unanswered: number;
  slowestMs: number;
}
