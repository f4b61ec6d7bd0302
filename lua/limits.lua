-- limits: the attribute and byte limits a save that sets attributes must keep, and the delta
-- saved within them (save.lua, save_checked.lua). Needs write.lua.

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

-- nil when a save that sets ARGV[first .. last] and removes ARGV[removed ..] keeps the session
-- within `max_count` attributes and `max_bytes` bytes; else its reply: {-2, count, {}} or
-- {-3, bytes, {}}, or a CORRUPT error. Each limit is first bounded from above without reading
-- the record; only a save that could break one counts exactly. The count: from the record's
-- length (an entry takes at least MIN_ENTRY bytes), then from its header's count, each plus
-- every other field and the names set. The bytes: what the hash takes in memory, which holds
-- every name and value stored, plus what this save sets. Only a save that grows the session
-- can break a limit: one that shrinks or keeps a session over a (since lowered) limit goes on.
local function check_limits(s, first, last, removed, max_count, max_bytes)
  if last < first then return nil end
  local n = (last - first + 1) / 2
  local others = redis.call('HLEN', s.key) - 1
  local count_over = math.floor((s.record_length - RECORD_HEADER) / MIN_ENTRY) + others + n
      > max_count and record_count(s.record()) + others + n > max_count
  local bytes = stored_bytes(s.key)
  for i = first, last do
    bytes = bytes + #ARGV[i]
  end
  if not count_over and bytes <= max_bytes then return nil end
  -- Defined here, not at the top: most saves never get this far, and Redis makes a closure of
  -- every function a script defines, on every call.
  -- The attributes and their bytes before and after a save that sets ARGV[first .. last] (name,
  -- stamped value pairs) and removes the names ARGV[removed ..], counted exactly from the record
  -- and the loose fields; nil when the record is malformed.
  local function exact_sizes(s, first, last, removed)
    local live = record_values(s.record())
    if not live then return nil end
    local fields = redis.call('HGETALL', s.key)
    for i = 1, #fields, 2 do
      if string.byte(fields[i], 1) ~= 64 then -- not '@': a loose field
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
    for i = first, last, 2 do live[ARGV[i]] = loose_value(ARGV[i], ARGV[i + 1]) end
    for i = removed, #ARGV do live[ARGV[i]] = nil end
    return count, total, size()
  end

  local count_before, bytes_before, count_after, bytes_after = exact_sizes(s, first, last, removed)
  if not count_before then
    return redis.error_reply('CORRUPT packed record is malformed')
  end
  if count_after > count_before and count_after > max_count then
    return {-2, count_after, {}}
  end
  if bytes_after > bytes_before and bytes_after > max_bytes then
    return {-3, bytes_after, {}}
  end
  return nil
end

-- Saves the delta that sets ARGV[first .. last] and removes ARGV[removed ..], when it keeps the
-- limits: the reply of save.lua and save_checked.lua, {1, id, tombstoned}, or the limit's.
local function save_delta(s, first, last, removed, max_count, max_bytes)
  local over = check_limits(s, first, last, removed, max_count, max_bytes)
  if over then
    return over
  end
  local writes, deletes, tombstoned = delta_writes(s, first, last, removed)
  finish(s, writes, deletes)
  return {1, known_id(s), tombstoned}
end
