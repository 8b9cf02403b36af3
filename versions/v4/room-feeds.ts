// v4: this node's hold on each room's stream. Per room it keeps a feed: the last seq it handed to
// its hub. An entry the feed skips (the live channel loses what is published while a node
// reconnects) is fetched from history; one it already had is ignored; a stream whose epoch changed
// is told as a reset. The hub (cluster-hub.ts) decides who holds which room; a client that
// resumes is replayed from its room's feed (replay.ts).
import { placeInStream } from '../protocol.ts';
import type { Connection } from '../strategy.ts';
import type { Hub } from '../v3/hub.ts';
import { bounded, BackplaneDownError, NOT_REACHED, type Backplane, type StreamEntry } from './backplane.ts';
import { catchUpPlan, type Feed, type RecoveryCounts } from './feed.ts';

export class RoomFeeds {
  private readonly feeds = new Map<string, Feed>();
  /** The room whose feed each connection holds. */
  private readonly holds = new Map<Connection, string>();

  constructor(
    private readonly hub: Hub,
    private readonly backplane: Backplane,
    /** Entries of history a feed fetches at most in one read. */
    private readonly history: number,
    private readonly recovery: RecoveryCounts,
  ) {}

  /** The feed of `room`, if this node holds it. */
  get(room: string): Feed | undefined {
    return this.feeds.get(room);
  }

  /** An entry of a room's stream, as the backplane carries it: delivered in order, or held while the feed syncs. */
  entry(room: string, entry: StreamEntry): void {
    const feed = this.feeds.get(room);
    if (!feed) return;
    if (!feed.known || feed.syncing) feed.held.push(entry);
    else this.accept(feed, entry);
  }

  /** The backplane is back: the live channel lost whatever was published while it was away. */
  syncAll(): void {
    for (const feed of this.feeds.values()) void this.sync(feed);
  }

  /**
   * `conn` holds `room`'s feed: subscribed, its tail known. Refused (and nothing held) while the
   * backplane is down. Returns the room it held before, which the caller lets go once `conn` has left it.
   */
  async acquire(conn: Connection, room: string): Promise<string | undefined> {
    if (!this.backplane.isUp) throw new BackplaneDownError(NOT_REACHED);
    let feed = this.feeds.get(room);
    if (!feed) {
      feed = { room, refs: 0, subscribed: Promise.resolve(), failed: true, known: false, epoch: null, lastSeq: 0, syncing: false, held: [], recovering: new Set() };
      this.feeds.set(room, feed);
    }
    const f = feed;
    if (f.failed) {
      // Subscribed first, then the stream's tail read: nothing published in between is missed.
      f.failed = false;
      f.subscribed = this.backplane.subscribe(room).then(
        () => this.sync(f),
        (err: unknown) => {
          f.failed = true;
          throw err;
        },
      );
    }
    f.refs++;
    try {
      await bounded(f.subscribed, 'join');
    } catch (err) {
      this.release(room);
      throw err instanceof BackplaneDownError ? err : new BackplaneDownError(`the server could not subscribe to the room: ${(err as Error).message}`);
    }
    const was = this.holds.get(conn);
    this.holds.set(conn, room);
    return was;
  }

  /** `conn` is gone: the feed it held is let go. */
  drop(conn: Connection): void {
    const room = this.holds.get(conn);
    this.holds.delete(conn);
    if (room !== undefined) this.release(room);
  }

  /** One hold on `room` fewer: with the last, the feed goes and the node unsubscribes. */
  release(room: string): void {
    const feed = this.feeds.get(room);
    if (!feed || --feed.refs > 0) return;
    this.feeds.delete(room);
    void this.backplane.unsubscribe(room);
  }

  /** An entry in stream order: delivered, ignored as already had, or the hole before it fetched. */
  private accept(feed: Feed, entry: StreamEntry): void {
    if (entry.epoch !== feed.epoch) this.restart(feed, entry.epoch);
    if (entry.seq <= feed.lastSeq) return;
    if (entry.seq > feed.lastSeq + 1) {
      feed.held.push(entry);
      void this.sync(feed);
      return;
    }
    this.deliver(feed, entry);
  }

  private deliver(feed: Feed, entry: StreamEntry): void {
    feed.lastSeq = entry.seq;
    this.hub.publishText(feed.room, placeInStream(entry.payload, entry.seq, entry.epoch), true);
    for (const r of feed.recovering) r.got.push(entry);
  }

  /**
   * Reads where the room's stream is. The first time: its epoch and last seq (what came before is
   * not this node's to deliver). After that: the entries the live feed skipped, a gap notice for
   * any history no longer holds, a reset notice if the stream itself is gone. Then the held ones.
   */
  private async sync(feed: Feed): Promise<void> {
    if (feed.syncing || !this.backplane.isUp) return;
    feed.syncing = true;
    try {
      if (!feed.known) {
        const tail = await this.backplane.history(feed.room, 0, 0);
        feed.epoch = tail.epoch;
        feed.lastSeq = tail.last;
        feed.known = true;
      } else {
        let slice = await this.backplane.history(feed.room, feed.lastSeq, this.history);
        if (slice.epoch !== feed.epoch) {
          this.restart(feed, slice.epoch);
          if (slice.epoch !== null) slice = await this.backplane.history(feed.room, 0, this.history);
        }
        // (a stream that changed again between the two reads is caught up by the next sync)
        const plan = slice.epoch === feed.epoch ? catchUpPlan(slice, feed.lastSeq, slice.last) : { gap: null, entries: [] };
        if (plan.gap && feed.epoch !== null) {
          this.recovery.gaps++;
          this.hub.publish(feed.room, { type: 'gap', room: feed.room, epoch: feed.epoch, ...plan.gap });
          feed.lastSeq = plan.gap.to;
        }
        for (const e of plan.entries) {
          this.recovery.refetched++;
          this.deliver(feed, e);
        }
      }
    } catch {
      return; // down again: up() syncs once it is back; the held entries stay held
    } finally {
      feed.syncing = false;
    }
    const held = feed.held;
    feed.held = [];
    for (const e of held) this.accept(feed, e);
  }

  /** The stream is not the one the feed knew: the room is told (unless the feed knew none yet), and the feed starts over in `epoch`. */
  private restart(feed: Feed, epoch: string | null): void {
    if (feed.epoch !== null) {
      this.recovery.resets++;
      this.hub.publish(feed.room, { type: 'reset', room: feed.room, epoch, was: feed.epoch });
    }
    feed.epoch = epoch;
    feed.lastSeq = 0;
  }
}
