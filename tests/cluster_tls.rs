//! Redis Cluster over TLS, with the cluster's own CA passed through the config. (Its own test
//! binary: redis-test picks TLS for clusters through a process-wide environment variable.)

mod support;

use redis_sessions::SessionStore;

#[test]
fn a_cluster_over_tls_works_with_a_custom_ca() {
    // This binary's only test sets it before it starts any other thread.
    std::env::set_var("REDISRS_SERVER_TYPE", "tcp+tls");
    let cluster = support::cluster::start(false);
    std::env::remove_var("REDISRS_SERVER_TYPE");
    assert!(cluster.urls().iter().all(|u| u.starts_with("rediss://")));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(exercise(&cluster));
}

async fn exercise(cluster: &support::cluster::TestCluster) {
    let store = SessionStore::new(cluster.config()).expect("store");
    support::workload(&store).await;
    for _ in 0..30 {
        let mut session = store.create().await.expect("create");
        session.insert("tls", &true).expect("insert");
        store.save(&mut session).await.expect("save");
        store.regenerate(&mut session).await.expect("regenerate");
    }
    let counts = cluster.keys_per_master().await;
    assert_eq!(counts.iter().sum::<usize>(), 32, "{counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "every master holds sessions: {counts:?}");

    let mut untrusted = cluster.config();
    untrusted.tls = Default::default();
    let store = SessionStore::new(untrusted).expect("store");
    // The cluster's certificates are not in the system roots: refused for that reason.
    let err = store.create().await.expect_err("untrusted cluster");
    let text = support::chain(&err);
    assert!(text.contains("invalid peer certificate"), "clear error: {text}");
}
