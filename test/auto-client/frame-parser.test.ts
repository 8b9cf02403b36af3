// The generator's frame parser, fed the way sockets feed it: whole streams cut at arbitrary
// points, including inside headers and one byte at a time.
import { describe, expect, it } from 'vitest';
import { FrameParser, MAX_MESSAGE_BYTES } from '../../auto-client/frame-parser.ts';
import { rng } from '../../common/helpers.ts';

/** An unmasked server frame. */
function frame(opcode: number, payload: Buffer | string, fin = true, extra = 0): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = body.length;
  const header = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(header + len);
  out[0] = (fin ? 0x80 : 0) | extra | opcode;
  if (len < 126) out[1] = len;
  else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  body.copy(out, header);
  return out;
}

function closeFrame(code: number, reason: string): Buffer {
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code);
  body.write(reason, 2);
  return frame(0x8, body);
}

type Event = ['text', string] | ['binary', number[]] | ['ping', string] | ['close', number, string] | ['error', string];

function parserRecording(): { parser: FrameParser; events: Event[] } {
  const events: Event[] = [];
  const parser = new FrameParser({
    onText: (buf, start, end) => events.push(['text', buf.toString('utf8', start, end)]),
    onBinary: (buf, start, end) => events.push(['binary', [...buf.subarray(start, end)]]),
    onPing: (payload) => events.push(['ping', payload.toString()]),
    onClose: (code, reason) => events.push(['close', code, reason]),
    onProtocolError: (reason) => events.push(['error', reason]),
  });
  return { parser, events };
}

/** Feeds `stream` cut at the given points, each chunk written into one reused buffer as a socket's onread does. */
function feedCut(parser: FrameParser, stream: Buffer, cuts: number[]): void {
  const shared = Buffer.alloc(stream.length);
  let from = 0;
  for (const to of [...cuts, stream.length]) {
    stream.copy(shared, 0, from, to);
    parser.feed(shared, 0, to - from);
    shared.fill(0xee); // whatever the parser kept must not point into the reused buffer
    from = to;
  }
}

const MESSAGES = ['', 'hi', 'é'.repeat(62), 'x'.repeat(125), 'y'.repeat(126), 'z'.repeat(65_535), 'w'.repeat(65_536), 'v'.repeat(70_000)];
const STREAM = Buffer.concat([
  ...MESSAGES.map((m) => frame(0x1, m)),
  frame(0x9, 'are you there'),
  frame(0x1, 'frag', false),
  frame(0x9, 'between fragments'), // control frames may come between fragments
  frame(0x0, 'men', false),
  frame(0x0, 'ted', true),
  frame(0xa, 'unsolicited pong'),
  frame(0x2, Buffer.from([1, 2, 3])), // binary: handed over apart, for the swarm to count as unreadable
  frame(0x1, 'last'),
  closeFrame(4008, 'slow consumer'),
]);
const EXPECTED: Event[] = [
  ...MESSAGES.map((m): Event => ['text', m]),
  ['ping', 'are you there'],
  ['ping', 'between fragments'],
  ['text', 'fragmented'],
  ['binary', [1, 2, 3]],
  ['text', 'last'],
  ['close', 4008, 'slow consumer'],
];

describe('FrameParser', () => {
  it('hands over every message of a stream read in one chunk', () => {
    const { parser, events } = parserRecording();
    feedCut(parser, STREAM, []);
    expect(events).toEqual(EXPECTED);
  });

  it('hands over the same messages when the stream is cut one byte at a time', () => {
    const { parser, events } = parserRecording();
    feedCut(parser, STREAM, Array.from({ length: STREAM.length - 1 }, (_, i) => i + 1));
    expect(events).toEqual(EXPECTED);
  });

  it('hands over the same messages for 200 random cuttings, inside headers and payloads', () => {
    const random = rng(42);
    for (let run = 0; run < 200; run++) {
      const cuts = new Set<number>();
      const n = 1 + Math.floor(random() * 40);
      for (let i = 0; i < n; i++) cuts.add(1 + Math.floor(random() * (STREAM.length - 1)));
      const { parser, events } = parserRecording();
      feedCut(parser, STREAM, [...cuts].sort((a, b) => a - b));
      expect(events).toEqual(EXPECTED);
    }
  });

  it('reports a close frame without a code as 1005', () => {
    const { parser, events } = parserRecording();
    parser.feed(frame(0x8, ''));
    expect(events).toEqual([['close', 1005, '']]);
  });

  it.each([
    ['a masked frame', Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x61 ^ 1, 0x62 ^ 2]), /masked/],
    ['reserved bits', frame(0x1, 'hi', true, 0x40), /reserved bits/],
    ['an unknown opcode', frame(0x3, 'hi'), /unknown opcode 3/],
    ['a continuation without a message', frame(0x0, 'hi'), /continuation/],
    ['a new message inside a fragmented one', Buffer.concat([frame(0x1, 'a', false), frame(0x1, 'b')]), /inside a fragmented/],
  ])('reports %s as a protocol error and parses nothing after it', (_name, bytes, reason) => {
    const { parser, events } = parserRecording();
    parser.feed(Buffer.concat([bytes, frame(0x1, 'after')]));
    expect(events).toHaveLength(1);
    expect(events[0]?.[0]).toBe('error');
    expect(events[0]?.[1]).toMatch(reason);
  });

  it('refuses a frame longer than the limit from its header alone, without waiting for or buffering it', () => {
    const header = Buffer.alloc(10);
    header[0] = 0x81;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(MAX_MESSAGE_BYTES + 1), 2);
    for (const cuts of [[], [1], [5]]) {
      const { parser, events } = parserRecording();
      feedCut(parser, header, cuts);
      expect(events).toEqual([['error', `frame of ${MAX_MESSAGE_BYTES + 1} bytes`]]);
    }
  });
});
