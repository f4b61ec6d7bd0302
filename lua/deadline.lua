-- deadline: whether a session is still within its absolute deadline, for the scripts that write
-- to a session the client loaded (saves, flash push, regenerate; live.lua). Needs record.lua.

-- The absolute deadline of the session at `key`, whose TTL is `pttl`, when the TTL cannot vouch
-- for it; nil when it can. `known` is the deadline the client read with the session. A key's
-- deadline never changes (new timeouts go with a new key, regenerate.lua), and every script
-- caps the TTL at it, so a key that expires by `known` is within its deadline, and the record,
-- the hash's largest value, need not be read. A TTL set otherwise (an EXPIRE or a PERSIST by
-- hand, a RESTORE or a MIGRATE with a TTL) may run past it: then the deadline is read from
-- `record()`. The second result is a CORRUPT error reply when the record has no readable
-- header.
local function unvouched_deadline(key, pttl, known, record)
  if pttl >= 0 then
    -- When the key expires: PEXPIRETIME (Redis 7) where there is one, as it is cheaper than
    -- TIME, else the time plus the TTL.
    local expires = redis.pcall('PEXPIRETIME', key)
    if type(expires) ~= 'number' then
      expires = server_ms() + pttl
    end
    if expires <= known then
      return nil
    end
  end
  local deadline = record_deadline(record())
  if not deadline then
    return nil, redis.error_reply('CORRUPT packed record has no header')
  end
  return deadline
end
