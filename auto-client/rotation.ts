// Who of a group acts next: one at a time, spread evenly over a period, so each acts once a period
// (the churners leaving and coming back, the switchers asking).
export class Rotation<T> {
  private nextUs: number;
  private turn = 0;

  constructor(
    private readonly members: readonly T[],
    private readonly periodUs: number,
    startUs: number,
  ) {
    this.nextUs = startUs;
  }

  /** The member whose turn it is at `nowUs`, or null (none yet, no members, or no period). */
  due(nowUs: number): T | null {
    if (this.members.length === 0 || !(this.periodUs > 0) || nowUs < this.nextUs) return null;
    this.nextUs = nowUs + this.periodUs / this.members.length;
    return this.members[this.turn++ % this.members.length] as T;
  }
}
