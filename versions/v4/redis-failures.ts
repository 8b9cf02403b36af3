// What a failed Redis command means for the send or step it carried: done, not done, or maybe
// done. redis-backplane.ts and replica-acks.ts ask here and only here.
import { ReplyError } from 'ioredis';
import { BackplaneDownError, NOT_REACHED, SendUnknownError } from './backplane.ts';

/**
 * What a failed command means. Redis answered with an error: it did nothing (a script's OOM is
 * checked before its first write). The command was never written (no connection, no offline
 * queue): nothing done. The connection was lost after it was written: it may have been done.
 */
export function failureOf(err: unknown): { reason: string; maybeDone: boolean; oom: boolean } {
  const message = (err as Error).message;
  if (err instanceof ReplyError) {
    const oom = /^OOM/.test(message);
    return { reason: oom ? 'Redis is out of memory (OOM) and refuses writes' : `Redis refused it: ${message}`, maybeDone: false, oom };
  }
  if (/isn't writeable/.test(message)) return { reason: NOT_REACHED, maybeDone: false, oom: false };
  // A Redis Cluster's shard in failover: every master asked sent it elsewhere, or said the slot has
  // none. Redirected means refused: nothing done.
  if (/^Too many Cluster redirections\. Last error: ReplyError: (MOVED|ASK|CLUSTERDOWN|TRYAGAIN)/.test(message)) return { reason: "the room's shard of the Redis Cluster has no master now (failing over)", maybeDone: false, oom: false };
  return { reason: 'the connection to Redis was lost before it answered', maybeDone: true, oom: false };
}

/** A command's promise whose failure reads as BACKPLANE_DOWN, with the reason in words (never ioredis's own). */
export function refused<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw new BackplaneDownError(failureOf(err).reason);
  });
}

/** The error a send's failed command is answered with: SEND_UNKNOWN when it may have been done, else BACKPLANE_DOWN. */
export function sendFailure(err: unknown): BackplaneDownError | SendUnknownError {
  const f = failureOf(err);
  return f.maybeDone ? new SendUnknownError(f.reason) : new BackplaneDownError(f.reason);
}
