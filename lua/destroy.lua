-- destroy: delete a session (logout, or the user deleting their account).
--
-- KEYS[1]  the session's hash
-- KEYS[2]  for a session bound to a user, the user's index (the same slot); absent otherwise
-- ARGV[1]  with KEYS[2], the session's device id
--
-- Reply    1 deleted, 0 there was no session; {-3, stub} when KEYS[1] holds a retired token's
--          stub (@r): a rotation moved the session since the caller read it, and nothing was
--          written (the caller revokes the session the stub leads to).
-- Writes   UNLINK KEYS[1] (memory is freed off the main thread for a large session); with
--          KEYS[2], HDEL of the device's entry when it still names KEYS[1].
-- Atomic   the session and its index entry go together, so no list shows a device whose session
--          is gone; and a logout racing a rotation never deletes the stub alone, which would
--          leave the session it leads to logged in.
local stub = redis.call('HGET', KEYS[1], '@r')
if stub then
  return {-3, stub}
end
if KEYS[2] and redis.call('HGET', KEYS[2], ARGV[1]) == KEYS[1] then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return redis.call('UNLINK', KEYS[1])
