// Parses the frames a WebSocket server sends (RFC 6455 §5.2, no extensions), from chunks as the
// socket reads them, and hands each message over as bytes [start, end) of a buffer it does not
// copy. Only a frame cut by the end of a read is copied, and only that frame: the generator's
// reads arrive in one reused buffer, and at millions of frames a second a copy of every chunk
// (Buffer.concat) was a large share of a worker's CPU.

export const OPCODES = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;
/** Largest message accepted, in bytes; a server sending more is broken. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface FrameHandlers {
  /** A whole text message: bytes [start, end) of `buf`, valid only during the call. */
  onText(buf: Buffer, start: number, end: number): void;
  /** A whole binary message, as onText; none of our servers sends one, but an external target may. */
  onBinary?(buf: Buffer, start: number, end: number): void;
  onPing(payload: Buffer): void;
  /** `code` 1005 when the close frame carried none. */
  onClose(code: number, reason: string): void;
  /** The server broke the protocol (masked or reserved-bit frame, bad opcode, oversized message). */
  onProtocolError(reason: string): void;
}

/** Header length from the frame's second byte: 2, 4 or 10 bytes, and 4 more for a mask key. */
function headerSize(b1: number): number {
  const code = b1 & 0x7f;
  return (code < 126 ? 2 : code === 126 ? 4 : 10) + (b1 & 0x80 ? 4 : 0);
}

/** Payload length of a frame whose header is complete at `pos`. */
function payloadLength(buf: Uint8Array, pos: number): number {
  const code = (buf[pos + 1] as number) & 0x7f;
  if (code < 126) return code;
  if (code === 126) return ((buf[pos + 2] as number) << 8) | (buf[pos + 3] as number);
  // 64-bit length: anything above 2^53 is far past MAX_MESSAGE_BYTES anyway.
  let n = 0;
  for (let i = 2; i < 10; i++) n = n * 256 + (buf[pos + i] as number);
  return n;
}

export class FrameParser {
  /** The frame cut by the end of the last chunk, header first; `carryLength` bytes of it so far. */
  private carry = Buffer.alloc(0);
  private carryLength = 0;
  private fragments: Buffer[] = [];
  private fragmentOp = -1;
  private fragmentBytes = 0;
  private failed = false;

  constructor(private readonly handlers: FrameHandlers) {}

  /** Parses bytes [start, end) of `chunk`; the bytes may be overwritten once this returns. */
  feed(chunk: Buffer, start = 0, end = chunk.length): void {
    let pos = start;
    if (this.carryLength > 0) pos = this.completeCarry(chunk, pos, end);
    while (pos < end && !this.failed) {
      if (end - pos < 2) return this.keep(chunk, pos, end);
      const header = headerSize(chunk[pos + 1] as number);
      if (end - pos < header) return this.keep(chunk, pos, end);
      const payload = payloadLength(chunk, pos);
      if (payload > MAX_MESSAGE_BYTES) return this.fail(`frame of ${payload} bytes`);
      if (end - pos < header + payload) return this.keep(chunk, pos, end);
      this.frame(chunk, pos, header, pos + header + payload);
      pos += header + payload;
    }
  }

  /** Fills the carried frame from the new chunk, never reading past it; returns where parsing goes on. */
  private completeCarry(chunk: Buffer, pos: number, end: number): number {
    for (;;) {
      const want = this.carryWants();
      if (want < 0) return end;
      if (this.carryLength === want) {
        this.carryLength = 0;
        this.frame(this.carry, 0, headerSize(this.carry[1] as number), want);
        return pos;
      }
      if (pos === end) return end;
      const take = Math.min(want - this.carryLength, end - pos);
      this.reserve(want);
      this.carry.set(chunk.subarray(pos, pos + take), this.carryLength);
      this.carryLength += take;
      pos += take;
    }
  }

  /**
   * How many bytes the carried frame has in all, as far as the bytes carried so far tell: equal to
   * what is carried only once the frame is whole. −1 when its header announces too long a frame.
   */
  private carryWants(): number {
    if (this.carryLength < 2) return 2;
    const header = headerSize(this.carry[1] as number);
    if (this.carryLength < header) return header;
    const payload = payloadLength(this.carry, 0);
    if (payload > MAX_MESSAGE_BYTES) {
      this.fail(`frame of ${payload} bytes`);
      return -1;
    }
    return header + payload;
  }

  private keep(chunk: Buffer, pos: number, end: number): void {
    this.reserve(end - pos);
    this.carry.set(chunk.subarray(pos, end), 0);
    this.carryLength = end - pos;
  }

  private reserve(bytes: number): void {
    if (this.carry.length >= bytes) return;
    const grown = Buffer.allocUnsafe(Math.max(bytes, 256));
    this.carry.copy(grown, 0, 0, this.carryLength);
    this.carry = grown;
  }

  private frame(buf: Buffer, pos: number, header: number, end: number): void {
    const b0 = buf[pos] as number;
    if ((buf[pos + 1] as number) & 0x80) return this.fail('masked frame from a server');
    if (b0 & 0x70) return this.fail('reserved bits set (no extension was negotiated)');
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    const start = pos + header;
    switch (op) {
      case OPCODES.TEXT:
      case OPCODES.BINARY:
        if (this.fragmentOp >= 0) return this.fail('new message inside a fragmented one');
        if (fin) {
          if (op === OPCODES.TEXT) this.handlers.onText(buf, start, end);
          else this.handlers.onBinary?.(buf, start, end);
          return;
        }
        this.fragmentOp = op;
        this.fragments = [Buffer.from(buf.subarray(start, end))];
        this.fragmentBytes = end - start;
        return;
      case OPCODES.CONT: {
        if (this.fragmentOp < 0) return this.fail('continuation without a message');
        this.fragmentBytes += end - start;
        if (this.fragmentBytes > MAX_MESSAGE_BYTES) return this.fail(`message of ${this.fragmentBytes} bytes`);
        this.fragments.push(Buffer.from(buf.subarray(start, end)));
        if (!fin) return;
        const whole = Buffer.concat(this.fragments);
        const wasText = this.fragmentOp === OPCODES.TEXT;
        this.fragments = [];
        this.fragmentOp = -1;
        if (wasText) this.handlers.onText(whole, 0, whole.length);
        else this.handlers.onBinary?.(whole, 0, whole.length);
        return;
      }
      case OPCODES.PING:
        return this.handlers.onPing(Buffer.from(buf.subarray(start, end)));
      case OPCODES.PONG:
        return;
      case OPCODES.CLOSE: {
        const code = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
        const reason = end - start > 2 ? buf.toString('utf8', start + 2, end) : '';
        return this.handlers.onClose(code, reason);
      }
      default:
        return this.fail(`unknown opcode ${op}`);
    }
  }

  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    this.handlers.onProtocolError(reason);
  }
}
