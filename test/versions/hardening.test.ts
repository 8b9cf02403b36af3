// What a peer cannot do to a server, whatever the version: post from a foreign page, pose under an
// invisible or borrowed name, slip an oversized frame past the count, make the server read a body
// it will refuse, hold it with connections, silence or slow requests, or linger after a close.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatServer } from '../../versions/host.ts';
import { CLOSE_CODES } from '../../versions/protocol.ts';
import { startVersion, type OneProcessVersion } from '../../versions/versions.ts';
import type { VersionOptions } from '../../versions/version-options.ts';
import { closeCodeIn, delay, eventually, metricValue, opcodesIn, openClient, rawFrame, rawUpgrade, stats, type TestClient } from '../helpers.ts';

const VERSIONS: Array<[OneProcessVersion, Partial<VersionOptions>]> = [
  ['v1', {}],
  ['v1.1', {}],
  ['v2', {}],
  ['v3', {}],
];

let server: ChatServer | null = null;
const clients: TestClient[] = [];
const sockets: Array<{ destroy(): void }> = [];

async function start(version: OneProcessVersion, options: Partial<VersionOptions & Parameters<typeof startVersion>[1]> = {}): Promise<ChatServer> {
  server = await startVersion(version, { ...options, port: 0 });
  return server;
}

async function open(s: ChatServer, query: { room?: string; name?: string } = {}): Promise<TestClient> {
  const c = await openClient(s, query);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = null;
});

/**
 * A raw HTTP request, so a test controls every header (fetch sets Host, Origin and others itself).
 * `keepOpen`: write it and leave the socket open, as a slow client does, instead of ending it.
 */
function rawHttp(s: ChatServer, request: string, keepOpen = false): Promise<{ status: number; body: string }> {
  const url = new URL(s.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => (keepOpen ? socket.write(request) : socket.end(request)));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve({ status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
    socket.on('error', reject);
  });
}

const post = (s: ChatServer, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> => {
  const url = new URL(s.url);
  const all: Record<string, string> = { Host: url.host, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...headers };
  const lines = Object.entries(all).filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${v}`);
  return rawHttp(s, `POST /api/send HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
};

describe.each(VERSIONS)('%s', (version, options) => {
  it('takes posts to /api/send only from its own pages, as JSON, to its own host name', async () => {
    const s = await start(version, options);
    const ann = await open(s, { room: 'room1' });
    const body = JSON.stringify({ room: 'room1', content: 'x' });
    // A foreign page's simple POST (text/plain needs no preflight), and a sandboxed one's (Origin: null).
    expect(await post(s, { Origin: 'http://evil.example', 'Content-Type': 'text/plain' }, body)).toMatchObject({ status: 403 });
    expect(await post(s, { Origin: 'http://evil.example' }, body)).toMatchObject({ status: 403 });
    expect(await post(s, { Origin: 'null' }, body)).toMatchObject({ status: 403 });
    // Not JSON: a browser would have sent it without asking first.
    expect(await post(s, { 'Content-Type': 'text/plain' }, body)).toMatchObject({ status: 415 });
    expect(await post(s, { 'Content-Type': 'application/x-www-form-urlencoded' }, body)).toMatchObject({ status: 415 });
    // A name that resolves to loopback is not this server's (DNS rebinding).
    expect(await post(s, { Host: 'evil.example:80' }, body)).toMatchObject({ status: 421 });
    await delay(100);
    expect(ann.chats()).toHaveLength(0);
    // Its own page, as JSON, to its own host: accepted, and the claimed name is marked as HTTP's.
    expect(await post(s, { Origin: 'http://127.0.0.1:8083' }, JSON.stringify({ room: 'room1', content: 'ok', from: 'alice' }))).toMatchObject({ status: 202 });
    expect(await post(s, { Host: 'localhost' }, JSON.stringify({ room: 'room1', content: 'ok too' }))).toMatchObject({ status: 202 });
    await ann.waitFor(() => ann.chats().length === 2, 'the two accepted posts');
    expect(ann.chats().map((m) => m.from)).toEqual(['http:alice', 'http']);
    const refusals = (await stats(s)).refusals;
    expect(refusals).toMatchObject({ origin: 3, content_type: 2, host: 1 });
    expect(await metricValue(s, 'chat_limit_refusals_total', 'limit="origin"')).toBe(3);
  });

  it('refuses invisible, direction-reversing and blank names, and a name another member has in any case or form', async () => {
    const s = await start(version, { ...options, maxMsgsPerS: 0 }); // (a dozen joins in a row: past the join rate of v3 and v4)
    const ann = await open(s, { name: 'ann' });
    // Bidi overrides, zero-width and blank names; and names that render as nothing though they are
    // neither Cc nor Cf: Hangul fillers, the braille blank, a combining mark alone, a variation
    // selector; and a line separator inside a name.
    for (const name of ['ann\u202egpj.exe', '\u200b', '   ', 'a\u2066b', '\u3164', '\uffa0', '\u2800', '\u0301', '\ufe0f', 'a\u2028b']) {
      const before = ann.ofType('error').length;
      ann.send({ type: 'join', room: 'lobby', name });
      await ann.waitFor(() => ann.ofType('error').length > before, `an error for ${JSON.stringify(name)}`);
      expect(ann.ofType('error').at(-1)!.code).toBe('BAD_NAME');
    }
    const bob = await open(s, { name: 'bob' });
    for (const name of ['ANN', 'ａｎｎ', 'Ａnn', 'Ann\u3164', 'Ann\u00a0', ' ann ']) {
      const before = bob.ofType('error').length;
      bob.send({ type: 'join', room: 'lobby', name });
      await bob.waitFor(() => bob.ofType('error').length > before, `an error for ${name}`);
      expect(bob.ofType('error').at(-1)!.code).toBe('NAME_TAKEN');
    }
    // Taken in the URL: the newcomer gets a guest name and is told why.
    const ann2 = await open(s, { name: 'Ann' });
    expect(ann2.ofType('joined')[0]!.name).toMatch(/^guest-\d+$/);
    await ann2.waitFor(() => ann2.ofType('error').length === 1, 'NAME_TAKEN');
    expect(ann2.ofType('error')[0]!.code).toBe('NAME_TAKEN');
    // A guest name is never one a member chose: cat takes the name the next guest would get.
    const cat = await open(s, { name: `guest-${Number(ann2.ofType('joined')[0]!.id) + 1}` });
    const guest = await open(s, {});
    expect(guest.ofType('joined')[0]!.name).not.toBe(cat.ofType('joined')[0]!.name);
    expect(guest.ofType('joined')[0]!.name).toMatch(/^guest-\d+(-\d+)?$/);
    // The same name in another room is free, and a member may change only its own name's case.
    await bob.join('kitchen', 'ann');
    expect(bob.ofType('joined').at(-1)).toMatchObject({ room: 'kitchen', name: 'ann' });
    await ann.join('lobby', 'Ann');
    expect(ann.ofType('joined').at(-1)).toMatchObject({ room: 'lobby', name: 'Ann' });
  });

  it('counts every oversized frame as FRAME_TOO_LARGE, a 64-bit length of 2^62 included', async () => {
    const s = await start(version, options);
    const { socket, received } = await rawUpgrade(s);
    sockets.push(socket);
    socket.write(rawFrame(0x1, 'x', { declaredLength: 2n ** 62n }));
    await eventually(() => closeCodeIn(received) !== null, 'the close');
    expect(closeCodeIn(received)).toBe(CLOSE_CODES.MESSAGE_TOO_BIG);
    await eventually(async () => (await stats(s)).badInput.FRAME_TOO_LARGE === 1, 'FRAME_TOO_LARGE counted');
  });

  it('closes bad UTF-8 with 1007 and a broken frame with 1002, and counts both', async () => {
    const s = await start(version, options);
    const bad = await rawUpgrade(s);
    const unmasked = await rawUpgrade(s);
    sockets.push(bad.socket, unmasked.socket);
    bad.socket.write(rawFrame(0x1, Buffer.from([0x7b, 0xc3, 0x28, 0x7d])));
    unmasked.socket.write(rawFrame(0x1, '{"type":"chat","content":"x"}', { mask: false }));
    await eventually(() => closeCodeIn(bad.received) !== null && closeCodeIn(unmasked.received) !== null, 'both closes');
    expect([closeCodeIn(bad.received), closeCodeIn(unmasked.received)]).toEqual([CLOSE_CODES.INVALID_PAYLOAD, CLOSE_CODES.PROTOCOL_ERROR]);
    await eventually(async () => {
      const b = (await stats(s)).badInput;
      return b.BAD_UTF8 === 1 && b.PROTOCOL_ERROR === 1;
    }, 'BAD_UTF8 and PROTOCOL_ERROR counted');
  });

  it('sends nothing after its close frame: a broadcast while it waits for the answer stays unsent (RFC 6455 §5.5.1)', async () => {
    const s = await start(version, { ...options, idleTimeoutMs: 300, closeGraceMs: 3_000 });
    const { socket, received } = await rawUpgrade(s, '?room=quiet&name=q');
    sockets.push(socket); // reads, but never answers the close
    await eventually(() => closeCodeIn(received) === CLOSE_CODES.IDLE_TIMEOUT, 'the idle close', 5_000);
    // The server now waits for the close to be answered; a message for the room arrives meanwhile.
    expect(await post(s, {}, JSON.stringify({ room: 'quiet', content: 'too late' }))).toMatchObject({ status: 202 });
    await delay(300);
    const ops = opcodesIn(received);
    expect(ops.at(-1)).toBe(0x8);
    expect(ops.filter((op) => op === 0x8)).toHaveLength(1);
  });

  it('answers HEAD on every GET route, with no body', async () => {
    const s = await start(version, options);
    for (const path of ['/', '/app.js', '/style.css', '/healthz', '/metrics', '/api/stats']) {
      const res = await fetch(new URL(path, s.url), { method: 'HEAD' });
      expect([path, res.status]).toEqual([path, 200]);
      expect(await res.text()).toBe('');
      expect(Number(res.headers.get('content-length'))).toBeGreaterThan(0);
    }
  });

  it('closes a socket that stays silent past the idle timeout with 4001, and counts it', async () => {
    const s = await start(version, { ...options, idleTimeoutMs: 300 });
    const quiet = await open(s, { name: 'quiet' });
    await quiet.waitFor(() => quiet.closed !== null, 'the idle close', 5_000);
    expect(quiet.closed!.code).toBe(CLOSE_CODES.IDLE_TIMEOUT);
    expect((await stats(s)).refusals.idle_timeout).toBe(1);
  });
});

describe('limits on peers (the host, the same for every version)', () => {
  it('refuses a body past the limit as soon as it passes it, with 413, and closes the connection', async () => {
    const s = await start('v3');
    const url = new URL(s.url);
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    sockets.push(socket);
    let response = '';
    let closed = false;
    socket.on('data', (d: Buffer) => (response += d.toString()));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /api/send HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
    // Up to 100 MB in 16 KB chunks, as long as the server lets it: it must answer long before.
    const chunk = `${(16 * 1024).toString(16)}\r\n${'x'.repeat(16 * 1024)}\r\n`;
    let sent = 0;
    while (!closed && response === '' && sent < 100 * 1024 * 1024) {
      if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), delay(200)]);
      sent += 16 * 1024;
    }
    await eventually(() => closed, 'the connection closed');
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(sent).toBeLessThan(4 * 1024 * 1024); // the 64 KiB limit plus what was in flight, never 100 MB
  });

  it('caps connections overall and per address with 503 and a reason, and counts both', async () => {
    const s = await start('v3', { maxConnections: 3, maxPerIp: 2 });
    const status = async (localAddress: string): Promise<string> => {
      try {
        const { socket } = await rawUpgrade(s, '', localAddress);
        sockets.push(socket);
        return '101';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(await status('127.0.0.1')).toBe('101');
    expect(await status('127.0.0.1')).toBe('101');
    expect(await status('127.0.0.1')).toBe('HTTP/1.1 503 Service Unavailable');
    expect(await status('127.0.0.2')).toBe('101');
    expect(await status('127.0.0.3')).toBe('HTTP/1.1 503 Service Unavailable');
    expect((await stats(s)).refusals).toMatchObject({ max_per_ip: 1, max_connections: 1 });
  });

  it('counts sockets still sending their upgrade request toward their address\'s cap', async () => {
    const s = await start('v3', { maxPerIp: 2 });
    const url = new URL(s.wsUrl);
    // Two half-sent upgrade requests from one address: a slowloris holding files, not yet WebSockets.
    for (let i = 0; i < 2; i++) {
      const half = connect({ host: url.hostname, port: Number(url.port), localAddress: '127.0.0.5' });
      sockets.push(half);
      await new Promise((r) => half.once('connect', r));
      half.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n`);
    }
    await expect(rawUpgrade(s, '', '127.0.0.5')).rejects.toThrow('HTTP/1.1 503 Service Unavailable');
    const other = await rawUpgrade(s, '', '127.0.0.6');
    sockets.push(other.socket);
    expect((await stats(s)).refusals).toMatchObject({ max_per_ip: 1 });
  });

  it('answers slow request headers with 408 after the headers timeout, and counts it', async () => {
    const s = await start('v1', { headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const started = Date.now();
    const res = await rawHttp(s, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n', true); // and never the blank line
    expect(res.status).toBe(408);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await stats(s)).refusals.headers_timeout).toBe(1);
  });

  it('cuts off a kicked client that never answers the close after the grace, not after 30 s', async () => {
    const s = await start('v3', { onFull: 'kick', queue: 8, closeGraceMs: 300 });
    const { socket } = await rawUpgrade(s, '?name=stuck');
    sockets.push(socket);
    socket.pause(); // never reads: the kick's close frame is never answered
    // Pushed over HTTP, so the stuck reader is the room's only member and the only one kicked.
    for (let i = 0; i < 400 && (await stats(s)).kicks === 0; i++) {
      expect(await post(s, {}, JSON.stringify({ room: 'lobby', content: `${i} ${'x'.repeat(16_000)}` }))).toMatchObject({ status: 202 });
    }
    await eventually(async () => (await stats(s)).kicks === 1, 'the kick');
    await eventually(async () => (await stats(s)).connections === 0, 'the kicked client gone', 5_000);
    expect((await stats(s)).refusals.close_grace).toBe(1);
  });
});
