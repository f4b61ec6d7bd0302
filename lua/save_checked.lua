-- save checked: write a delta (as save.lua does) only if the session still holds what the
-- client read; otherwise write nothing and say so.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  'all' (the client read the whole session: nothing may have changed) or 'read' (it
--          read only the attributes in its view, which must still have the values it read)
-- ARGV[2 .. 6]  as save.lua's ARGV[1 .. 5]: idle timeout, touch threshold, the deadline the
--          client read, attribute limit, byte limit
-- ARGV[7]  for 'all', the id of the packed record the client loaded (in its header: a random
--          number drawn at each compaction, so it never repeats), or '' when the client knows
--          the record changed since
-- ARGV[8]  n, the number of attributes to set
-- ARGV[9]  m, the number of name, value pairs in the view. For 'all', the loose fields the
--          client loaded or last saved, their values without the stamps ('' for a tombstone);
--          for 'read', each name it read with the value it read, wherever it was stored, or
--          META alone (never valid MessagePack) when it was not set
-- ARGV[10 .. 9+2n]           name, value pairs to set, stamped (entries.lua)
-- ARGV[10+2n .. 9+2n+2m]     the view
-- ARGV[10+2n+2m ..]          names to remove
--
-- Reply    as save.lua's, and {-1, id, {}} when the session changed since the client read it
--          (nothing written).
-- Reads    what save.lua reads, and the loose fields (HGETALL for 'all', HMGET of the view's
--          names for 'read'); the record for 'all', or for a 'read' name no loose field holds.
-- Errors   as save.lua's.
-- Writes   as save.lua's, when the view holds.
-- Atomic   the comparison and the writes run as one script: no other save lands between them.
--          It compares content and a record id that never repeats, not a counter, so a write
--          lost in a failover or a restore cannot make another request's change look like the
--          client's; a change that another request made and undid goes unseen.
local s, stop = open_session(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
if not s then
  return stop
end
local first, last = 10, 9 + 2 * tonumber(ARGV[8])
local view_last = last + 2 * tonumber(ARGV[9])
local unchanged
if ARGV[1] == 'read' then
  unchanged = read_unchanged(s, last + 1, view_last)
else
  unchanged = tonumber(ARGV[7]) == record_id(s.record()) and as_viewed(s, last + 1, view_last)
end
if not unchanged then
  return {-1, known_id(s), {}}
end
return save_delta(s, first, last, view_last + 1, tonumber(ARGV[5]), tonumber(ARGV[6]))
