//! A Redis Cluster master killed under load: its replica takes over and the workload goes on.
//! (redis-test starts the nodes with cluster-node-timeout 5000 ms, which sets the window.)

mod support;

use std::time::{Duration, Instant};

use redis_sessions::SessionStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_by_its_replica_and_no_session_is_lost() {
    let mut cluster = support::cluster::start(true);
    let ms = Duration::from_millis;
    let store = SessionStore::new(cluster.config().with_timeouts(ms(200), ms(200), ms(200)))
        .expect("store");
    let mut tokens = Vec::new();
    for i in 0..30 {
        let mut session = store.create().await.expect("create");
        session.insert("n", &i).expect("insert");
        store.save(&mut session).await.expect("save");
        tokens.push(session.token().expose().to_owned());
    }
    let masters = cluster.masters().await;
    assert_eq!(masters.len(), 3);
    for (_, mut conn) in masters.iter().cloned() {
        let synced = support::replicas_caught_up(&mut conn, Duration::from_secs(10)).await;
        assert!(synced, "every master's replica caught up");
    }
    let victim = masters[0].0;
    let index =
        cluster.cluster.servers.iter().position(|s| s.host_and_port().map(|h| h.1) == Some(victim));
    let killed = Instant::now();
    cluster.cluster.servers[index.expect("victim")].stop();

    let (mut slowest_failure, mut recovered) = (Duration::ZERO, None);
    while killed.elapsed() < Duration::from_secs(40) {
        let round = Instant::now();
        let mut all_ok = true;
        for (i, token) in tokens.iter().enumerate() {
            let started = Instant::now();
            match store.load(token).await {
                Ok(Some(session)) => {
                    assert_eq!(session.get::<i32>("n").expect("decode"), Some(i as i32))
                }
                Ok(None) => panic!("session {i} lost in the failover"),
                Err(e) => {
                    assert!(e.is_unavailable(), "typed, retryable error: {e:?}");
                    slowest_failure = slowest_failure.max(started.elapsed());
                    all_ok = false;
                }
            }
        }
        if all_ok {
            recovered = Some(round - killed);
            break;
        }
        tokio::time::sleep(ms(50)).await;
    }
    let window = recovered.expect("the workload recovered within 40 s");
    eprintln!("cluster failover: window {window:?}, slowest failed operation {slowest_failure:?}");
    assert!(slowest_failure < Duration::from_secs(2), "failures are fast: {slowest_failure:?}");

    // Writes work again too, on the promoted replica.
    for token in &tokens {
        let mut session = store.load(token).await.expect("load").expect("live");
        session.insert("after", &true).expect("insert");
        store.save(&mut session).await.expect("save after failover");
    }
}
