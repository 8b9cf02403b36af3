// v4's recovery, as one client of a swarm lives it: what it keeps of where it was (the end of the
// last chat it got, with its seq and epoch; the claim to its name), what v4's notices say was lost
// or refused, and the URL it comes back with on the next node.
import { isReplayed, PLACE_TAIL_BYTES, placeOf } from '../versions/protocol.ts';
import type { RecoveryReport } from './delivery-meter.ts';
import type { SendFate } from './send-fate.ts';
import type { ClientSpec } from './swarm-plan.ts';

export interface Resumable {
  spec: ClientSpec;
  /** The end of the last chat frame it got (its seq and epoch), and which of the URLs it is on. */
  lastTail: string;
  urlIndex: number;
  /** What became of its sends, by the server's answers (send-fate.ts). */
  fate: SendFate | null;
  /** The claim to its name its node gave it, shown when it comes back on another. */
  claim: string | null;
}

/** A chat frame it got: where it is in the room's stream now, and whether it was replayed. */
export function keepTail(c: Resumable, r: RecoveryReport, buf: Buffer, start: number, end: number): void {
  c.lastTail = buf.toString('latin1', Math.max(start, end - PLACE_TAIL_BYTES), end);
  if (isReplayed(c.lastTail)) r.replayed++;
}

/** Its `joined`: the claim to its name, kept for the next node. */
export function keepClaim(c: Resumable, joinedText: string): void {
  c.claim = (JSON.parse(joinedText) as { claim?: string }).claim ?? null;
}

/** v4's notices: what history could not give back, a stream that was reset, a send refused. */
export function noteRecovery(c: Resumable, r: RecoveryReport, text: string, nowUs: number): void {
  const m = JSON.parse(text) as { type: string; from?: number; to?: number; code?: string; id?: string };
  if (m.type === 'gap' && typeof m.from === 'number' && typeof m.to === 'number') r.gapMissed += m.to - m.from + 1;
  else if (m.type === 'reset') r.resets++;
  else if (m.type === 'error' && typeof m.code === 'string' && m.id !== undefined && /^\d+$/.test(m.id)) c.fate?.onError(m.code, Number(m.id), nowUs);
}

/** The next of `urls`, with its room, its name and claim, and where it left the stream (since, epoch). */
export function nextResumeUrl(c: Resumable, urls: readonly string[]): string {
  c.urlIndex = (c.urlIndex + 1) % urls.length;
  const url = new URL(urls[c.urlIndex] as string);
  url.searchParams.set('room', c.spec.room);
  url.searchParams.set('name', c.spec.user ?? `c${c.spec.id}`);
  if (c.claim) url.searchParams.set('claim', c.claim);
  const at = placeOf(c.lastTail);
  if (at) {
    url.searchParams.set('since', String(at.seq));
    url.searchParams.set('epoch', at.epoch);
  }
  return url.toString();
}
