//! What each operation appends to the AOF, measured from the server's own byte count
//! (`aof_current_size`), on a session of about 1 KB in 10 attributes.
//!
//! Print the table with `cargo test --test aof_cost -- --nocapture`.

mod support;

use std::time::Duration;

use redis_sessions::{Session, SessionStore};

/// About 1 KB: ten attributes of ~90 bytes each, as a real session's user, roles, cart...
fn fill(session: &mut Session) {
    for i in 0..10 {
        session.insert(&format!("attr{i}"), &format!("{i:-<88}")).expect("insert");
    }
}

struct Meter<'a>(&'a support::TestRedis);

impl Meter<'_> {
    async fn size(&self) -> i64 {
        self.0.info_field("persistence", "aof_current_size").await
    }

    /// Bytes appended by `op`.
    async fn measure(&self, op: impl std::future::Future) -> i64 {
        let before = self.size().await;
        op.await;
        self.size().await - before
    }
}

#[tokio::test]
async fn aof_bytes_per_operation() {
    let redis = support::own_server(&["--appendonly", "yes", "--appendfsync", "always"]);
    let store: SessionStore = redis
        .store_with(|c| c.with_idle_timeout(Duration::from_millis(1000)).with_touch_threshold(0.5));
    let meter = Meter(&redis);
    // Warm up: the first call of each script meets NOSCRIPT and sends its body (EVAL); scripts
    // are replicated as their effects, so this does not change what the AOF records.
    let mut warm = store.create().await.expect("create");
    fill(&mut warm);
    store.save(&mut warm).await.expect("save");

    let mut session = store.create().await.expect("create");
    fill(&mut session);
    store.save(&mut session).await.expect("save");
    let token = session.token().expose().to_owned();
    let stored: i64 = session.names().map(|n| n.len() as i64).sum::<i64>()
        + (0..10)
            .map(|i| {
                session
                    .get::<String>(&format!("attr{i}"))
                    .expect("get")
                    .map_or(0, |v| v.len() as i64 + 2)
            })
            .sum::<i64>();

    let load = || async { store.load(&token).await.expect("load").expect("live") };
    let mut rows = Vec::new();
    rows.push(("get-and-touch inside the throttle window", meter.measure(load()).await));
    tokio::time::sleep(Duration::from_millis(600)).await;
    rows.push(("get-and-touch when due", meter.measure(load()).await));
    session.insert("attr3", &format!("{:=<88}", 3)).expect("insert");
    let save = meter.measure(async { store.save(&mut session).await.expect("save") }).await;
    rows.push(("save changing one attribute", save));
    // Four more distinct attributes changed, one save each: the fourth leaves five loose fields,
    // so that save folds the session into a new packed record.
    let mut saves = Vec::new();
    for i in 4..8 {
        session.insert(&format!("attr{i}"), &format!("{:=<88}", i)).expect("insert");
        saves.push(meter.measure(async { store.save(&mut session).await.expect("save") }).await);
    }
    rows.push(("save changing one attribute, the one that compacts", saves[3]));
    let regenerate = meter.measure(async { store.regenerate(&mut session).await.expect("new") });
    rows.push(("regenerate", regenerate.await));
    let push = meter.measure(async { store.push_flash(&session, "Saved.").await.expect("push") });
    rows.push(("flash push", push.await));
    let pop = meter.measure(async { store.pop_flash::<String>(&mut session).await.expect("pop") });
    rows.push(("flash pop", pop.await));
    let destroy = meter.measure(async { store.destroy(&session).await.expect("destroy") });
    rows.push(("destroy", destroy.await));

    eprintln!("session: {stored} bytes of names and values in 10 attributes\n");
    eprintln!("| operation | AOF bytes |\n|---|---:|");
    for (name, bytes) in &rows {
        eprintln!("| {name} | {bytes} |");
    }
    assert_eq!(rows[0].1, 0, "a read inside the throttle window appends nothing");
    assert!(rows[1].1 > 0, "a due touch is written");
    assert!(rows[2].1 * 4 < stored, "a one-attribute save appends under a quarter of the session");
    assert!(saves[..3].iter().all(|&bytes| bytes * 4 < stored), "deltas: {saves:?}");
    assert!(rows[3].1 > stored, "the compaction writes the whole session once: {saves:?}");
}
