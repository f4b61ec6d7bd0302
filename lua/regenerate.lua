-- regenerate-and-migrate: move a session to a fresh token (anti-fixation on login, logout or
-- any privilege change). The old token dies at once.
--
-- KEYS[1]  the session's current hash
-- KEYS[2]  the hash of the new token; on Redis Cluster it carries the same hash tag, so both
--          keys live in one slot and this stays a single-slot script
-- ARGV[1]  the session's absolute deadline as the client read it (deadline.lua's
--          unvouched_deadline)
-- ARGV[2]  under encryption, the binding @b for the new key (src/seal/binding.rs: it proves
--          that the values, sealed for the session's first key, belong to the new one); ''
--          without
-- ARGV[3]  with ARGV[4] and ARGV[5], new timeouts from now on (src/timeouts.rs); absent to keep
--          the session's: idle, ms
-- ARGV[4]  absolute, ms: the new deadline is now + this
-- ARGV[5]  the touch threshold, ms, of timeouts of the session's own, kept with the idle
--          timeout in @i (fields.lua); '' for the store's timeouts (@i is deleted)
--
-- Reply    1 moved (with new timeouts: {1, new deadline, new TTL}); 0 no live session under
--          KEYS[1]; -1 KEYS[2] already exists (a token collision; the caller draws a new token
--          and nothing was written).
-- Writes   RENAMENX KEYS[1] KEYS[2]: the data and its TTL move unchanged. With a binding,
--          first HSET of @b on KEYS[1]. With new timeouts, first, on KEYS[1], HSET of @p with the new deadline in its header, @t (and @i for
--          the session's own), HDEL @i for the store's, and PEXPIREAT of now + min(idle,
--          absolute): the HSET first, so that a server out of memory refuses it before anything
--          has changed. The deadline of a key never changes: the new one goes with the new key.
-- Errors   'CORRUPT ...' when the deadline must be read (the key's expiry runs past the one the
--          client read, or the key has no TTL) and the record has no readable header.
-- Atomic   check and rename run as one script, so a save or a flash push racing through the old
--          token lands before the move (and moves with it) or after it (and finds no session);
--          it can never bring the old token back to life.
local old, new, binding = KEYS[1], KEYS[2], ARGV[2]
local stop = not_live_reply(old, tonumber(ARGV[1]))
if stop then
  return stop
end
if not ARGV[3] and binding == '' then
  -- RENAMENX refuses to overwrite: a collision writes nothing.
  if redis.call('RENAMENX', old, new) == 0 then
    return -1
  end
  return 1
end
if redis.call('EXISTS', new) == 1 then
  return -1
end
if not ARGV[3] then
  redis.call('HSET', old, '@b', binding)
  redis.call('RENAMENX', old, new) -- KEYS[2] was free above, and nothing ran in between
  return 1
end
local record = redis.call('HGET', old, '@p')
if not record_deadline(record) then
  return redis.error_reply('CORRUPT session hash has no packed record header')
end
local now = server_ms()
local idle, absolute = tonumber(ARGV[3]), tonumber(ARGV[4])
local deadline = now + absolute
local expires = now + next_ttl(-1, true, idle, absolute)
-- The header keeps its creation time, count and id: only the deadline changes.
record = string.sub(record, 1, DEADLINE_AT - 1) .. big_endian(deadline, 8)
  .. string.sub(record, DEADLINE_AT + 8)
local fields = {'@p', record, '@t', expiry_field(expires)}
if ARGV[5] ~= '' then
  fields[#fields + 1], fields[#fields + 2] = '@i', own_timeouts_field(idle, tonumber(ARGV[5]))
end
if binding ~= '' then
  fields[#fields + 1], fields[#fields + 2] = '@b', binding
end
redis.call('HSET', old, unpack(fields))
if ARGV[5] == '' then
  redis.call('HDEL', old, '@i')
end
redis.call('PEXPIREAT', old, expires)
-- Cannot be refused: KEYS[2] was free above, and nothing ran in between.
redis.call('RENAMENX', old, new)
return {1, deadline, expires - now}
