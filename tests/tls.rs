//! TLS (rustls) against redis-server with `--tls-port` and certificates made at test time.

mod support;

use std::time::Duration;

use redis_sessions::{Error, SessionStore};
use support::chain;
use support::tls::{tls_server, Certificates};

#[tokio::test]
async fn the_whole_api_works_over_tls_with_a_custom_ca() {
    let certs = Certificates::new();
    let redis = tls_server(&certs, false);
    let store = SessionStore::new(redis.tls_config(certs.ca_only())).expect("store");
    let tokens = support::workload(&store).await;
    assert_eq!(tokens.len(), 10);
    let mut session = store.create().await.expect("create");
    session.insert("over", &"tls").expect("insert");
    store.save(&mut session).await.expect("save");
    let loaded = store.load(session.token().expose()).await.expect("load").expect("live");
    assert_eq!(loaded.get::<String>("over").expect("decode").as_deref(), Some("tls"));
}

#[tokio::test]
async fn mutual_tls_works_with_the_client_certificate_and_refuses_without_it() {
    let certs = Certificates::new();
    let redis = tls_server(&certs, true);

    let with_cert = SessionStore::new(redis.tls_config(certs.with_client_cert())).expect("store");
    support::workload(&with_cert).await;

    let without = SessionStore::new(redis.tls_config(certs.ca_only())).expect("store");
    let started = std::time::Instant::now();
    let err = without.create().await.expect_err("the server wants a client certificate");
    // A misconfiguration, not an outage: no 503, no retry. Display alone names the cause.
    assert!(matches!(err, Error::Tls(_)) && !err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("CertificateRequired"), "clear error: {err}");
    assert!(started.elapsed() < Duration::from_secs(3), "refused promptly");
}

#[tokio::test]
async fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let certs = Certificates::new();
    let other = Certificates::new();
    let redis = tls_server(&certs, false);

    for tls in [other.ca_only(), Default::default()] {
        let store = SessionStore::new(redis.tls_config(tls)).expect("store");
        let err = store.create().await.expect_err("untrusted server");
        let text = chain(&err);
        assert!(text.contains("invalid peer certificate"), "clear error: {text}");
        assert!(matches!(err, Error::Tls(_)) && !err.is_unavailable(), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains("invalid peer certificate"), "the cause in Display: {shown}");
    }
}

#[test]
fn a_client_key_that_does_not_fit_its_certificate_is_refused_when_the_store_is_built() {
    let (certs, other) = (Certificates::new(), Certificates::new());
    let read = |p: &std::path::PathBuf| std::fs::read_to_string(p).expect("read pem");
    let mismatched = certs.ca_only().with_client_cert(
        redis_sessions::Pem::Inline(read(&certs.client_crt)),
        redis_sessions::Pem::Inline(read(&other.client_key)),
    );
    let config = redis_sessions::Config::from_url("rediss://127.0.0.1:1").with_tls(mismatched);
    let err = SessionStore::new(config).expect_err("a key of another certificate");
    assert!(matches!(&err, Error::Config(why) if why.contains("does not fit")), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("PRIVATE KEY"), "no key material: {err:?}");
    let config =
        redis_sessions::Config::from_url("rediss://127.0.0.1:1").with_tls(certs.with_client_cert());
    assert!(SessionStore::new(config).is_ok(), "the right key");
}

#[test]
fn certificate_checks_cannot_be_switched_off_by_url() {
    // The URL parser drops tabs and newlines anywhere and trims spaces and control characters
    // at the ends: each of these means `#insecure` to redis-rs.
    let insecure = [
        "rediss://127.0.0.1:6380/#insecure",
        "rediss://127.0.0.1:6380/#insecure ",
        "rediss://127.0.0.1:6380/#insec\nure",
        "rediss://127.0.0.1:6380/#in\tsecure",
        "rediss://127.0.0.1:6380/#insecure\r\n",
        " rediss://127.0.0.1:6380/#insecure",
    ];
    for url in insecure {
        let err = SessionStore::new(redis_sessions::Config::from_url(url)).expect_err(url);
        assert!(matches!(&err, Error::Config(why) if why.contains("insecure")), "{url:?}: {err:?}");
        // A cluster's seeds are checked alike, whichever of them says it.
        let seeds = ["rediss://127.0.0.1:7000", url];
        let err = SessionStore::new(redis_sessions::Config::for_cluster(seeds)).expect_err(url);
        assert!(matches!(&err, Error::Config(why) if why.contains("insecure")), "{url:?}: {err:?}");
    }
    // Any other fragment is refused as well, with a cause that names no part of the URL.
    let url = "rediss://:hunter2@127.0.0.1:6380/#INSECURE";
    let err = SessionStore::new(redis_sessions::Config::from_url(url)).expect_err("fragment");
    assert!(matches!(&err, Error::Config(why) if why.contains("fragment")), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

#[test]
fn bad_certificate_settings_are_config_errors() {
    let missing = redis_sessions::Pem::File("/nonexistent/ca.crt".into());
    let config = redis_sessions::Config::from_url("rediss://127.0.0.1:1")
        .with_tls(redis_sessions::TlsConfig::default().with_ca_cert(missing));
    let err = SessionStore::new(config).expect_err("unreadable CA");
    assert!(matches!(&err, Error::Config(why) if why.contains("/nonexistent/ca.crt")), "{err:?}");

    let plain = redis_sessions::Config::from_url("redis://127.0.0.1:1").with_tls(
        redis_sessions::TlsConfig::default().with_ca_cert(redis_sessions::Pem::Inline("x".into())),
    );
    assert!(matches!(SessionStore::new(plain), Err(Error::Config(_))));
}
