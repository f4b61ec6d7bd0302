-- write: what the save scripts share (save.lua, save_checked.lua, compact.lua): finding the
-- live session, a delta's writes, and the last write with the new expiry. Needs record.lua,
-- fields.lua, expiry.lua, deadline.lua and entries.lua.

local CHUNK = 1000 -- arguments per HSET, HDEL or HMGET, under Lua's unpack limit

-- Calls `command` on `key` with the arguments in `args`, CHUNK at a time; `each`, when given,
-- gets each reply and the index in `args` of its first argument.
local function chunked(command, key, args, each)
  for from = 1, #args, CHUNK do
    local reply = redis.call(command, key, unpack(args, from, math.min(from + CHUNK - 1, #args)))
    if each then each(reply, from) end
  end
end

-- The session at `key` as a save finds it: a table holding the key, `idle`, the record's length,
-- the TTL (`pttl`), whether the idle expiry is due to slide (`sliding`, by `threshold`), the
-- deadline and the server's time when either was needed, and `record()`, which reads the
-- record (the hash's largest value) on first need. `known` is the deadline the client read.
-- Or nil and the save's reply instead: {0, 0, {}} when there is no live session (none, or past
-- its absolute deadline whatever its TTL says: a save never resurrects one), or a CORRUPT error.
local function open_session(key, idle, threshold, known)
  local s = {key = key, idle = idle}
  s.record_length = redis.call('HSTRLEN', key, '@p')
  if s.record_length == 0 and redis.call('HEXISTS', key, '@p') == 0 then
    return nil, {0, 0, {}} -- no hash, or one that is not a session
  end
  if s.record_length < RECORD_HEADER then
    return nil, redis.error_reply('CORRUPT packed record has no header')
  end
  function s.record()
    s.packed = s.packed or redis.call('HGET', key, '@p')
    return s.packed
  end
  s.pttl = redis.call('PTTL', key)
  s.sliding = touch_due(s.pttl, idle, threshold)
  local corrupt
  if s.sliding then
    s.deadline = record_deadline(s.record())
  else
    s.deadline, corrupt = unvouched_deadline(key, s.pttl, known, s.record)
    if corrupt then return nil, corrupt end
  end
  if s.deadline then
    s.now = server_ms()
    if s.now >= s.deadline then return nil, {0, 0, {}} end
  end
  return s
end

-- The stored record's id, or -1 when the save has not read the record.
local function known_id(s)
  return s.packed and record_id(s.packed) or -1
end

-- The writes of a delta that sets ARGV[first .. last] and removes ARGV[removed ..]: the fields
-- to set (name, value pairs), the fields to delete, and the names given a tombstone (the stamp
-- alone), which hides the record's value. A removed name the record may hold gets a tombstone;
-- any other is deleted.
local function delta_writes(s, first, last, removed)
  local writes, deletes, tombstoned = {}, {}, {}
  for i = first, last do
    writes[#writes + 1] = ARGV[i]
  end
  for i = removed, #ARGV do
    local name = ARGV[i]
    if record_may_hold(s.record(), name) then
      writes[#writes + 1], writes[#writes + 2] = name, stamp(name)
      tombstoned[#tombstoned + 1] = name
    else
      deletes[#deletes + 1] = name
    end
  end
  return writes, deletes, tombstoned
end

-- Writes `writes` (HSET) and deletes `deletes` (HDEL), each in chunks, with the new expiry: slid
-- when due, and capped at the deadline when the TTL runs past it; recorded in @t in the same HSET,
-- then set with PEXPIREAT. The HSET comes first: Redis refuses a script for want of memory only at
-- its first write that can grow memory, and lets every later write through, so a save that sets
-- anything is refused whole (an OOM error, nothing written). @t alone replaces a value of its own
-- size: in a pcall, so that a save that only deletes goes through out of memory too (@t waits for a
-- later touch to repair it).
local function finish(s, writes, deletes)
  local expires
  if s.deadline then
    local ttl = next_ttl(s.pttl, s.sliding, s.idle, s.deadline - s.now)
    if ttl ~= s.pttl then
      expires = s.now + ttl
      writes[#writes + 1], writes[#writes + 2] = '@t', expiry_field(expires)
    end
  end
  if expires and #writes == 2 then
    redis.pcall('HSET', s.key, '@t', writes[2])
  else
    chunked('HSET', s.key, writes)
  end
  chunked('HDEL', s.key, deletes)
  if expires then
    redis.call('PEXPIREAT', s.key, expires)
  end
end
