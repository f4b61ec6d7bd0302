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

/// Sessions bound to users: each user's sessions and index share one slot (the users spread
/// over the masters), a login copies the session there from its own slot and deletes the old
/// key, and listing, revoking, rotating and logging out are each one single-slot script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_sessions_and_index_share_one_slot_and_every_user_operation_works() {
    use redis_sessions::{Login, Rotation};
    let cluster = support::cluster::start(false);
    let config = cluster.config().with_rotation(Rotation::default());
    let store = SessionStore::new(config).expect("store");
    let (_, mut conn) = cluster.masters().await.remove(0);
    let slot = |key: &String| redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).clone();

    let users: Vec<String> = (0..6).map(|n| format!("user-{n}")).collect();
    let mut sessions = Vec::new();
    for user in &users {
        for device in 0..3 {
            let mut session = store.create().await.expect("create");
            session.insert("cart", &device).expect("insert");
            store.save(&mut session).await.expect("save");
            let anonymous = session.token().clone();
            store.login(&mut session, &Login::new(user.as_str())).await.expect("login");
            assert!(store.load(anonymous.expose()).await.expect("load").is_none(), "old key gone");
            let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
            assert_eq!(loaded.get::<i32>("cart").expect("get"), Some(device), "the data moved");
            sessions.push(session);
        }
    }
    // One slot per user, holding its 3 sessions and its index: 4 keys, and nothing else.
    let keys = cluster.keys_by_master().await.concat();
    assert_eq!(keys.len(), users.len() * 4, "{keys:?}");
    let mut slots = std::collections::BTreeMap::<i64, usize>::new();
    for key in &keys {
        let at: i64 = slot(key).query_async(&mut conn).await.expect("keyslot");
        *slots.entry(at).or_default() += 1;
    }
    assert_eq!(slots.len(), users.len(), "a slot per user: {slots:?}");
    assert!(slots.values().all(|&n| n == 4), "{slots:?}");
    let per_master = cluster.keys_per_master().await;
    assert!(per_master.iter().filter(|&&n| n > 0).count() >= 2, "users spread: {per_master:?}");

    for (user, mine) in users.iter().zip(sessions.chunks_mut(3)) {
        assert_eq!(store.user_sessions(user).await.expect("list").len(), 3);
        // Two logins again as the same user at once (a form sent twice), each one script in the
        // user's slot: one wins; the session stays listed once, under the winner's token.
        let token = mine[0].token().expose().to_owned();
        let mut again = store.load(&token).await.expect("load").expect("live");
        let login = Login::new(user.as_str());
        let (a, b) =
            tokio::join!(store.login(&mut mine[0], &login), store.login(&mut again, &login));
        let winner = match (a, b) {
            (Ok(_), Err(_)) => mine[0].token().clone(),
            (Err(_), Ok(_)) => again.token().clone(),
            (Ok(_), Ok(_)) => panic!("both logins moved the same session"),
            (Err(a), Err(b)) => panic!("neither login: {a:?} {b:?}"),
        };
        let live = store.load(winner.expose()).await.expect("load").expect("the winner's");
        mine[0] = live;
        let listed = store.user_sessions(user).await.expect("list");
        assert_eq!(listed.len(), 3, "still listed once");
        assert!(listed.iter().any(|d| Some(d.id.clone()) == mine[0].device_id()));
        let old = mine[0].token().clone();
        store.rotate(&mut mine[0]).await.expect("rotate");
        assert!(store.load(old.expose()).await.expect("in the window").is_some());
        let id = mine[1].device_id().expect("bound");
        assert!(store.revoke(user, &id).await.expect("revoke one"));
        assert!(store.destroy(&mine[2]).await.expect("logout"));
        assert_eq!(store.revoke_others(&mine[0]).await.expect("others"), 0);
        assert_eq!(store.user_sessions(user).await.expect("list").len(), 1);
        assert_eq!(store.revoke_all(user).await.expect("all"), 1);
        assert!(store.user_sessions(user).await.expect("list").is_empty());
    }
}

/// A save through the old token racing a login, which on a Cluster copies the session to the
/// user's slot and then deletes the old key: a save that succeeds is in the logged-in session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_racing_a_login_on_a_cluster_is_never_lost() {
    let cluster = support::cluster::start(false);
    let store = SessionStore::new(cluster.config()).expect("store");
    let (mut kept, mut refused) = (0, 0);
    for round in 0..30 {
        let mut session = store.create().await.expect("create");
        session.insert("cart", &round).expect("insert");
        store.save(&mut session).await.expect("save");
        let mut racing = store.load(session.token().expose()).await.expect("load").expect("live");
        racing.insert("coupon", &round).expect("insert");
        let login = redis_sessions::Login::new("ada");
        // Staggered, so that saves land before the login's read, between its copy and its
        // deletion of the old key (the login starts again), and after (the session is gone).
        let save = async {
            tokio::time::sleep(std::time::Duration::from_micros(round as u64 * 10)).await;
            store.save(&mut racing).await
        };
        let (logged_in, saved) = tokio::join!(store.login(&mut session, &login), save);
        logged_in.expect("login");
        let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
        match saved {
            Ok(()) => {
                assert_eq!(loaded.get::<i32>("coupon").expect("get"), Some(round), "{round}");
                kept += 1;
            }
            Err(redis_sessions::Error::SessionGone) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
        store.revoke_all("ada").await.expect("clean up");
    }
    println!("saves kept {kept}, refused as gone {refused}");
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
