-- entries: the attributes themselves, for the save scripts: the packed record's entries, and the
-- stamp that opens each loose field's value (src/format/packed.rs and src/format/fields.rs are
-- the Rust twins). Needs record.lua.

-- The attributes of `record`, a table of name -> value; nil when its entries are malformed or
-- not as many as its header says.
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

-- True when `name` appears anywhere in the record's entries, names or values (not in its
-- header's times): a plain substring test, cheaper than parsing the entries. A save gives a
-- removed name a tombstone only where this holds; a false match only costs a tombstone.
local function record_may_hold(record, name)
  return string.find(record, name, RECORD_HEADER + 1, true) ~= nil
end

-- The stamp that opens a loose attribute's value: its name as a MessagePack string. A load
-- reads values without names (HVALS), so each value names itself. A tombstone, a removed
-- attribute that hides the record's value, is the stamp alone.
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

-- The value's MessagePack in `stored`, the loose field `name` as a save stamped it: '' for a
-- tombstone.
local function loose_value(name, stored)
  local n = #name
  local marker = n <= FIXSTR_MAX and 1 or n < 256 and 2 or n < 65536 and 3 or 5
  return string.sub(stored, n + marker + 1)
end
