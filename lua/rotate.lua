-- rotate: move a bound session to a fresh token under the same hash tag, leaving under the old
-- token a stub (@r) that leads to the new one for a grace window, and catches the old token's
-- use after it.
--
-- KEYS[1]  the session's current hash
-- KEYS[2]  the new token's hash (the same hash tag: the same slot)
-- KEYS[3]  the user's index
-- ARGV[1]  the deadline the client read with the session (deadline.lua)
-- ARGV[2]  m: under encryption, how many fields the client sealed anew for KEYS[2]; 0 without
-- ARGV[3 .. 2 + 3m]  per field: name, value as read, value sealed for KEYS[2]
-- ARGV[t]  with t = 3 + 3m: the grace window, ms
-- ARGV[t + 1]  the stub's tail (src/format/bound.rs): device id, sealed next token, user id
--
-- Reply    {1, grace_until}: rotated; {2, stub}: another request rotated KEYS[1] first, and
--          the stub (@r) says where it leads; 0 no live session; -1 KEYS[2] exists (a token
--          collision); -2 not as read (under encryption: read and seal again). Nothing is
--          written but on 1.
-- Writes   (sealed anew) HSET of each field's new value on KEYS[1]; HSET @u with the rotation's
--          time; RENAMENX KEYS[1] KEYS[2] (the data and its TTL move); HSET KEYS[1] @r, the
--          stub, with PEXPIREAT of the session's deadline, so the old token is caught for as long
--          as the session could live; HSET KEYS[3] device -> KEYS[2].
-- Atomic   two requests rotating the same token at once end on one new token: the second finds
--          the stub the first left and follows it. The index never points at the stub.
local old, new, index = KEYS[1], KEYS[2], KEYS[3]
local stub = redis.call('HGET', old, '@r')
if stub then
  return {2, stub}
end
local stop = not_live_reply(old, tonumber(ARGV[1]))
if stop then
  return stop
end
local bound = redis.call('HGET', old, '@u')
if not bound then
  return 0 -- not bound to a user: nothing to rotate
end
if redis.call('EXISTS', new) == 1 then
  return -1
end
local m = tonumber(ARGV[2])
local t = 3 + 3 * m
if m > 0 then
  if not sealed_anew_in_place(old, m) then
    return -2
  end
  bound = redis.call('HGET', old, '@u') -- sealed anew for KEYS[2] with the rest
end
local record = redis.call('HGET', old, '@p')
local deadline = record_deadline(record)
if not deadline then
  return redis.error_reply('CORRUPT session hash has no packed record header')
end
local now = server_ms()
redis.call('HSET', old, '@u', with_bound_time(bound, now))
redis.call('RENAMENX', old, new) -- KEYS[2] was free above, and nothing ran in between
local grace_until = now + tonumber(ARGV[t])
local retired = string.char(META, RETIRED) .. big_endian(grace_until, 8) .. ARGV[t + 1]
redis.call('HSET', old, '@r', retired)
redis.call('PEXPIREAT', old, deadline)
redis.call('HSET', index, device_of(bound), new)
index_lives_to(index, deadline)
return {1, grace_until}
