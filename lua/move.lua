-- move: what regenerate.lua, bind.lua, rotate.lua and retire.lua share to move a session's
-- fields to another key, and what list.lua reads of a binding. Needs record.lua, and for
-- new_life expiry.lua.

local CHUNK = 1000 -- arguments per HSET, under Lua's unpack limit

-- True when the hash at `key` holds exactly the m fields of ARGV[from ..] with their values as
-- read: per field, ARGV holds its name, its value as the client read it (HGETALL), and its
-- value for the new key.
local function as_read(key, from, m)
  local read = {}
  for i = from, from + 3 * m - 1, 3 do
    read[ARGV[i]] = ARGV[i + 1]
  end
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if read[fields[i]] ~= fields[i + 1] then
      return false
    end
  end
  return #fields == 2 * m
end

-- HSET of `writes` (name, value, name, value, ...) on `key`, in chunks.
local function hset_all(key, writes)
  for from = 1, #writes, CHUNK do
    redis.call('HSET', key, unpack(writes, from, math.min(from + CHUNK - 1, #writes)))
  end
end

-- When the hash at `key` is exactly as read (as_read), writes on it each field's value for the
-- new key (ARGV from 3, m fields: sealed anew for it under encryption) and returns true;
-- otherwise writes nothing and returns false.
local function sealed_anew_in_place(key, m)
  if not as_read(key, 3, m) then
    return false
  end
  local writes = {}
  for i = 3, 2 + 3 * m, 3 do
    writes[#writes + 1], writes[#writes + 2] = ARGV[i], ARGV[i + 2]
  end
  hset_all(key, writes)
  return true
end

-- New timeouts from now on, from ARGV[t] and ARGV[t + 1] (idle and absolute, ms): the time, the
-- idle timeout, the new deadline and the new expiry (needs expiry.lua).
local function new_life(t)
  local now = server_ms()
  local idle, absolute = tonumber(ARGV[t]), tonumber(ARGV[t + 1])
  return now, idle, now + absolute, now + next_ttl(-1, true, idle, absolute)
end

-- `record` with its deadline set to `deadline`: the header keeps its creation time, count and id.
local function with_deadline(record, deadline)
  return string.sub(record, 1, DEADLINE_AT - 1) .. big_endian(deadline, 8)
    .. string.sub(record, DEADLINE_AT + 8)
end

-- `value` (an @u or @r field) with the time at BOUND_TIME_AT set to `at`.
local function with_bound_time(value, at)
  return string.sub(value, 1, BOUND_TIME_AT - 1) .. big_endian(at, 8)
    .. string.sub(value, BOUND_TIME_AT + 8)
end

-- The device id an @u or @r value holds.
local function device_of(value)
  return string.sub(value, DEVICE_AT, DEVICE_AT + DEVICE_LEN - 1)
end

-- Extends the expiry of a user's index to `at` when it would end sooner: an index lives as long
-- as its longest-lived session can (sessions never outlive their deadline), so revoking all
-- never misses a live session.
local function index_lives_to(index, at)
  local expires = redis.pcall('PEXPIRETIME', index)
  if type(expires) ~= 'number' then
    local pttl = redis.call('PTTL', index)
    expires = pttl >= 0 and server_ms() + pttl or pttl
  end
  if expires < at then -- an index without an expiry (-1) is given one too
    redis.call('PEXPIREAT', index, at)
  end
end
