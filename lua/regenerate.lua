-- regenerate-and-migrate: move a session to a fresh token (anti-fixation on login, logout or
-- any privilege change). The old token dies at once.
--
-- KEYS[1]  the session's current hash
-- KEYS[2]  the hash of the new token; on Redis Cluster it carries the same hash tag, so both
--          keys live in one slot and this stays a single-slot script
-- ARGV[1]  the session's absolute deadline as the client read it (record.lua's
--          unvouched_deadline)
--
-- Reply    1 moved; 0 no live session under KEYS[1]; -1 KEYS[2] already exists (a token
--          collision; the caller draws a new token and nothing was written).
-- Writes   RENAMENX KEYS[1] KEYS[2]: the data and its TTL move unchanged.
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
-- RENAMENX refuses to overwrite: a collision writes nothing.
if redis.call('RENAMENX', old, new) == 0 then
  return -1
end
return 1
