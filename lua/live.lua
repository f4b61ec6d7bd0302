-- live: the check that opens flash_push.lua and regenerate.lua. Needs deadline.lua.

-- nil while the session at `key` is a live session within its absolute deadline (`known` is
-- the deadline the client read), whatever its TTL says; otherwise the reply a script gives
-- instead: 0 when there is no session (no hash, or one that is not a session) or it is past
-- its deadline, a CORRUPT error when the record's header is unreadable. HEXISTS, not a read of
-- the record, the hash's largest value, which most scripts do not need.
local function not_live_reply(key, known)
  if redis.call('HEXISTS', key, '@p') == 0 then
    return 0
  end
  local record = function() return redis.call('HGET', key, '@p') end
  local deadline, corrupt = unvouched_deadline(key, redis.call('PTTL', key), known, record)
  if corrupt then
    return corrupt
  end
  if deadline and server_ms() >= deadline then
    return 0
  end
  return nil
end
