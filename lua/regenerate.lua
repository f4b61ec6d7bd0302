-- regenerate-and-migrate: move a session to a fresh token (anti-fixation on login, logout or
-- any privilege change). The old token dies at once.
--
-- KEYS[1]  the session's current hash
-- KEYS[2]  the hash of the new token; on Redis Cluster it carries the same hash tag, so both
--          keys live in one slot and this stays a single-slot script
-- ARGV[1]  the session's absolute deadline as the client read it (record.lua's
--          unvouched_deadline)
-- ARGV[2]  with ARGV[3], the session's own timeouts from now on (src/expiry.rs): idle, ms;
--          absent to keep the session's timeouts
-- ARGV[3]  absolute, ms: the new deadline is now + this
--
-- Reply    1 moved (with own timeouts: {1, new deadline, new TTL}); 0 no live session under
--          KEYS[1]; -1 KEYS[2] already exists (a token collision; the caller draws a new token
--          and nothing was written).
-- Writes   RENAMENX KEYS[1] KEYS[2]: the data and its TTL move unchanged. With own timeouts,
--          first (on KEYS[1]) HSET of @p with the new deadline in its header, @i and @t, and
--          PEXPIREAT of now + min(idle, absolute); so that a server out of memory refuses the
--          HSET before anything has changed, and the rename carries it all.
-- Errors   'CORRUPT ...' when the deadline must be read (the key's expiry runs past the one the
--          client read, or the key has no TTL) and the record has no readable header.
-- Atomic   check and rename run as one script, so a save or a flash push racing through the old
--          token lands before the move (and moves with it) or after it (and finds no session);
--          it can never bring the old token back to life.
local old, new = KEYS[1], KEYS[2]
if redis.call('HEXISTS', old, '@p') == 0 then
  return 0 -- no hash, or one that is not a session
end
local stop = past_deadline_reply(old, tonumber(ARGV[1]))
if stop then
  return stop
end
if not ARGV[2] then
  -- RENAMENX refuses to overwrite: a collision writes nothing.
  if redis.call('RENAMENX', old, new) == 0 then
    return -1
  end
  return 1
end
if redis.call('EXISTS', new) == 1 then
  return -1
end
local record = redis.call('HGET', old, '@p')
if not record_deadline(record) then
  return redis.error_reply('CORRUPT session hash has no packed record header')
end
local now = server_ms()
local idle, absolute = tonumber(ARGV[2]), tonumber(ARGV[3])
local deadline = now + absolute
local expires = now + math.min(idle, absolute)
-- The header keeps its creation time, count and id: only the deadline (bytes 9 to 16) changes.
record = string.sub(record, 1, 8) .. big_endian(deadline, 8) .. string.sub(record, 17)
redis.call('HSET', old, '@p', record, '@i', idle_field(idle), '@t', expiry_field(expires))
redis.call('PEXPIREAT', old, expires)
redis.call('RENAME', old, new)
return {1, deadline, expires - now}
