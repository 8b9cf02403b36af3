// How a swarm tells a control message's type without parsing it whole.
import { describe, expect, it } from 'vitest';
import { parseJsonLines, peekType } from '../../auto-client/control-frames.ts';
import { encodeServerMessage } from '../../versions/protocol.ts';

const at = (text: string, before = 'xx', after = 'yy'): [Buffer, number, number] => {
  const buf = Buffer.from(before + text + after, 'utf8');
  return [buf, Buffer.byteLength(before), Buffer.byteLength(before + text)];
};

describe('peekType', () => {
  it("reads the type our servers put first, within the frame's bounds", () => {
    const members = Array.from({ length: 100 }, (_, i) => `c${i}`);
    const joined = encodeServerMessage({ type: 'joined', room: 'lobby', name: 'c1', id: 1, members, server: { version: 'v3', describe: 'v3', limits: { maxFrameBytes: 65536, maxContentChars: 16384 } } });
    expect(peekType(...at(joined))).toBe('joined');
    expect(peekType(...at(encodeServerMessage({ type: 'dropped', count: 3, total: 7 })))).toBe('dropped');
    expect(peekType(...at('{"type":"chat","content":"{\\"type\\":\\"joined\\"}"}'))).toBe('chat');
  });

  it('gives null where the frame must be parsed whole: another key first, spaces, a cut or endless type', () => {
    expect(peekType(...at('{"total":7,"type":"dropped"}'))).toBeNull();
    expect(peekType(...at('{ "type": "joined" }'))).toBeNull();
    expect(peekType(...at('{"type":"joi', 'xx', 'ned"}'))).toBeNull(); // its closing quote lies beyond the frame
    const [buf] = at('{"type":"joined"}');
    expect(peekType(buf, 2, 10)).toBeNull(); // the frame ends inside the prefix
    expect(peekType(...at(`{"type":"${'x'.repeat(40)}"}`))).toBeNull();
    expect(peekType(...at(''))).toBeNull();
  });
});

describe('parseJsonLines', () => {
  it('reads one JSON message, or several joined by newlines in one frame', () => {
    expect(parseJsonLines('{"type":"joined"}')).toEqual([{ type: 'joined' }]);
    expect(parseJsonLines('{"type":"joined"}\n{"type":"dropped","total":3}\n')).toEqual([{ type: 'joined' }, { type: 'dropped', total: 3 }]);
  });

  it('gives null for text that is neither, so the swarm counts it instead of ignoring it', () => {
    expect(parseJsonLines('welcome!')).toBeNull();
    expect(parseJsonLines('{"type":"joined"}\nwelcome!')).toBeNull();
    expect(parseJsonLines('')).toBeNull();
  });
});
