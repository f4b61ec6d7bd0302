//! Redis Cluster: three masters started by redis-test; every script is single-slot.

mod support;

use redis_sessions::SessionStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_all_masters_and_the_whole_api_works() {
    let cluster = support::cluster::start(false);
    let store = SessionStore::new(cluster.config()).expect("store");

    let tokens = support::workload(&store).await;
    assert_eq!(tokens.len(), 10);
    for _ in 0..60 {
        let mut session = store.create().await.expect("create");
        session.insert("n", &1).expect("insert");
        store.save(&mut session).await.expect("save");
        store.push_flash(&session, "hi").await.expect("flash");
        let mut loaded = store.load_and_pop_flash(session.token().expose()).await.expect("load");
        let loaded = loaded.as_mut().expect("live");
        assert_eq!(loaded.take_flash::<String>().expect("decode"), ["hi"]);
        store.push_flash(loaded, "again").await.expect("flash");
        assert_eq!(store.pop_flash::<String>(loaded).await.expect("pop"), ["again"]);
    }

    let counts = cluster.keys_per_master().await;
    assert_eq!(counts.len(), 3, "three masters");
    assert_eq!(counts.iter().sum::<usize>(), 60 + 2, "60 sessions and the workload's 2 survivors");
    assert!(counts.iter().all(|&n| n >= 5), "every master holds sessions: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerated_session_stays_in_its_slot() {
    let cluster = support::cluster::start(false);
    let store = SessionStore::new(cluster.config()).expect("store");
    let (_, mut conn) = cluster.masters().await.remove(0);
    let slot = |key: String| redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).clone();

    let day = std::time::Duration::from_secs(86_400);
    for i in 0..10 {
        let mut session = store.create().await.expect("create");
        session.insert("user", &"ada").expect("insert");
        store.save(&mut session).await.expect("save");
        let before = key_of(&cluster).await;
        // Every other one with timeouts of its own, which its script writes before it moves.
        let own = (i % 2 == 1).then(|| redis_sessions::Timeouts::new(day, 2 * day));
        match own {
            Some(own) => store.regenerate_with_timeouts(&mut session, Some(own)).await,
            None => store.regenerate(&mut session).await,
        }
        .expect("regenerate");
        let after = key_of(&cluster).await;
        assert_ne!(before, after);
        let a: i64 = slot(before).query_async(&mut conn).await.expect("keyslot");
        let b: i64 = slot(after).query_async(&mut conn).await.expect("keyslot");
        assert_eq!(a, b, "same slot");
        store.push_flash(&session, "hi").await.expect("push");
        // On a cluster a popping load takes the messages with get-and-touch.
        let mut moved =
            store.load_and_pop_flash(session.token().expose()).await.expect("load").expect("live");
        assert_eq!(moved.get::<String>("user").expect("decode").as_deref(), Some("ada"));
        assert_eq!(moved.take_flash::<String>().expect("decode"), ["hi"]);
        let own_idle = own.map(|_| 86_400_000);
        assert_eq!(moved.metadata().idle_timeout_ms, own_idle, "the own timeouts moved along");
        store.destroy(&moved).await.expect("destroy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_any_one_character_changed_opens_nothing() {
    let cluster = support::cluster::start(false);
    let store = SessionStore::new(cluster.config()).expect("store");
    support::assert_altered_tokens_open_nothing(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_reached_as_a_single_server_is_a_configuration_error() {
    let cluster = support::cluster::start(false);
    let mut refused = 0;
    for url in cluster.urls() {
        let config = redis_sessions::Config::from_url(url).with_key_prefix(cluster.prefix.clone());
        match SessionStore::connect(config).await {
            // The probe's key belongs to another node: MOVED.
            Err(redis_sessions::Error::Config(why)) if why.contains("cluster") => refused += 1,
            // Or to this one, which serves it.
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(refused, 2, "the two masters that do not own the probe's slot");
}

/// The one key of this test that exists now.
async fn key_of(cluster: &support::cluster::TestCluster) -> String {
    let mut found: Vec<String> = cluster.keys_by_master().await.concat();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}
