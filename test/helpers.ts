// Test helpers: a WebSocket client that records every frame and exposes its raw socket, so a
// test can stop reading it (a slow reader) and let backpressure reach the server.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { ROOT } from '../harness/server-process.ts';
import type { ChatServer } from '../versions/host.ts';
import type { ServerMessage, ServerStats } from '../versions/protocol.ts';

export type Received = ServerMessage & Record<string, unknown>;

export class TestClient {
  readonly messages: Received[] = [];
  closed: { code: number; reason: string } | null = null;
  private listeners = new Set<() => void>();

  constructor(
    readonly ws: WebSocket,
    readonly socket: Socket,
  ) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as Received);
      this.notify();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
    ws.on('error', () => {});
  }

  chats(): Array<Extract<ServerMessage, { type: 'chat' }>> {
    return this.ofType('chat');
  }

  ofType<T extends ServerMessage['type']>(type: T): Array<Extract<ServerMessage, { type: T }>> {
    return this.messages.filter((m) => m.type === type) as Array<Extract<ServerMessage, { type: T }>>;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Resolves when `done()` holds; rejects after `timeoutMs` saying what it waited for. */
  waitFor(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.listeners.add(check);
    });
  }

  /** Waits for the next `joined` reply after the `count` seen so far. */
  async join(room: string, name?: string): Promise<void> {
    const before = this.ofType('joined').length;
    this.send({ type: 'join', room, ...(name ? { name } : {}) });
    await this.waitFor(() => this.ofType('joined').length > before, `joined ${room}`);
  }

  /** Stops reading the socket: the kernel buffers fill and the server feels backpressure. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.socket.resume(); // a paused reader would never see the server's close
    this.ws.close();
    return this.waitFor(() => this.closed !== null, 'close', 5_000).catch(() => this.ws.terminate());
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}

/** Opens a client and waits for its `joined` (with `awaitJoined: false`, only for the upgrade). */
export async function openClient(server: ChatServer | string, query: { room?: string; name?: string; since?: number; epoch?: string; token?: string; claim?: string } = {}, headers: Record<string, string> = {}, awaitJoined = true, protocols: string[] = []): Promise<TestClient> {
  const base = typeof server === 'string' ? server : server.wsUrl;
  const url = new URL(base);
  if (query.room) url.searchParams.set('room', query.room);
  if (query.name) url.searchParams.set('name', query.name);
  if (query.since !== undefined) url.searchParams.set('since', String(query.since));
  if (query.epoch !== undefined) url.searchParams.set('epoch', query.epoch);
  if (query.token !== undefined) url.searchParams.set('token', query.token);
  if (query.claim !== undefined) url.searchParams.set('claim', query.claim);
  let socket: Socket | undefined;
  const ws = new WebSocket(url, protocols, {
    perMessageDeflate: false,
    headers,
    // ws documents this hook; it hands us the raw socket so a test can pause reading.
    createConnection: ((opts: Parameters<typeof connect>[0]) => (socket = connect(opts))) as typeof connect,
  });
  const client = new TestClient(ws, socket as unknown as Socket);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => reject(new Error(`HTTP ${res.statusCode}${body ? `: ${body}` : ''}`)));
      res.on('error', () => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  });
  if (awaitJoined) await client.waitFor(() => client.ofType('joined').length > 0, 'first joined');
  return client;
}

export async function stats(server: ChatServer): Promise<ServerStats> {
  const res = await fetch(`${server.url}api/stats`);
  return (await res.json()) as ServerStats;
}

export async function metricValue(server: ChatServer, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${server.url}metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    if (labels && !line.includes(labels)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  throw new Error(`metric ${name}${labels} not found`);
}

/** Whether a process with this pid still exists (signal 0 tests without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits `ms` milliseconds. */
export const delay = sleep;

/** Polls until `done()` holds; for state outside a client (server stats). */
export async function eventually(done: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

/** Runs one of the project's TypeScript CLIs to the end; resolves with its exit code and output. */
export function runCli(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A raw TCP connection upgraded to a WebSocket by hand, for sending frames `ws` would never
 * send (unmasked, reserved bits, bad UTF-8, lying lengths). Resolves once the 101 has arrived;
 * `received` collects what the server sends after it.
 */
export async function rawUpgrade(server: ChatServer, query = '', localAddress?: string): Promise<{ socket: Socket; received: Buffer[] }> {
  const url = new URL(server.wsUrl);
  const socket = connect({ host: url.hostname, port: Number(url.port), ...(localAddress ? { localAddress } : {}) });
  const received: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!status.includes(' 101 ')) return reject(new Error(status));
      if (head.length > end + 4) received.push(head.subarray(end + 4));
      socket.on('data', (more: Buffer) => received.push(more));
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('connect', () =>
      socket.write(`GET ${url.pathname}${query} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`),
    );
  });
  socket.on('error', () => {});
  return { socket, received };
}

export interface RawFrameOptions {
  fin?: boolean;
  /** The three reserved bits, as a number 0-7. */
  rsv?: number;
  /** Clients must mask; false sends an unmasked frame. */
  mask?: boolean;
  /** A length field that lies: the frame declares this, whatever the payload is. */
  declaredLength?: bigint;
}

/** One WebSocket frame as a client would send it (masked), or broken as asked. */
export function rawFrame(opcode: number, payload: Buffer | string, o: RawFrameOptions = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const length = o.declaredLength ?? BigInt(body.length);
  const masked = o.mask !== false;
  const ext = length < 126n ? 0 : length < 65536n ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = (o.fin === false ? 0 : 0x80) | ((o.rsv ?? 0) << 4) | opcode;
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? Number(length) : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(Number(length), 2);
  if (ext === 8) head.writeBigUInt64BE(length, 2);
  if (!masked) return Buffer.concat([head, body]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  key.copy(head, 2 + ext);
  const out = Buffer.from(body);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([head, out]);
}

/** The frames the server sent in `received` (unmasked, as a server sends them): opcode and payload. */
export function framesIn(received: readonly Buffer[]): Array<{ op: number; payload: Buffer }> {
  const all = Buffer.concat(received);
  const frames: Array<{ op: number; payload: Buffer }> = [];
  for (let i = 0; i + 1 < all.length; ) {
    let len = (all[i + 1] as number) & 0x7f;
    let at = i + 2;
    if (len === 126) {
      len = all.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      len = Number(all.readBigUInt64BE(at));
      at += 8;
    }
    frames.push({ op: (all[i] as number) & 0x0f, payload: all.subarray(at, at + len) });
    i = at + len;
  }
  return frames;
}

/** The opcodes of the frames in `received`, in order (0x1 text, 0x8 close, …). */
export function opcodesIn(received: readonly Buffer[]): number[] {
  return framesIn(received).map((f) => f.op);
}

/** The close code in the server's close frame, once one has arrived (null before). */
export function closeCodeIn(received: readonly Buffer[]): number | null {
  const close = framesIn(received).find((f) => f.op === 0x8);
  if (!close) return null;
  return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
}

