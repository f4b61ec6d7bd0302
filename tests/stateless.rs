//! Stateless sessions: the demo's own handlers on signed cookies, the tokens that must be
//! refused, key rotation, the cookie's size limit, and what a request costs Redis.
#![cfg(feature = "stateless")]

#[path = "../demo/src/app/mod.rs"]
#[allow(dead_code)]
mod demo;
mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use redis_sessions::stateless::{JwtKey, Refused, StatelessSessions};
use redis_sessions::web::{SessionLayer, WebSession};
use reqwest::Client;
use support::browser::{browser_named, cookie_value, login, page, plain, serve, session_cookie};
use support::stateless::{cookie_with, hs256, logged_in_as, sessions, SECRET};

/// The demo's routes over `sessions`.
async fn demo_on(sessions: &StatelessSessions) -> String {
    serve(demo::routes(SessionLayer::stateless(sessions.clone()).with_cookie(plain()))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_signed_cookies_with_the_same_handlers_and_redis_holds_no_session() {
    let redis = support::any_server();
    let sessions = sessions(redis.store(), hs256("k1")).await;
    let base = demo_on(&sessions).await;
    let laptop = browser_named("Firefox on a laptop");
    laptop.post(format!("{base}/cart")).form(&[("item", "tea")]).send().await.expect("post");
    assert!(page(&laptop, &base).await.contains("tea"), "the cart is in the cookie");

    // Login: a welcome flash, shown once; the cart kept.
    login(&laptop, &base, "ada").await;
    let first = page(&laptop, &base).await;
    assert!(first.contains("Welcome, ada.") && first.contains("tea"), "{first}");
    assert!(!page(&laptop, &base).await.contains("Welcome, ada."), "a flash shows once");

    // The devices page lists the login; a second device shows up there too.
    let phone = browser_named("Safari on a phone");
    login(&phone, &base, "ada").await;
    let devices = page(&laptop, &format!("{base}/sessions")).await;
    assert!(devices.contains("Firefox on a laptop") && devices.contains("Safari on a phone"));
    assert!(devices.contains("(this device)"), "{devices}");

    // Redis holds no session: only the user's device list (and no revocation yet).
    let keys = redis.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with(":stateless"), "{keys:?}");

    // Log out everywhere else: the phone is out, the laptop stays in, and in the list.
    laptop.post(format!("{base}/sessions/revoke-others")).send().await.expect("post");
    assert!(!logged_in_as(&phone, &base, "ada").await, "the phone is logged out");
    assert!(logged_in_as(&laptop, &base, "ada").await, "the laptop stays");
    let devices = page(&laptop, &format!("{base}/sessions")).await;
    assert!(devices.contains("(this device)") && !devices.contains("Safari"), "{devices}");
    // An id the user's list does not hold revokes nothing, and adds nothing to the set that
    // every process mirrors.
    let form = [("id", "AAAAAAAAAAA")];
    laptop.post(format!("{base}/sessions/revoke")).form(&form).send().await.expect("post");
    let mut conn = redis.conn().await;
    let revocations = format!("{}stateless:revoked", redis.prefix);
    let members: Vec<String> =
        redis::cmd("ZRANGE").arg(&revocations).arg(0).arg(-1).query_async(&mut conn).await.unwrap();
    assert_eq!(members.len(), 1, "the phone's user revocation alone: {members:?}");
    assert!(members[0].starts_with("u:"), "{members:?}");

    // Logout: the cookie is cleared, and replaying it opens nothing.
    let before = laptop.get(&base).send().await.expect("get");
    assert!(session_cookie(&before).is_none(), "a page view that changes nothing sets no cookie");
    let response = laptop.post(format!("{base}/logout")).send().await.expect("logout");
    let cleared = session_cookie(&response).expect("a cleared cookie");
    assert!(cookie_value(&cleared).is_empty(), "{cleared}");
}

/// Every command the server ran since the last `CONFIG RESETSTAT` but the feed's `PING`s and
/// the test's own `INFO` and `CONFIG`: (command, calls).
async fn commands_run(redis: &support::TestRedis) -> Vec<(String, i64)> {
    let mut conn = redis.conn().await;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    let lines = info.lines().filter_map(|line| line.strip_prefix("cmdstat_"));
    let calls = lines.filter_map(|line| {
        let (name, rest) = line.split_once(':')?;
        let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
        Some((name.to_owned(), calls))
    });
    calls
        .filter(|(name, _)| !["ping", "info", "config|resetstat"].contains(&name.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_a_logged_in_stateless_session_sends_redis_nothing() {
    let redis = support::own_server(&[]);
    let sessions = sessions(redis.store(), hs256("k1")).await;
    let base = demo_on(&sessions).await;
    let laptop = browser_named("laptop");
    login(&laptop, &base, "ada").await;
    laptop.post(format!("{base}/cart")).form(&[("item", "tea")]).send().await.expect("post");
    redis.reset_stats().await;
    let started = std::time::Instant::now();
    for _ in 0..50 {
        assert!(logged_in_as(&laptop, &base, "ada").await);
        laptop.post(format!("{base}/cart")).form(&[("item", "tea")]).send().await.expect("post");
    }
    // What ran is the feed's heartbeat alone: one script that publishes, four times a second.
    let ran = commands_run(&redis).await;
    let calls = |name: &str| ran.iter().find(|(n, _)| n == name).map_or(0, |(_, calls)| *calls);
    let others: Vec<_> = ran.iter().filter(|(n, _)| n != "evalsha" && n != "publish").collect();
    assert_eq!(others, Vec::<&(String, i64)>::new(), "50 page views and 50 changes");
    assert_eq!(calls("evalsha"), calls("publish"), "{ran:?}");
    let beats = started.elapsed().as_millis() as i64 / 250 + 2;
    assert!(calls("evalsha") <= beats, "heartbeats only, not 100 requests: {ran:?}");
    // A logout writes: the revocation script (and the user's list).
    laptop.post(format!("{base}/logout")).send().await.expect("logout");
    assert!(redis.script_calls().await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_stay_far_under_the_limit_for_the_demo_and_sealing_adds_little() {
    let redis = support::any_server();
    let mut sizes = Vec::new();
    for (encrypted, store) in [(false, redis.store()), (true, redis.encrypted_store())] {
        let base = demo_on(&sessions(store, hs256("k1")).await).await;
        let laptop = browser_named("Firefox on a laptop");
        let add =
            |item: &'static str| laptop.post(format!("{base}/cart")).form(&[("item", item)]).send();
        let first = cookie_value(&session_cookie(&add("Darjeeling").await.unwrap()).unwrap());
        login(&laptop, &base, "ada").await;
        add("Sencha").await.unwrap();
        let third = add("Earl Grey").await.unwrap();
        let logged_in = cookie_value(&session_cookie(&third).unwrap());
        println!(
            "cookie value, {}: anonymous with one cart line {} bytes; logged in with three {} bytes",
            if encrypted { "sealed" } else { "signed" },
            first.len(),
            logged_in.len()
        );
        assert!(logged_in.len() < 1024, "{}", logged_in.len());
        sizes.push(logged_in.len());
    }
    // Sealing adds its nonce, tag and key id (about 30 bytes, then base64url twice).
    assert!(sizes[1] > sizes[0] && sizes[1] < sizes[0] + 100, "{sizes:?}");
}

/// A JWT with `header` and `claims` as given, signed with `secret` under HS256 (or not at all).
fn forge(header: &serde_json::Value, claims: &serde_json::Value, secret: Option<&[u8]>) -> String {
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let message = format!("{}.{}", part(header), part(claims));
    let signature = match secret {
        Some(secret) => {
            let key = EncodingKey::from_secret(secret).expect("key");
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("sign")
        }
        None => String::new(),
    };
    format!("{message}.{signature}")
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_expired_unknown_key_alg_none_and_swapped_algorithm_tokens_are_refused() {
    let redis = support::any_server();
    let sessions = sessions(redis.store(), hs256("k1")).await;
    let base = demo_on(&sessions).await;
    let good = cookie_with(&base, "tea").await;
    assert_eq!(sessions.verify(&good).map(|v| v.kid), Ok("k1".to_owned()));
    let claims = claims_of(&good);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now = now.as_secs();

    // Tampered: one character of the payload changed; a claim changed and the rest kept.
    let mut tampered = good.clone().into_bytes();
    let at = good.find('.').expect("a dot") + 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert!(matches!(sessions.verify(&tampered), Err(Refused::Signature | Refused::Malformed)));
    let (header, sig) = (good.split('.').next().unwrap(), good.rsplit('.').next().unwrap());
    let mut longer = claims.clone();
    longer["exp"] = serde_json::json!(now + 86_400 * 365);
    let spliced = format!("{header}.{}.{sig}", URL_SAFE_NO_PAD.encode(longer.to_string()));
    assert_eq!(sessions.verify(&spliced), Err(Refused::Signature));

    // Expired: signed with the right key, `exp` an hour ago (past the 30 s skew).
    let hs = serde_json::json!({"alg": "HS256", "kid": "k1", "typ": "JWT"});
    let mut expired = claims.clone();
    expired["exp"] = serde_json::json!(now - 3600);
    assert_eq!(sessions.verify(&forge(&hs, &expired, Some(SECRET))), Err(Refused::Expired));
    // The same, re-signed but valid, is accepted: the forgery helper signs as the crate does.
    assert!(sessions.verify(&forge(&hs, &claims, Some(SECRET))).is_ok());
    // Issued an hour in the future.
    let mut future = claims.clone();
    future["iat"] = serde_json::json!(now + 3600);
    assert_eq!(sessions.verify(&forge(&hs, &future, Some(SECRET))), Err(Refused::Future));

    // A key id the ring does not hold, or none at all.
    let other = serde_json::json!({"alg": "HS256", "kid": "k9", "typ": "JWT"});
    assert_eq!(sessions.verify(&forge(&other, &claims, Some(SECRET))), Err(Refused::UnknownKey));
    let no_kid = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    assert_eq!(sessions.verify(&forge(&no_kid, &claims, Some(SECRET))), Err(Refused::UnknownKey));

    // alg none, with or without a signature.
    let none = serde_json::json!({"alg": "none", "kid": "k1", "typ": "JWT"});
    assert_eq!(sessions.verify(&forge(&none, &claims, None)), Err(Refused::Malformed));
    assert_eq!(sessions.verify(&forge(&none, &claims, Some(SECRET))), Err(Refused::Malformed));

    // Algorithm swapped: an Ed25519 key's id, signed with HMAC keyed by its public key (what a
    // verifier that trusted the header's alg would accept).
    let pkcs8 = JwtKey::generate_ed25519().expect("a key");
    let ed = sessions_ed(&redis, &pkcs8).await;
    let ed_base = demo_on(&ed).await;
    let ed_good = cookie_with(&ed_base, "tea").await;
    assert!(ed.verify(&ed_good).is_ok());
    let public = ring_public(&pkcs8);
    let swapped = serde_json::json!({"alg": "HS256", "kid": "ed1", "typ": "JWT"});
    let forged = forge(&swapped, &claims_of(&ed_good), Some(&public));
    assert_eq!(ed.verify(&forged), Err(Refused::Algorithm));

    // Through the layer, a refused cookie is no session: an empty cart, and no error.
    let client = Client::new();
    let page = client.get(&base).header("cookie", format!("session={tampered}")).send().await;
    let page = page.expect("get").text().await.expect("body");
    assert!(page.contains("<p class=\"muted\">Empty.</p>"), "{page}");
}

async fn sessions_ed(redis: &support::TestRedis, pkcs8: &[u8]) -> StatelessSessions {
    sessions(redis.store(), JwtKey::ed25519("ed1", pkcs8).expect("ed key")).await
}

/// The raw public key of an Ed25519 PKCS#8 document (its last 32 bytes, in the v2 form ring
/// writes).
fn ring_public(pkcs8: &[u8]) -> Vec<u8> {
    pkcs8[pkcs8.len() - 32..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_old_cookies_stay_valid_and_new_ones_use_the_new_key() {
    let redis = support::any_server();
    let before = sessions(redis.store(), hs256("2026-11")).await;
    let old_cookie = cookie_with(&demo_on(&before).await, "tea").await;

    let new_key = JwtKey::hs256("2026-12", b"another secret, also 32 bytes long").expect("key");
    let after = sessions(redis.store(), new_key).await.with_previous_key(hs256("2026-11")).unwrap();
    let base = demo_on(&after).await;
    assert_eq!(after.verify(&old_cookie).map(|v| v.kid), Ok("2026-11".to_owned()));
    let client = Client::new();
    let response =
        client.get(&base).header("cookie", format!("session={old_cookie}")).send().await.unwrap();
    assert!(response.text().await.unwrap().contains("tea"), "the old cookie opens its cart");
    // A cookie issued now is signed with the new key, and the old key alone refuses it.
    let new_cookie = cookie_with(&base, "milk").await;
    let header = jsonwebtoken::decode_header(&new_cookie).expect("a header");
    assert_eq!(header.kid.as_deref(), Some("2026-12"));
    assert_eq!(before.verify(&new_cookie), Err(Refused::UnknownKey));
    // Two keys with one id are refused.
    assert!(after.clone().with_previous_key(hs256("2026-12")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_over_the_limit_is_an_error_before_the_response_and_sets_nothing() {
    let redis = support::any_server();
    let sessions = sessions(redis.store(), hs256("k1")).await;
    let base = demo_on(&sessions).await;
    let client = browser_named("test");
    let big = "x".repeat(3000); // base64 twice over: about 5.3 KB of cookie
    let response = client.post(format!("{base}/cart")).form(&[("item", &big)]).send().await;
    let response = response.expect("post");
    assert_eq!(response.status(), 500);
    assert!(session_cookie(&response).is_none(), "no cookie set");
    assert_eq!(response.text().await.unwrap(), "The session would grow over its limit.");

    // The error a handler's own code sees names the limit and the sizes.
    let store = redis.store();
    let small = StatelessSessions::new(store, hs256("k1")).unwrap().with_max_cookie_bytes(600);
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|session: WebSession| async move {
                session.insert("note", &"y".repeat(400)).await.expect("insert");
                "ok"
            }),
        )
        .layer(SessionLayer::stateless(small).with_cookie(plain()));
    let base = serve(app).await;
    let response = Client::new().get(&base).send().await.expect("get");
    assert_eq!(response.status(), 500, "over 600 bytes");
    assert_eq!(response.text().await.unwrap(), "The session would grow over its limit.");
    let error = redis_sessions::Error::TooLarge { limit: "cookie", size: 700, max: 600 };
    assert_eq!(error.to_string(), "cookie limit exceeded: 700 > 600");
}
