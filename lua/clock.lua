-- clock: prepended to every script that reads the time (src/connection/scripts.rs), so the
-- conversion is written once. server_ms() is the server's TIME in whole ms: app servers' clocks
-- never matter.
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

