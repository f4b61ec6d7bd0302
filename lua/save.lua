-- save: write only what changed in a session (a delta), optionally checking that nothing else
-- changed since the client loaded it, or fold the session into a new packed record when the
-- client asks and nothing changed meanwhile.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  '' for a plain save; for a checked save, 'all' (the client read the whole session:
--          nothing may have changed) or 'read' (it read only the attributes in its view, which
--          must still have the values it read)
-- ARGV[2]  idle timeout, ms
-- ARGV[3]  touch threshold, ms (see get_and_touch.lua)
-- ARGV[4]  the most attributes a session may hold
-- ARGV[5]  a new packed record of the whole session (see src/packed.rs), or '' for a delta
-- ARGV[6]  the id of the packed record the client loaded (in its header: a random number
--          drawn at each compaction, so it never repeats), or '' when the client knows the
--          record changed since
-- ARGV[7]  n, the number of attributes to set
-- ARGV[8]  m, the number of name, value pairs of the client's view (sent with a checked save
--          or a compaction). For a whole session, the loose fields it loaded or last saved,
--          their values without the stamps (an empty value for a tombstone); for ARGV[1] =
--          'read', each name it read with the value it read, wherever it was stored, or '\193'
--          (0xc1, never valid MessagePack) when it was not set
-- ARGV[9 .. 8+2n]           name, value pairs to set, each value stamped with its name
--                           (src/fields.rs)
-- ARGV[9+2n .. 8+2n+2m]     the view's pairs
-- ARGV[9+2n+2m ..]          names to remove
--
-- Reply    {1, id} saved the delta; {2, id} compacted (wrote ARGV[5], whose id is returned);
--          {0, 0} no live session (expired, destroyed or regenerated away: a save never
--          resurrects one); {-1, id} a checked save found the session changed; {-2, count}
--          the save would take the session over the attribute limit. Only replies 1 and 2
--          wrote. The id is the stored record's, or -1 when the save did not read the record.
-- Reads    the record's length (HSTRLEN; HEXISTS too when it is 0), the TTL, and the number of
--          fields when the save sets attributes. The record itself (about 800 bytes in the
--          benchmark) only where the save needs its content: its id for a checked save or a
--          compaction, its entries for a removed name, a 'read' view or an exact count, its
--          deadline when the TTL slides. Copying it into Lua was the largest part of a plain
--          save: 1.7 of 5.9 to 6.6 µs (docs/design.md).
-- Errors   'CORRUPT ...' when the packed record is shorter than its header, when an exact count
--          finds its entries malformed, or when ARGV[5] has no header or keeps the stored id
--          (nothing written). A save that does not read the record does not check it: the next
--          load does.
-- Writes   delta: one HSET of the changed attributes and of a tombstone (the name's stamp
--          alone) for each removed attribute the packed record may hold, which hides it; HDEL
--          of the other removed names (both in chunks of 1000 arguments, under Lua's unpack
--          limit). No version is written, so a delta appends only the attributes to the AOF.
--          Compaction, only when the record is still ARGV[6]'s and the loose fields are still
--          the client's view (so ARGV[5] is exactly the stored session plus this save's
--          changes): HDEL of every loose field, then HSET @p (with a new id). Either
--          way, only when the idle expiry is due (as in get-and-touch), @t in the same HSET
--          and PEXPIREAT of the new expiry.
-- Atomic   every check runs before the first write, and the script runs alone: a conflicting
--          or oversized save writes nothing, two saves that change different attributes both
--          survive, and a compaction can never drop a concurrent save (its loose field would
--          differ from the view, and the delta is written instead). The checks compare
--          content and a record id that never repeats, not a counter, so a write lost in a
--          failover or a restore cannot make another request's change look like the client's.

-- The value's MessagePack in `stored`, the loose field `name` as a save stamped it: '' for a
-- tombstone.
local function loose_value(name, stored)
  local n = #name
  local stamp_length = n + (n < 32 and 1 or n < 256 and 2 or n < 65536 and 3 or 5)
  return string.sub(stored, stamp_length + 1)
end

local FIRST = 9 -- ARGV index of the first name to set
local CHUNK = 1000 -- names per HSET, HDEL or HMGET, under Lua's unpack limit
local NONE = '\193' -- in a 'read' view: the name was not set

local key = KEYS[1]
-- The packed record's length: 0 when there is no record. Its content is read on first need.
local record_length = redis.call('HSTRLEN', key, '@p')
if record_length == 0 and redis.call('HEXISTS', key, '@p') == 0 then
  return {0, 0} -- no hash, or one that is not a session
end
if record_length < RECORD_HEADER then
  return redis.error_reply('CORRUPT packed record has no header')
end
local packed
local function record()
  packed = packed or redis.call('HGET', key, '@p')
  return packed
end
-- Every write caps the TTL at the deadline, so a key with a TTL is within its deadline: the
-- deadline and the clock are needed only for a key without one, or to slide the TTL.
local pttl = redis.call('PTTL', key)
local idle = tonumber(ARGV[2])
local sliding = pttl < 0 or idle - pttl >= tonumber(ARGV[3])
local now, deadline
if sliding then
  deadline = record_deadline(record())
  now = server_ms()
  if now >= deadline then
    return {0, 0}
  end
end
local n, m = tonumber(ARGV[7]), tonumber(ARGV[8])
local last_set = FIRST - 1 + 2 * n
local last_seen = last_set + 2 * m

-- The stored record's id, or -1 when this save has not read the record.
local function known_id()
  return packed and record_id(packed) or -1
end

local unchanged = false -- truthy when nothing changed; a whole view's: the loose field names
if ARGV[1] ~= '' or ARGV[5] ~= '' then
  -- Only a checked save or a compaction compares a view, so only they define its functions:
  -- a Lua closure is made each time its definition runs, and a plain delta needs neither.

  -- The names of the loose fields when they are exactly the client's view (ARGV[last_set + 1 ..
  -- last_seen]), for a compaction to delete; false otherwise.
  local function as_viewed()
    local want, count = {}, 0
    for i = last_set + 1, last_seen, 2 do
      want[ARGV[i]], count = ARGV[i + 1], count + 1
    end
    local fields, loose = redis.call('HGETALL', key), {}
    for i = 1, #fields, 2 do
      if string.byte(fields[i], 1) ~= 64 then -- not '@': a loose field
        if want[fields[i]] ~= loose_value(fields[i], fields[i + 1]) then
          return false
        end
        loose[#loose + 1] = fields[i]
      end
    end
    return #loose == count and loose
  end

  -- True when every attribute of a 'read' view still has the value the client read: a loose
  -- field wins, a tombstone is a removed attribute, else the record holds it or nothing does.
  local function read_unchanged()
    local names = {}
    for i = last_set + 1, last_seen, 2 do
      names[#names + 1] = ARGV[i]
    end
    local loose = {}
    for from = 1, #names, CHUNK do
      local part = redis.call('HMGET', key, unpack(names, from, math.min(from + CHUNK - 1, #names)))
      for j = 1, #part do
        loose[from + j - 1] = part[j]
      end
    end
    local in_record -- the record's attributes, parsed once if a name has no loose field
    for k, name in ipairs(names) do
      local value = loose[k] and loose_value(name, loose[k])
      if value == '' then
        value = NONE
      elseif not value then
        in_record = in_record or record_values(record()) or {}
        value = in_record[name] or NONE
      end
      if value ~= ARGV[last_set + 2 * k] then return false end
    end
    return true
  end

  if ARGV[1] == 'read' then
    unchanged = read_unchanged()
  elseif ARGV[1] == 'all' or ARGV[5] ~= '' then
    -- The client's record is the stored one, and so are its loose fields.
    unchanged = tonumber(ARGV[6]) == record_id(record()) and as_viewed()
  end
end
if ARGV[1] ~= '' and not unchanged then
  return {-1, known_id()}
end
local writes = {}

-- Compaction: the record replaces every loose field.
-- Only a view of the whole session (not 'read') can vouch that nothing else changed.
local compacting = ARGV[5] ~= '' and ARGV[1] ~= 'read' and unchanged
if compacting then
  local new_id = record_id(ARGV[5])
  if not new_id or new_id == record_id(record()) then
    return redis.error_reply('CORRUPT the new packed record has no header or keeps the stored id')
  end
  local loose = unchanged -- as_viewed's list of the loose fields, which the record replaces
  for from = 1, #loose, CHUNK do
    redis.call('HDEL', key, unpack(loose, from, math.min(from + CHUNK - 1, #loose)))
  end
  packed = ARGV[5]
  writes = {'@p', ARGV[5]}
else
  -- Upper bounds of the count: first one from the record's length (an entry takes at least
  -- MIN_ENTRY bytes), then the record's own count; each adds every other field (@f among
  -- them) and n. Only a save that could reach the limit reads the record and counts exactly.
  local max = tonumber(ARGV[4])
  local others = n > 0 and redis.call('HLEN', key) - 1 or nil -- nil: nothing added
  if others and math.floor((record_length - RECORD_HEADER) / MIN_ENTRY) + others + n > max
      and record_count(record()) + others + n > max then
    -- The attributes before and after this save, counted exactly from the packed record and
    -- the loose fields; nil when the record is malformed.
    local function exact_count()
      local live = record_values(record())
      if not live then return nil end
      local fields = redis.call('HGETALL', key)
      for i = 1, #fields, 2 do
        if string.byte(fields[i], 1) ~= 64 then -- not '@'
          live[fields[i]] = loose_value(fields[i], fields[i + 1]) ~= '' or nil
        end
      end
      local function size()
        local n = 0
        for _ in pairs(live) do n = n + 1 end
        return n
      end
      local before = size()
      for i = FIRST, last_set, 2 do live[ARGV[i]] = true end
      for i = last_seen + 1, #ARGV do live[ARGV[i]] = nil end
      return before, size()
    end

    local before, after = exact_count()
    if not before then
      return redis.error_reply('CORRUPT packed record is malformed')
    end
    -- Only a save that adds attributes can break the limit: one that shrinks or keeps a
    -- session over a (since lowered) limit goes on.
    if after > before and after > max then
      return {-2, after}
    end
  end
  for i = FIRST, last_set do
    writes[#writes + 1] = ARGV[i]
  end
  -- A removed name the record may hold (a plain substring test of its entries, not of its
  -- header's times: a false match only costs a tombstone) gets a tombstone; any other is
  -- deleted. The client applies the same test to the same record to keep its view exact.
  if #ARGV > last_seen then
    -- The stamp that opens a loose attribute's value: its name as a MessagePack string (see
    -- src/fields.rs). A load reads values without names (HVALS), so each value names itself. A
    -- tombstone, a removed attribute that hides the record's value, is the stamp alone.
    local function stamp(name)
      local len = #name
      if len < 32 then
        return string.char(160 + len) .. name
      elseif len < 256 then
        return '\217' .. string.char(len) .. name
      elseif len < 65536 then
        return '\218' .. big_endian(len, 2) .. name
      end
      return '\219' .. big_endian(len, 4) .. name
    end

    local deleted = {}
    for i = last_seen + 1, #ARGV do
      if string.find(record(), ARGV[i], RECORD_HEADER + 1, true) then
        writes[#writes + 1] = ARGV[i]
        writes[#writes + 1] = stamp(ARGV[i])
      else
        deleted[#deleted + 1] = ARGV[i]
      end
    end
    for from = 1, #deleted, CHUNK do
      redis.call('HDEL', key, unpack(deleted, from, math.min(from + CHUNK - 1, #deleted)))
    end
  end
end

local expires -- the new expiry, when the TTL slides: recorded in @t with the other writes
if sliding then
  local ttl = math.min(idle, deadline - now)
  if ttl > pttl then
    expires = now + ttl
    writes[#writes + 1] = '@t'
    writes[#writes + 1] = expiry_field(expires)
  end
end
for from = 1, #writes, CHUNK do
  redis.call('HSET', key, unpack(writes, from, math.min(from + CHUNK - 1, #writes)))
end
if expires then
  redis.call('PEXPIREAT', key, expires)
end
return {compacting and 2 or 1, known_id()}
