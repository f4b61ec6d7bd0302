//! Sessions that come back with their touch due, as one returning after the touch window does.
//!
//! Before each of redis-sessions' rounds, untimed, the expiry of the sessions chosen is set
//! back to what it would be had each gone unused for the touch window and a second more (the
//! TTL, and `@t` with it), so the first load of each in the round finds its touch due. The
//! sessions chosen are those whose first cycle in the round falls among the chosen share of
//! cycles, so that share of the cycles meets a touch due.

use std::collections::HashSet;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use redis_sessions::test_server::{lua_source, stored};
use redis_sessions::Config;

use crate::stores::Kind;

/// The sessions (slots) whose first cycle in `plan` meets a touch due: about `percent` of the
/// plan's cycles.
pub fn choose(plan: &[(Kind, usize, usize)], percent: f64, round: u64) -> Vec<usize> {
    let mut seen = HashSet::new();
    let firsts: Vec<usize> =
        plan.iter().filter_map(|&(_, slot, _)| seen.insert(slot).then_some(slot)).collect();
    let wanted = plan.len() as f64 * percent / 100.0;
    let chance = (wanted / firsts.len().max(1) as f64).min(1.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(round ^ 0xa9e);
    firsts.into_iter().filter(|_| rng.random_bool(chance)).collect()
}

/// Sets back the expiry of the sessions in `slots`; returns how many were there to set back.
pub async fn age(
    conn: &mut redis::aio::MultiplexedConnection,
    config: &Config,
    tokens: &[Mutex<String>],
    slots: &[usize],
) -> redis::RedisResult<u64> {
    let helpers = lua_source("helpers").expect("the helpers");
    let body = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
                local at = server_ms() + tonumber(ARGV[1]) \
                redis.call('HSET', KEYS[1], '@t', expiry_field(at)) \
                redis.call('PEXPIREAT', KEYS[1], at) \
                return 1";
    let load = redis::cmd("SCRIPT").arg("LOAD").arg(format!("{helpers}\n{body}")).clone();
    let sha: String = load.query_async(conn).await?;
    let idle = config.idle_timeout.as_millis() as f64;
    let left = (idle * (1.0 - config.touch_threshold)) as u64;
    let left = left.saturating_sub(1000).max(1);
    let mut aged = 0;
    for chunk in slots.chunks(500) {
        let mut pipe = redis::pipe();
        for &slot in chunk {
            let token = tokens[slot].lock().expect("token").clone();
            let key = stored::session_key(config, &token).expect("a token the store issued");
            pipe.cmd("EVALSHA").arg(&sha).arg(1).arg(key).arg(left);
        }
        let done: Vec<u64> = pipe.query_async(conn).await?;
        aged += done.iter().sum::<u64>();
    }
    Ok(aged)
}
