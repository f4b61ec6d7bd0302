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
-- ARGV[5]  the most bytes of attribute names and values a session may hold, all together
-- ARGV[6]  the session's absolute deadline as the client read it (record.lua's
--          unvouched_deadline)
-- ARGV[7]  a new packed record of the whole session (see src/packed.rs), or '' for a delta
-- ARGV[8]  the id of the packed record the client loaded (in its header: a random number
--          drawn at each compaction, so it never repeats), or '' when the client knows the
--          record changed since
-- ARGV[9]  n, the number of attributes to set
-- ARGV[10]  m, the number of name, value pairs of the client's view (sent with a checked save
--          or a compaction). For a whole session, the loose fields it loaded or last saved,
--          their values without the stamps (an empty value for a tombstone); for ARGV[1] =
--          'read', each name it read with the value it read, wherever it was stored, or META
--          alone (never valid MessagePack) when it was not set
-- ARGV[11 .. 10+2n]         name, value pairs to set, each value stamped with its name
--                           (src/fields.rs)
-- ARGV[11+2n .. 10+2n+2m]   the view's pairs
-- ARGV[11+2n+2m ..]         names to remove
--
-- Reply    {1, id} saved the delta; {2, id} compacted (wrote ARGV[7], whose id is returned);
--          {0, 0} no live session (expired, destroyed, regenerated away, or past its absolute
--          deadline whatever its TTL says: a save never resurrects one); {-1, id} a checked
--          save found the session changed; {-2, count} the save would take the session over
--          the attribute limit, {-3, bytes} over the byte limit. Only replies 1 and 2 wrote.
--          The id is the stored record's, or -1 when the save did not read the record.
-- Reads    the record's length (HSTRLEN; HEXISTS too when it is 0), the TTL and the key's
--          expiry (PEXPIRETIME), and when the save sets attributes the number of fields and
--          the hash's memory; the server's time only when it needs the deadline. The record
--          itself, the hash's largest value, only where the save needs its content: its id
--          for a checked save or a compaction, its entries for a removed name, a 'read' view
--          or an exact count, its deadline when the TTL slides or the key's expiry runs past
--          ARGV[6] (record.lua's unvouched_deadline).
-- Errors   'CORRUPT ...' when the packed record is shorter than its header, when an exact count
--          finds its entries malformed, or when ARGV[7] has no header or keeps the stored id
--          (nothing written). A save that does not read the record does not check it: the next
--          load does.
-- Writes   delta: one HSET of the changed attributes and of a tombstone (the name's stamp
--          alone) for each removed attribute the packed record may hold, which hides it; then
--          HDEL of the other removed names (both in chunks of 1000 arguments, under Lua's
--          unpack limit). No version is written, so a delta appends only the attributes to the
--          AOF. Compaction, only when the record is still ARGV[8]'s and the loose fields are
--          still the client's view (so ARGV[7] is exactly the stored session plus this save's
--          changes): HSET @p (with a new id), then HDEL of every loose field. Either way, when
--          the idle expiry is due (as in get-and-touch) or the TTL runs past the deadline, @t
--          in the same HSET (in a pcall when it is the only field set) and PEXPIREAT of the new
--          expiry, capped at the deadline (record.lua's next_ttl).
-- Memory   the HSET is always the first write. Redis refuses a script for want of memory only
--          at its first write that can grow memory, and lets every later write through: were
--          an HDEL first, a save out of memory would grow the session past `maxmemory`. So a
--          save that sets anything is refused whole (an OOM error, nothing written), and one
--          that only deletes names goes through.
-- Atomic   every check runs before the first write, and the script runs alone: a conflicting
--          or oversized save writes nothing, two saves that change different attributes both
--          survive, and a compaction can never drop a concurrent save (its loose field would
--          differ from the view, and the delta is written instead). The limits are checked
--          against what is stored, so concurrent saves cannot pass them together. The checks
--          compare content and a record id that never repeats, not a counter, so a write lost
--          in a failover or a restore cannot make another request's change look like the
--          client's.

-- The value's MessagePack in `stored`, the loose field `name` as a save stamped it: '' for a
-- tombstone.
local function loose_value(name, stored)
  local n = #name
  local marker = n <= FIXSTR_MAX and 1 or n < 256 and 2 or n < 65536 and 3 or 5
  return string.sub(stored, n + marker + 1)
end

local FIRST = 11 -- ARGV index of the first name to set
local CHUNK = 1000 -- names per HSET, HDEL or HMGET, under Lua's unpack limit
local NONE = string.char(META) -- in a 'read' view: the name was not set

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
-- The deadline, read from the record when the TTL slides or is not one a script set (and
-- capped at the deadline): the absolute deadline holds whatever the TTL says.
local pttl = redis.call('PTTL', key)
local idle = tonumber(ARGV[2])
local sliding = touch_due(pttl, idle, tonumber(ARGV[3]))
local now, deadline, corrupt
if sliding then
  deadline = record_deadline(record())
else
  deadline, corrupt = unvouched_deadline(key, pttl, tonumber(ARGV[6]), record)
  if corrupt then
    return corrupt
  end
end
if deadline then
  now = server_ms()
  if now >= deadline then
    return {0, 0}
  end
end
local n, m = tonumber(ARGV[9]), tonumber(ARGV[10])
local last_set = FIRST - 1 + 2 * n
local last_seen = last_set + 2 * m

-- The stored record's id, or -1 when this save has not read the record.
local function known_id()
  return packed and record_id(packed) or -1
end

local unchanged = false -- truthy when nothing changed; a whole view's: the loose field names
if ARGV[1] ~= '' or ARGV[7] ~= '' then
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
  elseif ARGV[1] == 'all' or ARGV[7] ~= '' then
    -- The client's record is the stored one, and so are its loose fields.
    unchanged = tonumber(ARGV[8]) == record_id(record()) and as_viewed()
  end
end
if ARGV[1] ~= '' and not unchanged then
  return {-1, known_id()}
end
local writes, deletes = {}, {} -- fields to set (one HSET), then fields to delete (HDEL)

-- Compaction: the record replaces every loose field.
-- Only a view of the whole session (not 'read') can vouch that nothing else changed.
local compacting = ARGV[7] ~= '' and ARGV[1] ~= 'read' and unchanged
if compacting then
  local new_id = record_id(ARGV[7])
  if not new_id or new_id == record_id(record()) then
    return redis.error_reply('CORRUPT the new packed record has no header or keeps the stored id')
  end
  packed = ARGV[7]
  writes = {'@p', ARGV[7]}
  deletes = unchanged -- as_viewed's list of the loose fields, which the record replaces
else
  -- Only a save that sets attributes can grow the session past a limit. Each limit is first
  -- bounded from above without reading the record; only a save that could break one counts
  -- exactly. The count: from the record's length (an entry takes at least MIN_ENTRY bytes),
  -- then from its header's count, each plus every other field (@t and @f among them) and n.
  -- The bytes: what the hash takes in memory, which holds every name and value stored (a loose
  -- value holds its name too), plus what this save sets.
  if n > 0 then
    local others = redis.call('HLEN', key) - 1
    local max_count, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
    local count_over = math.floor((record_length - RECORD_HEADER) / MIN_ENTRY) + others + n
        > max_count and record_count(record()) + others + n > max_count
    local bytes = stored_bytes(key)
    for i = FIRST, last_set do
      bytes = bytes + #ARGV[i]
    end
    if count_over or bytes > max_bytes then
      -- The attributes and their bytes before and after this save, counted exactly from the
      -- packed record and the loose fields; nil when the record is malformed.
      local function exact_sizes()
        local live = record_values(record())
        if not live then return nil end
        local fields = redis.call('HGETALL', key)
        for i = 1, #fields, 2 do
          if string.byte(fields[i], 1) ~= 64 then -- not '@'
            local value = loose_value(fields[i], fields[i + 1])
            live[fields[i]] = value ~= '' and value or nil
          end
        end
        local function size()
          local count, total = 0, 0
          for name, value in pairs(live) do
            count, total = count + 1, total + #name + #value
          end
          return count, total
        end
        local count, total = size()
        for i = FIRST, last_set, 2 do live[ARGV[i]] = loose_value(ARGV[i], ARGV[i + 1]) end
        for i = last_seen + 1, #ARGV do live[ARGV[i]] = nil end
        return count, total, size()
      end

      local count_before, bytes_before, count_after, bytes_after = exact_sizes()
      if not count_before then
        return redis.error_reply('CORRUPT packed record is malformed')
      end
      -- Only a save that grows the session can break a limit: one that shrinks or keeps a
      -- session over a (since lowered) limit goes on.
      if count_after > count_before and count_after > max_count then
        return {-2, count_after}
      end
      if bytes_after > bytes_before and bytes_after > max_bytes then
        return {-3, bytes_after}
      end
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
      if len <= FIXSTR_MAX then
        return string.char(FIXSTR + len) .. name
      elseif len < 256 then
        return string.char(STR8, len) .. name
      elseif len < 65536 then
        return string.char(STR16) .. big_endian(len, 2) .. name
      end
      return string.char(STR32) .. big_endian(len, 4) .. name
    end

    for i = last_seen + 1, #ARGV do
      if string.find(record(), ARGV[i], RECORD_HEADER + 1, true) then
        writes[#writes + 1] = ARGV[i]
        writes[#writes + 1] = stamp(ARGV[i])
      else
        deletes[#deletes + 1] = ARGV[i]
      end
    end
  end
end

-- The new expiry, recorded in @t with the other writes: slid when due, and capped at the
-- deadline when the TTL runs past it.
local expires
if deadline then
  local ttl = next_ttl(pttl, sliding, idle, deadline - now)
  if ttl ~= pttl then
    expires = now + ttl
    writes[#writes + 1] = '@t'
    writes[#writes + 1] = expiry_field(expires)
  end
end
if expires and #writes == 2 then
  -- Only @t, which replaces a value of the same size: a save that deletes and slides goes
  -- through out of memory too (the HSET refused, @t waits for a later touch to repair it).
  redis.pcall('HSET', key, '@t', writes[2])
else
  for from = 1, #writes, CHUNK do
    redis.call('HSET', key, unpack(writes, from, math.min(from + CHUNK - 1, #writes)))
  end
end
for from = 1, #deletes, CHUNK do
  redis.call('HDEL', key, unpack(deletes, from, math.min(from + CHUNK - 1, #deletes)))
end
if expires then
  redis.call('PEXPIREAT', key, expires)
end
return {compacting and 2 or 1, known_id()}
