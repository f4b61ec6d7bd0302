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
--          {-2, count} the attribute limit would be exceeded. Only reply 1 wrote anything.
-- Writes   HSET of the changed attributes, HDEL of the removed ones, HINCRBY @v; PEXPIRE only
--          when the idle expiry is due, as in get-and-touch.
-- Atomic   checks and writes run as one script, so a conflicting or oversized save writes
--          nothing, and two saves that change different attributes both survive.
local key = KEYS[1]
local deadline = tonumber(redis.call('HGET', key, '@d'))
if not deadline then
  return {0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= deadline then
  return {0, 0}
end
local version = tonumber(redis.call('HGET', key, '@v')) or 0
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= version then
  return {-1, version}
end
local n = tonumber(ARGV[5])
local last_set = 5 + 2 * n
local count = redis.call('HLEN', key)
for i = 6, last_set, 2 do
  count = count + 1 - redis.call('HEXISTS', key, ARGV[i])
end
for i = last_set + 1, #ARGV do
  count = count - redis.call('HEXISTS', key, ARGV[i])
end
local meta = 3 + redis.call('HEXISTS', key, '@f')
if count - meta > tonumber(ARGV[4]) then
  return {-2, count - meta}
end
if n > 0 then
  redis.call('HSET', key, unpack(ARGV, 6, last_set))
end
if #ARGV > last_set then
  redis.call('HDEL', key, unpack(ARGV, last_set + 1, #ARGV))
end
version = redis.call('HINCRBY', key, '@v', 1)
local idle = tonumber(ARGV[2])
local pttl = redis.call('PTTL', key)
if pttl < 0 or idle - pttl >= tonumber(ARGV[3]) then
  local ttl = math.min(idle, deadline - now)
  if ttl > pttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return {1, version}
