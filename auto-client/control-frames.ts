// What a swarm reads besides probes: the type of a control message, without parsing it whole, and
// the messages of a frame that joins several with newlines (a server may batch them).

/** A frame's JSON message, or its lines' when it joins several with newlines; null when it is neither. */
export function parseJsonLines(text: string): unknown[] | null {
  try {
    return [JSON.parse(text)];
  } catch {
    if (!text.includes('\n')) return null;
  }
  try {
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as unknown);
  } catch {
    return null;
  }
}

const TYPE_PREFIX = Buffer.from('{"type":"');
const MAX_TYPE_CHARS = 32;

/**
 * The `type` of a control message that begins `{"type":"…"`, as our servers' do, without parsing
 * the rest (a `joined` reply lists up to 100 members; a swarm takes thousands a second); null when
 * it begins otherwise and must be parsed whole.
 */
export function peekType(buf: Buffer, start: number, end: number): string | null {
  const from = start + TYPE_PREFIX.length;
  if (end < from || buf.compare(TYPE_PREFIX, 0, TYPE_PREFIX.length, start, from) !== 0) return null;
  const last = Math.min(end, from + MAX_TYPE_CHARS);
  for (let i = from; i < last; i++) {
    if (buf[i] === 0x22) return buf.toString('latin1', from, i); // the closing quote: type names have no escapes
  }
  return null;
}
