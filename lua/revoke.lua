-- revoke: end some or all of a user's sessions (log out one device, everywhere, or everywhere
-- else), removing their index entries.
--
-- KEYS[1]  the user's index: a hash of device id -> session key
-- KEYS[2 ..]  the sessions to end, as the client read them from the index (HGETALL or HGET)
-- ARGV[1]  'all': the sessions named must be every one the index holds but ARGV[3]'s; 'some':
--          only those named
-- ARGV[2]  ms on the server's clock before which nothing is revoked ('0': none): a retired
--          token's grace window, which a request racing the window's end may still be in
-- ARGV[3]  the device id to keep ('' none): the current session, for "everywhere else"
-- ARGV[4 ..]  the device id of each key of KEYS[2 ..], in the same order
--
-- Reply    the number of sessions ended; -2 when the index is no longer as read (a login, a
--          rotation or a revoke came in between: the caller reads it again); -3 before ARGV[2].
--          Nothing is written but on a count.
-- Writes   UNLINK of each session named, HDEL of its entry.
-- Atomic   with 'all', the check that the index holds nothing else and the deletions run as one
--          script: a login that bound a session before it is revoked with the others, one that
--          binds after it survives, and none is left half-revoked.
if tonumber(ARGV[2]) > 0 and server_ms() < tonumber(ARGV[2]) then
  return -3
end
if not index_as_read(4, ARGV[1] == 'all', ARGV[3]) then
  return -2
end
local ended = 0
for i = 2, #KEYS do
  ended = ended + redis.call('UNLINK', KEYS[i])
  redis.call('HDEL', KEYS[1], ARGV[i + 2])
end
return ended
