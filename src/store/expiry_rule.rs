//! The expiry rule: when a touch is due, and the TTL a session gets. Plain loads judge by it
//! (reply.rs) and create counts its first TTL with it (create.rs); its Lua twin, under the same
//! names, is in lua/expiry.lua, where get-and-touch, the saves, create and regenerate apply it.
//! tests/data/expiry_rule.csv holds the cases both are tested against (here, and on a real
//! Redis by tests/expiry_rule.rs): the two agree on every case in the table (values below 2^53,
//! where Lua's numbers are exact).

/// Whether the idle expiry of a session whose TTL is `ttl_ms` (-1: none) is due to slide: once
/// at least `touch_after_ms` of `idle_ms` is used up, so that most reads write nothing.
pub(crate) fn touch_due(ttl_ms: i64, idle_ms: u64, touch_after_ms: u64) -> bool {
    let idle = i64::try_from(idle_ms).unwrap_or(i64::MAX);
    let touch_after = i64::try_from(touch_after_ms).unwrap_or(i64::MAX);
    ttl_ms < 0 || idle.saturating_sub(ttl_ms) >= touch_after
}

/// The TTL a session at `ttl_ms` gets now, `limit_ms` before its absolute deadline: a touch that
/// is `due` slides it to the idle timeout, never shortening it; whatever set it, it never runs
/// past the deadline.
pub(crate) fn next_ttl(ttl_ms: i64, due: bool, idle_ms: u64, limit_ms: i64) -> i64 {
    let idle = i64::try_from(idle_ms).unwrap_or(i64::MAX);
    let ttl = if due { ttl_ms.max(idle.min(limit_ms)) } else { ttl_ms };
    ttl.min(limit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_cases_hold() {
        let table = include_str!("../../tests/data/expiry_rule.csv");
        let rows = table.lines().filter(|l| !l.starts_with('#')).skip(1);
        let mut checked = 0;
        for row in rows.filter(|l| !l.trim().is_empty()) {
            let cells: Vec<&str> = row.split(',').collect();
            let number = |i: usize| cells[i].parse::<i64>().expect("a number");
            let (ttl, idle, threshold, limit) = (number(0), number(1), number(2), number(3));
            let due = touch_due(ttl, idle as u64, threshold as u64);
            assert_eq!(due.to_string(), cells[4], "due, case {row}");
            assert_eq!(next_ttl(ttl, due, idle as u64, limit), number(5), "next, case {row}");
            checked += 1;
        }
        assert!(checked >= 10, "the table was read: {checked} cases");
    }
}
