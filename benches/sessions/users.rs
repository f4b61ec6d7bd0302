//! With `--bound`, after the cycles: the paths of sessions bound to users, timed one call at a
//! time. A login against what an app calls at login without users (`regenerate_with_timeouts`,
//! which moves the session to a new token with new timeouts as a login does), in alternating
//! rounds; then, on the users just logged in, a list of their sessions, revoking one, and
//! revoking all.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use redis_sessions::{Login, Session, SessionStore, Timeouts};

use crate::profile::Profile;

/// Rounds, and users logged in per round, each from this many devices.
const ROUNDS: usize = 10;
const USERS: usize = 20;
const DEVICES: usize = 5;

/// A session of a random profile, saved: what a visitor holds before logging in.
async fn visitor(store: &SessionStore, rng: &mut rand::rngs::StdRng) -> Session {
    let mut session = store.create().await.expect("create");
    Profile::random(rng).insert_into(&mut session).expect("profile");
    store.save(&mut session).await.expect("save");
    session
}

fn record(histogram: &mut Histogram<u64>, started: Instant) {
    let micros = started.elapsed().as_micros().max(1);
    histogram.record(u64::try_from(micros).unwrap_or(u64::MAX)).expect("in range");
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    Duration::from_micros(histogram.value_at_quantile(quantile)).as_secs_f64() * 1000.0
}

/// Times each path and prints a Markdown table of latency percentiles.
pub async fn report(anonymous: &SessionStore, bound: &SessionStore) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let new = || Histogram::<u64>::new(3).expect("histogram");
    let (mut regenerate, mut login, mut list, mut revoke, mut revoke_all) =
        (new(), new(), new(), new(), new());
    let week = Duration::from_secs(7 * 86_400);
    let remember = Timeouts::new(week, 4 * week);
    for round in 0..ROUNDS {
        let users: Vec<String> = (0..USERS).map(|u| format!("bench-{round}-{u}")).collect();
        for device in 0..DEVICES {
            for user in &users {
                let mut session = visitor(anonymous, &mut rng).await;
                let started = Instant::now();
                anonymous.regenerate_with_timeouts(&mut session, Some(remember)).await.expect("r");
                record(&mut regenerate, started);

                let mut session = visitor(bound, &mut rng).await;
                let login_as = Login::new(user.as_str()).with_label(format!("device {device}"));
                let started = Instant::now();
                bound
                    .login(&mut session, &login_as.with_timeouts(Some(remember)))
                    .await
                    .expect("l");
                record(&mut login, started);
            }
        }
        for user in &users {
            let started = Instant::now();
            let listed = bound.user_sessions(user).await.expect("list");
            record(&mut list, started);
            assert_eq!(listed.len(), DEVICES, "every device listed");
            let started = Instant::now();
            assert!(bound.revoke(user, &listed[0].id).await.expect("revoke"));
            record(&mut revoke, started);
            let started = Instant::now();
            assert_eq!(bound.revoke_all(user).await.expect("revoke all"), DEVICES - 1);
            record(&mut revoke_all, started);
        }
    }
    println!(
        "\nUser paths, one call at a time ({ROUNDS} rounds of {USERS} users logging in from \
         {DEVICES} devices each):\n"
    );
    println!("| path | calls | p50 ms | p99 ms |\n|---|---:|---:|---:|");
    let rows = [
        ("regenerate_with_timeouts (anonymous store)", &regenerate),
        ("login", &login),
        ("user_sessions (5 sessions)", &list),
        ("revoke (one of 5)", &revoke),
        ("revoke_all (the other 4)", &revoke_all),
    ];
    for (path, histogram) in rows {
        let (p50, p99) = (ms(histogram, 0.5), ms(histogram, 0.99));
        println!("| {path} | {} | {p50:.3} | {p99:.3} |", histogram.len());
    }
    let ratio = |q| ms(&login, q) / ms(&regenerate, q);
    println!("\nlogin / regenerate_with_timeouts: p50 {:.2}x, p99 {:.2}x", ratio(0.5), ratio(0.99));
}
