-- fields: the metadata values of a session's hash (@t, @i, @f), each told by its first bytes
-- (src/format/fields.rs is the Rust twin; the bytes are format.lua's). Needs record.lua.

-- Metadata values: META, a letter, then u64s big-endian.
local EXPIRY_TAG = string.char(META, EXPIRY)
local OWN_TIMEOUTS_TAG = string.char(META, OWN_TIMEOUTS)
local FLASH_TAG = string.char(META, FLASH)

-- Field @t records the key's expiry: EXPIRY_TAG, then ms on the server's clock as a u64
-- big-endian. Plain loads judge from it, not from PTTL, whether the idle expiry is due to slide
-- (src/store/server_clock.rs), so every script that sets the TTL writes it too.
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
-- short: the store's apply, as they do in src/format/fields.rs).
local function field_own_timeouts(value)
  if #value ~= 18 or string.sub(value, 1, 2) ~= OWN_TIMEOUTS_TAG then
    return nil
  end
  return read_big_endian(value, 3, 8), read_big_endian(value, 11, 8)
end
