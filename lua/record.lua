-- record: prepended, after clock.lua, to every script that reads the clock (src/scripts.rs),
-- which puts the format's constants (src/format.rs) in front of both.
-- The packed record (field @p, src/packed.rs) begins with a header: created and deadline, ms
-- since the epoch as u64 big-endian, the attribute count as u16, and the record's id as u32 (0
-- for a new session's, then drawn at random by each compaction, so that it never repeats).
-- They live there rather than in fields of their own so that a load reads fewer fields.
-- The fewest bytes an entry takes: the lengths of its name and value.
local MIN_ENTRY = NAME_LEN_BYTES + VALUE_LEN_BYTES

-- n as `width` big-endian bytes (n is a whole number below 2^53, as every time here is).
local function big_endian(n, width)
  local bytes = {}
  for i = width, 1, -1 do
    bytes[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(bytes))
end

-- The header of a new session's record: created at `created`, dying at `deadline`, holding no
-- attributes, id 0.
local function record_header(created, deadline)
  return big_endian(created, 8) .. big_endian(deadline, 8) .. big_endian(0, 2) .. big_endian(0, 4)
end

-- The big-endian number at bytes from .. from + width - 1 of `s`.
local function read_big_endian(s, from, width)
  local n = 0
  for i = from, from + width - 1 do
    n = n * 256 + string.byte(s, i)
  end
  return n
end

-- The number at bytes from .. from + width - 1 of a record's header; nil when the record is
-- missing or shorter than a header.
local function record_number(record, from, width)
  if not record or #record < RECORD_HEADER then
    return nil
  end
  return read_big_endian(record, from, width)
end

-- Metadata values: META, a letter, then u64s big-endian (src/format.rs).
local EXPIRY_TAG = string.char(META, EXPIRY)
local OWN_TIMEOUTS_TAG = string.char(META, OWN_TIMEOUTS)

-- Field @t records the key's expiry: EXPIRY_TAG, then ms on the server's clock as a u64
-- big-endian (src/fields.rs). Plain loads judge from it, not from PTTL, whether the idle expiry
-- is due to slide (src/server_clock.rs), so every script that sets the TTL writes it too.
local function expiry_field(at)
  return EXPIRY_TAG .. big_endian(at, 8)
end

-- The expiry an @t value records; nil when `value` is not one (or is cut short).
local function field_expiry(value)
  if #value ~= 10 or string.sub(value, 1, 2) ~= EXPIRY_TAG then
    return nil
  end
  return read_big_endian(value, 3, 8)
end

-- Field @i holds a session's own idle timeout and the touch threshold that goes with it, in
-- place of the store's (src/timeouts.rs works the threshold out): OWN_TIMEOUTS_TAG, then the two
-- as u64s big-endian, ms. Only sessions given timeouts of their own have it.
local function own_timeouts_field(idle, touch_after)
  return OWN_TIMEOUTS_TAG .. big_endian(idle, 8) .. big_endian(touch_after, 8)
end

-- The idle timeout and threshold an @i value holds; nil when `value` is not one (or is cut
-- short: the store's apply, as they do in src/fields.rs).
local function field_own_timeouts(value)
  if #value ~= 18 or string.sub(value, 1, 2) ~= OWN_TIMEOUTS_TAG then
    return nil
  end
  return read_big_endian(value, 3, 8), read_big_endian(value, 11, 8)
end

local function record_deadline(record)
  return record_number(record, DEADLINE_AT, 8)
end

local function record_count(record)
  return record_number(record, COUNT_AT, 2)
end

local function record_id(record)
  return record_number(record, ID_AT, 4)
end

-- The attributes of `record`, a table of name -> value; nil when its entries are malformed or
-- not as many as its header says (src/packed.rs has the format).
local function record_values(record)
  local count = record_count(record)
  if not count then return nil end
  local values, at, seen = {}, RECORD_HEADER + 1, 0
  while at <= #record do
    local a, b = string.byte(record, at, at + 1)
    if not b then return nil end
    local name_end = at + 1 + a * 256 + b
    local c, d, e, f = string.byte(record, name_end + 1, name_end + 4)
    if not f then return nil end
    local value_end = name_end + 4 + ((c * 256 + d) * 256 + e) * 256 + f
    if value_end > #record then return nil end
    values[string.sub(record, at + 2, name_end)] = string.sub(record, name_end + 5, value_end)
    at, seen = value_end + 1, seen + 1
  end
  if seen ~= count then return nil end
  return values
end

-- An upper bound of the bytes of every name and value the hash at `key` holds: what it takes in
-- memory (MEMORY USAGE, every field counted), or where that command is refused (renamed away,
-- denied by an ACL), the length of each value, which holds at least its name and value (a loose
-- value opens with its name; the record's entries hold both).
local function stored_bytes(key)
  local bytes = redis.pcall('MEMORY', 'USAGE', key, 'SAMPLES', '0')
  if type(bytes) == 'number' then
    return bytes
  end
  bytes = 0
  for _, name in ipairs(redis.call('HKEYS', key)) do
    bytes = bytes + redis.call('HSTRLEN', key, name)
  end
  return bytes
end

-- The expiry rule, in one place for every script (its Rust twin: src/expiry_rule.rs; the cases
-- both are tested against: tests/data/expiry_rule.csv).
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
-- caps the TTL at it, so a key that expires
-- by `known` is within its deadline, and the record, the hash's largest value, need not be
-- read. A TTL set otherwise (an EXPIRE or a PERSIST by hand, a RESTORE or a MIGRATE with a
-- TTL) may run past it: then the deadline is read from `record()`. The second result is a
-- CORRUPT error reply when the record has no readable header.
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

-- nil while the session at `key`, whose deadline the client read as `known`, is within its
-- absolute deadline, whatever its TTL says;
-- otherwise the reply a script gives instead: 0 past the deadline, a CORRUPT error when the
-- record's header is unreadable.
local function past_deadline_reply(key, known)
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
