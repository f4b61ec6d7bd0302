//! Failures of the server that must cost the application nothing.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn script_flush_mid_workload_costs_no_failed_operation() {
    let redis = support::own_server(&[]);
    let store = redis.store_with(|c| c.with_pool_max_size(4));
    redis.reset_stats().await;
    let done = Arc::new(AtomicBool::new(false));

    let flusher = {
        let (done, mut conn) = (done.clone(), redis.conn().await);
        tokio::spawn(async move {
            let mut flushes = 0;
            while !done.load(Ordering::Relaxed) {
                let _: () =
                    redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.expect("flush");
                flushes += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            flushes
        })
    };
    let workers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                support::workload(&store).await; // every call expects Ok
            }
        })
    });
    for worker in join_all(workers).await {
        worker.expect("no operation failed");
    }
    done.store(true, Ordering::Relaxed);
    let flushes = flusher.await.expect("flusher");

    let noscript = noscript_count(&redis).await;
    eprintln!("{flushes} flushes, {noscript} NOSCRIPT replies recovered");
    assert!(flushes > 5, "the scripts were flushed {flushes} times");
    assert!(noscript > 0, "some calls met NOSCRIPT and were recovered");
}

/// `errorstat_NOSCRIPT:count=N` is not a plain integer field.
async fn noscript_count(redis: &support::TestRedis) -> i64 {
    let mut conn = redis.conn().await;
    let info: String =
        redis::cmd("INFO").arg("errorstats").query_async(&mut conn).await.expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("errorstat_NOSCRIPT:count="))
        .map_or(0, |n| n.trim().parse().expect("count"))
}
