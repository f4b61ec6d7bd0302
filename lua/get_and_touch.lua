-- get-and-touch: load a session, enforce its deadlines, slide its idle expiry only when due,
-- and optionally pop its flash messages, all in one round trip.
--
-- The store runs it (src/load.rs, src/flash_pop.rs) when:
--   - a load must write: the expiry is due to slide, or the key has no TTL;
--   - flash messages are to be popped where a MULTI/EXEC cannot (a Redis Cluster, or a server
--     out of memory), by a load or by pop_flash.
-- Other loads read HVALS + PTTL without a script (a popping one on one server in a MULTI/EXEC
-- that also deletes @f), which is safe because every script caps the TTL at the deadline.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  idle timeout, ms
-- ARGV[2]  touch threshold, ms: the TTL is extended only once at least this much of the idle
--          timeout has been used up, so most reads write nothing (nothing in the AOF, nothing
--          in the replication stream)
-- ARGV[3]  '1' to pop the flash messages (field @f), '0' to leave them
--
-- Reply    false (nil) when there is no live session; else {pttl_ms, {value, ...}}, the
--          values of every field of the hash alike, each of which says what it is
--          (src/fields.rs): the packed record (@p, whose header holds the creation time, the
--          deadline and the record's id), flash (@f) and loose attributes; @f is in the reply
--          whether or not it was popped, so a load that leaves it knows it is pending.
-- Writes   nothing inside the throttle window; when due, PEXPIRE min(idle, deadline - now);
--          when popping and messages are pending, HDEL @f.
-- Errors   'CORRUPT ...' when the hash lacks a readable packed record (foreign data under
--          our prefix); nothing is written then.
-- Atomic   read, deadline check, touch and pop run as one script: a concurrent request sees
--          the session before or after, never half-touched, and a flash message popped here
--          can be popped by nobody else. Time is the server's (TIME).
local key = KEYS[1]
local values = redis.call('HVALS', key)
if #values == 0 then
  return false
end
-- A value's first byte says its field: 0 the record, 0xc1 followed by 'f' the flash messages.
local deadline, flash
for _, value in ipairs(values) do
  local kind = string.byte(value, 1)
  if kind == 0 then
    deadline = record_deadline(value)
  elseif kind == 193 and string.byte(value, 2) == 102 then
    flash = true
  end
end
if not deadline then
  return redis.error_reply('CORRUPT session hash has no packed record')
end
-- Every write caps the TTL at the deadline, so a key with a TTL is within it: the clock is
-- read only for a key without one, or to slide the TTL (not for a pop alone).
local idle = tonumber(ARGV[1])
local pttl = redis.call('PTTL', key)
if pttl < 0 or idle - pttl >= tonumber(ARGV[2]) then
  local now = server_ms()
  if now >= deadline then
    return false
  end
  local ttl = math.min(idle, deadline - now)
  if ttl > pttl then
    redis.call('PEXPIRE', key, ttl)
    pttl = ttl
  end
end
if flash and ARGV[3] == '1' then
  redis.call('HDEL', key, '@f')
end
return {pttl, values}
