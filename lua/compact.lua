-- compact: fold a session into a new packed record, replacing every loose field, only if the
-- hash still holds the record and the loose fields the client loaded. The client compacts when
-- a save would leave too many loose fields, or must remove an attribute the record holds.
--
-- KEYS[1]  the session's hash
-- ARGV[1]  idle timeout, ms
-- ARGV[2]  touch threshold, ms
-- ARGV[3]  the session's absolute deadline as the client read it (deadline.lua's
--          unvouched_deadline)
-- ARGV[4]  the new packed record: the whole session with the client's changes
--          (src/format/packed.rs)
-- ARGV[5]  the id of the packed record the client loaded
-- ARGV[6 ..]  the view: the loose fields the client loaded or last saved, name, value pairs,
--          the values without their stamps ('' for a tombstone)
--
-- Reply    {2, id, {}} compacted (`id`: the new record's); {-1, id, {}} the session changed
--          since the client read it, so the new record would drop another request's change
--          (nothing written: a plain save sends a delta instead, a checked one reports a
--          conflict); {0, 0, {}} no live session.
-- Reads    the record's length, the TTL and the key's expiry as save.lua does, the record (for
--          its id) and every loose field (HGETALL).
-- Errors   'CORRUPT ...' when the record is shorter than its header, or ARGV[4] has no header
--          or keeps the stored id (nothing written).
-- Writes   HSET @p (with @t when the expiry moves, as in save.lua), then HDEL of every loose
--          field, and PEXPIREAT of a new expiry.
-- Atomic   the comparison and the writes run as one script, so a compaction can never drop a
--          concurrent save: that save's loose field would differ from the view. The record's
--          id never repeats, so a compaction lost in a failover cannot pass for the client's.
local s, stop = open_session(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if not s then
  return stop
end
local loose = tonumber(ARGV[5]) == record_id(s.record()) and as_viewed(s, 6, #ARGV)
if not loose then
  return {-1, known_id(s), {}}
end
local new_id = record_id(ARGV[4])
if not new_id or new_id == record_id(s.record()) then
  return redis.error_reply('CORRUPT the new packed record has no header or keeps the stored id')
end
finish(s, {'@p', ARGV[4]}, loose)
return {2, new_id, {}}
