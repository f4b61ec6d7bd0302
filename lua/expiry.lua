-- expiry: the expiry rule, in one place for every script that sets a TTL (its Rust twin:
-- src/store/expiry_rule.rs; the cases both are tested against: tests/data/expiry_rule.csv).

-- Whether the idle expiry of a session whose TTL is `pttl` (-1: none) is due to slide: once at
-- least `threshold` ms of `idle` are used up, so that most reads write nothing.
local function touch_due(pttl, idle, threshold)
  return pttl < 0 or idle - pttl >= threshold
end

-- The TTL a session at `pttl` gets now, `limit` ms before its absolute deadline. A touch that
-- is `due` slides it to the idle timeout, never shortening it; whatever set it, it never runs
-- past the deadline.
local function next_ttl(pttl, due, idle, limit)
  local ttl = pttl
  if due then
    ttl = math.max(pttl, math.min(idle, limit))
  end
  return math.min(ttl, limit)
end
