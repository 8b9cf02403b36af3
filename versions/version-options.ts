// The options every single-process version takes (v4's nodes take them too, for their v3 hub),
// their defaults and their checks: one home, read by the CLI, the catalogue and v4's nodes.
import { ON_FULL_POLICIES, type OnFullPolicy } from './v3/hub.ts';

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
