-- record: the packed record's header (field @p; src/format/packed.rs is its Rust twin), read and
-- written with string.byte. Prepended to every script but destroy (src/connection/scripts.rs),
-- after format.lua, which holds the offsets named here, and clock.lua; entries.lua reads the
-- entries.
-- The record begins with a header: created and deadline, ms since the epoch as u64 big-endian,
-- the attribute count as u16, and the record's id as u32 (0 for a new session's, then drawn at
-- random by each compaction, so that it never repeats). Then, per attribute: the name's length
-- as u16, the name, the value's length as u32, the value.

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

-- The big-endian number at bytes from .. from + width - 1 of `s`.
local function read_big_endian(s, from, width)
  local n = 0
  for i = from, from + width - 1 do
    n = n * 256 + string.byte(s, i)
  end
  return n
end

-- The header of a new session's record: created at `created`, dying at `deadline`, holding no
-- attributes, id 0.
local function record_header(created, deadline)
  return big_endian(created, 8) .. big_endian(deadline, 8) .. big_endian(0, 2) .. big_endian(0, 4)
end

-- The number at bytes from .. from + width - 1 of a record's header; nil when the record is
-- missing or shorter than a header.
local function record_number(record, from, width)
  if not record or #record < RECORD_HEADER then
    return nil
  end
  return read_big_endian(record, from, width)
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
