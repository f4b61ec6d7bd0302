//! Rotation of bound sessions' tokens: the grace window, racing requests on one old token, and
//! a retired token's reuse after the window, which revokes and reports.

mod support;

use std::time::Duration;

use redis_sessions::{Error, Login, Rotation, Session, SessionStore};

const GRACE: Duration = Duration::from_millis(250);

fn rotating_store(redis: &support::TestRedis, all: bool) -> SessionStore {
    let rotation = Rotation::default()
        .with_every(Duration::from_millis(300))
        .with_grace(GRACE)
        .with_revoke_user_on_reuse(all);
    redis.store_with(|c| c.with_rotation(rotation))
}

async fn logged_in(store: &SessionStore, user: &str) -> Session {
    let mut session = store.create().await.expect("create");
    session.insert("cart", &vec!["tea"]).expect("insert");
    store.save(&mut session).await.expect("save");
    store.login(&mut session, &Login::new(user).with_label("laptop")).await.expect("login");
    session
}

async fn load(store: &SessionStore, token: &str) -> Option<Session> {
    store.load(token).await.expect("load")
}

#[tokio::test]
async fn within_the_grace_window_the_old_token_loads_the_new_session_and_after_it_revokes() {
    let redis = support::any_server();
    let store = rotating_store(&redis, false);
    let mut session = logged_in(&store, "ada").await;
    let other = logged_in(&store, "ada").await;
    let old = session.token().clone();
    let new = store.rotate(&mut session).await.expect("rotate");
    assert_ne!(new, old);
    assert_eq!(session.token(), &new);

    let followed = load(&store, old.expose()).await.expect("within the window");
    assert_eq!(followed.token(), &new, "the old token leads to the new session");
    assert_eq!(followed.get::<Vec<String>>("cart").expect("get"), Some(vec!["tea".to_owned()]));
    assert_eq!(followed.device_id(), session.device_id(), "the same entry in the user's list");
    assert_eq!(store.user_sessions("ada").await.expect("list").len(), 2);

    tokio::time::sleep(GRACE + Duration::from_millis(100)).await;
    match store.load(old.expose()).await {
        Err(err @ Error::TokenReused { .. }) => {
            assert!(!err.to_string().contains("ada"), "the message holds no user id: {err}");
            let Error::TokenReused { user, revoked } = err else { unreachable!() };
            assert_eq!((user.as_str(), revoked), ("ada", 1));
        }
        other => panic!("reuse after the window must be reported, got {other:?}"),
    }
    assert!(load(&store, new.expose()).await.is_none(), "the session it led to is revoked");
    assert!(load(&store, other.token().expose()).await.is_some(), "the user's others stay");
    // Reported once: the stub is gone, so a thief cannot log the user out again and again.
    assert!(load(&store, old.expose()).await.is_none());
}

#[tokio::test]
async fn reuse_revokes_every_session_of_the_user_when_configured() {
    let redis = support::any_server();
    let store = rotating_store(&redis, true);
    let mut session = logged_in(&store, "ada").await;
    let others = [logged_in(&store, "ada").await, logged_in(&store, "ada").await];
    let bob = logged_in(&store, "bob").await;
    let old = session.token().clone();
    store.rotate(&mut session).await.expect("rotate");
    tokio::time::sleep(GRACE + Duration::from_millis(100)).await;
    let err = store.load(old.expose()).await.expect_err("reuse");
    assert!(matches!(err, Error::TokenReused { revoked: 3, .. }), "{err:?}");
    for gone in others.iter().chain([&session]) {
        assert!(load(&store, gone.token().expose()).await.is_none());
    }
    assert!(store.user_sessions("ada").await.expect("list").is_empty());
    assert!(load(&store, bob.token().expose()).await.is_some(), "another user is untouched");
}

/// Two requests carrying the same token both find it due and rotate it at once: both succeed,
/// and both end on one new token, which a third request with the old token also reaches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_rotations_of_one_token_end_on_one_new_token() {
    let redis = support::any_server();
    let store = rotating_store(&redis, false);
    for round in 0..20_i32 {
        let session = logged_in(&store, "ada").await;
        let old = session.token().expose().to_owned();
        let mut first = load(&store, &old).await.expect("live");
        let mut second = load(&store, &old).await.expect("live");
        second.insert("seen", &round).expect("an unsaved change");
        let (a, b) = tokio::join!(store.rotate(&mut first), store.rotate(&mut second));
        let (a, b) = (a.expect("first"), b.expect("second"));
        assert_eq!(a, b, "round {round}: one new token");
        assert_eq!(first.token(), second.token());
        assert!(second.is_changed(), "the unsaved change stays");
        store.save(&mut second).await.expect("save under the new token");
        let third = load(&store, &old).await.expect("in the window");
        assert_eq!(third.token(), &a);
        assert_eq!(third.get::<i32>("seen").expect("get"), Some(round));
        assert_eq!(store.user_sessions("ada").await.expect("list").len() as i32, round + 1);
    }
}

#[tokio::test]
async fn a_token_rotates_once_due_and_not_before() {
    let redis = support::any_server();
    let store = rotating_store(&redis, false);
    let session = logged_in(&store, "ada").await;
    let mut loaded = load(&store, session.token().expose()).await.expect("live");
    assert_eq!(store.rotate_if_due(&mut loaded).await.expect("not due"), None);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut loaded = load(&store, session.token().expose()).await.expect("live");
    let rotated = store.rotate_if_due(&mut loaded).await.expect("due").expect("rotated");
    assert_eq!(loaded.token(), &rotated);
    assert_eq!(store.rotate_if_due(&mut loaded).await.expect("just rotated"), None);

    // A session no login bound never rotates, and cannot be rotated.
    let mut anonymous = store.create().await.expect("create");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(store.rotate_if_due(&mut anonymous).await.expect("unbound"), None);
    assert!(matches!(store.rotate(&mut anonymous).await, Err(Error::Config(_))));
}

#[tokio::test]
async fn rotation_and_login_work_under_encryption() {
    let redis = support::any_server();
    let key = redis_sessions::EncryptionKey::from_bytes(1, [7; 32]);
    let store = redis.store_with(|c| {
        c.with_encryption(redis_sessions::Encryption::new(key)).with_rotation(Rotation::default())
    });
    let mut session = logged_in(&store, "ada").await;
    let old = session.token().clone();
    store.rotate(&mut session).await.expect("rotate");
    for token in [session.token(), &old] {
        let loaded = load(&store, token.expose()).await.expect("live");
        assert_eq!(loaded.get::<Vec<String>>("cart").expect("opens"), Some(vec!["tea".to_owned()]));
        assert_eq!(loaded.user_id(), Some("ada"), "the binding opens under the new key");
    }
    let listed = store.user_sessions("ada").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(Some(listed[0].id.clone()), session.device_id());
    store.rotate(&mut session).await.expect("rotates again");
    redis.assert_all_sealed(&store).await;
}

/// A logout that presents a cookie older than a rotation (the browser never got the new one,
/// say) logs the device out: the session the old token leads to is revoked, and the stub goes.
#[tokio::test]
async fn a_logout_with_a_retired_token_ends_the_session_it_leads_to() {
    let redis = support::any_server();
    let store = rotating_store(&redis, false);
    let mut session = logged_in(&store, "ada").await;
    let other = logged_in(&store, "ada").await;
    let old = session.token().clone();
    store.rotate(&mut session).await.expect("rotate");
    assert!(store.destroy_token(old.expose()).await.expect("logout"));
    assert!(load(&store, session.token().expose()).await.is_none(), "the new token is dead");
    assert!(load(&store, old.expose()).await.is_none(), "the stub is gone");
    let listed = store.user_sessions("ada").await.expect("list");
    assert_eq!((listed.len(), Some(listed[0].id.clone())), (1, other.device_id()));
}

/// A request that loaded the session before another rotated it saves within the grace window
/// to the session the rotation moved it to, and then holds the new token; after the window, its
/// save finds the session gone, and is not taken for a theft.
#[tokio::test]
async fn a_save_racing_a_rotation_lands_in_the_new_session_within_the_window() {
    let redis = support::any_server();
    let key = redis_sessions::EncryptionKey::from_bytes(1, [9; 32]);
    let sealed = redis.store_with(|c| {
        let rotation = Rotation::default().with_grace(GRACE);
        c.with_encryption(redis_sessions::Encryption::new(key)).with_rotation(rotation)
    });
    for store in [rotating_store(&redis, false), sealed] {
        let mut session = logged_in(&store, "ada").await;
        let mut slow = load(&store, session.token().expose()).await.expect("live");
        let new = store.rotate(&mut session).await.expect("rotate");
        slow.insert("coupon", "TEA10").expect("insert");
        store.save(&mut slow).await.expect("saved to the new session");
        assert_eq!(slow.token(), &new);
        let loaded = load(&store, new.expose()).await.expect("live");
        assert_eq!(loaded.get::<String>("coupon").expect("get").as_deref(), Some("TEA10"));

        let mut slower = load(&store, new.expose()).await.expect("live");
        store.rotate(&mut session).await.expect("rotate again");
        tokio::time::sleep(GRACE + Duration::from_millis(100)).await;
        slower.insert("coupon", "TEA20").expect("insert");
        assert!(matches!(store.save(&mut slower).await, Err(Error::SessionGone)));
        let live = load(&store, session.token().expose()).await.expect("not revoked");
        assert_eq!(live.get::<String>("coupon").expect("get").as_deref(), Some("TEA10"));
    }
}

/// A logout by a request that loaded the session before another rotated it: the stub it finds
/// under its key leads to the session, which is revoked; deleting the stub alone would leave
/// the session logged in under the new token.
#[tokio::test]
async fn a_logout_racing_a_rotation_still_logs_the_device_out() {
    let redis = support::any_server();
    let store = rotating_store(&redis, false);
    let mut session = logged_in(&store, "ada").await;
    let stale = load(&store, session.token().expose()).await.expect("live");
    store.rotate(&mut session).await.expect("rotate");
    assert!(store.destroy(&stale).await.expect("logout"));
    assert!(load(&store, session.token().expose()).await.is_none(), "the new token is dead");
    assert!(store.user_sessions("ada").await.expect("list").is_empty());
    assert!(redis.keys().await.is_empty(), "no stub, no index left");
}

#[test]
fn a_grace_window_as_long_as_the_rotation_period_is_refused() {
    let rotation = Rotation::default().with_every(Duration::from_secs(30));
    let config = redis_sessions::Config::default().with_rotation(rotation);
    assert!(matches!(config.validate(), Err(Error::Config(why)) if why.contains("grace")));
}
