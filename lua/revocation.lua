-- revocation: records that one stateless session, or every stateless session of a user begun
-- before a time, is revoked, and tells every process that mirrors the revocations.
--
-- KEYS[1]  the revocations: a sorted set of 't:<device id>' and 'u:<user hash>:<ms>' members,
--          each scored by the ms after which it no longer matters (src/stateless/mirror.rs)
-- ARGV[1]  the member
-- ARGV[2]  its score: ms until which it matters
-- ARGV[3]  the channel the processes listen on
--
-- Reply    how many subscribers the message reached (PUBLISH's reply)
-- Writes   ZREMRANGEBYSCORE of the members that no longer matter, ZADD of the member (the later
--          of two scores stays), PEXPIREAT of the set to its last member's score, PUBLISH of
--          '<member> <score>'.
-- Atomic   the add and the message go together: a process that reads the set after it
--          subscribed, and one that gets the message, learn the same revocation, and no message
--          announces one that the set does not hold.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', server_ms())
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not old or tonumber(old) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
return redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. ARGV[2])
