-- flash push: queue a flash message for a later request.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  the message, MessagePack-encoded; messages are appended to field @f (after its
--          tag, META FLASH from src/format.rs, which tells a load reading values alone that
--          this is flash: see src/fields.rs), and a run of MessagePack values needs no
--          separator
-- ARGV[2]  the most bytes of pending messages (the field holds them and its 2-byte tag)
-- ARGV[3]  the session's absolute deadline as the client read it (record.lua's
--          unvouched_deadline)
--
-- Reply    the number of bytes now pending; 0 no live session (none, or past its absolute
--          deadline); minus the bytes that would be pending when that is over the limit
--          (nothing written).
-- Writes   HSET @f (the tag, old messages, then the new one).
-- Errors   'CORRUPT ...' when the deadline must be read (the key's expiry runs past the one the
--          client read, or the key has no TTL) and the record has no readable header.
-- Atomic   read-append-write runs as one script, so concurrent pushes never drop each other's
--          messages, and a push never creates a session that has expired or been destroyed.
local key = KEYS[1]
-- HEXISTS, not a read of the record, the hash's largest value, which a push does not need.
if redis.call('HEXISTS', key, '@p') == 0 then
  return 0 -- no hash, or one that is not a session
end
local stop = past_deadline_reply(key, tonumber(ARGV[3]))
if stop then
  return stop
end
local TAG = string.char(META, FLASH)
local queued = (redis.call('HGET', key, '@f') or TAG) .. ARGV[1]
local pending = #queued - #TAG
if pending > tonumber(ARGV[2]) then
  return -pending
end
redis.call('HSET', key, '@f', queued)
return pending
