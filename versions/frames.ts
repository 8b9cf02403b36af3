// What a client's frames do, once the host has read and parsed them: a chat goes to the room, a
// direct message to a user, a join moves or renames. Each connection's steps run in order: a
// frame that arrives while the version is still adding or moving the connection (v2 waits for its
// lock, v3 for its hub, v4 for Redis) waits behind that. Refused steps are answered, never dropped.
import type { Swept } from './sweeps.ts';
import type { MessageLog } from './message-log.ts';
import { backplaneRefusal, CLOSE_CODES, encodeServerMessage, ERROR_CODES, errorMessage, nameKey, type ClientFrame, type ErrorCode } from './protocol.ts';
import type { ConnectionLimiter } from './rate-limit.ts';
import type { Roster } from './roster.ts';
import type { Connection, ServerCounters, Strategy } from './strategy.ts';
import type { Users } from './users.ts';

/** v4: sends of one connection waiting for Redis past which its next send is refused: one sender cannot take the node's whole budget. */
export const MAX_SENDS_IN_FLIGHT_PER_CONNECTION = 256;

/** What the host keeps of one open connection, beside what its sweeps keep (sweeps.ts). */
export interface ConnState extends Swept {
  /** The room the host announced it in (null until the version has added it). */
  joinedRoom: string | null;
  /** Steps queued behind the version's add or move, and the end of that queue. */
  pending: number;
  ready: Promise<void>;
  /** Its frame and join rates (null: no limit). */
  readonly limiter: ConnectionLimiter | null;
  /** v4: its sends waiting for the backplane, and how many sends it has made (for the ids the host gives). */
  inFlight: number;
  sends: number;
  /** Closes the socket when its token expires (4401). */
  expiry: NodeJS.Timeout | null;
}

/** The end of an empty queue: one settled promise for every connection, not one each. */
export const SETTLED: Promise<void> = Promise.resolve();

type Frame<T extends ClientFrame['type']> = Extract<ClientFrame, { type: T }>;

export class Frames {
  constructor(
    private readonly strategy: Strategy,
    private readonly counters: ServerCounters,
    private readonly roster: Roster,
    private readonly users: Users,
    private readonly log: MessageLog | null,
  ) {}

  /** Runs `step` after what is pending for this connection, in order. */
  enqueue(st: ConnState, step: () => void | Promise<void>): void {
    st.pending++;
    st.ready = st.ready
      .then(step)
      .catch((err: unknown) => console.error(`[${this.strategy.version}] connection ${st.conn.id}:`, err))
      .finally(() => {
        if (--st.pending === 0) st.ready = SETTLED; // nothing chained behind it: let the chain go
      });
  }

  /** `step` now when nothing is pending (chat goes straight on), else in its turn. */
  private soon(st: ConnState, step: () => void): void {
    if (st.pending === 0) step();
    else this.enqueue(st, step);
  }

  reject(conn: Connection, code: ErrorCode, message?: string, id?: string): void {
    this.counters.countBadInput(code);
    this.strategy.sendTo(conn, errorMessage(code, message, id));
  }

  /** What went wrong with a step the version could not do (v4: Redis down or slow), in the client's words; anything else is logged too. */
  refusal(err: unknown, what: string): { code: ErrorCode; message: string } {
    const e = err as Error & { code?: string };
    if (e.code !== 'SEND_UNKNOWN' && e.code !== 'BACKPLANE_DOWN') console.error(`[${this.strategy.version}] ${what}:`, err);
    return backplaneRefusal(e, what);
  }

  /** A send the version could not take (v4), answered to its sender with the send's id. */
  private refuseSend(conn: Connection, err: unknown, id: string | undefined): void {
    const { code, message } = this.refusal(err, '');
    this.strategy.sendTo(conn, errorMessage(code, message, id));
  }

  /** A new connection the version could not take into its room: told why, and closed (1013: connect again later). */
  refuseEntry(st: ConnState, err: unknown): void {
    const { code, message } = this.refusal(err, `could not enter ${st.conn.room}`);
    if (st.joinedRoom !== null) this.reject(st.conn, code, message);
    else {
      // Not in the version yet (its add failed): straight to the socket.
      this.counters.countBadInput(code);
      st.conn.ws.send(encodeServerMessage(errorMessage(code, message)));
    }
    st.conn.ws.close(CLOSE_CODES.TRY_AGAIN_LATER, 'try again later');
  }

  chat(st: ConnState, frame: Frame<'chat'>): void {
    const { strategy, counters, log } = this;
    const conn = st.conn;
    counters.received++;
    // v4: every send has an id, so a resend after SEND_UNKNOWN is the same send.
    const id = frame.id ?? (strategy.resendSafe ? `~${strategy.node ?? ''}.${conn.id}.${++st.sends}` : undefined);
    this.soon(st, () => {
      if (st.joinedRoom === null) return this.reject(conn, 'NOT_IN_ROOM', undefined, id);
      if (st.inFlight >= MAX_SENDS_IN_FLIGHT_PER_CONNECTION) return this.reject(conn, 'BACKPLANE_DOWN', backplaneRefusal({ message: `${st.inFlight} of your sends are waiting for Redis` }).message, id);
      const { type: _type, ...fields } = frame;
      const room = conn.room;
      const sent = strategy.publish(room, { type: 'chat', room, from: conn.name, ...fields, ts: Date.now(), ...(id !== undefined ? { id } : {}), ...(conn.account ? { user: conn.account.id } : {}) });
      const logged = (): void => log?.record({ kind: 'room', id, from: conn.name, to: room, content: frame.content });
      if (!sent) return logged();
      // v4: a send its backplane could not take is refused to its sender, never dropped unsaid.
      st.inFlight++;
      sent.then(
        () => {
          st.inFlight--;
          logged();
        },
        (err: unknown) => {
          st.inFlight--;
          this.refuseSend(conn, err, id);
        },
      );
    });
  }

  direct(st: ConnState, frame: Frame<'direct'>): void {
    const conn = st.conn;
    this.soon(st, () => {
      if (!this.users.isBound(conn)) return this.reject(conn, 'NOT_IN_ROOM', undefined, frame.id);
      this.users.direct(conn, frame).then(
        (reached) => {
          if (!reached) this.reject(conn, 'USER_OFFLINE', `${ERROR_CODES.USER_OFFLINE}: ${frame.to}`, frame.id);
        },
        (err: unknown) => this.refuseSend(conn, err, frame.id),
      );
    });
  }

  join(st: ConnState, frame: Frame<'join'>): void {
    const { strategy, roster, users } = this;
    const conn = st.conn;
    this.enqueue(st, async () => {
      const name = frame.name ?? conn.name;
      if (conn.account && nameKey(name) !== nameKey(conn.name)) return this.reject(conn, 'NAME_FIXED', `${ERROR_CODES.NAME_FIXED}: you are ${conn.name}`);
      if (!conn.account && roster.isTaken(frame.room, name, conn)) return this.reject(conn, 'NAME_TAKEN');
      try {
        if (frame.room !== conn.room) {
          // The version moves it first: refused (v4, Redis down), it stays where it was.
          await strategy.move(conn, frame.room, frame.resume);
          await roster.remove(conn).catch(() => {}); // (v4: Redis may have gone since; its reaper cleans up)
          conn.name = name;
          conn.room = frame.room;
          try {
            await users.rebind(conn);
            await roster.enter(conn);
          } catch (err) {
            return this.refuseEntry(st, err);
          }
          // (v4: a member on another node holds the name it asked for there: it is a guest)
          if (conn.name !== name) this.reject(conn, 'NAME_TAKEN', `${ERROR_CODES.NAME_TAKEN}: you are ${conn.name}`);
          return;
        }
        if (name !== conn.name) {
          await roster.rename(conn, name);
          await users.rebind(conn);
        }
        // v4: a join to the room it is in, with since and epoch, replays what it missed.
        if (frame.resume) await strategy.move(conn, frame.room, frame.resume);
        await roster.sendJoined(conn);
      } catch (err) {
        if ((err as { code?: string }).code === 'NAME_TAKEN') return this.reject(conn, 'NAME_TAKEN'); // (v4: held on another node)
        const { code, message } = this.refusal(err, frame.room !== conn.room ? `could not move to ${frame.room}` : name !== conn.name ? `could not rename to ${name}` : `could not rejoin ${frame.room}`);
        this.reject(conn, code, message);
      }
    });
  }
}
