// --ack replica: a send is acknowledged, and published, only once a replica of its room's master
// has it. WAIT 1 answers for the writes its own connection made before it; here it is asked on a
// connection of its own, after a write of its own to the room's slot (a PEXPIRE of the room's seq
// key). A master sends its replicas its writes in the order it made them, so a replica that has
// that write has every append the master made before it, whichever connection made them.
//
// One such barrier per room at a time (group commit): the appends that finish while one is out
// wait for the next, so the WAITs per second are bounded by the rooms, not by the sends. A WAIT
// that times out (no replica answered: none attached, or the shard failing over) blocks only this
// connection, and answers its batch SEND_UNKNOWN: on the master, maybe not on a replica.
import type { ChainableCommander } from 'ioredis';
import { SendUnknownError } from './backplane.ts';
import type { RedisClient } from './redis-connect.ts';
import { failureOf } from './redis-failures.ts';

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface ReplicaAckKeys {
  seq(room: string): string;
  /** epoch, log, pub keys and the channel, for RELEASE. */
  release(room: string): [string, string, string, string];
}

export class ReplicaAcks {
  private readonly rooms = new Map<string, { waiting: Waiter[]; busy: boolean }>();

  constructor(
    /** A connection for the barriers alone: a WAIT that blocks it blocks no append. */
    private readonly barriers: RedisClient,
    /** The command connection: RELEASE goes there. */
    private readonly cmd: RedisClient,
    private readonly keys: ReplicaAckKeys,
    private readonly timeoutMs: number,
    private readonly ttlMs: number,
  ) {}

  /** Resolves once a replica has `seq` of `room` and it is published; rejects SEND_UNKNOWN otherwise. */
  confirm(room: string, seq: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let r = this.rooms.get(room);
      if (!r) this.rooms.set(room, (r = { waiting: [], busy: false }));
      r.waiting.push({ seq, resolve, reject });
      if (!r.busy) void this.barrier(room, r);
    });
  }

  private async barrier(room: string, r: { waiting: Waiter[]; busy: boolean }): Promise<void> {
    r.busy = true;
    const batch = r.waiting.splice(0);
    const upto = Math.max(...batch.map((w) => w.seq));
    try {
      const results = await (this.barriers.pipeline() as ChainableCommander).pexpire(this.keys.seq(room), this.ttlMs).wait(1, this.timeoutMs).exec();
      const [[writeErr] = [null], [waitErr, replicas] = [null, 0]] = results ?? [];
      if (writeErr || waitErr) {
        // A pipeline follows no MOVED unless all its commands got one, and WAIT never does: after a
        // failover the slot map is reloaded here, and the next barrier goes to the new master.
        if (/^MOVED /.test((writeErr as Error | null)?.message ?? '') && 'refreshSlotsCache' in this.barriers) this.barriers.refreshSlotsCache();
        throw writeErr ?? waitErr;
      }
      if (Number(replicas) < 1) throw new SendUnknownError(`no replica confirmed it within ${this.timeoutMs} ms: it is on its master, and lost if that master fails now`);
      const [epoch, log, pub, channel] = this.keys.release(room);
      await this.cmd.ceRelease(epoch, log, pub, upto, channel, this.ttlMs);
      for (const w of batch) w.resolve();
    } catch (err) {
      // (the appends are done: on the master at least; whether a replica or a member has them is not known)
      const failure = err instanceof SendUnknownError ? err : new SendUnknownError(`appended, but not confirmed on a replica: ${failureOf(err).reason}`);
      for (const w of batch) w.reject(failure);
    } finally {
      r.busy = false;
      if (r.waiting.length > 0) void this.barrier(room, r);
      else this.rooms.delete(room);
    }
  }
}
