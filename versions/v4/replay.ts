// v4: a client that resumes (after its node died, or its network blinked) is replayed what it
// missed of its room's stream, from history and from what the room's feed delivers meanwhile, and
// only then let into the room: every seq once, in order. A feed is a node's hold on one room's
// stream (room-feeds.ts keeps them).
import { errorMessage, placeInStream, type ResumePoint } from '../protocol.ts';
import type { Connection } from '../strategy.ts';
import type { Hub } from '../v3/hub.ts';
import type { Backplane, StreamEntry } from './backplane.ts';
import { catchUpPlan, type Feed, type Recovery, type RecoveryCounts } from './feed.ts';

/** Times a recovery that raced a stream reset is tried again. */
const RECOVERY_ATTEMPTS = 3;

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
    this.hub.sendText(conn, placeInStream(e.payload, e.seq, e.epoch, true), true);
  }
}
