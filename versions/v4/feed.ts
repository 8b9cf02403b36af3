// What v4 keeps of a room's stream on a node, and the one rule for catching up on it, shared by a
// node's feed (room-feeds.ts) and a client that resumes (replay.ts).
import type { Connection } from '../strategy.ts';
import type { HistorySlice, StreamEntry } from './backplane.ts';

/** What a reader that has its stream up to `after` is owed from `slice`, up to `upTo`. */
export interface CatchUp {
  /** Seqs history no longer holds, told as a gap (null: nothing lost). */
  gap: { from: number; to: number } | null;
  /** The entries it holds that the reader lacks, oldest first. */
  entries: StreamEntry[];
}

/**
 * The one rule for catching up, for a node's feed (room-feeds.ts) and a resuming client alike:
 * what history trimmed between `after` and `upTo` is a gap, and the entries after it, up to `upTo`,
 * follow. Pure: the caller tells and delivers.
 */
export function catchUpPlan(slice: HistorySlice, after: number, upTo: number): CatchUp {
  const lostTo = Math.min(slice.first === 0 ? slice.last : slice.first - 1, upTo);
  const gap = lostTo > after && slice.epoch !== null ? { from: after + 1, to: lostTo } : null;
  const from = gap ? lostTo : after;
  return { gap, entries: slice.entries.filter((e) => e.epoch === slice.epoch && e.seq > from && e.seq <= upTo) };
}

export interface RecoveryCounts {
  replayed: number;
  gaps: number;
  resets: number;
  refetched: number;
}

export interface Feed {
  readonly room: string;
  /** Local connections in the room, or on their way in. */
  refs: number;
  /** Subscribed to the room on the backplane; `failed` once that did not go through (the next acquire tries again). */
  subscribed: Promise<void>;
  failed: boolean;
  /** Whether epoch and lastSeq were read from the backplane yet. */
  known: boolean;
  epoch: string | null;
  /** The last seq of `epoch` handed to the hub. */
  lastSeq: number;
  /** Fetching what the live feed skipped; live entries wait in `held` meanwhile. */
  syncing: boolean;
  held: StreamEntry[];
  /** Clients being replayed to: what the feed delivers meanwhile, they get from here. */
  readonly recovering: Set<Recovery>;
}

export interface Recovery {
  readonly conn: Connection;
  readonly got: StreamEntry[];
}
