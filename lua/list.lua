-- list: a user's sessions, for a "your devices" page; entries of sessions that are gone are
-- removed on the way.
--
-- KEYS[1]  the user's index: a hash of device id -> session key
-- KEYS[2 ..]  every session key the index held when the client read it (HGETALL)
-- ARGV[1 ..]  the device id of each, in the same order
--
-- Reply    -2 when the index is no longer as read (the caller reads it again); else per live
--          session, {device id, created ms, @t, @i, @u} (@t and @i false when absent).
-- Writes   HDEL of each entry whose session is gone (expired, destroyed, or no longer bound to
--          that device); the index, left empty, is gone with its last field.
-- Atomic   the check of the index and the pruning run as one script, so an entry that a login
--          or rotation has just written is never removed.
if not index_as_read(1, true, nil) then
  return -2
end
local out = {}
for i = 2, #KEYS do
  local device = ARGV[i - 1]
  local found = redis.call('HMGET', KEYS[i], '@p', '@t', '@i', '@u')
  local created = record_number(found[1], CREATED_AT, 8)
  if created and found[4] and device_of(found[4]) == device then
    out[#out + 1] = {device, created, found[2], found[3], found[4]}
  else
    redis.call('HDEL', KEYS[1], device)
  end
end
return out
