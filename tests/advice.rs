//! The start-up check of the server's eviction and persistence settings.

mod support;

use redis_sessions::SessionStore;

#[tokio::test]
async fn risky_settings_are_reported_and_safe_ones_are_not() {
    let risky = support::own_server(&["--maxmemory-policy", "allkeys-lru", "--appendonly", "no"]);
    let advice = risky.store().check_server().await.expect("check");
    assert_eq!(advice.maxmemory_policy.as_deref(), Some("allkeys-lru"));
    assert_eq!(advice.warnings.len(), 2, "{:?}", advice.warnings);
    assert!(advice.warnings[0].contains("allkeys-lru"));
    assert!(advice.warnings[1].contains("persistence is off"));

    let safe = support::own_server(&["--maxmemory-policy", "noeviction", "--appendonly", "yes"]);
    let advice = SessionStore::connect(safe.config()).await.expect("connect").check_server().await;
    let advice = advice.expect("check");
    assert_eq!(advice.appendonly.as_deref(), Some("yes"));
    assert!(advice.warnings.is_empty(), "{:?}", advice.warnings);
}

#[tokio::test]
async fn a_server_that_blocks_config_is_checked_quietly() {
    // As managed Redis does: CONFIG is renamed away.
    let managed = support::own_server(&["--rename-command", "CONFIG", ""]);
    let store = SessionStore::connect(managed.config()).await.expect("connect works anyway");
    let advice = store.check_server().await.expect("no error");
    assert_eq!(advice.maxmemory_policy, None);
    assert!(advice.warnings.is_empty());
    store.create().await.expect("and the store works");
}

#[tokio::test]
async fn connect_fails_clearly_when_nothing_listens() {
    let port = redis_test::utils::get_random_available_port();
    let config = redis_sessions::Config::from_url(format!("redis://127.0.0.1:{port}"));
    let err = SessionStore::connect(config).await.expect_err("nothing there");
    assert!(err.is_unavailable(), "{err:?}");
}
