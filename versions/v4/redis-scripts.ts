// The Lua scripts v4's backplane runs in Redis, and the key layout they share. Each one is one
// atomic step in Redis, whichever node calls it. redis-backplane.ts calls them.
//
// Per room, under a key prefix (every key of a room is declared to its script, so a room stays on
// one shard of a Redis Cluster):
//   <room>:epoch   the stream's epoch: set by the first append after the stream was lost
//   <room>:seq     the last seq given (INCR)
//   <room>:log     a stream, entry id `<seq>-0`, field m = the message's JSON as its node encoded it
//   <room>:bytes   the bytes of JSON the log holds: it is bounded in bytes as well as entries
//   <room>:ids     a sorted set `<sender>\n<id>` → seq of the sends the log holds: a resend is not a second message
//   <room>:members a hash, `<node>:<connection id>` → name
//   <room>:names   a hash, a name's key (nameKey: case and look-alike forms folded) → the member
//                  that holds it and its claim (`<member>\t<claim>`): a name is one person's in its
//                  room across every node, and whoever shows the claim (a client whose node died,
//                  coming back on another) takes it over at once
// and for the cluster: `nodes` (a sorted set of heartbeats, by Redis's clock), `node-urls` (where
// each serves clients, for a client that fails over) and `node:<id>:rooms` (where a node has
// registered members, for whoever reaps it).
// A room's keys expire after the room TTL without an append; its members hash, after the TTL
// without a join or a beat of a node that has members there.

export type RoomKey = 'epoch' | 'seq' | 'log' | 'bytes' | 'ids' | 'members' | 'names';

/** A room's key of the layout above: `<prefix><room>:<part>`. */
export function roomKey(prefix: string, room: string, part: RoomKey): string {
  return `${prefix}${room}:${part}`;
}
/** The keys APPEND takes, in order. */
export const APPEND_KEYS: readonly RoomKey[] = ['epoch', 'seq', 'log', 'ids', 'bytes'];

// ARGV: the message's JSON, a new epoch, max entries, channel, `<sender>\n<id>` or '', TTL ms, max
// bytes. Returns {seq, epoch, 1 if the send was already in the log (not appended again)}. The JSON
// is kept and published untouched, seq and epoch beside it (`E|<seq>|<epoch>|<json>`): each node
// writes them in (protocol.ts's placeInStream), so no script splices JSON.
// The stream starts again (new epoch) when its epoch or its seq is gone: a restarted or evicting
// Redis. Trimming removes the oldest entries until the log is within both bounds (keeping the
// newest), and the ids of the trimmed entries with them.
export const APPEND = `
local epoch = redis.call('GET', KEYS[1])
if not epoch or redis.call('EXISTS', KEYS[2]) == 0 then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
elseif ARGV[5] ~= '' then
  local had = redis.call('ZSCORE', KEYS[4], ARGV[5])
  if had then return {tonumber(had), epoch, 1} end
end
local seq = redis.call('INCR', KEYS[2])
local json = ARGV[1]
redis.call('XADD', KEYS[3], seq .. '-0', 'm', json)
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[4], seq, ARGV[5]) end
local bytes = redis.call('INCRBY', KEYS[5], #json)
local len = redis.call('XLEN', KEYS[3])
local maxLen, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[7])
local trimmed = false
while len > 1 and (len > maxLen or bytes > maxBytes) do
  local head = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
  redis.call('XDEL', KEYS[3], head[1])
  bytes = redis.call('DECRBY', KEYS[5], #head[2][2])
  len = len - 1
  trimmed = true
end
if trimmed then
  local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1][1]
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. string.match(first, '^(%d+)'))
end
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
redis.call('PUBLISH', ARGV[4], 'E|' .. seq .. '|' .. epoch .. '|' .. json)
return {seq, epoch, 0}`;

// KEYS: epoch, seq, log. ARGV: after, max entries, max bytes. Returns {epoch or '', last seq,
// first seq it can give (0: none kept), id, json, id, json, …}: the newest entries after `after`,
// at most max entries and (but for one) max bytes, oldest first. What the caps leave out reads
// as trimmed: `first` is the oldest entry returned.
export const HISTORY = `
local epoch = redis.call('GET', KEYS[1])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = 0
local head = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
if #head > 0 then first = tonumber(string.match(head[1][1], '^(%d+)')) end
local out = {epoch or '', last, first}
local max = tonumber(ARGV[2])
if max > 0 then
  -- Newest first, a page at a time: a byte cap must not cost reading the whole log inside Redis.
  local budget = tonumber(ARGV[3])
  local picked, n, capped, upper = {}, 0, false, '+'
  while n < max and not capped do
    local page = redis.call('XREVRANGE', KEYS[3], upper, '(' .. ARGV[1] .. '-0', 'COUNT', math.min(64, max - n))
    if #page == 0 then break end
    for _, e in ipairs(page) do
      budget = budget - #e[2][2]
      if budget < 0 and n > 0 then capped = true break end
      n = n + 1
      picked[n] = e
    end
    upper = '(' .. page[#page][1]
  end
  if n > 0 and (capped or n == max) then out[3] = tonumber(string.match(picked[n][1], '^(%d+)')) end
  for i = n, 1, -1 do
    out[#out + 1] = picked[i][1]
    out[#out + 1] = picked[i][2][2]
  end
end
return out`;

// KEYS: members, node's rooms, names. ARGV: member, name, room, TTL ms, the name's key ('': not
// claimed, a signed-in user's name is the token's), the key of the name it had ('': none), the
// member's claim. Returns the room's member count, or -1 when another member holds the name and
// the claim shown is not its (nothing changed).
export const JOIN = `
local function holds(key, member)
  local v = redis.call('HGET', KEYS[3], key)
  return v and string.sub(v, 1, #member + 1) == member .. '\t'
end
if ARGV[5] ~= '' then
  local v = redis.call('HGET', KEYS[3], ARGV[5])
  if v and string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. '\t' and string.sub(v, string.find(v, '\t', 1, true) + 1) ~= ARGV[7] then return -1 end
  if ARGV[6] ~= '' and ARGV[6] ~= ARGV[5] and holds(ARGV[6], ARGV[1]) then redis.call('HDEL', KEYS[3], ARGV[6]) end
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[1] .. '\t' .. ARGV[7])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[3])
return redis.call('HLEN', KEYS[1])`;

// KEYS: members, node's rooms, names. ARGV: member, room, '1' when it was this node's last member
// there, its name's key ('': none claimed).
export const LEAVE = `
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then
  local v = redis.call('HGET', KEYS[3], ARGV[4])
  if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '\t' then redis.call('HDEL', KEYS[3], ARGV[4]) end
end
if ARGV[3] == '1' then redis.call('SREM', KEYS[2], ARGV[2]) end
return redis.call('HLEN', KEYS[1])`;

// Takes node `id` out of the cluster: out of `nodes`, and its members out of every room it listed,
// appending room, name, members-left triples to `out`.
const REAP = `
local function reap(id, out)
  redis.call('ZREM', KEYS[1], id)
  local roomsKey = ARGV[3] .. 'node:' .. id .. ':rooms'
  local pre = id .. ':'
  for _, room in ipairs(redis.call('SMEMBERS', roomsKey)) do
    local h = ARGV[3] .. room .. ':members'
    local all = redis.call('HGETALL', h)
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, #pre) == pre then
        redis.call('HDEL', h, all[i])
        out[#out + 1] = room
        out[#out + 1] = all[i + 1]
        out[#out + 1] = redis.call('HLEN', h)
      end
    end
    -- and the names its members held: free for others again
    local names = ARGV[3] .. room .. ':names'
    local held = redis.call('HGETALL', names)
    for i = 1, #held, 2 do
      if string.sub(held[i + 1], 1, #pre) == pre then redis.call('HDEL', names, held[i]) end
    end
  end
  redis.call('DEL', roomsKey)
  redis.call('HDEL', ARGV[3] .. 'node-urls', id)
end`;

// Beats for this node (by Redis's clock, the one clock every node shares) and keeps its rooms'
// member lists from expiring. With ARGV[5] = '1' (the caller has beaten on time, by its own clock,
// for as long as a node may be silent), it reaps the nodes that stopped: their members leave every
// room. A caller whose own beats were late (a paused or slow Redis) reaps nobody: the others' beats
// were as late as its own. Returns whether this node was new to the set (a restarted Redis, or
// taken for dead), then room, name, members-left triples.
// ARGV: node, dead after ms, prefix, TTL ms, may reap.
export const BEAT = `${REAP}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fresh = redis.call('ZADD', KEYS[1], now, ARGV[1])
local out = {fresh}
local own = ARGV[3] .. 'node:' .. ARGV[1] .. ':rooms'
for _, room in ipairs(redis.call('SMEMBERS', own)) do
  redis.call('PEXPIRE', ARGV[3] .. room .. ':members', ARGV[4])
  redis.call('PEXPIRE', ARGV[3] .. room .. ':names', ARGV[4])
end
if ARGV[5] ~= '1' then return out end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))) do
  reap(id, out)
end
return out`;

// A node that starts takes out what an earlier process under its name left: its members (of a
// process that died) would otherwise stay listed for as long as the new one beats. Same answer as
// BEAT's, its first element 0. KEYS: nodes. ARGV: node, (unused), prefix.
export const FORGET = `${REAP}
local out = {0}
reap(ARGV[1], out)
return out`;

export type Scripts = {
  ceAppend(epoch: string, seq: string, log: string, ids: string, bytes: string, json: string, newEpoch: string, maxEntries: number, channel: string, idMember: string, ttlMs: number, maxBytes: number): Promise<[number, string, number]>;
  ceHistory(epochKey: string, seqKey: string, logKey: string, after: number, max: number, maxBytes: number): Promise<Array<string | number>>;
  ceJoin(membersKey: string, roomsKey: string, namesKey: string, member: string, name: string, room: string, ttlMs: number, nameKey: string, oldNameKey: string, claim: string): Promise<number>;
  ceLeave(membersKey: string, roomsKey: string, namesKey: string, member: string, room: string, last: '0' | '1', nameKey: string): Promise<number>;
  ceBeat(nodesKey: string, node: string, deadAfterMs: number, prefix: string, ttlMs: number, mayReap: '0' | '1'): Promise<Array<string | number>>;
  ceForget(nodesKey: string, node: string, unused: string, prefix: string): Promise<Array<string | number>>;
};

/** Number of keys each script takes (the rest of its arguments are ARGV). */
export const SCRIPTS = {
  ceAppend: { numberOfKeys: 5, lua: APPEND },
  ceHistory: { numberOfKeys: 3, lua: HISTORY },
  ceJoin: { numberOfKeys: 3, lua: JOIN },
  ceLeave: { numberOfKeys: 3, lua: LEAVE },
  ceBeat: { numberOfKeys: 1, lua: BEAT },
  ceForget: { numberOfKeys: 1, lua: FORGET },
} as const;
