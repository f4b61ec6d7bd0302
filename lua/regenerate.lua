-- regenerate-and-migrate: move a session to a fresh token (anti-fixation on login, logout or
-- any privilege change). The old token dies at once.
--
-- KEYS[1]  the session's current hash
-- KEYS[2]  the hash of the new token; on Redis Cluster it carries the same hash tag, so both
--          keys live in one slot and this stays a single-slot script
-- KEYS[3]  for a session bound to a user (@u), the user's index (the same slot); absent otherwise
-- ARGV[1]  the session's absolute deadline as the client read it (deadline.lua's
--          unvouched_deadline)
-- ARGV[2]  m: under encryption, how many fields the client sealed anew for KEYS[2] (values
--          are sealed for their session's key: src/seal/binding.rs); 0 without
-- ARGV[3 .. 2 + 3m]  per field: its name, its value as the client read it (HGETALL), its value
--          sealed for KEYS[2]
-- ARGV[t]  with t = 3 + 3m, and ARGV[t + 1], ARGV[t + 2], new timeouts from now on
--          (src/timeouts.rs); absent to keep the session's: idle, ms
-- ARGV[t + 1]  absolute, ms: the new deadline is now + this
-- ARGV[t + 2]  the touch threshold, ms, of timeouts of the session's own, kept with the idle
--          timeout in @i (fields.lua); '' for the store's timeouts (@i is deleted)
--
-- Reply    1 moved (with new timeouts: {1, new deadline, new TTL}); 0 no live session under
--          KEYS[1]; -1 KEYS[2] already exists (a token collision; the caller draws a new token
--          and nothing was written); -2 the hash is not as the client read it (a save or a
--          flash push came in between: the client reads it again; nothing was written).
-- Writes   RENAMENX KEYS[1] KEYS[2]: the data and its TTL move; with KEYS[3], HSET of the
--          session's index entry to KEYS[2] (and with new timeouts, the index's expiry extended
--          to the new deadline). Sealed anew, first, on KEYS[1],
--          HSET of each field's new value. With new timeouts, then, on KEYS[1], HSET of @p with
--          the new deadline in its header, @t (and @i for the session's own), HDEL @i for the
--          store's, and PEXPIREAT of now + min(idle, absolute). An HSET comes first, so that a
--          server out of memory refuses it before anything has changed. The deadline of a key
--          never changes: the new one goes with the new key.
-- Errors   'CORRUPT ...' when the deadline must be read (the key's expiry runs past the one the
--          client read, or the key has no TTL) and the record has no readable header.
-- Atomic   check and rename run as one script, so a save or a flash push racing through the old
--          token lands before the move (and moves with it) or after it (and finds no session);
--          it can never bring the old token back to life. Sealed anew, the comparison with what
--          the client read runs in the same script, so no value sealed for the old key moves.
local old, new = KEYS[1], KEYS[2]

-- A bound session's index entry follows it, and with a new deadline the index lives as long.
local function reindex(deadline)
  local bound = KEYS[3] and redis.call('HGET', new, '@u')
  if bound then
    redis.call('HSET', KEYS[3], device_of(bound), new)
    if deadline then
      index_lives_to(KEYS[3], deadline)
    end
  end
end

local stop = not_live_reply(old, tonumber(ARGV[1]))
if stop then
  return stop
end
local m = tonumber(ARGV[2])
local t = 3 + 3 * m
if m == 0 and not ARGV[t] then
  -- RENAMENX refuses to overwrite: a collision writes nothing.
  if redis.call('RENAMENX', old, new) == 0 then
    return -1
  end
  reindex(nil)
  return 1
end
if redis.call('EXISTS', new) == 1 then
  return -1
end
if m > 0 and not sealed_anew_in_place(old, m) then
  return -2
end
if not ARGV[t] then
  redis.call('RENAMENX', old, new) -- KEYS[2] was free above, and nothing ran in between
  reindex(nil)
  return 1
end
local record = redis.call('HGET', old, '@p')
if not record_deadline(record) then
  return redis.error_reply('CORRUPT session hash has no packed record header')
end
local now, idle, deadline, expires = new_life(t)
record = with_deadline(record, deadline)
local fields = {'@p', record, '@t', expiry_field(expires)}
if ARGV[t + 2] ~= '' then
  fields[#fields + 1], fields[#fields + 2] = '@i', own_timeouts_field(idle, tonumber(ARGV[t + 2]))
end
redis.call('HSET', old, unpack(fields))
if ARGV[t + 2] == '' then
  redis.call('HDEL', old, '@i')
end
redis.call('PEXPIREAT', old, expires)
-- Cannot be refused: KEYS[2] was free above, and nothing ran in between.
redis.call('RENAMENX', old, new)
reindex(deadline)
return {1, deadline, expires - now}
