-- retire: on a Redis Cluster, delete the session a login copied to the user's slot (bind.lua),
-- if it is still as the login read it.
--
-- KEYS[1]  the session's hash before the login
-- ARGV[1]  the deadline the client read with the session (deadline.lua)
-- ARGV[2]  m; ARGV[3 .. 2 + 3m] per field, as bind.lua got them: name, value as read, value
--          as copied
--
-- Reply    1 deleted; 0 no live session (expired or destroyed since the read); -2 not as read
--          (a save or a flash push came in between: the caller deletes the copy, and logs in
--          again from a new read).
-- Writes   UNLINK KEYS[1], on 1 only.
-- Atomic   the comparison and the deletion run as one script, so a write through the old token
--          either is in what the copy holds, or makes the login start again: none is lost.
local stop = not_live_reply(KEYS[1], tonumber(ARGV[1]))
if stop then
  return stop
end
if not as_read(KEYS[1], 3, tonumber(ARGV[2])) then
  return -2
end
return redis.call('UNLINK', KEYS[1])
