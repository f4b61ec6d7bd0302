-- bind: log a session in as a user: the session moves to a fresh token that carries the user's
-- hash tag, bound to the user (@u), and enters the user's index, with new timeouts from now on.
--
-- KEYS[1]  the new token's hash (the user's hash tag, so the user's slot)
-- KEYS[2]  the user's index: a hash of device id -> session key
-- KEYS[3]  the session's current hash, checked and deleted here; absent when it is in another
--          Redis Cluster slot (an anonymous session's tag): retire.lua deletes it next
-- ARGV[1]  the deadline the client read with the session (deadline.lua)
-- ARGV[2]  m, the number of fields the client read (HGETALL)
-- ARGV[3 .. 2 + 3m]  per field: its name, its value as read, its value for KEYS[1] (sealed
--          anew under encryption, src/seal/moved.rs; the same otherwise)
-- ARGV[t], ARGV[t + 1], ARGV[t + 2]  with t = 3 + 3m: the idle and absolute timeouts, ms, from
--          now on, and the touch threshold, ms, of timeouts of the session's own ('' for the
--          store's timeouts: no @i)
-- ARGV[t + 3]  @u (src/format/bound.rs), its time left for this script to write
--
-- Reply    {1, deadline, ttl, now}: bound; 0 no live session under KEYS[3]; -1 KEYS[1] exists
--          (a token collision: the caller draws again); -2 KEYS[3] is not as read (a save or a
--          flash push came in between: the caller reads it again). Nothing is written but on 1.
-- Writes   HSET on KEYS[1] of every field read but @t, @i and @u, the record with the new
--          deadline, @t, @u and (own timeouts) @i, then PEXPIREAT of now + min(idle, absolute);
--          UNLINK KEYS[3]; HSET KEYS[2] device -> KEYS[1], and its expiry extended to the new
--          deadline when it would end sooner.
-- Atomic   the new session and its index entry appear together, so no list or revoke sees one
--          without the other; on one server the old key's check and deletion run in the same
--          script, so a save racing through the old token lands before the move (and moves with
--          it) or after (and finds no session).
local new, index, old = KEYS[1], KEYS[2], KEYS[3]
local m = tonumber(ARGV[2])
local t = 3 + 3 * m
if old then
  local stop = not_live_reply(old, tonumber(ARGV[1]))
  if stop then
    return stop
  end
  if not as_read(old, 3, m) then
    return -2
  end
end
if redis.call('EXISTS', new) == 1 then
  return -1
end
local writes, record = {}, nil
for i = 3, 2 + 3 * m, 3 do
  local name = ARGV[i]
  if name == '@p' then
    record = ARGV[i + 2]
  elseif name ~= '@t' and name ~= '@i' and name ~= '@u' then
    writes[#writes + 1], writes[#writes + 2] = name, ARGV[i + 2]
  end
end
if not record_deadline(record) then
  return redis.error_reply('CORRUPT session hash has no packed record header')
end
local now, idle, deadline, expires = new_life(t)
local bound = with_bound_time(ARGV[t + 3], now)
writes[#writes + 1], writes[#writes + 2] = '@p', with_deadline(record, deadline)
writes[#writes + 1], writes[#writes + 2] = '@t', expiry_field(expires)
writes[#writes + 1], writes[#writes + 2] = '@u', bound
if ARGV[t + 2] ~= '' then
  writes[#writes + 1], writes[#writes + 2] = '@i', own_timeouts_field(idle, tonumber(ARGV[t + 2]))
end
hset_all(new, writes)
redis.call('PEXPIREAT', new, expires)
if old then
  redis.call('UNLINK', old)
end
redis.call('HSET', index, device_of(bound), new)
index_lives_to(index, deadline)
return {1, deadline, expires - now, now}
