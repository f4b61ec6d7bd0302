-- create: store a fresh, empty session.
--
-- KEYS[1]  the new session's hash (derived from a freshly generated token)
-- ARGV[1]  idle timeout, ms
-- ARGV[2]  absolute timeout, ms (the session's whole life, counted from now)
-- ARGV[3]  for timeouts of the session's own (src/timeouts.rs), the touch threshold, ms, that
--          goes with its idle timeout: both are kept in @i (fields.lua); absent for the store's
--
-- Reply    {created_ms, deadline_ms}, or false (nil) when the key already exists (a token
--          collision, which a 256-bit secret makes practically impossible; the caller draws a
--          new token).
-- Writes   HSET @p (a packed record of no attributes, whose header holds the creation time,
--          the deadline and id 0), @t (the expiry, see fields.lua) and, for own timeouts, @i
--          on KEYS[1], then PEXPIREAT that expiry: now + min(idle, absolute).
-- Atomic   the EXISTS check and the write run as one script, so a collision can never merge two
--          sessions. The clock is the server's (TIME), so app servers' clocks do not matter.
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  return false
end
local now = server_ms()
local idle = tonumber(ARGV[1])
local absolute = tonumber(ARGV[2])
local deadline = now + absolute
local expires = now + next_ttl(-1, true, idle, absolute)
local fields = {'@p', record_header(now, deadline), '@t', expiry_field(expires)}
if ARGV[3] then
  fields[#fields + 1], fields[#fields + 2] = '@i', own_timeouts_field(idle, tonumber(ARGV[3]))
end
redis.call('HSET', key, unpack(fields))
redis.call('PEXPIREAT', key, expires)
return {now, deadline}
