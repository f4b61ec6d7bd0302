-- get-and-touch: load a session, enforce its deadlines, slide its idle expiry only when due,
-- and optionally pop its flash messages, all in one round trip.
--
-- The store runs it (src/store/load.rs, src/store/flash_pop.rs) when:
--   - a load must write: the expiry is due to slide, or the hash records no expiry (@t);
--   - flash messages are to be popped where a MULTI/EXEC cannot (a Redis Cluster, or a server
--     out of memory), by a load or by pop_flash.
-- Other loads read HVALS without a script (a popping one on one server in a MULTI/EXEC that
-- also deletes @f), and judge from @t, which every script caps at the deadline, and from the
-- deadline in the record whether the expiry is due (src/store/server_clock.rs): past either, they
-- come here.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  the store's idle timeout, ms
-- ARGV[2]  the store's touch threshold, ms: the TTL is extended only once at least this much of
--          the idle timeout has been used up, so most reads write nothing (nothing in the AOF,
--          nothing in the replication stream). A session with timeouts of its own (@i, see
--          fields.lua) is judged by the idle timeout and threshold it holds instead.
-- ARGV[3]  '1' to pop the flash messages (field @f), '0' to leave them
--
-- Reply    false (nil) when there is no live session (none, or past its absolute deadline,
--          whatever its TTL says); else {pttl_ms, {value, ...}}, the
--          values of every field of the hash alike, each of which says what it is
--          (src/format/fields.rs): the packed record (@p, whose header holds the creation time, the
--          deadline and the record's id), the expiry (@t), flash (@f) and loose attributes;
--          @f is in the reply whether or not it was popped, so a load that leaves it knows it
--          is pending. @t is as this script left it. For a retired token's stub (@r, left by
--          rotate.lua), {0, {stub}}, untouched.
-- Writes   nothing inside the throttle window; when due, HSET @t and PEXPIREAT of the new
--          expiry, min(now + idle, deadline), and the same when the TTL runs past the
--          deadline (cut back to it); HSET @t alone when @t is missing or disagrees with the
--          TTL by more than SLACK ms (a hash from before @t, or a TTL set by hand), unless the
--          server is out of memory; when popping and messages are pending, HDEL @f.
-- Errors   'CORRUPT ...' when the hash lacks a readable packed record (foreign data under
--          our prefix); nothing is written then.
-- Atomic   read, deadline check, touch and pop run as one script: a concurrent request sees
--          the session before or after, never half-touched, and a flash message popped here
--          can be popped by nobody else. Time is the server's (TIME).
local SLACK = 2 -- ms: PTTL and TIME are read at slightly different instants
local key = KEYS[1]
local values = redis.call('HVALS', key)
if #values == 0 then
  return false
end
-- A value's first byte says its field (src/format/mod.rs): RECORD the record; META metadata,
-- followed by FLASH for the flash messages, EXPIRY for the expiry, OWN_TIMEOUTS for the
-- session's own idle timeout and threshold.
local deadline, flash, expires, expiry_at, own_idle, own_touch_after, retired
for i, value in ipairs(values) do
  local kind = string.byte(value, 1)
  if kind == RECORD then
    deadline = record_deadline(value)
  elseif kind == META then
    local tag = string.byte(value, 2)
    if tag == FLASH then
      flash = true
    elseif tag == EXPIRY then
      expires, expiry_at = field_expiry(value), i
    elseif tag == OWN_TIMEOUTS then
      own_idle, own_touch_after = field_own_timeouts(value)
    elseif tag == RETIRED then
      retired = true
    end
  end
end
if not deadline and retired then
  return {0, values} -- a retired token's stub: the client follows it or reports its reuse
elseif not deadline then
  return redis.error_reply('CORRUPT session hash has no packed record')
end
-- The deadline holds whatever the TTL says (an EXPIRE by hand, a RESTORE or a MIGRATE may set
-- one past it), so the clock is read on every run; a plain load sends a session here only when
-- its touch is due or its expiry unknown.
local now = server_ms()
if now >= deadline then
  return false
end
local idle, threshold = tonumber(ARGV[1]), tonumber(ARGV[2])
if own_idle then
  idle, threshold = own_idle, own_touch_after
end
local pttl = redis.call('PTTL', key)
local due = touch_due(pttl, idle, threshold)
local ttl = next_ttl(pttl, due, idle, deadline - now)
-- Plain loads judge by @t, so it must say when the key expires. The HSET goes first, in a
-- pcall: a server out of memory refuses an HSET as a script's first write (so @t never grows a
-- hash past maxmemory), and the repair can wait for a later load; the PEXPIREAT, which grows
-- nothing, is made regardless.
if ttl ~= pttl or not expires or math.abs(expires - (now + ttl)) > SLACK then
  local field = expiry_field(now + ttl)
  if type(redis.pcall('HSET', key, '@t', field)) == 'number' then -- not an error reply
    values[expiry_at or #values + 1] = field
  end
end
if ttl ~= pttl then
  redis.call('PEXPIREAT', key, now + ttl)
end
if flash and ARGV[3] == '1' then
  redis.call('HDEL', key, '@f')
end
return {ttl, values}
