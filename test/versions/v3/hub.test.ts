// The v3 hub on a fake transport that captures writes (as centrifuge tests its hub): the order of
// commands is exact, so what a sweep writes to each socket can be checked frame by frame.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FrameParser } from '../../../auto-client/frame-parser.ts';
import type { ServerMessage } from '../../../versions/protocol.ts';
import { ServerCounters, type Connection } from '../../../versions/strategy.ts';
import { Hub, type HubOptions } from '../../../versions/v3/hub.ts';

/** Just what a ClientPump uses of a net.Socket; every write is kept. */
class FakeSocket extends EventEmitter {
  readonly writes: Buffer[] = [];
  writable = true;
  writableLength = 0;
  writableHighWaterMark = 16 * 1024;
  write(buf: Buffer): boolean {
    this.writes.push(buf);
    return true;
  }

  /** Every text message written, in order. */
  messages(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    const parser = new FrameParser({
      onText: (b, start, end) => out.push(JSON.parse(b.toString('utf8', start, end)) as Record<string, unknown>),
      onPing: () => {},
      onClose: () => {},
      onProtocolError: (reason) => {
        throw new Error(reason);
      },
    });
    for (const w of this.writes) parser.feed(w);
    return out;
  }

  contents(): string[] {
    return this.messages().filter((m) => m.type === 'chat').map((m) => m.content as string);
  }
}

let nextId = 1;
function fakeConnection(room: string): Connection & { socket: FakeSocket } {
  const socket = new FakeSocket();
  // An open WebSocket as far as the pump can tell (it writes only while OPEN); closing ends it.
  const ws = { readyState: 1, close: () => socket.emit('close') };
  return { id: nextId++, name: `c${nextId}`, room, socket, ws } as unknown as Connection & { socket: FakeSocket };
}

const chat = (room: string, content: string): ServerMessage => ({ type: 'chat', room, from: 'x', content, ts: 0 });
const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 5)); // the hub runs in a microtask, its sweeps on setImmediate and timers
async function until(done: () => boolean, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !done(); await turn()) if (Date.now() > end) throw new Error(`not done in ${ms} ms`);
}

async function hubWith(options: Partial<HubOptions>, rooms: Record<string, number>): Promise<{ hub: Hub; counters: ServerCounters; conns: Record<string, Array<Connection & { socket: FakeSocket }>> }> {
  const counters = new ServerCounters();
  const hub = new Hub(counters, { queue: 128, onFull: 'drop', flushPacing: 1, flushRestMaxMs: 25, flushSliceMs: 5, ...options });
  const conns: Record<string, Array<Connection & { socket: FakeSocket }>> = {};
  for (const [room, n] of Object.entries(rooms)) {
    conns[room] = Array.from({ length: n }, () => fakeConnection(room));
    await Promise.all(conns[room]!.map((c) => hub.add(c)));
  }
  return { hub, counters, conns };
}

describe('v3 hub, on a fake transport', () => {
  it('writes each client one batch per sweep, holding the frames in publish order', async () => {
    const { hub, counters, conns } = await hubWith({}, { a: 4 });
    for (let i = 0; i < 50; i++) hub.publish('a', chat('a', `m${i}`));
    await until(() => counters.deliveries === 200);
    for (const c of conns.a!) {
      expect(c.socket.writes).toHaveLength(1);
      expect(c.socket.contents()).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    }
    expect(counters.writes).toBe(4);
    expect(counters.deliveries).toBe(200);
    hub.close();
  });

  it('shares one batch among a room, and never hands a mover the batch of the room it left', async () => {
    const { hub, counters, conns } = await hubWith({}, { a: 3, b: 3 });
    const mover = conns.a![0]!;
    // One hub turn, interleaved: the mover's queue gets a1 then b2, as long as a stayer's [a1, a2].
    hub.publish('a', chat('a', 'a1'));
    hub.publish('b', chat('b', 'b1'));
    void hub.move(mover, 'b');
    hub.publish('a', chat('a', 'a2'));
    hub.publish('b', chat('b', 'b2'));
    await until(() => counters.deliveries === 12); // 2 per client
    expect(mover.socket.contents()).toEqual(['a1', 'b2']);
    for (const c of conns.a!.slice(1)) expect(c.socket.contents()).toEqual(['a1', 'a2']);
    for (const c of conns.b!) expect(c.socket.contents()).toEqual(['b1', 'b2']);
    // The stayers of each room were written the very same bytes.
    expect(conns.a![1]!.socket.writes[0]).toBe(conns.a![2]!.socket.writes[0]);
    expect(conns.b![0]!.socket.writes[0]).toBe(conns.b![2]!.socket.writes[0]);
    hub.close();
  });

  it('lets a sweep read between slices: a message published mid-sweep joins the batch of every client not yet written', async () => {
    const sweep = async (flushSliceMs: number): Promise<Array<Connection & { socket: FakeSocket }>> => {
      const { hub, counters, conns } = await hubWith({ flushSliceMs: flushSliceMs === 0 ? 0 : 1e-9, flushPacing: 0 }, { a: 5 }); // 1e-9 ms: one client per slice; no rest
      const clients = conns.a!;
      const first = clients[0]!.socket;
      const write = first.write.bind(first);
      first.write = (buf: Buffer): boolean => {
        if (first.writes.length === 0) hub.publish('a', chat('a', 'm2')); // arrives while the sweep is writing
        return write(buf);
      };
      hub.publish('a', chat('a', 'm1'));
      await until(() => counters.deliveries === 10);
      for (const c of clients) expect(c.socket.contents()).toEqual(['m1', 'm2']);
      expect(counters.deliveries).toBe(10);
      hub.close();
      return clients;
    };
    const sliced = await sweep(1);
    expect(sliced.map((c) => c.socket.writes.length)).toEqual([2, 1, 1, 1, 1]); // only the client already written waits for the next sweep
    const whole = await sweep(0);
    expect(whole.map((c) => c.socket.writes.length)).toEqual([2, 2, 2, 2, 2]); // a whole sweep cannot read: m2 waits for the next one
  });

  it('writes a reply and a drop notice only to their own client, in order with the room around them', async () => {
    const { hub, counters, conns } = await hubWith({ queue: 3 }, { a: 3 });
    const [replied, stuck, plain] = conns.a!;
    stuck!.socket.writableLength = stuck!.socket.writableHighWaterMark; // its socket takes nothing more
    hub.publish('a', chat('a', 'x1'));
    hub.sendTo(replied!, { type: 'error', code: 'BAD_JSON', message: 'the frame is not valid JSON' });
    for (const x of ['x2', 'x3', 'x4']) hub.publish('a', chat('a', x)); // x4 finds stuck's queue of 3 full
    await until(() => counters.deliveries === 8); // x1-x4 to the two that read
    expect(stuck!.socket.writes).toHaveLength(0);
    // Only the socket that pushed back is listened to: idle and keeping-up clients cost no listeners.
    expect(conns.a!.map((c) => c.socket.listenerCount('drain'))).toEqual([0, 1, 0]);
    stuck!.socket.writableLength = 0;
    stuck!.socket.emit('drain');
    const seen = (c: Connection & { socket: FakeSocket }): unknown[] => c.socket.messages().map((m) => (m.type === 'chat' ? m.content : m.type === 'error' ? m.code : `${m.type} ${m.count}/${m.total}`));
    expect(seen(replied!)).toEqual(['x1', 'BAD_JSON', 'x2', 'x3', 'x4']);
    expect(seen(plain!)).toEqual(['x1', 'x2', 'x3', 'x4']);
    expect(seen(stuck!)).toEqual(['x1', 'x2', 'x3', 'dropped 1/1']);
    expect(counters.drops).toBe(1);
    hub.close();
  });

  it('listens for drain from the first write the kernel did not take whole, and writes what queued meanwhile', async () => {
    const { hub, counters, conns } = await hubWith({}, { a: 2 });
    const [full, plain] = conns.a!;
    full!.socket.write = (buf: Buffer): boolean => {
      full!.socket.writes.push(buf);
      full!.socket.writableLength = full!.socket.writableHighWaterMark; // buffered in user space
      return false;
    };
    hub.publish('a', chat('a', 'y1'));
    await until(() => counters.deliveries === 2);
    expect(full!.socket.listenerCount('drain')).toBe(1);
    expect(plain!.socket.listenerCount('drain')).toBe(0);
    hub.publish('a', chat('a', 'y2')); // queued: the socket still holds y1
    await until(() => plain!.socket.contents().length === 2);
    expect(full!.socket.contents()).toEqual(['y1']);
    full!.socket.writableLength = 0;
    full!.socket.emit('drain');
    expect(full!.socket.contents()).toEqual(['y1', 'y2']);
    expect(counters.deliveries).toBe(4);
    hub.close();
  });

  it('kicks full clients in the middle of a fan-out and still offers the message to every other member once', async () => {
    // Five members; the 2nd and 4th never take a write. A kick moves the room's last member into
    // the kicked one's slot: that member must still get each message, once.
    const { hub, counters, conns } = await hubWith({ onFull: 'kick', queue: 2 }, { a: 5 });
    const stuck = [conns.a![1]!, conns.a![3]!];
    for (const c of stuck) c.socket.writableLength = c.socket.writableHighWaterMark;
    const healthy = conns.a!.filter((c) => !stuck.includes(c));
    for (let i = 0; i < 6; i++) hub.publish('a', chat('a', `k${i}`));
    await until(() => healthy.every((c) => c.socket.contents().length === 6));
    await turn();
    expect(counters.kicks).toBe(2);
    for (const c of healthy) expect(c.socket.contents()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    for (const c of stuck) expect(c.socket.contents()).toEqual([]);
    // A member that leaves hands its slot to the last one; the room goes on without a gap.
    await hub.remove(healthy[0]!);
    hub.publish('a', chat('a', 'after'));
    await until(() => healthy.slice(1).every((c) => c.socket.contents().at(-1) === 'after'));
    expect(healthy[0]!.socket.contents().at(-1)).toBe('k5');
    hub.close();
  });
  it('detaches a member a whole queue behind, counts what it drops, and shares the room\'s batches with it again once it has caught up', async () => {
    const { hub, counters, conns } = await hubWith({ queue: 3 }, { a: 3 });
    const [slow, p1, p2] = conns.a!;
    slow!.socket.writableLength = slow!.socket.writableHighWaterMark;
    for (let i = 0; i < 5; i++) hub.publish('a', chat('a', `s${i}`)); // s3 and s4 find its queue of 3 full
    await until(() => counters.deliveries === 10);
    expect(counters.drops).toBe(2);
    expect(hub.stats().queueDepthMax).toBe(3); // the bound holds: what it is owed is s0-s2, nothing more
    slow!.socket.writableLength = 0;
    slow!.socket.emit('drain');
    expect(slow!.socket.messages().map((m) => (m.type === 'chat' ? m.content : `${m.type} ${m.count}`))).toEqual(['s0', 's1', 's2', 'dropped 2']);
    // Caught up: from the next message on it reads the room's log again, the very bytes the others are written.
    hub.publish('a', chat('a', 'back1'));
    await until(() => counters.deliveries === 16);
    hub.publish('a', chat('a', 'back2'));
    hub.publish('a', chat('a', 'back3'));
    await until(() => counters.deliveries === 22);
    for (const c of [slow!, p1!, p2!]) expect(c.socket.contents().slice(-3)).toEqual(['back1', 'back2', 'back3']);
    expect(slow!.socket.writes.at(-1)).toBe(p1!.socket.writes.at(-1));
    expect(p2!.socket.writes.at(-1)).toBe(p1!.socket.writes.at(-1));
    expect(hub.stats().queueDepth).toBe(0);
    hub.close();
  });

  it('under block, stalls the whole room at the message a full member cannot take, and loses nothing', async () => {
    const { hub, counters, conns } = await hubWith({ queue: 2, onFull: 'block' }, { a: 4 });
    const stuck = conns.a![1]!;
    const others = conns.a!.filter((c) => c !== stuck);
    stuck.socket.writableLength = stuck.socket.writableHighWaterMark;
    for (let i = 0; i < 5; i++) hub.publish('a', chat('a', `b${i}`)); // b2 finds its queue of 2 full: the hub waits there
    await until(() => others.every((c) => c.socket.contents().length === 3));
    await turn();
    await turn();
    for (const c of others) expect(c.socket.contents()).toEqual(['b0', 'b1', 'b2']); // b3 and b4 wait with the hub
    expect(stuck.socket.contents()).toEqual([]);
    stuck.socket.writableLength = 0;
    stuck.socket.emit('drain');
    await until(() => counters.deliveries === 20);
    for (const c of conns.a!) expect(c.socket.contents()).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    expect(counters.drops).toBe(0);
    hub.close();
  });
});
