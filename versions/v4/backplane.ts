// The one interface between v4's nodes and whatever carries messages between them. The cluster
// hub (cluster-hub.ts) knows only this; redis-backplane.ts implements it over Redis, and another
// engine (NATS JetStream, Kafka) would implement it without touching the hub.
//
// What a backplane promises:
//  - append() gives a room's message its place in the room's stream: `seq` from 1, one at a time,
//    in `epoch`. A new epoch means the stream's past is gone (a broker restarted without it).
//  - every node subscribed to the room gets each appended entry, in seq order; a node may miss
//    entries while the backplane is down, and fetches them with history() once it is back.
//  - history() keeps the last N entries of each room, and at most B bytes of them.
//  - a send is appended at most once per (sender, id) while the stream holds it.
//  - members are listed across nodes; a node that stops beating is taken out of every room.
import type { BackplaneStats } from '../protocol.ts';

/** One message of a room's stream, as every node gets it: its place, and the message as its sender's node encoded it. */
export interface StreamEntry {
  seq: number;
  epoch: string;
  /** The chat message as JSON, without its place (protocol.ts's placeInStream writes it in). */
  payload: string;
}

/** What history() found of a room's stream. */
export interface HistorySlice {
  /** The stream's epoch; null when the room has no stream (nothing sent since the broker started). */
  epoch: string | null;
  /** The last seq appended, and the oldest still kept (0 when none). */
  last: number;
  first: number;
  /** Entries after the asked seq, oldest first, at most the history's length. */
  entries: StreamEntry[];
}

/** A member of a room another node's death took out. */
export interface DepartedMember {
  room: string;
  name: string;
  /** Members left in the room. */
  members: number;
}

export interface BackplaneEvents {
  /** An entry of a room this node subscribed to, in the order the backplane carries them. */
  entry(room: string, entry: StreamEntry): void;
  /** A notice for a room's members (presence), as JSON; no order with entries. */
  signal(room: string, json: string): void;
  /** The backplane is reachable again (after start, and after every outage). */
  up(): void;
  down(): void;
  /** This node's registrations were lost (a broker restart, or it was taken for dead): make them again. */
  reregister(): void;
  /** Another node stopped beating; its members left these rooms. */
  departed(members: DepartedMember[]): void;
  /** A direct message (JSON) for `user`, whom this node holds. */
  direct(user: string, json: string): void;
}

/** A join or a switch gets its answer within this: `joined`, or an error (a slow or paused Redis). */
export const ENTRY_TIMEOUT_MS = 5_000;

/** `promise`, or a BACKPLANE_DOWN refusal once ENTRY_TIMEOUT_MS have passed without its answer. */
export function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BackplaneDownError(`Redis did not answer the ${what} within ${ENTRY_TIMEOUT_MS / 1000} s`)), ENTRY_TIMEOUT_MS);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The reason a step is refused while the node has no connection to its backplane. */
export const NOT_REACHED = 'the server cannot reach Redis';

/** Why a send was refused, and not done: the backplane is down, full (OOM), or its backlog is at its cap. The message says which. */
export class BackplaneDownError extends Error {
  readonly code = 'BACKPLANE_DOWN';
}

/** Another member of the room, on any node, holds the name. */
export class NameTakenError extends Error {
  readonly code = 'NAME_TAKEN';
}

/** The connection to the backplane was lost while the send was under way: it may have been appended. */
export class SendUnknownError extends Error {
  readonly code = 'SEND_UNKNOWN';
}

/** What append() did: the entry, and whether the send was already in the stream (a resend). */
export interface Appended extends StreamEntry {
  duplicate: boolean;
}

export interface Backplane {
  /** "redis 127.0.0.1:6379": for describe lines. */
  readonly describe: string;
  readonly isUp: boolean;
  start(events: BackplaneEvents): Promise<void>;
  /**
   * Appends a message (its JSON) to its room's stream. A send with a `key` (its sender and id)
   * that the stream holds already is not appended again. Rejects with BackplaneDownError (not
   * appended) or SendUnknownError (may have been).
   */
  append(room: string, payload: string, key?: string): Promise<Appended>;
  /** The newest entries after `after`: at most `max`, and at most the replay's byte cap (what is left out reads as trimmed). */
  history(room: string, after: number, max: number): Promise<HistorySlice>;
  subscribe(room: string): Promise<void>;
  unsubscribe(room: string): Promise<void>;
  /** Sends a notice to every node with members in the room (this one included). */
  signal(room: string, json: string): Promise<void>;
  /** This node hears direct messages to `user` from now on (it has a connection of theirs). */
  holdUser(user: string): Promise<void>;
  releaseUser(user: string): Promise<void>;
  /**
   * Sends a direct message to every node holding `to` or `from` (`from`'s other connections see
   * what they sent); resolves with how many nodes hold `to`. Rejects as append() does.
   */
  direct(to: string, from: string, json: string): Promise<number>;
  /**
   * `member` (unique in the cluster) is in `room` under `name`; resolves with the room's member
   * count. `claim`: the name's key, held for it alone in the room across every node, the key of
   * the name it had (a rename), and its claim (`secret`): shown by a member that comes back on
   * another node, it takes the name over. Rejects with NameTakenError when another member holds it.
   */
  join(room: string, member: string, name: string, claim?: { key: string; was: string | null; secret: string }): Promise<number>;
  /** `last`: it was this node's last member in the room (the room leaves the node's list). `nameKey`: the name it claimed, let go. */
  leave(room: string, member: string, last: boolean, nameKey?: string): Promise<number>;
  members(room: string, max: number): Promise<{ names: string[]; count: number }>;
  /** This node serves clients at `url` (http://host:port/): listed by peers() while it beats. */
  announce(url: string): Promise<void>;
  /** The live nodes of the cluster and where they serve, this one included: where a client fails over to. */
  peers(): Promise<Array<{ node: string; url: string }>>;
  /** Its own figures; the hub adds what it replayed and noticed. */
  stats(): Omit<BackplaneStats, 'replayed' | 'gaps' | 'resets' | 'refetched'>;
  close(): Promise<void>;
}
