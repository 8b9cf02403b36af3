// The protocol's pure parts (versions/protocol.ts): what a client frame parses to, a resume point,
// the place of a v4 chat in its room's stream (written and read in one file), and server framing.
import { describe, expect, it } from 'vitest';
import { FrameParser } from '../../auto-client/frame-parser.ts';
import { DEFAULT_LIMITS, frameText, isReplayed, parseClientFrame, parseResumePoint, placeInStream, placeOf, PLACE_TAIL_BYTES } from '../../versions/protocol.ts';

describe('parseClientFrame', () => {
  it('reads a chat, a direct message and a join, and the article\'s typeless {"content"} as a chat', () => {
    expect(parseClientFrame('{"type":"chat","content":"hi","id":"a1"}', DEFAULT_LIMITS)).toEqual({ ok: true, frame: { type: 'chat', content: 'hi', id: 'a1' } });
    expect(parseClientFrame('{"token":"x","content":"hi"}', DEFAULT_LIMITS)).toEqual({ ok: true, frame: { type: 'chat', content: 'hi' } });
    expect(parseClientFrame('{"type":"direct","to":"ann","content":"psst"}', DEFAULT_LIMITS)).toEqual({ ok: true, frame: { type: 'direct', to: 'ann', content: 'psst' } });
    expect(parseClientFrame('{"type":"join","room":"r1","name":"bo","since":"7","epoch":"e1"}', DEFAULT_LIMITS)).toEqual({
      ok: true,
      frame: { type: 'join', room: 'r1', name: 'bo', resume: { since: 7, epoch: 'e1' } },
    });
  });

  it('answers each kind of bad frame with its own code, and never throws', () => {
    const code = (text: string): string | undefined => {
      const r = parseClientFrame(text, DEFAULT_LIMITS);
      return r.ok ? undefined : r.code;
    };
    expect(code('{')).toBe('BAD_JSON');
    expect(code('[1]')).toBe('BAD_FRAME');
    expect(code('{"type":"chat","content":""}')).toBe('EMPTY_CONTENT');
    expect(code(JSON.stringify({ type: 'chat', content: 'x'.repeat(DEFAULT_LIMITS.maxContentChars + 1) }))).toBe('CONTENT_TOO_LARGE');
    expect(code('{"type":"chat","content":5}')).toBe('BAD_FIELD');
    expect(code('{"type":"chat","content":"x","id":"has space"}')).toBe('BAD_ID');
    expect(code('{"type":"join","room":"no spaces allowed"}')).toBe('BAD_ROOM');
    expect(code('{"type":"join","room":"r","since":"3"}')).toBe('BAD_SINCE');
    expect(code('{"type":"direct","content":"x"}')).toBe('BAD_RECIPIENT');
    expect(code('{"type":"shout"}')).toBe('UNKNOWN_TYPE');
    expect(code('{"type":7}')).toBe('BAD_FIELD');
  });
});

describe('parseResumePoint', () => {
  it('is null without either field, bad with one, and a number and an epoch with both', () => {
    expect(parseResumePoint(undefined, undefined)).toBeNull();
    expect(parseResumePoint('5', undefined)).toBe('bad');
    expect(parseResumePoint(undefined, 'e')).toBe('bad');
    expect(parseResumePoint('-1', 'e')).toBe('bad');
    expect(parseResumePoint('12', 'e')).toEqual({ since: 12, epoch: 'e' });
    expect(parseResumePoint(0, 'e')).toEqual({ since: 0, epoch: 'e' });
  });
});

describe('a v4 chat\'s place in its stream', () => {
  const payload = JSON.stringify({ type: 'chat', room: 'r', from: 'ann', content: 'a "quoted" }, brace', ts: 1 });

  it('is written beside the untouched message, as JSON a client parses, with the replayed mark last', () => {
    const live = placeInStream(payload, 42, 'lq3x9abc12');
    expect(JSON.parse(live)).toEqual({ ...JSON.parse(payload), seq: 42, epoch: 'lq3x9abc12' });
    const again = placeInStream(payload, 42, 'lq3x9abc12', true);
    expect(JSON.parse(again)).toEqual({ ...JSON.parse(payload), seq: 42, epoch: 'lq3x9abc12', replayed: true });
    expect([isReplayed(live), isReplayed(again)]).toEqual([false, true]);
  });

  it('is read back from the last PLACE_TAIL_BYTES of the frame, whatever the content', () => {
    for (const replayed of [false, true]) {
      const json = placeInStream(payload, 9_007_199, 'lq3x9abc12', replayed);
      expect(placeOf(json.slice(-PLACE_TAIL_BYTES))).toEqual({ seq: 9_007_199, epoch: 'lq3x9abc12' });
    }
    // A chat whose content looks like a place is not taken for one: only the end counts.
    expect(placeOf(JSON.stringify({ type: 'chat', content: ',"seq":1,"epoch":"x"}' }))).toBeNull();
    expect(placeOf(payload)).toBeNull();
  });
});

describe('frameText', () => {
  it('frames a text payload as one final unmasked frame at each length encoding', () => {
    for (const len of [0, 125, 126, 65_535, 65_536]) {
      const text = 'x'.repeat(len);
      const got: string[] = [];
      const parser = new FrameParser({ onText: (b, s, e) => got.push(b.toString('utf8', s, e)), onPing: () => {}, onClose: () => {}, onProtocolError: (r) => { throw new Error(r); } });
      parser.feed(frameText(text));
      expect(got).toEqual([text]);
    }
  });
});
