// What the story expects of each version in each default scenario, and the checks a run is held
// to. A story run (the default `npm run stress`) judges each version against the story: v2's room
// must fall behind its slow readers, v3-block's must stall, v1 must leak in churn; the rest must
// hold. A strict run (explicit --versions, --target or --threshold) holds every version to what a
// sound chat server owes its users.
import { fmt } from '../common/helpers.ts';
import type { VersionResult } from './result.ts';
import { deadSockets, floodInWords, ms, switchesInWords } from './verdict.ts';

/** story: each version against what the story expects of it; strict: every version must hold. */
export type RunMode = 'story' | 'strict';

export interface Check {
  pass: boolean;
  text: string;
  /** What it checks: the story's flaw, the server holding up, healthy losses, healthy lateness, the scenario taking effect, the ceiling. */
  kind: 'flaw' | 'held' | 'lost' | 'behind' | 'pushback' | 'ceiling' | 'once' | 'private' | 'fair' | 'answered';
}

/** A flaw the story expects a version to show in a scenario. */
interface Expectation {
  /** The flaw, as "<label> <flaw>" reads: "falls behind its slow readers". */
  flaw: string;
  /** The run's evidence for it, or a fact against it, in words. */
  evidence: (r: VersionResult) => string;
  shown: (r: VersionResult, behindMs: number) => boolean;
  /**
   * The checks the flaw answers for by design: a broken server, losses or lateness are what the
   * story shows here (v2, v3-block), or lateness is what resuming costs (v4's faults).
   */
  excuses: ReadonlyArray<Check['kind']>;
}

/** Peak bytes a pool version must hold in user space for its stuck readers, in MB, before its buffering counts. */
export const BUFFERED_MB_MIN = 1;

/** flood: the honest clients' p99 during the flood may be at most this many times what it was before it. */
export const FAIR_RATIO = 2;

/** Dead sockets v1's pool must hold after churn for the leak to count. */
export const LEAK_MIN = 1;

/**
 * The room as a whole did not keep up: it stopped relaying, or more than half its healthy clients
 * stalled or fell behind, for a median of at least --behind-ms. (docs/results.md shows each run's
 * evidence against these lines: a row must clear its line by 3× or it flips on a busy machine.)
 */
function roomHurt(r: VersionResult, behindMs: number): boolean {
  const h = r.stalls.healthy;
  if (r.health.broken && r.health.relayOutage) return true;
  return h.clients > 0 && h.affected * 2 > h.clients && h.affectedMsMedian >= behindMs;
}

export function hurtInWords(r: VersionResult): string {
  const h = r.stalls.healthy;
  const parts: string[] = [];
  if (r.health.broken) parts.push(r.health.status);
  if (h.stalled > 0) parts.push(`${stalledOrBehindCount(h.stalled, h.clients)} healthy clients stalled for ${secs(h.stalledMsMedian)}`);
  if (h.behind > 0) parts.push(`${stalledOrBehindCount(h.behind, h.clients)} fell behind for ${secs(h.behindMsMedian)}, up to ${msOr(r)} late`);
  if (r.accounting.byKind.healthy.lost > 0) parts.push(`${fmt(r.accounting.byKind.healthy.lost)} deliveries never made`);
  return parts.length > 0 ? parts.join(', ') : `its ${fmt(h.clients)} healthy clients kept up (p99 ${r.latency.healthy.count > 0 ? ms(r.latency.healthy.p99) : 'n/a'})`;
}

const msOr = (r: VersionResult): string => (r.latency.healthy.count > 0 ? ms(r.latency.healthy.max) : 'n/a');
const secs = (x: number): string => `${(x / 1000).toFixed(1)} s`;
const stalledOrBehindCount = (n: number, of: number): string => (n === of ? `all ${fmt(of)}` : `${fmt(n)} of ${fmt(of)}`);

/** Every check a sound server owes its users: a flaw that breaks the room answers for all of them. */
const ALL_HOLDS: ReadonlyArray<Check['kind']> = ['held', 'lost', 'behind'];


const buffers: Expectation = {
  flaw: 'buffers without bound behind its stuck readers',
  evidence: (r) => `buffered ${r.server?.peakBufferedMB ?? 0} MB in user space`,
  shown: (r) => (r.server?.peakBufferedMB ?? 0) >= BUFFERED_MB_MIN,
  excuses: [],
};

/** scenario → version label → the flaw the story expects there. A version with none must hold. */
export const STORY_EXPECTATIONS: Readonly<Record<string, Readonly<Record<string, Expectation>>>> = {
  churn: {
    v1: {
      flaw: 'keeps dead sockets in its pool',
      evidence: (r) => `its pool holds ${fmt(deadSockets(r))} dead sockets after ${fmt(r.churn.leaves)} leaves`,
      shown: (r) => deadSockets(r) >= LEAK_MIN,
      excuses: [],
    },
  },
  'slow-consumer': {
    v1: buffers,
    'v1.1': buffers,
    v2: {
      flaw: 'falls behind its slow readers (the lock waits on their writes)',
      evidence: hurtInWords,
      shown: roomHurt,
      excuses: ALL_HOLDS,
    },
    'v3-block': {
      flaw: 'stalls every room (the hub waits on a full queue)',
      evidence: hurtInWords,
      shown: (r, behindMs) => roomHurt(r, behindMs) && (r.stalls.healthy.stalled > 0 || r.health.broken),
      excuses: ALL_HOLDS,
    },
  },
  // A node's clients come back on another node and are replayed what they missed: late, never lost.
  'node-kill': {
    'v4 --nodes 3': {
      flaw: 'loses a node, and its clients resume on another',
      evidence: (r) => (r.recovery ? `${fmt(r.recovery.resumed)} of ${fmt(r.recovery.letGo)} clients let go came back (reconnect p50 ${r.recovery.reconnectMsP50} ms), ${fmt(r.recovery.replayed)} messages replayed` : 'no recovery figures'),
      shown: (r) => r.recovery !== null && r.recovery !== undefined && r.recovery.letGo > 0 && r.recovery.resumed === r.recovery.letGo,
      excuses: ['behind'],
    },
  },
  // While its one Redis is down no room works: sends are refused, and the clients are told.
  'broker-outage': {
    'v4 --nodes 2': {
      flaw: 'stops every room while its one Redis is down',
      evidence: (r) => `${fmt(r.cluster?.refused ?? 0)} sends refused (BACKPLANE_DOWN) while Redis was down${r.health.relayOutage ? `, no healthy client got anything for ${r.health.relayOutage.seconds} s` : ''}`,
      shown: (r) => (r.cluster?.refused ?? 0) > 0,
      excuses: ['behind'],
    },
  },
  // Redis closes the nodes' connections under load: sends under way get SEND_UNKNOWN, are resent, and arrive once.
  'redis-kill': {
    'v4 --nodes 2': {
      flaw: 'loses its connections to Redis under load, and every send under way with them',
      evidence: (r) => `${fmt(r.cluster?.reconnects ?? 0)} reconnects; ${fmt(r.recovery?.uncertain ?? 0)} sends answered SEND_UNKNOWN and resent ${fmt(r.recovery?.resent ?? 0)} times, ${fmt(r.recovery?.refused ?? 0)} refused`,
      shown: (r) => (r.cluster?.reconnects ?? 0) > 0,
      excuses: ['behind'],
    },
  },
  // Redis pauses: every room waits with it, and nobody is taken for gone.
  'redis-pause': {
    'v4 --nodes 2': {
      flaw: 'waits while its one Redis is paused, every room with it',
      evidence: (r) => `${r.health.relayOutage ? `no healthy client got anything for ${r.health.relayOutage.seconds} s` : `${fmt(r.stalls.healthy.behind)} healthy clients fell behind`}, ${fmt(r.cluster?.refused ?? 0)} sends refused`,
      shown: (r) => r.health.relayOutage !== null || r.stalls.healthy.behind > 0 || r.stalls.healthy.stalled > 0,
      excuses: ['behind'],
    },
  },
  // One client floods a room of its own: the versions without a per-connection limit let it slow every room.
  flood: Object.fromEntries(
    ['v1', 'v1.1', 'v2'].map((label) => [
      label,
      {
        flaw: "lets one client's flood slow every other room (no per-connection limit)",
        evidence: (r: VersionResult) => floodInWords(r),
        shown: (r: VersionResult) => (r.flood?.ratio ?? 0) > FAIR_RATIO,
        excuses: ['fair', 'behind', 'held'],
      },
    ]),
  ),
  // Redis out of memory: every send is refused, saying so; none is accepted and lost.
  'redis-oom': {
    'v4 --nodes 2': {
      flaw: 'refuses every send while its one Redis is out of memory',
      evidence: (r) => `${fmt(r.cluster?.refused ?? 0)} sends refused (BACKPLANE_DOWN, OOM)`,
      shown: (r) => (r.cluster?.refused ?? 0) > 0,
      excuses: ['behind'],
    },
  },
};

export function expectationOf(mode: RunMode, scenario: string, label: string): Expectation | null {
  return mode === 'story' ? (STORY_EXPECTATIONS[scenario]?.[label] ?? null) : null;
}

/** A version that broke where the story says it may: v2 and v3-block behind a slow reader. */
export function brokenAsExpected(mode: RunMode, scenario: string, r: VersionResult): boolean {
  return r.health.broken && (expectationOf(mode, scenario, r.label)?.excuses.includes('held') ?? false);
}

/**
 * The checks of one version in one scenario: the flaw the story expects of it, and what a sound
 * server owes its users unless that flaw excuses it. An INVALID run has none: it cannot speak.
 */
export function versionChecks(mode: RunMode, scenario: string, r: VersionResult, behindMs: number, isCapacity: boolean): Check[] {
  if (!r.valid) return [];
  const checks: Check[] = [];
  const exp = expectationOf(mode, scenario, r.label);
  if (exp) {
    const shown = exp.shown(r, behindMs);
    checks.push({ kind: 'flaw', pass: shown, text: shown ? `${r.label} ${exp.flaw}: ${exp.evidence(r)}, as the story expects` : `${r.label}: ${exp.evidence(r)} (the story expects it ${exp.flaw})` });
  }
  const owed = (kind: Check['kind']): boolean => !(exp?.excuses.includes(kind) ?? false);
  if (owed('held')) checks.push({ kind: 'held', pass: !r.health.broken, text: r.health.broken ? `${r.label}: the server broke: ${r.health.status} (expected it to hold)` : `${r.label}: the server held up` });
  if (!isCapacity) {
    const lost = r.accounting.byKind.healthy.lost;
    if (owed('lost')) checks.push({ kind: 'lost', pass: lost <= 0, text: lost > 0 ? `${r.label}: healthy clients lost ${fmt(lost)} (expected 0)` : `${r.label}: healthy clients lost nothing` });
    const h = r.stalls.healthy;
    if (owed('behind')) checks.push({
      kind: 'behind',
      pass: h.behind === 0,
      text: h.behind > 0 ? `${r.label}: ${stalledOrBehindCount(h.behind, h.clients)} healthy clients fell more than ${secs(behindMs)} behind, up to ${msOr(r)} (expected none)` : `${r.label}: no healthy client fell behind`,
    });
  }
  if (r.recovery) {
    // Where the server may refuse sends: a refused send is never delivered, and a resend is never a second message.
    const { refusedButDelivered, uncertain, resent, uncertainArrived } = r.recovery;
    const dup = r.accounting.duplicates;
    const pass = refusedButDelivered === 0 && dup === 0;
    const resends = uncertain > 0 ? `; ${fmt(uncertain)} uncertain sends resent ${fmt(resent)} times with their ids, ${fmt(uncertainArrived)} of them arrived` : '';
    checks.push({ kind: 'once', pass, text: pass ? `${r.label}: every send done once or refused${resends}` : `${r.label}: ${fmt(refusedButDelivered)} refused sends delivered anyway, ${fmt(dup)} duplicates${resends} (expected 0 and 0)` });
  }
  if (r.accounting.leaked !== undefined) {
    // direct: a private message that reached anyone but its recipient and its sender is a leak; no flaw excuses one.
    const leaked = r.accounting.leaked;
    checks.push({ kind: 'private', pass: leaked === 0, text: leaked === 0 ? `${r.label}: every direct message reached its recipient's and its sender's connections only` : `${r.label}: ${fmt(leaked)} DIRECT MESSAGES LEAKED to connections that were neither their recipient's nor their sender's (expected 0)` });
  }
  if (r.switches) {
    // Nobody left hanging: every switch and rename gets `joined` or an error, during an outage too.
    const pass = r.switches.unanswered === 0;
    checks.push({ kind: 'answered', pass, text: `${r.label}: ${switchesInWords(r.switches)}${pass ? '' : ' (expected every one answered)'}` });
  }
  if (r.flood && owed('fair')) {
    const pass = r.flood.ratio <= FAIR_RATIO;
    checks.push({ kind: 'fair', pass, text: `${r.label}: ${floodInWords(r)}${pass ? '' : ` (expected at most ${FAIR_RATIO}×)`}` });
  }
  if (r.slowReaders && owed('pushback')) {
    checks.push({ kind: 'pushback', pass: r.slowReaders.pushedBack, text: r.slowReaders.pushedBack ? `${r.label}: the slow readers pushed back (the scenario took effect)` : `${r.label}: the slow readers did not push back (expected them to: the scenario did not take effect)` });
  }
  return checks;
}

