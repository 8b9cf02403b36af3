// One line per version that says in words what happened to its users: the server's health
// first, then stalls, loss by kind of client, the offered load and what the scenario needed.
import { fmt } from '../common/helpers.ts';
import { CLOSE_CODES } from '../versions/protocol.ts';
import type { Accounting, StallSummary, VersionResult } from './result.ts';
import type { SwitchFigures } from '../auto-client/swarm-plan.ts';

/** A share of the planned sends below this is said in the verdict: the load was not what the header says. */
export const OFFERED_MIN_SHARE = 0.95;

/** One line that says in words what happened to this version's users, the server's health first. */
export function verdict(r: VersionResult, slowReaders: number): string {
  return `${r.label}: ${verdictParts(r, slowReaders).join('; ')}`;
}

/** What happened to this version's users, one finding each, the server's health first. */
export function verdictParts(r: VersionResult, slowReaders: number): string[] {
  const parts: string[] = [];
  const health = r.health;
  if (health.broken) parts.push(`BROKEN: ${health.findings.join('; ')}`);
  if (!r.valid) parts.push(`INVALID, the generator may have been the bottleneck (${r.invalidReasons.join('; ')})`);
  if (!health.broken && !r.valid) return parts;
  const h = r.stalls.healthy;
  const a = r.accounting;
  const slowWord = slowReaders === 1 ? 'one slow reader' : `${slowReaders} slow readers`;
  // Only a server that stayed up, kept its clients and never refused one was stalled by its slow readers.
  const slowToBlame = slowReaders > 0 && r.slowReaders?.pushedBack === true && !health.exit && health.liveness.unreachableFromS === null && health.closed.healthy === 0 && health.refused.count === 0;
  const share = r.accounting.relayedShare ?? 1;
  if (share < OFFERED_MIN_SHARE && !health.broken) {
    parts.push(`no client got more than ${Math.round(share * 100)}% of the messages sent into its room by the end of the drain: the server dropped the rest at ingress, silently, or still held them`);
  }
  if (h.clients > 0 && h.stalled > 0) {
    const who = slowToBlame ? `${slowWord} stalled` : 'stalls hit';
    parts.push(`${who} ${stalledClients(h)} (median)`);
  }
  if (h.clients > 0 && h.behind > 0) parts.push(`${behindClients(h, r.latency.healthy.max)}, p99 ${msOrNa(r.latency.healthy.count, r.latency.healthy.p99)}`);
  if (h.clients > 0 && h.affected === 0) {
    parts.push(`${fmt(h.clients)} healthy clients never stalled or fell behind, p99 ${msOrNa(r.latency.healthy.count, r.latency.healthy.p99)}`);
  }
  if (a.lost > 0) parts.push(lossInWords(a, slowReaders));
  if (r.flood) parts.push(floodInWords(r));
  if (r.switches) parts.push(switchesInWords(r.switches));
  if (a.leaked !== undefined) parts.push(a.leaked === 0 ? `no direct message reached anyone but its recipient and its sender (${fmt(a.received)} delivered)` : `${fmt(a.leaked)} DIRECT MESSAGES LEAKED to other users' connections`);
  if (a.kicked > 0) parts.push(`${a.kicked} slow reader${a.kicked > 1 ? 's' : ''} kicked (${CLOSE_CODES.SLOW_CONSUMER})`);
  if (r.offered.planned > 0 && r.offered.share < OFFERED_MIN_SHARE) {
    const why = r.offered.sendersLost > 0 ? `${fmt(r.offered.sendersLost)} of ${fmt(r.offered.senders)} senders lost their connection` : 'the senders could not keep their schedule';
    parts.push(`offered only ${Math.round(r.offered.share * 100)}% of the planned load (${fmt(r.offered.sent)} of ${fmt(r.offered.planned)} sends): ${why}`);
  }
  const sr = r.slowReaders;
  if (sr && !sr.pushedBack) {
    parts.push(`the slow readers did NOT push back: they were ${mb(sr.backlogBytesMedian)} behind when they read again, less than the ${mb(sr.kernelBytes)} loopback holds for them, so this run cannot show a server that blocks on a slow reader`);
  }
  if (r.server && r.accounting.receivers >= 5000) {
    const { rssPerIdleConnectionKB: idle, rssPerConnectionKB: kept, rssPerAddedConnectionKB: added } = r.server;
    const notes = [idle !== null ? `${kept} KB after the traffic` : '', added !== null ? `${added} KB per added connection` : ''].filter((x) => x !== '');
    parts.push(
      `${fmt(r.server.connections)} connections at ${idle ?? kept} KB of server RSS each${idle !== null ? ' while idle' : ''}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}, opened at ${fmt(r.generator.connectsPerSecond)}/s`,
    );
  }
  if (r.http) {
    const failed = r.http.non2xx + r.http.errors;
    const keptUp = r.http.ok >= r.http.planned * 0.98 ? '' : `, rate not kept: the server took requests slower than they were due`;
    parts.push(`POST /api/send answered in p99 ${r.http.latencyMs.p99} ms (autocannon, ${fmt(r.http.ok)} accepted of ${fmt(r.http.planned)} due${failed > 0 ? `, ${fmt(failed)} failed` : ''}${keptUp})`);
  }
  if (r.server) {
    const leak = deadSockets(r);
    // Dead sockets only mean something after clients left; at the end of a run everyone leaves at once.
    if (leak > 0 && r.churn.leaves > 0) parts.push(`pool holds ${fmt(leak)} dead sockets after ${fmt(r.churn.leaves)} leaves`);
    if (r.server.peakBufferedMB >= 1) parts.push(`server buffered ${r.server.peakBufferedMB} MB in socket buffers (peak RSS ${r.server.peakRssMB} MB)`);
  }
  parts.push(...health.notes);
  return parts;
}

/** "1,436 deliveries lost, all for the 2 slow readers; healthy clients lost 0 (each dropped and told by the server)". */
function lossInWords(a: Accounting, slowReaders: number): string {
  const { healthy, slow } = a.byKind;
  const slowWord = slowReaders === 1 ? 'the slow reader' : `the ${slowReaders} slow readers`;
  const where =
    healthy.lost <= 0 ? `all for ${slowWord}; healthy clients lost 0` : slow.lost <= 0 ? 'all by healthy clients' : `${fmt(healthy.lost)} by healthy clients, ${fmt(slow.lost)} by ${slowWord}`;
  const why =
    a.unexplained <= 0
      ? a.toldDropped > 0
        ? 'each dropped by the server and told'
        : ''
      : a.toldDropped > 0
        ? `${fmt(a.unexplained)} not made by the end of the drain beyond the ${fmt(a.toldDropped)} the server told of dropping`
        : 'not made by the end of the drain, and no drop told';
  return `${fmt(a.lost)} deliveries lost, ${where}${why ? ` (${why})` : ''}`;
}

/** "all 198 healthy clients for 4.1 s", "12 of 198 healthy clients for 0.4 s": who stalled, and for how long (median). */
export function stalledClients(h: StallSummary): string {
  return `${h.stalled === h.clients ? 'all' : fmt(h.stalled) + ' of'} ${fmt(h.clients)} healthy clients for ${(h.stalledMsMedian / 1000).toFixed(1)} s`;
}

/** Sockets the server's pool holds that are no longer open (v1's leak); 0 without server counters. */
export function deadSockets(r: VersionResult): number {
  return r.server ? r.server.poolSize - r.server.connections : 0;
}

/** "all 198 healthy clients fell behind for 9.8 s (median), up to 11.2 s late": who was behind, for how long, and how late at worst. */
export function behindClients(h: StallSummary, maxLateMs: number): string {
  return `${h.behind === h.clients ? 'all' : fmt(h.behind) + ' of'} ${fmt(h.clients)} healthy clients fell behind for ${(h.behindMsMedian / 1000).toFixed(1)} s (median), up to ${ms(maxLateMs)} late`;
}

/** A latency in ms as reports print it: "7.4 ms", "1.30 s". */
export function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`;
}

/** A latency figure, or "n/a" when nothing was measured: no samples is never 0 ms. */
export function msOrNa(count: number, x: number): string {
  return count > 0 ? ms(x) : 'n/a';
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** "healthy p99 4.1 ms before the flood, 5.0 ms during it (1.2×); the flooder was closed with 1008 at 7.1 s after 150 frames". */
export function floodInWords(r: VersionResult): string {
  const f = r.flood;
  if (!f) return 'no flood';
  const abuser = f.closedCode !== null ? `the flooder was closed with ${f.closedCode} at ${f.closedAtS} s after ${fmt(f.sent)} frames` : `the flooder wrote ${fmt(f.sent)} frames and was never closed`;
  return `healthy p99 ${ms(f.quietP99Ms)} before the flood, ${ms(f.floodedP99Ms)} during it (${f.ratio}×); ${abuser}`;
}

/** "20 switches and renames asked: 14 joined, 6 refused, 0 never answered; the slowest answer 12 ms". */
export function switchesInWords(s: SwitchFigures): string {
  return `${fmt(s.asked)} room switches and renames asked: ${fmt(s.joined)} joined, ${fmt(s.refused)} refused with an error, ${fmt(s.unanswered)} never answered; the slowest answer ${ms(s.slowestMs)}`;
}
