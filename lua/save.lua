-- save: write only what changed in a session (a delta), optionally checking its version.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  expected version, or '' to skip the check
-- ARGV[2]  idle timeout, ms
-- ARGV[3]  touch threshold, ms (see get_and_touch.lua)
-- ARGV[4]  the most attributes a session may hold
-- ARGV[5]  n, the number of attributes to set
-- ARGV[6 .. 5+2n]   name, value pairs to set
-- ARGV[6+2n ..]     names to delete
--
-- Reply    {1, new_version} saved; {0, 0} no live session (expired, destroyed or regenerated
--          away: a save never resurrects one); {-1, current_version} version conflict;
--          {-2, count} the save would take the session over the attribute limit. Only reply 1
--          wrote anything.
-- Errors   'CORRUPT ...' when the version field is not an integer (nothing written).
-- Writes   HSET of the changed attributes and the new @v, HDEL of the removed ones (both in
--          chunks of 1000 arguments, under Lua's unpack limit); PEXPIRE only when the idle
--          expiry is due, as in get-and-touch.
-- Atomic   every check runs before the first write, and the script runs alone: a conflicting
--          or oversized save writes nothing, and two saves that change different attributes
--          both survive.
local key = KEYS[1]
local meta = redis.call('HMGET', key, '@d', '@v', '@f')
local deadline = tonumber(meta[1])
if not deadline then
  return {0, 0}
end
-- Every write caps the TTL at the deadline, so a key with a TTL is within its deadline and the
-- clock is needed only for a key without one (or to slide the TTL, below).
local pttl = redis.call('PTTL', key)
local now
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if pttl < 0 then
  now = clock()
  if now >= deadline then
    return {0, 0}
  end
end
local stored = meta[2] or '0'
if not string.match(stored, '^%d+$') then
  return redis.error_reply('CORRUPT session version is not an integer')
end
if ARGV[1] ~= '' and ARGV[1] ~= stored then
  return {-1, tonumber(stored)}
end

local n = tonumber(ARGV[5])
local last_set = 5 + 2 * n
local max = tonumber(ARGV[4])
local metadata = 3 + (meta[3] and 1 or 0)
local before = redis.call('HLEN', key)
-- Count exactly (HEXISTS per name) only when the save could reach the limit. Only a save that
-- adds attributes can break it: one that shrinks or keeps a session that is over a (since
-- lowered) limit still goes through.
if before - metadata + n > max then
  local after = before
  for i = 6, last_set, 2 do
    after = after + 1 - redis.call('HEXISTS', key, ARGV[i])
  end
  for i = last_set + 1, #ARGV do
    after = after - redis.call('HEXISTS', key, ARGV[i])
  end
  if after > before and after - metadata > max then
    return {-2, after - metadata}
  end
end

-- Write. The new version rides in the (last) HSET, so a typical save is one command in the AOF
-- and the replication stream, which Redis then need not wrap in MULTI/EXEC.
local version = tonumber(stored) + 1
local CHUNK = 1000
local first = 6
repeat
  local last = math.min(first + CHUNK - 1, last_set)
  local args = {key}
  for i = first, last do
    args[#args + 1] = ARGV[i]
  end
  if last == last_set then
    args[#args + 1] = '@v'
    args[#args + 1] = version
  end
  redis.call('HSET', unpack(args))
  first = last + 1
until first > last_set
for from = last_set + 1, #ARGV, CHUNK do
  redis.call('HDEL', key, unpack(ARGV, from, math.min(from + CHUNK - 1, #ARGV)))
end
local idle = tonumber(ARGV[2])
if pttl < 0 or idle - pttl >= tonumber(ARGV[3]) then
  now = now or clock()
  local ttl = math.min(idle, deadline - now)
  if ttl > pttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return {1, version}
