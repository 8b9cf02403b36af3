// The message log (go-pusher's logger): one JSON line per accepted room or direct message, with
// when, which send, who from, to which room or user, and its size; the content only with
// --message-log-content (a log of who wrote to whom is already personal data; what they wrote
// is more so). To stdout, or to a file that is rotated by size: FILE, FILE.1, … FILE.<keep>.
import { createWriteStream, existsSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs';

export interface MessageLogOptions {
  /** 'stdout', or 'jsonl:FILE'. */
  target: string;
  /** Record the content too. Default false. */
  content: boolean;
  /** A file is rotated when it passes this many bytes. Default 64 MiB. */
  maxBytes: number;
  /** Rotated files kept beside the current one. Default 5. */
  keep: number;
}

export const DEFAULT_LOG_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_LOG_KEEP = 5;

/** One accepted message, as the log records it. */
export interface LoggedMessage {
  kind: 'room' | 'direct';
  id: string | undefined;
  from: string;
  /** The room (kind room) or the user (kind direct) it went to. */
  to: string;
  content: string;
}

export class MessageLog {
  private stream: WriteStream | null = null;
  private bytes = 0;
  private readonly file: string | null;

  constructor(private readonly options: MessageLogOptions) {
    if (options.target === 'stdout') this.file = null;
    else if (options.target.startsWith('jsonl:') && options.target.length > 6) this.file = options.target.slice(6);
    else throw new Error(`--message-log must be stdout or jsonl:FILE, not ${options.target}`);
    if (!Number.isInteger(options.maxBytes) || options.maxBytes < 1024) throw new Error('--message-log-max-bytes must be an integer >= 1024');
    if (!Number.isInteger(options.keep) || options.keep < 0) throw new Error('--message-log-keep must be an integer >= 0');
    if (this.file) this.open();
  }

  record(m: LoggedMessage): void {
    const size = Buffer.byteLength(m.content);
    const entry = { ts: new Date().toISOString(), kind: m.kind, ...(m.id !== undefined ? { id: m.id } : {}), from: m.from, [m.kind === 'room' ? 'room' : 'to']: m.to, bytes: size, ...(this.options.content ? { content: m.content } : {}) };
    const line = `${JSON.stringify(entry)}\n`;
    if (!this.file) {
      process.stdout.write(line);
      return;
    }
    if (this.bytes > 0 && this.bytes + Buffer.byteLength(line) > this.options.maxBytes) this.rotate();
    this.stream?.write(line);
    this.bytes += Buffer.byteLength(line);
  }

  private open(): void {
    const file = this.file as string;
    this.bytes = existsSync(file) ? statSync(file).size : 0;
    this.stream = createWriteStream(file, { flags: 'a' });
    this.stream.on('error', (err) => console.error(`message log ${file}:`, err.message));
  }

  /** FILE.<keep-1> → FILE.<keep>, …, FILE → FILE.1, and a new FILE; the oldest beyond `keep` is removed. */
  private rotate(): void {
    const file = this.file as string;
    this.stream?.end();
    const { keep } = this.options;
    if (keep === 0) rmSync(file, { force: true });
    else {
      rmSync(`${file}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      renameSync(file, `${file}.1`);
    }
    this.open();
  }

  close(): Promise<void> {
    const s = this.stream;
    this.stream = null;
    return s ? new Promise((resolve) => s.end(resolve)) : Promise.resolve();
  }
}
