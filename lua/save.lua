-- save: write only what changed in a session (a delta), optionally checking its version, or
-- fold the session into a new packed record when the client asks and nobody saved meanwhile.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  expected version, or '' to skip the check
-- ARGV[2]  idle timeout, ms
-- ARGV[3]  touch threshold, ms (see get_and_touch.lua)
-- ARGV[4]  the most attributes a session may hold
-- ARGV[5]  a new packed record of the whole session (see src/packed.rs), or '' for a delta
-- ARGV[6]  the version the client loaded, which the record is built from, or '' when the client
--          knows its view is stale (then ARGV[7] is never trusted)
-- ARGV[7]  the number of attributes in the packed record the client loaded (trusted only while
--          the version is still ARGV[6]; otherwise read from the record's header). The loose
--          fields are always counted here (HLEN), never taken from the client: a version can
--          repeat after a lost write (a failover, a restore), and then the client's view of the
--          loose fields is not what Redis holds.
-- ARGV[8]  n, the number of attributes to set
-- ARGV[9 .. 8+2n]   name, value pairs to set
-- ARGV[9+2n ..]     names to delete
--
-- Reply    {1, new_version} saved the delta; {2, new_version} compacted (wrote ARGV[5]);
--          {0, 0} no live session (expired, destroyed or regenerated away: a save never
--          resurrects one); {-1, current_version} version conflict; {-2, count} the save
--          would take the session over the attribute limit. Only replies 1 and 2 wrote.
-- Errors   'CORRUPT ...' when the version is malformed, or the packed record where this save
--          reads it (nothing written). A save that need not read the record does not check it.
-- Writes   delta: one HSET of the changed attributes, of an empty field for each removed
--          attribute the packed record may hold (a tombstone that hides it), and of the new
--          @v; HDEL of the other removed names (both in chunks of 1000 arguments, under Lua's
--          unpack limit). Compaction, only when the stored version is still ARGV[6] (so
--          ARGV[5] is exactly the stored session plus this save's changes): HDEL of every
--          loose field, then HSET @p and @v. Either way PEXPIRE only when the idle expiry is
--          due, as in get-and-touch.
-- Atomic   every check runs before the first write, and the script runs alone: a conflicting
--          or oversized save writes nothing, two saves that change different attributes both
--          survive, and a compaction can never drop a concurrent save (it would have changed
--          the version, and the delta is written instead).
local FIRST = 9 -- ARGV index of the first name to set

-- The attributes before and after this save, counted exactly from the packed record and the
-- loose fields; nil when the record is malformed.
local function exact_count(key, packed, last_set)
  local live, at, count = {}, RECORD_HEADER + 1, 0
  local expected = record_count(packed)
  if not expected then return nil end
  while at <= #packed do
    local a, b = string.byte(packed, at, at + 1)
    if not b then return nil end
    local name_end = at + 1 + a * 256 + b
    local c, d, e, f = string.byte(packed, name_end + 1, name_end + 4)
    if not f then return nil end
    live[string.sub(packed, at + 2, name_end)] = true
    at = name_end + 5 + ((c * 256 + d) * 256 + e) * 256 + f
    count = count + 1
  end
  if at ~= #packed + 1 or count ~= expected then return nil end
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if string.byte(fields[i], 1) ~= 64 then -- not '@'
      live[fields[i]] = fields[i + 1] ~= '' or nil
    end
  end
  local function size()
    local n = 0
    for _ in pairs(live) do n = n + 1 end
    return n
  end
  local before = size()
  for i = FIRST, last_set, 2 do live[ARGV[i]] = true end
  for i = last_set + 1, #ARGV do live[ARGV[i]] = nil end
  return before, size()
end

local key = KEYS[1]
local stored = redis.call('HGET', key, '@v')
if not stored then
  return {0, 0} -- no hash, or one that is not a session
end
-- The packed record, read only when needed (its header holds the deadline; see below for the
-- rest).
local packed
local function record()
  packed = packed or redis.call('HGET', key, '@p') or ''
  return packed
end
-- Every write caps the TTL at the deadline, so a key with a TTL is within its deadline: the
-- deadline and the clock are needed only for a key without one, or to slide the TTL.
local pttl = redis.call('PTTL', key)
local idle = tonumber(ARGV[2])
local sliding = pttl < 0 or idle - pttl >= tonumber(ARGV[3])
local now, deadline
if sliding then
  deadline = record_deadline(record())
  if not deadline then
    return redis.error_reply('CORRUPT packed record has no header')
  end
  now = server_ms()
  if now >= deadline then
    return {0, 0}
  end
end
if not string.match(stored, '^%d+$') then
  return redis.error_reply('CORRUPT session version is not an integer')
end
if ARGV[1] ~= '' and ARGV[1] ~= stored then
  return {-1, tonumber(stored)}
end
local version = tonumber(stored) + 1
local unchanged = ARGV[6] == stored -- nobody saved since the client loaded
local CHUNK = 1000
local writes = {}

-- Compaction: the record replaces every loose field.
if ARGV[5] ~= '' and unchanged then
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if string.byte(name, 1) ~= 64 then -- not '@'
      writes[#writes + 1] = name
    end
  end
  for from = 1, #writes, CHUNK do
    redis.call('HDEL', key, unpack(writes, from, math.min(from + CHUNK - 1, #writes)))
  end
  writes = {'@p', ARGV[5]}
else
  -- The packed record is read only when needed: to count when the client's count may be
  -- stale or near the limit, or to tell a removed attribute's tombstone from a plain delete.
  local n = tonumber(ARGV[8])
  local last_set = FIRST - 1 + 2 * n
  local packed_count = unchanged and tonumber(ARGV[7]) or record_count(record())
  if not packed_count then
    return redis.error_reply('CORRUPT packed record has no header')
  end
  -- An upper bound: the record's count, every other field but @v (@p and @f among them), and
  -- n. Count exactly only when the save could reach the limit.
  if packed_count + redis.call('HLEN', key) - 1 + n > tonumber(ARGV[4]) then
    local before, after = exact_count(key, record(), last_set)
    if not before then
      return redis.error_reply('CORRUPT packed record is malformed')
    end
    -- Only a save that adds attributes can break the limit: one that shrinks or keeps a
    -- session over a (since lowered) limit goes on.
    if after > before and after > tonumber(ARGV[4]) then
      return {-2, after}
    end
  end
  for i = FIRST, last_set do
    writes[#writes + 1] = ARGV[i]
  end
  -- A removed name the record may hold (a plain substring test of its entries, not of its
  -- header's times: a false match only costs an empty field) gets a tombstone; any other is
  -- deleted.
  local deleted = {}
  for i = last_set + 1, #ARGV do
    if string.find(record(), ARGV[i], RECORD_HEADER + 1, true) then
      writes[#writes + 1] = ARGV[i]
      writes[#writes + 1] = ''
    else
      deleted[#deleted + 1] = ARGV[i]
    end
  end
  for from = 1, #deleted, CHUNK do
    redis.call('HDEL', key, unpack(deleted, from, math.min(from + CHUNK - 1, #deleted)))
  end
end

-- The new version rides in the (last) HSET, so a typical save is one command in the AOF and
-- the replication stream, which Redis then need not wrap in MULTI/EXEC.
writes[#writes + 1] = '@v'
writes[#writes + 1] = version
for from = 1, #writes, CHUNK do
  redis.call('HSET', key, unpack(writes, from, math.min(from + CHUNK - 1, #writes)))
end
if sliding then
  local ttl = math.min(idle, deadline - now)
  if ttl > pttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return {ARGV[5] ~= '' and unchanged and 2 or 1, version}
