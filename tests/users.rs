//! Sessions bound to a user: login, the user's list, revoke one, all or all but one, logout,
//! and an index that keeps no entry of a session that is gone.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use redis_sessions::{Login, Session, SessionStore, Timeouts};

/// A session holding a cart, logged in as `user` from `label`.
async fn logged_in(store: &SessionStore, user: &str, label: &str) -> Session {
    let mut session = store.create().await.expect("create");
    session.insert("cart", &vec!["tea"]).expect("insert");
    store.save(&mut session).await.expect("save");
    store.login(&mut session, &Login::new(user).with_label(label)).await.expect("login");
    session
}

/// The index keys under the test's prefix, and how many entries each holds.
async fn index_entries(redis: &support::TestRedis) -> Vec<(String, usize)> {
    let mut conn = redis.conn().await;
    let mut out = Vec::new();
    for key in redis.keys().await.into_iter().filter(|k| k.contains("user:")) {
        let len: usize = conn.hlen(&key).await.expect("hlen");
        out.push((key, len));
    }
    out
}

#[tokio::test]
async fn a_login_moves_the_session_binds_it_and_lists_it_without_its_token() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = store.create().await.expect("create");
    session.insert("cart", &vec!["tea"]).expect("insert");
    store.save(&mut session).await.expect("save");
    let before = session.token().clone();

    let login = Login::new("ada").with_label("Firefox on Linux");
    let token = store.login(&mut session, &login).await.expect("login");
    assert_ne!(token, before);
    assert!(store.load(before.expose()).await.expect("load").is_none(), "the old token is dead");
    let loaded = store.load(token.expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<Vec<String>>("cart").expect("get"), Some(vec!["tea".to_owned()]));
    assert_eq!(loaded.user_id(), Some("ada"));
    assert_eq!(loaded.device_id(), session.device_id());

    let listed = store.user_sessions("ada").await.expect("list");
    assert_eq!(listed.len(), 1);
    let device = &listed[0];
    assert_eq!(Some(device.id.clone()), session.device_id());
    assert_eq!(device.label, "Firefox on Linux");
    assert_eq!(device.created_ms, loaded.metadata().created_ms);
    let seen = device.last_seen_ms.expect("known");
    assert!(seen >= device.created_ms && device.expires_ms.expect("known") > seen);
    assert!(!format!("{listed:?}").contains(token.expose()), "no token in a list");
    // Redis holds no token either: the index maps device ids to key hashes.
    for (key, fields) in redis.contents().await {
        for (name, value) in fields {
            assert!(!support::contains(&value, token.expose()), "{key} {name:?}");
        }
    }
    assert!(store.user_sessions("bob").await.expect("list").is_empty());

    // A user id must be 1 to 1024 bytes: anything else is refused before Redis is asked.
    for user in [String::new(), "u".repeat(1025)] {
        let refused = store.login(&mut session, &Login::new(user)).await;
        assert!(matches!(refused, Err(redis_sessions::Error::Config(_))), "{refused:?}");
    }
    assert_eq!(session.token(), &token, "nothing moved");
}

#[tokio::test]
async fn logging_in_again_as_the_same_user_keeps_the_device_and_a_bound_load_is_one_read() {
    let redis = support::own_server(&[]);
    let store = redis.store();
    let mut session = logged_in(&store, "ada", "phone").await;
    let device = session.device_id();
    let remember = Timeouts::new(Duration::from_secs(3600), Duration::from_secs(7200));
    let login = Login::new("ada").with_label("phone").with_timeouts(Some(remember));
    store.login(&mut session, &login).await.expect("login again");
    assert_eq!(session.device_id(), device);
    assert_eq!(store.user_sessions("ada").await.expect("list").len(), 1);
    assert_eq!(session.metadata().idle_timeout_ms, Some(3_600_000));

    // A load of a bound session is the plain read: one HVALS, no script.
    redis.reset_stats().await;
    for _ in 0..10 {
        store.load(session.token().expose()).await.expect("load").expect("live");
    }
    assert_eq!(redis.command_calls("hvals").await, 10);
    assert_eq!(redis.script_calls().await, 0);
}

#[tokio::test]
async fn revoke_one_all_but_the_current_and_all() {
    let redis = support::any_server();
    let store = redis.store();
    let mut devices = Vec::new();
    for label in ["laptop", "phone", "tablet", "work"] {
        devices.push(logged_in(&store, "ada", label).await);
    }
    let other = logged_in(&store, "bob", "laptop").await;
    let live = |session: &Session| {
        let (store, token) = (store.clone(), session.token().expose().to_owned());
        async move { store.load(&token).await.expect("load").is_some() }
    };

    let phone = devices[1].device_id().expect("bound");
    assert!(store.revoke("ada", &phone).await.expect("revoke"));
    assert!(!store.revoke("ada", &phone).await.expect("again"), "already gone");
    assert!(!store.revoke("ada", "not an id").await.expect("garbage"));
    assert!(!store.revoke("bob", &devices[0].device_id().expect("b")).await.expect("not bob's"));
    assert!(!live(&devices[1]).await);
    let listed: Vec<String> =
        store.user_sessions("ada").await.expect("list").into_iter().map(|d| d.label).collect();
    assert_eq!(listed, ["laptop", "tablet", "work"]);

    assert_eq!(store.revoke_others(&devices[0]).await.expect("others"), 2);
    assert!(live(&devices[0]).await && !live(&devices[2]).await && !live(&devices[3]).await);
    assert_eq!(store.user_sessions("ada").await.expect("list").len(), 1);

    assert_eq!(store.revoke_all("ada").await.expect("all"), 1);
    assert!(!live(&devices[0]).await);
    assert!(store.user_sessions("ada").await.expect("list").is_empty());
    assert!(live(&other).await, "another user's session stays");
    assert_eq!(index_entries(&redis).await.len(), 1, "only bob's index is left");
}

#[tokio::test]
async fn logout_removes_the_entry_and_the_last_logout_the_index() {
    let redis = support::any_server();
    let store = redis.store();
    let first = logged_in(&store, "ada", "one").await;
    let second = logged_in(&store, "ada", "two").await;
    assert_eq!(index_entries(&redis).await.iter().map(|e| e.1).sum::<usize>(), 2);
    assert!(store.destroy(&first).await.expect("logout"));
    assert_eq!(index_entries(&redis).await.iter().map(|e| e.1).sum::<usize>(), 1);
    assert!(store.destroy(&second).await.expect("logout"));
    assert!(index_entries(&redis).await.is_empty(), "the index goes with its last entry");
}

/// Concurrent logins, logouts and expiries: while sessions live, each list shows exactly the
/// live ones and prunes the rest; once every TTL has passed, nothing of the user is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_logouts_and_expiries_leave_no_orphan_entries() {
    let redis = support::any_server();
    let store = redis.store_with(|c| {
        c.with_idle_timeout(Duration::from_millis(400))
            .with_absolute_timeout(Duration::from_millis(1500))
    });
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for round in 0..10 {
                let session = logged_in(&store, "ada", &format!("{task}/{round}")).await;
                match round % 3 {
                    0 => assert!(store.destroy(&session).await.expect("logout")),
                    1 => kept.push(session), // kept alive below, until its deadline
                    _ => {}                  // left to expire
                }
            }
            kept
        }));
    }
    let mut kept = Vec::new();
    for task in tasks {
        kept.extend(task.await.expect("task"));
    }
    // Keep some alive past the idle timeout of the others.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        for session in &kept {
            let _ = store.load(session.token().expose()).await.expect("load");
        }
    }
    let live: Vec<String> = {
        let mut live = Vec::new();
        for session in &kept {
            if store.load(session.token().expose()).await.expect("load").is_some() {
                live.extend(session.device_id());
            }
        }
        live
    };
    assert!(!live.is_empty(), "the sessions kept in use outlive the idle timeout");
    let mut listed: Vec<String> =
        store.user_sessions("ada").await.expect("list").into_iter().map(|d| d.id).collect();
    let mut expected = live.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "the list holds exactly the live sessions");
    let entries = index_entries(&redis).await;
    assert_eq!(entries.iter().map(|e| e.1).sum::<usize>(), live.len(), "and so does the index");

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(redis.keys().await.is_empty(), "every TTL has passed: nothing is left");
}

/// "Log out everywhere" racing a login on another device. The outcome, as docs/design.md
/// defines it: a login whose script ran before revoke-all's is revoked with the others; one
/// whose script runs after survives, listed. Never a live session missing from the list, nor a
/// listed one that is gone; and a login that returned before revoke-all began never survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_racing_a_login_ends_in_one_of_two_defined_outcomes() {
    let redis = support::any_server();
    let store = redis.store();
    let (mut survived, mut revoked) = (0, 0);
    for round in 0..40 {
        let before = logged_in(&store, "ada", "before").await;
        let mut racing = store.create().await.expect("create");
        racing.insert("n", &round).expect("insert");
        store.save(&mut racing).await.expect("save");
        let login = Login::new("ada").with_label("racing");
        let (login, ended) =
            tokio::join!(store.login(&mut racing, &login), store.revoke_all("ada"),);
        login.expect("login");
        let ended = ended.expect("revoke all");
        assert!(store.load(before.token().expose()).await.expect("load").is_none(), "{round}");
        let live = store.load(racing.token().expose()).await.expect("load").is_some();
        let listed = store.user_sessions("ada").await.expect("list");
        let ids: Vec<_> = listed.iter().map(|d| Some(d.id.clone())).collect();
        match live {
            true => {
                assert_eq!(ids, [racing.device_id()], "round {round}: live, so listed alone");
                assert_eq!(ended, 1, "round {round}: only the earlier login was revoked");
                survived += 1;
            }
            false => {
                assert!(ids.is_empty(), "round {round}: revoked, so not listed");
                assert_eq!(ended, 2, "round {round}: both logins were revoked");
                revoked += 1;
            }
        }
        store.revoke_all("ada").await.expect("clean up");
    }
    assert_eq!(survived + revoked, 40);
    println!("login survived {survived} times, revoked {revoked} times");
}

/// A bound session regenerated (with or without new timeouts) stays in its user's list under
/// the same id, and revoking it ends the session under its new token.
#[tokio::test]
async fn a_regenerated_bound_session_stays_listed_and_revocable() {
    let redis = support::any_server();
    let store = redis.store();
    let mut session = logged_in(&store, "ada", "laptop").await;
    store.regenerate(&mut session).await.expect("regenerate");
    let month = Duration::from_secs(30 * 86_400);
    let remember = Timeouts::new(Duration::from_secs(86_400), month);
    store.regenerate_with_timeouts(&mut session, Some(remember)).await.expect("regenerate");
    let listed = store.user_sessions("ada").await.expect("list");
    assert_eq!(listed.len(), 1, "listed once");
    assert_eq!(Some(listed[0].id.clone()), session.device_id());
    let mut conn = redis.conn().await;
    let index = index_entries(&redis).await.remove(0).0;
    let ttl: i64 = conn.pttl(&index).await.expect("pttl");
    assert!(ttl > month.as_millis() as i64 - 60_000, "the index lives as long: {ttl} ms");
    assert_eq!(store.revoke_all("ada").await.expect("revoke"), 1);
    assert!(store.load(session.token().expose()).await.expect("load").is_none());
}
