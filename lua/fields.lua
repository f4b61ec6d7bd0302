-- fields: the values of a session's hash other than the record, each told by its first bytes
-- (src/fields.rs is the Rust twin; the bytes are format.lua's). Prepended after record.lua.

-- Metadata values: META, a letter, then u64s big-endian.
local EXPIRY_TAG = string.char(META, EXPIRY)
local OWN_TIMEOUTS_TAG = string.char(META, OWN_TIMEOUTS)
local FLASH_TAG = string.char(META, FLASH)

-- Field @t records the key's expiry: EXPIRY_TAG, then ms on the server's clock as a u64
-- big-endian. Plain loads judge from it, not from PTTL, whether the idle expiry is due to slide
-- (src/server_clock.rs), so every script that sets the TTL writes it too.
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
