// The Lua scripts v4's and v5's backplane runs in Redis, and the key layout they share. Each one
// is one atomic step in Redis, whichever node calls it. redis-backplane.ts and redis-presence.ts
// call them.
//
// Per room, under a key prefix, every key in braces around the room name: `ce:{lobby}:log`. Redis
// Cluster places a key by the part in braces (its hash tag), so all of a room's keys and its
// channel are on one shard, and one script can touch them all there. On one Redis the braces are
// just characters.
//   <room>:epoch   the stream's epoch: set by the first append after the stream was lost
//   <room>:seq     the last seq given (INCR)
//   <room>:log     a stream, entry id `<seq>-0`, field m = the message's JSON as its node encoded it
//   <room>:bytes   the bytes of JSON the log holds: it is bounded in bytes as well as entries
//   <room>:ids     a sorted set `<sender>\n<id>` → seq of the sends the log holds: a resend is not a second message
//   <room>:pub     with --ack replica: the last seq published (entries are published once a replica has them)
//   <room>:members a hash, `<node>:<connection id>` → name
//   <room>:names   a hash, a name's key (nameKey: case and look-alike forms folded) → the member
//                  that holds it and its claim (`<member>\t<claim>`): a name is one person's in its
//                  room across every node, and whoever shows the claim (a client whose node died,
//                  coming back on another) takes it over at once
// and for the cluster of nodes: `nodes` (a sorted set of heartbeats, by Redis's clock),
// `node-urls` (where each serves clients, for a client that fails over) and `node:<id>:rooms`
// (where a node has registered members, for whoever reaps it). Each of those is its own key, on
// whichever shard it falls: no script takes two of them, or one of them and a room's.
// A room's keys expire after the room TTL without an append; its members hash, after the TTL
// without a join or a refresh by a node that has members there.

export type RoomKey = 'epoch' | 'seq' | 'log' | 'bytes' | 'ids' | 'pub' | 'members' | 'names';

/** A room's key of the layout above: `<prefix>{<room>}:<part>`. */
export function roomKey(prefix: string, room: string, part: RoomKey): string {
  return `${prefix}{${room}}:${part}`;
}
/** A room's channel: on its keys' shard (SPUBLISH, SSUBSCRIBE). */
export function roomChannel(prefix: string, room: string): string {
  return `${prefix}{${room}}`;
}
/** A user's channel: `{user:…}` is no room's (a room name has no colon). */
export function userChannel(prefix: string, user: string): string {
  return `${prefix}{user:${user}}`;
}
/** The keys APPEND takes, in order. */
export const APPEND_KEYS: readonly RoomKey[] = ['epoch', 'seq', 'log', 'ids', 'bytes', 'pub'];

// ARGV: the message's JSON, a new epoch, max entries, channel, `<sender>\n<id>` or '', TTL ms, max
// bytes, '1' to publish it now ('0': RELEASE publishes it once a replica has it). Returns {seq, epoch, 1 if the send was already in the log (not appended again)}. The JSON
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
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
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
if ARGV[8] == '1' then redis.call('SPUBLISH', ARGV[4], 'E|' .. seq .. '|' .. epoch .. '|' .. json) end
return {seq, epoch, 0}`;

// With --ack replica: publishes, in seq order, every entry up to ARGV[1] not published yet, once
// the caller's WAIT said a replica has the entry ARGV[1] (a replica gets a master's writes in
// order, so it has every entry before it too). Whichever node's release comes first publishes for
// the others: the channel stays in seq order though the WAITs answer in any order.
// KEYS: epoch, log, pub. ARGV: seq, channel, TTL ms. Returns how many it published.
export const RELEASE = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then return 0 end
local upto = tonumber(ARGV[1])
local from = tonumber(redis.call('GET', KEYS[3]) or '0')
if upto <= from then return 0 end
local n = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', upto .. '-0')) do
  redis.call('SPUBLISH', ARGV[2], 'E|' .. string.match(e[1], '^(%d+)') .. '|' .. epoch .. '|' .. e[2][2])
  n = n + 1
end
redis.call('SET', KEYS[3], upto, 'PX', ARGV[3])
return n`;

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

// KEYS: members, names. ARGV: member, name, TTL ms, the name's key ('': not claimed, a signed-in
// user's name is the token's), the key of the name it had ('': none), the member's claim. Returns
// the room's member count, or -1 when another member holds the name and the claim shown is not its
// (nothing changed). The node's list of rooms is another key (another shard of a cluster): the
// presence adds the room to it before this runs.
export const JOIN = `
local function holds(key, member)
  local v = redis.call('HGET', KEYS[2], key)
  return v and string.sub(v, 1, #member + 1) == member .. '\t'
end
if ARGV[4] ~= '' then
  local v = redis.call('HGET', KEYS[2], ARGV[4])
  if v and string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. '\t' and string.sub(v, string.find(v, '\t', 1, true) + 1) ~= ARGV[6] then return -1 end
  if ARGV[5] ~= '' and ARGV[5] ~= ARGV[4] and holds(ARGV[5], ARGV[1]) then redis.call('HDEL', KEYS[2], ARGV[5]) end
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[1] .. '\t' .. ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HLEN', KEYS[1])`;

// KEYS: members, names. ARGV: member, its name's key ('': none claimed). Returns the members left.
export const LEAVE = `
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  local v = redis.call('HGET', KEYS[2], ARGV[2])
  if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '\t' then redis.call('HDEL', KEYS[2], ARGV[2]) end
end
return redis.call('HLEN', KEYS[1])`;

// Takes one node's members out of one room, and frees the names they held. KEYS: members, names.
// ARGV: `<node>:`. Returns name, members-left pairs, one per member taken out.
export const REAP_ROOM = `
local pre = ARGV[1]
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #pre) == pre then
    redis.call('HDEL', KEYS[1], all[i])
    out[#out + 1] = all[i + 1]
    out[#out + 1] = redis.call('HLEN', KEYS[1])
  end
end
local held = redis.call('HGETALL', KEYS[2])
for i = 1, #held, 2 do
  if string.sub(held[i + 1], 1, #pre) == pre then redis.call('HDEL', KEYS[2], held[i]) end
end
return out`;

// Beats for this node, by Redis's clock (the one clock every node shares). With ARGV[3] = '1' (the
// caller has beaten on time, by its own clock, for as long as a node may be silent), it also
// answers which nodes stopped beating: the caller reaps them (redis-presence.ts), each room on its
// own shard. A caller whose own beats were late (a paused or slow Redis) is told of nobody: the
// others' beats were as late as its own. Returns whether this node was new to the set (a restarted
// Redis, or taken for dead), then the silent nodes. KEYS: nodes. ARGV: node, dead after ms, may reap.
export const BEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {redis.call('ZADD', KEYS[1], now, ARGV[1])}
if ARGV[3] ~= '1' then return out end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))) do
  out[#out + 1] = id
end
return out`;

export type Scripts = {
  ceAppend(epoch: string, seq: string, log: string, ids: string, bytes: string, pub: string, json: string, newEpoch: string, maxEntries: number, channel: string, idMember: string, ttlMs: number, maxBytes: number, publish: '0' | '1'): Promise<[number, string, number]>;
  ceRelease(epoch: string, log: string, pub: string, seq: number, channel: string, ttlMs: number): Promise<number>;
  ceHistory(epochKey: string, seqKey: string, logKey: string, after: number, max: number, maxBytes: number): Promise<Array<string | number>>;
  ceJoin(membersKey: string, namesKey: string, member: string, name: string, ttlMs: number, nameKey: string, oldNameKey: string, claim: string): Promise<number>;
  ceLeave(membersKey: string, namesKey: string, member: string, nameKey: string): Promise<number>;
  ceReapRoom(membersKey: string, namesKey: string, nodePrefix: string): Promise<Array<string | number>>;
  ceBeat(nodesKey: string, node: string, deadAfterMs: number, mayReap: '0' | '1'): Promise<Array<string | number>>;
};

/** Number of keys each script takes (the rest of its arguments are ARGV). */
export const SCRIPTS = {
  ceAppend: { numberOfKeys: 6, lua: APPEND },
  ceRelease: { numberOfKeys: 3, lua: RELEASE },
  ceHistory: { numberOfKeys: 3, lua: HISTORY },
  ceJoin: { numberOfKeys: 2, lua: JOIN },
  ceLeave: { numberOfKeys: 2, lua: LEAVE },
  ceReapRoom: { numberOfKeys: 2, lua: REAP_ROOM },
  ceBeat: { numberOfKeys: 1, lua: BEAT },
} as const;
