-- flash push: queue a flash message for a later request.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  the message, MessagePack-encoded; messages are appended to field @f (after its
--          tag, META FLASH from src/format/mod.rs, which tells a load reading values alone that
--          this is flash: see fields.lua), and a run of MessagePack values needs no
--          separator
-- ARGV[2]  the most bytes of pending messages (the field holds them and its 2-byte tag)
-- ARGV[3]  the session's absolute deadline as the client read it (deadline.lua's
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
local stop = not_live_reply(key, tonumber(ARGV[3]))
if stop then
  return stop
end
local queued = (redis.call('HGET', key, '@f') or FLASH_TAG) .. ARGV[1]
local pending = #queued - #FLASH_TAG
if pending > tonumber(ARGV[2]) then
  return -pending
end
redis.call('HSET', key, '@f', queued)
return pending
