// The switchers: clients that stay and, once a second each, switch rooms or take a new name, then
// wait for the server's answer: `joined`, or an error (v4 refuses while it cannot reach Redis). A
// request that gets neither left its client hanging, which no server may do. Each switcher
// alternates: a switch to the other of its two rooms, then a rename in the room it asked for.
import type { ClientFrame } from '../versions/protocol.ts';
import type { SwitchFigures } from './swarm-plan.ts';

export class Switches {
  /** When each switcher's request waiting for its answer was made (µs), by client id. */
  private readonly waiting = new Map<number, number>();
  /** Requests each switcher has made. */
  private readonly made = new Map<number, number>();
  private readonly figures: SwitchFigures = { asked: 0, joined: 0, refused: 0, unanswered: 0, slowestMs: 0 };

  /** Client `id`'s next request, from its home room `room`; null while its last one waits for an answer. */
  next(id: number, room: string, nowUs: number): ClientFrame | null {
    if (this.waiting.has(id)) return null;
    const k = this.made.get(id) ?? 0;
    this.made.set(id, k + 1);
    this.waiting.set(id, nowUs);
    this.figures.asked++;
    // k = 0, 1, 2, 3 …: to the side room, renamed there, home again, renamed there …
    const side = Math.floor((k + 2) / 2) % 2 === 1;
    return { type: 'join', room: side ? `${room}-side` : room, name: `s${id}-${k - (k % 2)}${k % 2 === 1 ? 'r' : ''}` };
  }

  /** The server answered client `id`'s request: `joined`, or an error (refused). An answer nobody waited for is not counted. */
  answered(id: number, nowUs: number, refused: boolean): void {
    const at = this.waiting.get(id);
    if (at === undefined) return;
    this.waiting.delete(id);
    if (refused) this.figures.refused++;
    else this.figures.joined++;
    this.figures.slowestMs = Math.max(this.figures.slowestMs, Math.round((nowUs - at) / 100) / 10);
  }

  /** The figures at the end of the run: what still waits was never answered. */
  result(): SwitchFigures {
    return { ...this.figures, unanswered: this.waiting.size };
  }
}
