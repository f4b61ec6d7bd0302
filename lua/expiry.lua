-- expiry: the expiry rule and the absolute deadline, in one place for every script (the rule's
-- Rust twin: src/expiry_rule.rs; the cases both are tested against: tests/data/expiry_rule.csv).
-- Prepended after fields.lua.

-- Whether the idle expiry of a session whose TTL is `pttl` (-1: none) is due to slide: once at
-- least `threshold` ms of `idle` are used up, so that most reads write nothing.
local function touch_due(pttl, idle, threshold)
  return pttl < 0 or idle - pttl >= threshold
end

-- The TTL a session at `pttl` gets now, `limit` ms before its absolute deadline. A touch that
-- is `due` slides it to the idle timeout, never shortening it; whatever set it, it never runs
-- past the deadline.
local function next_ttl(pttl, due, idle, limit)
  local ttl = pttl
  if due then
    ttl = math.max(pttl, math.min(idle, limit))
  end
  return math.min(ttl, limit)
end

-- When the key, whose TTL is `pttl`, expires: ms on the server's clock. PEXPIRETIME (Redis 7)
-- where there is one, as it is cheaper than TIME, else the time plus the TTL.
local function key_expiry(key, pttl)
  local at = redis.pcall('PEXPIRETIME', key)
  if type(at) == 'number' then
    return at
  end
  return server_ms() + pttl
end

-- The absolute deadline of the session at `key`, whose TTL is `pttl`, when the TTL cannot vouch
-- for it; nil when it can. `known` is the deadline the client read with the session. A key's
-- deadline never changes (new timeouts go with a new key, regenerate.lua), and every script
-- caps the TTL at it, so a key that expires by `known` is within its deadline, and the record,
-- the hash's largest value, need not be read. A TTL set otherwise (an EXPIRE or a PERSIST by
-- hand, a RESTORE or a MIGRATE with a TTL) may run past it: then the deadline is read from
-- `record()`. The second result is a CORRUPT error reply when the record has no readable
-- header.
local function unvouched_deadline(key, pttl, known, record)
  if pttl >= 0 and key_expiry(key, pttl) <= known then
    return nil
  end
  local deadline = record_deadline(record())
  if not deadline then
    return nil, redis.error_reply('CORRUPT packed record has no header')
  end
  return deadline
end

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
