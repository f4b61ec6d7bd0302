-- flash pop: read and remove a session's pending flash messages.
--
-- KEYS[1]  the session's hash
--
-- Reply    the pending messages (concatenated MessagePack values), or false (nil) when there
--          are none or there is no session.
-- Writes   HDEL @f, only when messages were pending.
-- Atomic   read and delete run as one script, so of two concurrent pops exactly one gets each
--          message: none is shown twice and none is lost.
local key = KEYS[1]
local pending = redis.call('HGET', key, '@f')
if pending then
  redis.call('HDEL', key, '@f')
end
return pending
