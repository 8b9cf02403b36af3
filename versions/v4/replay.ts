// v4: a client that resumes (after its node died, or its network blinked) is replayed what it
// missed of its room's stream, from history and from what the room's feed delivers meanwhile, and
// only then let into the room: every seq once, in order. A feed is a node's hold on one room's
// stream (cluster-hub.ts keeps them).
import { errorMessage, type ResumePoint } from '../protocol.ts';
import type { Connection } from '../strategy.ts';
import type { Hub } from '../v3/hub.ts';
import type { Backplane, HistorySlice, StreamEntry } from './backplane.ts';

/** What a reader that has its stream up to `after` is owed from `slice`, up to `upTo`. */
export interface CatchUp {
  /** Seqs history no longer holds, told as a gap (null: nothing lost). */
  gap: { from: number; to: number } | null;
  /** The entries it holds that the reader lacks, oldest first. */
  entries: StreamEntry[];
}

/**
 * The one rule for catching up, for a node's feed (cluster-hub.ts) and a resuming client alike:
 * what history trimmed between `after` and `upTo` is a gap, and the entries after it, up to `upTo`,
 * follow. Pure: the caller tells and delivers.
 */
export function catchUpPlan(slice: HistorySlice, after: number, upTo: number): CatchUp {
  const lostTo = Math.min(slice.first === 0 ? slice.last : slice.first - 1, upTo);
  const gap = lostTo > after && slice.epoch !== null ? { from: after + 1, to: lostTo } : null;
  const from = gap ? lostTo : after;
  return { gap, entries: slice.entries.filter((e) => e.epoch === slice.epoch && e.seq > from && e.seq <= upTo) };
}

/** Times a recovery that raced a stream reset is tried again. */
const RECOVERY_ATTEMPTS = 3;

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


export class Replayer {
  constructor(
    private readonly hub: Hub,
    private readonly backplane: Backplane,
    /** Entries of history a client may be replayed. */
    private readonly history: number,
    private readonly recovery: RecoveryCounts,
  ) {}


  async recover(conn: Connection, feed: Feed, resume: ResumePoint): Promise<void> {
    const room = feed.room;
    const rec: Recovery = { conn, got: [] };
    feed.recovering.add(rec);
    try {
      for (let attempt = 1; attempt <= RECOVERY_ATTEMPTS; attempt++) {
        if (await this.replay(rec, feed, resume, attempt === RECOVERY_ATTEMPTS)) return;
      }
    } catch {
      // The backplane went down mid-replay: the client is told, and enters the room without it.
      this.hub.sendTo(conn, errorMessage('HISTORY_UNAVAILABLE'));
      this.hub.move(conn, room);
    } finally {
      feed.recovering.delete(rec);
    }
  }

  /**
   * Replays to one client what it missed since `resume`, then lets it into the room. The replay
   * reaches exactly the seq the feed last delivered: history up to there, then what the feed
   * delivered while history was read. What comes after reaches it in the room. False when the
   * stream changed epoch under the replay (try again).
   */
  private async replay(rec: Recovery, feed: Feed, resume: ResumePoint, last: boolean): Promise<boolean> {
    const { conn } = rec;
    const room = feed.room;
    let after = resume.since;
    let slice = await this.backplane.history(room, after, this.history);
    const reset = slice.epoch !== resume.epoch;
    if (reset) {
      after = 0;
      if (slice.epoch !== null) slice = await this.backplane.history(room, 0, this.history);
    }
    // From here on, synchronous: the feed cannot deliver in between.
    if (slice.epoch !== feed.epoch && feed.epoch !== null && !last) return false;
    if (reset) {
      this.recovery.resets++;
      this.hub.sendTo(conn, { type: 'reset', room, epoch: slice.epoch, was: resume.epoch });
    }
    const plan = catchUpPlan(slice, after, slice.epoch === feed.epoch ? feed.lastSeq : 0);
    if (plan.gap && slice.epoch !== null) {
      this.recovery.gaps++;
      this.hub.sendTo(conn, { type: 'gap', room, epoch: slice.epoch, ...plan.gap });
      after = plan.gap.to;
    }
    for (const e of plan.entries) {
      this.sendReplayed(conn, e);
      after = e.seq;
    }
    for (const e of rec.got) {
      if (e.epoch !== slice.epoch || e.seq <= after) continue;
      this.sendReplayed(conn, e);
      after = e.seq;
    }
    void this.hub.move(conn, room);
    return true;
  }

  private sendReplayed(conn: Connection, e: StreamEntry): void {
    this.recovery.replayed++;
    this.hub.sendText(conn, `${e.json.slice(0, -1)},"replayed":true}`, true);
  }
}
