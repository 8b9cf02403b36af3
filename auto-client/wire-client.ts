// A lean WebSocket client for the load generator (RFC 6455, no extensions). The `ws` client as a
// generator reached about half of what a minimal frame parser does on this machine, and a
// generator slower than the server measures itself. It handles every frame shape a server
// sends: fragmented text, ping (answered with pong), pong, close (answered, then ended).
// Text payloads are handed over as (buffer, start, end), without a copy where possible.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface WireClientOptions {
  /** ws://host:port/path?query */
  url: string;
  /** Source address to bind, to spread 4-tuples over 127.0.0.0/8. */
  localAddress?: string;
  /** A complete text message: bytes [start, end) of `buf`. `buf` is only valid during the call. */
  onText(buf: Buffer, start: number, end: number): void;
  /** Called once per chunk read from the socket, before its frames: one clock read per chunk. */
  onChunk?(): void;
  /** The connection ended; `code` is the server's close code, or 1006 if there was none. */
  onClose?(code: number, reason: string): void;
}

const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
/** Largest message we accept, in bytes; a server sending more is broken. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const HANDSHAKE_TIMEOUT_MS = 15_000;

export class WireClient {
  readonly socket: Socket;
  closeCode: number | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOp = -1;
  private open = false;
  private readonly mask = randomBytes(4);

  private constructor(private readonly options: WireClientOptions, socket: Socket) {
    this.socket = socket;
  }

  /** Connects and completes the upgrade; rejects with the HTTP status line on refusal. */
  static connect(options: WireClientOptions): Promise<WireClient> {
    const url = new URL(options.url);
    const socket = connect({ host: url.hostname, port: Number(url.port || 80), ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    socket.setNoDelay(true);
    const client = new WireClient(options, socket);
    return client.handshake(url);
  }

  private handshake(url: URL): Promise<WireClient> {
    const key = randomBytes(16).toString('base64');
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new Error('handshake timed out')), HANDSHAKE_TIMEOUT_MS);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        this.socket.destroy();
        reject(err);
      };
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        this.socket.off('data', onData);
        this.socket.off('error', fail);
        clearTimeout(timer);
        const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(status)) return fail(new Error(`upgrade refused: ${status}`));
        this.open = true;
        this.socket.on('data', (d: Buffer) => this.onData(d));
        this.socket.on('error', () => {}); // 'close' follows and reports
        this.socket.on('close', () => this.finish(1006, ''));
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.onData(rest);
        resolve(this);
      };
      this.socket.on('data', onData);
      this.socket.once('error', fail);
      this.socket.once('connect', () => {
        this.socket.write(
          `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
    });
  }

  get isOpen(): boolean {
    return this.open;
  }

  sendText(text: string): void {
    if (!this.open) return;
    this.socket.write(this.frame(OP_TEXT, Buffer.from(text, 'utf8')));
  }

  /** Starts the closing handshake; the socket ends when the server answers. */
  close(code = 1000): void {
    if (!this.open) return;
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    this.socket.write(this.frame(OP_CLOSE, body));
    this.open = false;
    setTimeout(() => this.socket.destroy(), 2_000).unref();
  }

  destroy(): void {
    this.open = false;
    this.socket.destroy();
  }

  private frame(opcode: number, payload: Buffer): Buffer {
    const len = payload.length;
    const headerLen = (len < 126 ? 2 : len < 65536 ? 4 : 10) + 4;
    const out = Buffer.allocUnsafe(headerLen + len);
    out[0] = 0x80 | opcode;
    if (len < 126) out[1] = 0x80 | len;
    else if (len < 65536) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(len, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeBigUInt64BE(BigInt(len), 2);
    }
    const m = this.mask;
    m.copy(out, headerLen - 4);
    for (let i = 0; i < len; i++) out[headerLen + i] = (payload[i] as number) ^ (m[i & 3] as number);
    return out;
  }

  private onData(chunk: Buffer): void {
    this.options.onChunk?.();
    const buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    while (buf.length - pos >= 2) {
      const b0 = buf[pos] as number;
      const b1 = buf[pos + 1] as number;
      let len = b1 & 0x7f;
      let off = pos + 2;
      if (len === 126) {
        if (buf.length - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        off = pos + 4;
      } else if (len === 127) {
        if (buf.length - pos < 10) break;
        len = Number(buf.readBigUInt64BE(pos + 2));
        off = pos + 10;
      }
      if (b1 & 0x80) off += 4; // servers must not mask; skip a mask key if one came anyway
      if (len > MAX_MESSAGE_BYTES) return this.protocolError();
      if (buf.length < off + len) break;
      this.onFrame(b0 & 0x80, b0 & 0x0f, buf, off, off + len);
      pos = off + len;
      if (this.closeCode !== null) return;
    }
    this.buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
    // Do not let a small leftover pin a large chunk.
    if (this.buf.length > 0 && this.buf.length < 4096 && buf.length > 65536) this.buf = Buffer.from(this.buf);
  }

  private onFrame(fin: number, op: number, buf: Buffer, start: number, end: number): void {
    switch (op) {
      case OP_TEXT:
      case OP_BINARY:
        if (fin) {
          if (op === OP_TEXT) this.options.onText(buf, start, end);
        } else {
          this.fragmentOp = op;
          this.fragments = [Buffer.from(buf.subarray(start, end))];
        }
        return;
      case OP_CONT: {
        if (this.fragmentOp < 0) return this.protocolError();
        this.fragments.push(Buffer.from(buf.subarray(start, end)));
        if (!fin) return;
        const whole = Buffer.concat(this.fragments);
        const wasText = this.fragmentOp === OP_TEXT;
        this.fragments = [];
        this.fragmentOp = -1;
        if (wasText) this.options.onText(whole, 0, whole.length);
        return;
      }
      case OP_PING:
        if (this.open) this.socket.write(this.frame(OP_PONG, Buffer.from(buf.subarray(start, end))));
        return;
      case OP_PONG:
        return;
      case OP_CLOSE: {
        const code = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
        const reason = end - start > 2 ? buf.subarray(start + 2, end).toString('utf8') : '';
        if (this.open) {
          const body = Buffer.alloc(2);
          body.writeUInt16BE(code === 1005 ? 1000 : code);
          this.socket.write(this.frame(OP_CLOSE, body));
        }
        this.finish(code, reason);
        this.socket.end();
        return;
      }
      default:
        this.protocolError();
    }
  }

  private protocolError(): void {
    this.finish(1002, 'protocol error');
    this.socket.destroy();
  }

  private finish(code: number, reason: string): void {
    if (this.closeCode !== null) return;
    this.open = false;
    this.closeCode = code;
    this.options.onClose?.(code, reason);
  }
}
