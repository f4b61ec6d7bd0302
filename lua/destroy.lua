-- destroy: delete a session (logout, or the user deleting their account).
--
-- KEYS[1]  the session's hash
--
-- Reply    1 deleted, 0 there was no session.
-- Writes   UNLINK KEYS[1] (memory is freed off the main thread for a large session).
-- Atomic   a single command; a script only so that every operation of the store goes through the
--          same loaded-once, EVALSHA path and the same key discipline (every key in KEYS).
return redis.call('UNLINK', KEYS[1])
