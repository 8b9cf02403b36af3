// v3's writes. A socket write (a system call) costs far more than the bytes in it, so each
// client's whole queue goes out in one write, in sweeps over the clients with frames waiting.
//  - A sweep is sliced: after flushSliceMs of writing it yields to the event loop, which reads
//    what arrived meanwhile and queues it, then goes on where it stopped. A client the sweep has
//    not reached yet takes those frames in this sweep, so a message waits about one sweep, not
//    for the sweep under way to end and then for its place in the next. A sweep over thousands
//    of clients is thousands of writes: slicing is what keeps that from doubling latency.
//  - Sweeps are paced: after a sweep that spent d ms writing the next waits min(flushPacing × d,
//    flushRestMaxMs) ms, and what arrives meanwhile goes out together. (Writing time, not the
//    sweep's length: the turns between its slices are spent reading, and a rest as long as those
//    too only delays every message further.) Idle, a sweep takes
//    microseconds and nothing waits; under load batches grow with the load; the cap keeps the
//    rest from adding more than flushRestMaxMs of latency where a sweep is already long.
//  - Pacing never fills a queue: once one is three quarters full the writer hurries (the next
//    sweep starts at once), and a queue that fills all the same is written on the spot (Room's
//    catch-up, ClientPump.offer); so drops stay for clients whose sockets do not take what is
//    written to them.
import { performance } from 'node:perf_hooks';
import type { ClientPump } from './client-pump.ts';
import type { Room, SharedBatches } from './room.ts';

/**
 * A queue this full (of its capacity) makes the writer hurry. Three quarters, not half: at half,
 * 64 of the article's 128 was the most a write could carry, and past 1M deliveries/s to 1,000
 * clients that cap, not the load, set how often v3 wrote.
 */
const HURRY_AT = 0.75;

export interface FlushOptions {
  /** After a sweep that spent d ms writing the next waits min(flushPacing × d, flushRestMaxMs) ms; 0 never rests. */
  flushPacing: number;
  /** The longest rest between sweeps, in ms: the most batching may add to latency. */
  flushRestMaxMs: number;
  /** A sweep yields to the event loop after this many ms of writing; 0 writes a whole sweep at once. */
  flushSliceMs: number;
}

export class WriteScheduler {
  /** A queue this many frames deep makes the next sweep start without resting. */
  readonly hurryAt: number;
  /** Concatenations shared by the writes of one slice, or of one hub turn (queues flushed early for being full). */
  batches: SharedBatches = new Map();
  /** The sweep under way: clients it has still to write from `sweepAt` on (each once: ClientPump.scheduled). */
  private sweep: ClientPump[] = [];
  private sweepAt = 0;
  /** Time the sweep under way has spent writing (its slices, not the turns between them), in ms. */
  private sweepWriteMs = 0;
  private sliceScheduled: NodeJS.Immediate | null = null;
  /** Clients with frames waiting that the sweep under way will not reach: the next sweep's. */
  private next: ClientPump[] = [];
  /** Rooms that published since the sweep under way began: the next sweep writes their attached members. */
  private nextRooms: Room[] = [];
  /** The rooms of the sweep under way, whose logs it trims when it ends. */
  private sweptRooms: Room[] = [];
  /** When the next sweep may start (performance.now() ms), and the timer that starts it. */
  private nextSweepAt = 0;
  private restTimer: NodeJS.Timeout | null = null;
  /** A queue is a hurry deep: the next sweep starts without resting. */
  private hurried = false;
  private stopped = false;

  constructor(
    private readonly options: FlushOptions,
    /** Frames each client's queue holds. */
    queue: number,
  ) {
    this.hurryAt = Math.max(1, Math.ceil(queue * HURRY_AT));
  }

  /** `client` has frames waiting: the sweep under way takes it if it has not passed it, else the next; a queue a hurry deep hurries it. */
  schedule(client: ClientPump): void {
    if (client.depth >= this.hurryAt) this.hurried = true;
    if (client.scheduled) return;
    client.scheduled = true;
    this.next.push(client);
  }

  /** `room` appended to its log: every attached member has frames waiting; `hurry` if one may be a hurry deep (Room.append). */
  scheduleRoom(room: Room, hurry: boolean): void {
    if (hurry) this.hurried = true;
    if (room.scheduled) return;
    room.scheduled = true;
    this.nextRooms.push(room);
  }

  /** The hub's turn is over: what it shared is done with, and a sweep starts now or after its rest. */
  endTurn(): void {
    this.batches = new Map();
    this.requestSweep();
  }

  /** Takes every client with frames waiting into a new sweep, unless one is under way, and writes its first slice. */
  startSweep(): void {
    if (this.sweeping || !this.pending || this.stopped) return;
    if (this.restTimer) clearTimeout(this.restTimer);
    this.restTimer = null;
    const sweep = this.next;
    for (const room of this.nextRooms) {
      room.scheduled = false;
      for (const member of room.attached) {
        const client = member as ClientPump;
        if (client.scheduled) continue;
        client.scheduled = true;
        sweep.push(client);
      }
    }
    this.sweep = sweep;
    this.sweepAt = 0;
    this.next = [];
    this.sweptRooms = this.nextRooms;
    this.nextRooms = [];
    this.hurried = false;
    this.sweepWriteMs = 0;
    this.writeSlice();
  }

  close(): void {
    this.stopped = true;
    if (this.restTimer) clearTimeout(this.restTimer);
    if (this.sliceScheduled) clearImmediate(this.sliceScheduled);
  }

  /** Starts a sweep now if the last one has rested long enough or the writer hurries, else when it has rested. */
  private requestSweep(): void {
    if (!this.pending || this.stopped || this.sweeping) return; // (a sweep under way goes on by itself)
    const wait = this.hurried ? 0 : this.nextSweepAt - performance.now();
    if (wait > 0) {
      this.restTimer ??= setTimeout(() => {
        this.restTimer = null;
        this.startSweep();
      }, wait);
      return;
    }
    this.startSweep();
  }

  /** Something waits for the next sweep. */
  private get pending(): boolean {
    return this.next.length > 0 || this.nextRooms.length > 0;
  }

  /** A sweep is under way: it has clients left to write. */
  private get sweeping(): boolean {
    return this.sweepAt < this.sweep.length;
  }

  /**
   * Writes the sweep's next clients, one socket write each, for flushSliceMs at most, then lets
   * the event loop read before the next slice. Clients of one slice share concatenations.
   */
  private writeSlice(): void {
    this.sliceScheduled = null;
    if (this.stopped) return;
    const sweep = this.sweep;
    const sliceMs = this.options.flushSliceMs;
    const started = performance.now();
    while (this.sweepAt < sweep.length) {
      const client = sweep[this.sweepAt++] as ClientPump;
      client.scheduled = false;
      client.flush(this.batches);
      if (sliceMs > 0 && performance.now() - started >= sliceMs) break;
    }
    this.batches = new Map();
    const ended = performance.now();
    this.sweepWriteMs += ended - started;
    if (this.sweeping) {
      this.sliceScheduled = setImmediate(() => this.writeSlice());
      return;
    }
    this.sweep = [];
    this.sweepAt = 0;
    for (const room of this.sweptRooms) room.trim();
    this.sweptRooms = [];
    this.nextSweepAt = ended + Math.min(this.sweepWriteMs * this.options.flushPacing, this.options.flushRestMaxMs);
    this.requestSweep();
  }
}
