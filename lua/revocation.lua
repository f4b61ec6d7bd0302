-- revocation: records that one stateless session, or every stateless session of a user begun
-- before a time, is revoked, and tells every process that mirrors the revocations.
--
-- KEYS[1]  the revocations: a sorted set of 't:<device id>' and 'u:<user hash>:<ms>' members,
--          each scored by the ms after which it no longer matters (src/stateless/mirror.rs)
-- ARGV[1]  the member; with ARGV[4] 'now', its start ('u:<user hash>:'), which the server's
--          time ends
-- ARGV[2]  its score: ms until which it matters; with ARGV[4] 'now', ms from now
-- ARGV[3]  the channel the processes listen on
-- ARGV[4]  'now' or ''
--
-- Reply    the server's time, ms: with 'now', the "not before" the member names. One clock for
--          every "not before" and every login's start (cookie_devices.lua), whichever app
--          process asks.
-- Writes   ZREMRANGEBYSCORE of the members that no longer matter, ZADD of the member (the later
--          of two scores stays), PEXPIREAT of the set to its last member's score, PUBLISH of
--          '<member> <score>'.
-- Atomic   the add and the message go together: a process that reads the set after it
--          subscribed, and one that gets the message, learn the same revocation, and no message
--          announces one that the set does not hold.
local now = server_ms()
local member, score = ARGV[1], tonumber(ARGV[2])
if ARGV[4] == 'now' then
  member, score = member .. string.format('%d', now), now + score
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local old = redis.call('ZSCORE', KEYS[1], member)
if not old or tonumber(old) < score then
  redis.call('ZADD', KEYS[1], score, member)
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
redis.call('PUBLISH', ARGV[3], member .. ' ' .. string.format('%d', score))
return now
