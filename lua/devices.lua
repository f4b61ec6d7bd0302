-- devices: the check that opens list.lua and revoke.lua.

-- True when every device id of ARGV[from ..] (one per key of KEYS[2 ..]) still maps, in the
-- index KEYS[1], to its key; with `whole`, also when the index holds no other entry but
-- `keep`'s. The caller read the index (HGETALL) to learn the keys it names here: a login, a
-- rotation or a revoke since then makes it read again.
local function index_as_read(from, whole, keep)
  local given = {}
  for i = 2, #KEYS do
    local device = ARGV[from + i - 2]
    if redis.call('HGET', KEYS[1], device) ~= KEYS[i] then
      return false
    end
    given[device] = true
  end
  if whole then
    for _, device in ipairs(redis.call('HKEYS', KEYS[1])) do
      if not given[device] and device ~= keep then
        return false
      end
    end
  end
  return true
end
