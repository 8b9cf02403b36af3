// A lean WebSocket client for the load generator (RFC 6455, no extensions). The `ws` client as a
// generator reached about half of what a minimal frame parser does on this machine, and a
// generator slower than the server measures itself. Reads land in one buffer shared by every
// client of the process (net's `onread`), so a read allocates nothing and skips the stream
// machinery; frame-parser.ts copies only a frame cut by the end of a read. It handles every
// frame shape a server sends: fragmented text, ping (answered with pong), pong, close.
import { createHash, randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { FrameParser, OPCODES } from './frame-parser.ts';

export interface WireClientOptions {
  /** ws://host:port/path?query */
  url: string;
  /** Source address to bind, to spread 4-tuples over 127.0.0.0/8. */
  localAddress?: string;
  /** An Authorization header for the upgrade ("Bearer <jwt>"). */
  authorization?: string;
  /** A complete text message: bytes [start, end) of `buf`. `buf` is only valid during the call. */
  onText(buf: Buffer, start: number, end: number): void;
  /** A complete binary message, as onText. */
  onBinary?(buf: Buffer, start: number, end: number): void;
  /** Called once per chunk read from the socket, before its frames: one clock read per chunk. */
  onChunk?(): void;
  /** The connection ended; `code` is the server's close code, or 1006 if there was none. */
  onClose?(code: number, reason: string): void;
}

const HANDSHAKE_TIMEOUT_MS = 15_000;
/** The GUID of RFC 6455 §1.3 that the server's accept key is derived with. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** One read's worth: every client of this process reads into one buffer of this size, one at a time. */
export const READ_BUFFER_BYTES = 256 * 1024;
const READ_BUFFER = Buffer.allocUnsafe(READ_BUFFER_BYTES);
/** An upgrade response longer than this is not one. */
const MAX_HANDSHAKE_BYTES = 16 * 1024;

/**
 * Random bytes for masks and handshake keys, drawn from the CSPRNG a pool at a time: one
 * `randomBytes` call costs about as much whatever its size, and a connect needs two (a swarm
 * connects thousands of clients a second).
 */
const RANDOM_POOL_BYTES = 4096;
let randomPool = Buffer.alloc(0);
let randomAt = 0;
function randomSlice(n: number): Buffer {
  if (randomAt + n > randomPool.length) {
    randomPool = randomFillSync(Buffer.allocUnsafe(RANDOM_POOL_BYTES)); // masks already handed out keep the old pool
    randomAt = 0;
  }
  const out = randomPool.subarray(randomAt, randomAt + n);
  randomAt += n;
  return out;
}

export class WireClient {
  readonly socket: Socket;
  closeCode: number | null = null;
  private open = false;
  private readonly mask = randomSlice(4);
  private readonly parser: FrameParser;
  /** The upgrade response so far, until it is complete; then null and reads go to the parser. */
  private handshakeBytes: Buffer | null = Buffer.alloc(0);
  private onHandshake: ((err: Error | null) => void) | null = null;

  private constructor(private readonly options: WireClientOptions, url: URL) {
    this.parser = new FrameParser({
      onText: options.onText,
      ...(options.onBinary ? { onBinary: options.onBinary } : {}),
      onPing: (payload) => {
        if (this.open) this.socket.write(this.frame(OPCODES.PONG, payload));
      },
      onClose: (code, reason) => {
        if (this.open) {
          const body = Buffer.alloc(2);
          body.writeUInt16BE(code === 1005 ? 1000 : code);
          this.socket.write(this.frame(OPCODES.CLOSE, body));
        }
        this.finish(code, reason);
        this.socket.end();
      },
      onProtocolError: () => {
        this.finish(1002, 'protocol error');
        this.socket.destroy();
      },
    });
    this.socket = connect({
      host: url.hostname,
      port: Number(url.port || 80),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      onread: { buffer: READ_BUFFER, callback: (n: number) => this.onRead(n) },
    });
    this.socket.setNoDelay(true);
  }

  /** Connects and completes the upgrade; rejects with the HTTP status line on refusal. */
  static connect(options: WireClientOptions): Promise<WireClient> {
    const url = new URL(options.url);
    return new WireClient(options, url).handshake(url);
  }

  private handshake(url: URL): Promise<WireClient> {
    const key = randomSlice(16).toString('base64');
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('handshake timed out')), HANDSHAKE_TIMEOUT_MS);
      const done = (err: Error | null): void => {
        if (!this.onHandshake) return;
        this.onHandshake = null;
        clearTimeout(timer);
        this.socket.off('error', done);
        if (err) {
          this.socket.destroy();
          return reject(err);
        }
        this.socket.on('error', () => {}); // 'close' follows and reports
        this.socket.on('close', () => this.finish(1006, ''));
        resolve(this);
      };
      this.onHandshake = (err) => {
        if (err) return done(err);
        const head = (this.handshakeBytes as Buffer).toString('latin1');
        const status = head.slice(0, head.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 101 /.test(status)) return done(new Error(`upgrade refused: ${status}`));
        const got = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
        if (got !== accept) return done(new Error(`upgrade answered with a wrong Sec-WebSocket-Accept (${got ?? 'none'})`));
        this.open = true;
        done(null);
      };
      this.socket.once('error', done);
      this.socket.once('close', () => done(new Error('connection closed during the upgrade')));
      this.socket.once('connect', () => {
        this.socket.write(
          `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${this.options.authorization ? `Authorization: ${this.options.authorization}\r\n` : ''}\r\n`,
        );
      });
    });
  }

  get isOpen(): boolean {
    return this.open;
  }

  sendText(text: string): void {
    if (!this.open) return;
    this.socket.write(this.frame(OPCODES.TEXT, Buffer.from(text, 'utf8')));
  }

  /** Starts the closing handshake; the socket ends when the server answers. */
  close(code = 1000): void {
    if (!this.open) return;
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    this.socket.write(this.frame(OPCODES.CLOSE, body));
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

  /** Bytes [0, n) of READ_BUFFER were read; it is reused once this returns. True: keep reading. */
  private onRead(n: number): true {
    if (this.handshakeBytes === null) {
      this.options.onChunk?.();
      this.parser.feed(READ_BUFFER, 0, n);
      return true;
    }
    const head = Buffer.concat([this.handshakeBytes, READ_BUFFER.subarray(0, n)]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      this.handshakeBytes = head;
      if (head.length > MAX_HANDSHAKE_BYTES) this.onHandshake?.(new Error('upgrade response too long'));
      return true;
    }
    this.handshakeBytes = head.subarray(0, end + 4);
    this.onHandshake?.(null);
    this.handshakeBytes = null;
    // Frames the server sent right behind its 101 response.
    if (this.open && head.length > end + 4) {
      this.options.onChunk?.();
      this.parser.feed(head, end + 4, head.length);
    }
    return true;
  }

  private finish(code: number, reason: string): void {
    if (this.closeCode !== null) return;
    this.open = false;
    this.closeCode = code;
    this.options.onClose?.(code, reason);
  }
}
