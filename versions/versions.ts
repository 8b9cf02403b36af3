// The catalogue of versions: names, their options, and one way to start any of them.
import { startChatServer, type ChatServer, type HostOptions } from './host.ts';
import { ServerCounters, type Strategy } from './strategy.ts';
import { NaivePool } from './v1/naive-pool.ts';
import { MutexPool } from './v2/mutex-pool.ts';
import { Hub, ON_FULL_POLICIES, type OnFullPolicy } from './v3/hub.ts';

export const VERSION_NAMES = ['v1', 'v1.1', 'v2', 'v3'] as const;
export type VersionName = (typeof VERSION_NAMES)[number];

/** Default port per version, so all of them can run at once. */
export const DEFAULT_PORTS: Record<VersionName, number> = { v1: 8081, 'v1.1': 8081, v2: 8082, v3: 8083 };

export interface VersionOptions {
  /** v2: ms to sleep under the lock before each broadcast. Default 0. */
  holdMs: number;
  /** v3: per-client queue length, in messages. Default 128. */
  queue: number;
  /** v3: what a full queue does. Default 'drop'. */
  onFull: OnFullPolicy;
  /** v3: a sweep that took d ms is followed by min(flushPacing × d, flushRestMaxMs) ms of rest. Default 1. */
  flushPacing: number;
  /** v3: the longest rest between sweeps, in ms. Default 25. */
  flushRestMaxMs: number;
  /** v3: ms of writing after which a sweep lets the event loop read; 0: whole sweeps. Default 5. */
  flushSliceMs: number;
}

export const DEFAULT_VERSION_OPTIONS: VersionOptions = { holdMs: 0, queue: 128, onFull: 'drop', flushPacing: 1, flushRestMaxMs: 25, flushSliceMs: 5 };

export function resolveVersionOptions(partial: Partial<VersionOptions> = {}): VersionOptions {
  const o = { ...DEFAULT_VERSION_OPTIONS, ...partial };
  if (!Number.isFinite(o.holdMs) || o.holdMs < 0) throw new RangeError('options.holdMs must be a number >= 0');
  if (!Number.isInteger(o.queue) || o.queue < 1) throw new RangeError('options.queue must be an integer >= 1');
  if (!Number.isFinite(o.flushPacing) || o.flushPacing < 0 || o.flushPacing > 100) throw new RangeError('options.flushPacing must be a number from 0 to 100');
  if (!Number.isFinite(o.flushRestMaxMs) || o.flushRestMaxMs < 0) throw new RangeError('options.flushRestMaxMs must be a number >= 0');
  if (!Number.isFinite(o.flushSliceMs) || o.flushSliceMs < 0) throw new RangeError('options.flushSliceMs must be a number >= 0 (0: whole sweeps)');
  if (!ON_FULL_POLICIES.includes(o.onFull)) throw new RangeError(`options.onFull must be one of ${ON_FULL_POLICIES.join(', ')}`);
  return o;
}

export function isVersionName(name: string): name is VersionName {
  return (VERSION_NAMES as readonly string[]).includes(name);
}

export function createStrategy(version: VersionName, counters: ServerCounters, partial: Partial<VersionOptions> = {}): Strategy {
  const o = resolveVersionOptions(partial);
  switch (version) {
    case 'v1':
      return new NaivePool(counters, { prune: false });
    case 'v1.1':
      return new NaivePool(counters, { prune: true });
    case 'v2':
      return new MutexPool(counters, { holdMs: o.holdMs });
    case 'v3':
      return new Hub(counters, o); // (HubOptions is the v3 part of VersionOptions)
  }
}

export function startVersion(version: VersionName, options: Partial<VersionOptions & HostOptions> = {}): Promise<ChatServer> {
  const counters = new ServerCounters();
  return startChatServer(createStrategy(version, counters, options), counters, options);
}
