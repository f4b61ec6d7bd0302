-- save: write a delta, only the attributes that changed since the client loaded the session.
-- The hot path of every save; save_checked.lua adds a check, compact.lua folds the session.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  idle timeout, ms
-- ARGV[2]  touch threshold, ms (see get_and_touch.lua)
-- ARGV[3]  the session's absolute deadline as the client read it (deadline.lua's
--          unvouched_deadline)
-- ARGV[4]  the most attributes a session may hold
-- ARGV[5]  the most bytes of attribute names and values a session may hold, all together
-- ARGV[6]  n, the number of attributes to set
-- ARGV[7 .. 6+2n]  name, value pairs to set, each value stamped with its name (entries.lua)
-- ARGV[7+2n ..]    names to remove
--
-- Reply    {1, id, tombstoned} saved: `id` is the stored record's, or -1 when the save did
--          not read the record; `tombstoned` lists the removed names given a tombstone (the
--          others were deleted). {0, 0, {}} no live session (expired, destroyed, regenerated
--          away, or past its absolute deadline whatever its TTL says: a save never resurrects
--          one); {-2, count, {}} the save would take the session over the attribute limit,
--          {-3, bytes, {}} over the byte limit (limits.lua). Only reply 1 wrote.
-- Reads    the record's length (HSTRLEN; HEXISTS too when it is 0), the TTL and the key's
--          expiry (PEXPIRETIME); when it sets attributes, the number of fields and the hash's
--          memory; the server's time only when it needs the deadline. The record itself, the
--          hash's largest value, only where the save needs it: for a removed name, an exact
--          count, or the deadline when the TTL slides or runs past ARGV[3].
-- Errors   'CORRUPT ...' when the record is shorter than its header, or an exact count finds
--          its entries malformed (nothing written).
-- Writes   HSET of the changed attributes and of a tombstone for each removed name the record
--          may hold (entries.lua's record_may_hold), then HDEL of the other removed names, each
--          in chunks of 1000 arguments. No version is written, so a delta appends only the
--          attributes to the AOF. When the idle expiry is due, or the TTL runs past the
--          deadline, @t in the same HSET and PEXPIREAT of the new expiry (write.lua's finish).
-- Atomic   every check runs before the first write, and the script runs alone: an oversized
--          save writes nothing, and two saves that change different attributes both survive.
--          The limits are checked against what is stored, so concurrent saves cannot pass them
--          together.
local s, stop = open_session(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if not s then
  return stop
end
local last = 6 + 2 * tonumber(ARGV[6])
return save_delta(s, 7, last, last + 1, tonumber(ARGV[4]), tonumber(ARGV[5]))
