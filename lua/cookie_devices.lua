-- cookie_devices: a user's stateless sessions as the devices list shows them. A login adds its
-- session; a logout or a revoke removes entries. Requests in between write nothing here.
--
-- KEYS[1]  the user's list: a hash of device id -> '<created ms> <ends ms> <label>' (the label
--          sealed under encryption)
-- ARGV[1]  'add': ARGV[2] the device id, ARGV[3] its entry without its start ('<ends ms>
--          <label>'), ARGV[4] the ms its session ends, ARGV[5] its start ms ('': now, on the
--          server's clock, as revocation.lua's "not before")
--          'remove': ARGV[2 ..] the device ids to remove
--          'keep': every entry but ARGV[2]'s whose session began before ARGV[4] (a "not
--          before") is removed; ARGV[3], when not '', is ARGV[2]'s new entry
--
-- Reply    'add': the start written; else how many entries were removed
-- Writes   HSET or HDEL; on 'add', HDEL of the entries whose session ended and PEXPIREAT of the
--          list to the latest end it holds.
-- Atomic   the list and its expiry change together, so it never expires before an entry ends.
local removed = 0
if ARGV[1] == 'add' then
  local now = server_ms()
  local latest = tonumber(ARGV[4])
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local ends = tonumber(string.match(all[i + 1], '^%d+ (%d+) '))
    if ends == nil or ends <= now then
      removed = removed + redis.call('HDEL', KEYS[1], all[i])
    elseif ends > latest then
      latest = ends
    end
  end
  local start = now
  if ARGV[5] ~= '' then
    start = tonumber(ARGV[5])
  end
  redis.call('HSET', KEYS[1], ARGV[2], string.format('%d', start) .. ' ' .. ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], latest)
  return start
elseif ARGV[1] == 'remove' then
  for i = 2, #ARGV do
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
else
  local not_before = tonumber(ARGV[4])
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local start = tonumber(string.match(all[i + 1], '^(%d+) '))
    if all[i] ~= ARGV[2] and (start == nil or start < not_before) then
      removed = removed + redis.call('HDEL', KEYS[1], all[i])
    end
  end
  if ARGV[3] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  end
end
return removed
