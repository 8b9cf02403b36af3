// The generator's own WebSocket client against the reference implementation (ws), for every
// frame shape a server may send.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { WireClient } from '../../auto-client/wire-client.ts';
import { encodeProbe, readProbe, type Probe } from '../../auto-client/probe.ts';
import { eventually } from '../helpers.ts';

let wss: WebSocketServer;
let url: string;
let peer: Promise<WebSocket>;

beforeEach(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/chatroom?room=x`;
  peer = new Promise((resolve) => wss.once('connection', resolve));
});
afterEach(async () => {
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => wss.close(r));
});

async function connect(): Promise<{ client: WireClient; texts: string[]; closes: Array<[number, string]>; server: WebSocket }> {
  const texts: string[] = [];
  const closes: Array<[number, string]> = [];
  const client = await WireClient.connect({
    url,
    onText: (buf, start, end) => texts.push(buf.toString('utf8', start, end)),
    onClose: (code, reason) => closes.push([code, reason]),
  });
  return { client, texts, closes, server: await peer };
}

describe('WireClient', () => {
  it('sends masked text frames the server reads, of every length class', async () => {
    const { client, server } = await connect();
    const got: string[] = [];
    server.on('message', (d: Buffer) => got.push(d.toString()));
    const sizes = [0, 1, 125, 126, 65535, 65536, 200_000];
    for (const n of sizes) client.sendText('a'.repeat(n));
    await eventually(() => got.length === sizes.length, 'all frames');
    expect(got.map((s) => s.length)).toEqual(sizes);
    client.close();
  });

  it('hands over whole messages: small, 16-bit and 64-bit lengths, many per chunk, split across chunks', async () => {
    const { texts, server } = await connect();
    const sent = ['hi', 'é'.repeat(100), 'x'.repeat(70_000), ...Array.from({ length: 500 }, (_, i) => `m${i}`)];
    for (const s of sent) server.send(s);
    await eventually(() => texts.length === sent.length, 'all messages');
    expect(texts).toEqual(sent);
  });

  it('reassembles fragmented messages', async () => {
    const { texts, server } = await connect();
    server.send('frag', { fin: false });
    server.send('ment', { fin: false });
    server.send('ed', { fin: true });
    server.send('whole');
    await eventually(() => texts.length === 2, 'two messages');
    expect(texts).toEqual(['fragmented', 'whole']);
  });

  it('answers a ping with a pong carrying the same payload', async () => {
    const { server } = await connect();
    const pong = new Promise<string>((resolve) => server.once('pong', (d: Buffer) => resolve(d.toString())));
    server.ping('are you there');
    expect(await pong).toBe('are you there');
  });

  it("reports the server's close code and reason and answers the close", async () => {
    const { closes, server } = await connect();
    const closed = new Promise<number>((resolve) => server.once('close', (code: number) => resolve(code)));
    server.close(4008, 'slow consumer');
    await eventually(() => closes.length === 1, 'close');
    expect(closes[0]).toEqual([4008, 'slow consumer']);
    expect(await closed).toBe(4008);
  });

  it('rejects a refused upgrade with the status line', async () => {
    await expect(WireClient.connect({ url: url.replace(/:\d+/, ':1'), onText: () => {} })).rejects.toThrow();
  });
});

describe('probe', () => {
  it('round-trips through JSON and a raw frame, padded to the size asked', () => {
    const p: Probe = { sender: 42, seq: 7, intendedUs: 123456789, sentUs: 123456999 };
    const content = encodeProbe(p, 256);
    expect(content).toHaveLength(256);
    const frame = Buffer.from(JSON.stringify({ type: 'chat', room: 'lobby', from: 'c42', content }));
    const out: Probe = { sender: 0, seq: 0, intendedUs: 0, sentUs: 0 };
    expect(readProbe(frame, 0, frame.length, out)).toBe(true);
    const at = frame.indexOf('~ce1|');
    expect(out).toEqual({ ...p, at, headEnd: at + '~ce1|42|7|123456789|123456999|'.length });
  });

  it('finds the probe where the last one was, and by scanning when the frame is laid out otherwise', () => {
    const out: Probe = { sender: 0, seq: 0, intendedUs: 0, sentUs: 0 };
    const framed = (from: string, seq: number): Buffer =>
      Buffer.from(JSON.stringify({ type: 'chat', from, content: encodeProbe({ sender: 1, seq, intendedUs: 5, sentUs: 6 }, 64) }));
    const short = framed('a', 1);
    const long = framed('a much longer name ~ce1 with a tilde', 2);
    expect(readProbe(short, 0, short.length, out)).toBe(true);
    expect(out.at).toBe(short.indexOf('~ce1|'));
    expect(readProbe(long, 0, long.length, out)).toBe(true); // the hint points at the wrong bytes
    expect(out.seq).toBe(2);
    expect(out.at).toBe(long.indexOf('~ce1|'));
    // The same frame inside a larger buffer, at an offset: positions are relative to its start.
    const padded = Buffer.concat([Buffer.from('junk'), short]);
    expect(readProbe(padded, 4, padded.length, out)).toBe(true);
    expect(out).toMatchObject({ seq: 1, at: short.indexOf('~ce1|') });
  });

  it('finds no probe in other frames, or past the end it is given', () => {
    const out: Probe = { sender: 0, seq: 0, intendedUs: 0, sentUs: 0 };
    const joined = Buffer.from('{"type":"joined","room":"lobby"}');
    expect(readProbe(joined, 0, joined.length, out)).toBe(false);
    const frame = Buffer.from(`abc${encodeProbe({ sender: 1, seq: 2, intendedUs: 3, sentUs: 4 }, 40)}`);
    expect(readProbe(frame, 0, 2, out)).toBe(false);
    const broken = Buffer.from('~ce1|1|x|3|4|');
    expect(readProbe(broken, 0, broken.length, out)).toBe(false);
  });
});
