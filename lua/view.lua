-- view: comparing what the client read with what the hash holds now, for a checked save
-- (save_checked.lua) or a compaction (compact.lua). Needs write.lua.

-- In a 'read' view: the name was not set. META alone is never valid MessagePack, so no stored
-- value can equal it.
local NOT_SET = string.char(META)

-- The names of the loose fields of `s` when they are exactly the view ARGV[from .. to] (name,
-- value pairs: the values without their stamps, '' for a tombstone); false otherwise.
local function as_viewed(s, from, to)
  local want, count = {}, 0
  for i = from, to, 2 do
    want[ARGV[i]], count = ARGV[i + 1], count + 1
  end
  local fields, loose = redis.call('HGETALL', s.key), {}
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

-- True when every attribute of the 'read' view ARGV[from .. to] (each name read with the value
-- read, or NOT_SET) still has that value: a loose field wins, a tombstone is a removed
-- attribute, else the record holds it or nothing does.
local function read_unchanged(s, from, to)
  local names = {}
  for i = from, to, 2 do
    names[#names + 1] = ARGV[i]
  end
  local loose = {}
  chunked('HMGET', s.key, names, function(part, first)
    for j = 1, #part do
      loose[first + j - 1] = part[j]
    end
  end)
  local in_record -- the record's attributes, parsed once if a name has no loose field
  for k, name in ipairs(names) do
    local value = loose[k] and loose_value(name, loose[k])
    if value == '' then
      value = NOT_SET
    elseif not value then
      in_record = in_record or record_values(s.record()) or {}
      value = in_record[name] or NOT_SET
    end
    if value ~= ARGV[from + 2 * k - 1] then return false end
  end
  return true
end
