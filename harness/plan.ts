// Planning a run: which clients there are, which room and worker each belongs to, where each
// connects from, and how long a silence counts as a stall.
import type { ClientSpec } from '../auto-client/swarm-plan.ts';
import { localAddressOf } from '../common/helpers.ts';
import { DEFAULT_ROOM } from '../versions/protocol.ts';
import { directGroups, slowResumeUs, type ScenarioConfig } from './scenarios.ts';

export interface Target {
  /** 'v1', 'v3-kick', or 'external'. */
  label: string;
  /** Arguments for versions/cli.ts, e.g. ['v3', '--on-full', 'kick']; absent for an external URL. */
  args?: string[];
  /** ws:// URL of an external server that relays {token, content} to every client. */
  url?: string;
  /** With args: the server script to start instead of versions/cli.ts (the tests' misbehaving servers). */
  script?: string;
}

/** A gap between deliveries is a stall when longer than this, or 10 schedule gaps if that is longer. */
export const STALL_MIN_MS = 250;
/** The same with autocannon as a sender: its rate limiter releases each second's requests at once. */
const HTTP_STALL_MIN_MS = 1500;

export function roomOf(i: number, rooms: number): string {
  return rooms === 1 ? DEFAULT_ROOM : `room-${i % rooms}`;
}

export function planClients(config: ScenarioConfig, wsUrls: string[]): ClientSpec[] {
  if (config.scenario === 'direct') return planDirectClients(config, wsUrls);
  const specs: ClientSpec[] = [];
  const total = config.clients + config.churnClients + config.switchers;
  const slowFromUs = 0; // slow readers stop when sending starts
  const slowUntilUs = slowResumeUs(config);
  for (let i = 0; i < total; i++) {
    const churn = i >= config.clients;
    const switches = i >= config.clients + config.churnClients;
    const slow = !churn && i >= config.clients - config.slow;
    specs.push({
      id: i,
      room: roomOf(i, config.rooms),
      sends: i < config.senders,
      kind: churn ? 'churn' : slow ? 'slow' : 'healthy',
      ...(switches ? { switches: true } : {}),
      ...(slow ? { slow: { mode: config.slowMode, fromUs: slowFromUs, untilUs: slowUntilUs, bytesPerSec: config.slowBytesPerSec } } : {}),
      localAddress: localAddressOf(i),
      url: wsUrls[i % wsUrls.length] as string,
    });
  }
  return specs;
}

/**
 * The direct scenario: users (u0, u1, …) with `tabs` connections each, spread over the URLs (on v4,
 * a user's tabs sit on different nodes), all in one room. Pairs write to each other, fan-in groups'
 * senders to their first user, bystanders to nobody. Each connection is owed what its `peers` send
 * (its own user's sends included: a sender's tabs see what it sent); anything else it gets is a leak.
 */
export function planDirectClients(config: ScenarioConfig, wsUrls: string[]): ClientSpec[] {
  const { tabs, fanIn } = config;
  const g = directGroups(config);
  const sender = (u: number): number => u * tabs; // a sending user sends from its first tab
  const roles: Array<{ to: number | null; peers: number[] }> = [];
  for (let k = 0; k < g.pairs; k++) {
    const [a, b] = [2 * k, 2 * k + 1];
    roles[a] = { to: b, peers: [sender(a), sender(b)] };
    roles[b] = { to: a, peers: [sender(a), sender(b)] };
  }
  for (let k = 0; k < g.fanGroups; k++) {
    const r = 2 * g.pairs + k * (fanIn + 1);
    const senders = Array.from({ length: fanIn }, (_, i) => r + 1 + i);
    roles[r] = { to: null, peers: senders.map(sender) };
    for (const s of senders) roles[s] = { to: r, peers: [sender(s)] };
  }
  const specs: ClientSpec[] = [];
  for (let id = 0; id < config.clients; id++) {
    const u = Math.floor(id / tabs);
    // (connections past the last whole user are bystanders of their own)
    const user = u < g.users ? `u${u}` : `x${id}`;
    const role = u < g.users ? roles[u] : undefined;
    const sends = role !== undefined && role.to !== null && id === sender(u);
    specs.push({
      id,
      room: DEFAULT_ROOM,
      sends,
      kind: 'healthy',
      user,
      ...(sends ? { directTo: `u${role!.to}` } : {}),
      peers: role?.peers ?? [],
      localAddress: localAddressOf(id),
      url: wsUrls[id % wsUrls.length] as string,
    });
  }
  return specs;
}

/**
 * With two or more workers, worker 0 holds only the senders: a worker busy parsing a flood of
 * deliveries must not delay the send schedule (its lag would be the generator's, not the server's).
 */
export function workerOf(spec: ClientSpec, workers: number): number {
  if (workers < 2) return 0;
  return spec.sends ? 0 : 1 + (spec.id % (workers - 1));
}

export function stallThresholdMs(config: ScenarioConfig): number {
  // direct: the quietest connection is a fan-in sender's, which hears only its own sends.
  if (config.scenario === 'direct') return Math.max(STALL_MIN_MS, (10 * 1000 * config.burst) / config.rate);
  // The slowest room's message rate: WebSocket senders spread over the rooms, HTTP into room 0 only.
  const perRoom = Math.floor(config.senders / config.rooms) * config.rate + (config.rooms === 1 ? config.httpRate : 0);
  if (!(perRoom > 0)) throw new RangeError('every room needs a sender (senders >= rooms, or httpRate with one room)');
  const roomGapMs = 1000 / perRoom;
  // autocannon spends each second's request budget in a burst: gaps of up to a second are its own.
  const floorMs = config.httpRate > 0 ? HTTP_STALL_MIN_MS : STALL_MIN_MS;
  return Math.max(floorMs, 10 * roomGapMs * config.burst);
}
