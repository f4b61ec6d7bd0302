//! The expiry rule's Lua home (lua/expiry.lua: `touch_due`, `next_ttl`) against the table of
//! cases its Rust home (src/store/expiry_rule.rs) is tested against too, on a real Redis.

mod support;

use redis_sessions::test_server::lua_source;

/// Runs each case's `touch_due` and `next_ttl`, four arguments a case, two numbers a result.
const HARNESS: &str = "
local out = {}
for i = 1, #ARGV, 4 do
  local ttl, idle, threshold, limit = tonumber(ARGV[i]), tonumber(ARGV[i + 1]),
    tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local due = touch_due(ttl, idle, threshold)
  out[#out + 1] = due and 1 or 0
  out[#out + 1] = next_ttl(ttl, due, idle, limit)
end
return out
";

#[tokio::test]
async fn the_lua_rule_holds_the_shared_cases() {
    let redis = support::any_server();
    let table = include_str!("data/expiry_rule.csv");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.len() >= 10, "the table was read: {} cases", rows.len());
    let mut eval = redis::cmd("EVAL");
    let helpers = lua_source("helpers").expect("the helpers");
    eval.arg(format!("{helpers}{HARNESS}")).arg(1).arg(format!("{}rule", redis.prefix));
    for row in &rows {
        eval.arg(&row[..4]);
    }
    let results: Vec<i64> = eval.query_async(&mut redis.conn().await).await.expect("eval");
    for (row, result) in rows.iter().zip(results.chunks(2)) {
        let due = if row[4] == "true" { 1 } else { 0 };
        let next: i64 = row[5].parse().expect("a number");
        assert_eq!(result, [due, next], "case {}", row.join(","));
    }
    assert_eq!(results.len(), 2 * rows.len());
}
