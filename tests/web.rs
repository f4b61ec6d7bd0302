//! The axum layer, through the demo app, over real HTTP with a cookie jar, against real Redis.
#![cfg(feature = "axum")]

#[path = "../demo/src/app/mod.rs"]
#[allow(dead_code)]
mod demo;
mod support;

use redis_sessions::web::{CookieConfig, SessionLayer};
use support::browser::{self, browser, cookie_value, login, page, plain, session_cookie};

/// The demo app on a free port; its base URL.
async fn serve(redis: &support::TestRedis, cookie: CookieConfig) -> String {
    serve_store(redis.store(), cookie).await
}

/// The demo app over `store` on a free port; its base URL.
async fn serve_store(store: redis_sessions::SessionStore, cookie: CookieConfig) -> String {
    browser::serve(demo::routes(SessionLayer::new(store).with_cookie(cookie))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_who_stores_nothing_gets_no_cookie_and_no_redis_key() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    let (client, _) = browser();
    for path in ["/", "/sessions", "/"] {
        let response = client.get(format!("{base}{path}")).send().await.expect("get");
        assert!(response.status().is_success());
        assert!(response.headers().get("set-cookie").is_none(), "{path} set a cookie");
    }
    assert!(redis.keys().await.is_empty(), "no Redis key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_has_the_secure_attributes() {
    let redis = support::any_server();
    let base = serve(&redis, CookieConfig::default()).await;
    let (client, _) = browser();
    let response = login(&client, &base, "ada").await;
    let set_cookie = session_cookie(&response).expect("login sets the cookie");
    assert!(set_cookie.starts_with("__Host-session="), "{set_cookie}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
    }
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    assert_eq!(
        response.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    // The cookie's value is a token, and Redis keys hold no trace of it.
    let token = cookie_value(&set_cookie);
    assert_eq!(token.len(), redis_sessions::TOKEN_LEN);
    assert!(redis.keys().await.iter().all(|k| !k.contains(&token[4..])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_regenerates_so_a_cookie_from_before_no_longer_works() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    let (client, _) = browser();
    // Before login: the visitor has a session (a cart), hence a cookie an attacker could plant.
    let response =
        client.post(format!("{base}/cart")).form(&[("item", "tea")]).send().await.expect("cart");
    let before = cookie_value(&session_cookie(&response).expect("cookie before login"));
    let response = login(&client, &base, "ada").await;
    let after = cookie_value(&session_cookie(&response).expect("login sets a new cookie"));
    assert_ne!(before, after);

    let (fixated, _) = browser();
    let old =
        fixated.get(&base).header("cookie", format!("session={before}")).send().await.expect("get");
    let old = old.text().await.expect("body");
    assert!(old.contains("Not logged in") && !old.contains("tea"), "the old cookie opens nothing");
    let new = page(&client, &base).await;
    assert!(
        new.contains("Logged in as <b>ada</b>") && new.contains("tea"),
        "the new one opens it all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_encryption_on_the_demo_works_the_same_and_redis_holds_no_value_in_clear() {
    let redis = support::any_server();
    let store = redis.encrypted_store();
    let base = serve_store(store.clone(), plain()).await;
    let (client, _) = browser();
    client.post(format!("{base}/cart")).form(&[("item", "Gyokuro")]).send().await.expect("cart");
    login(&client, &base, "hamilton").await; // regenerate, then a flash message
    let shop = page(&client, &base).await;
    assert!(shop.contains("Logged in as <b>hamilton</b>") && shop.contains("Gyokuro"), "{shop}");
    assert!(shop.contains("Welcome, hamilton."), "the flash message opens: {shop}");
    assert!(!page(&client, &base).await.contains("Welcome"), "shown once");
    let remove = client.post(format!("{base}/cart/remove")).form(&[("item", "Gyokuro")]);
    remove.send().await.expect("remove");
    assert!(page(&client, &base).await.contains("Gyokuro left your cart."));
    for (_, fields) in redis.contents().await {
        for (_, value) in fields {
            assert!(
                !support::contains(&value, "hamilton") && !support::contains(&value, "Gyokuro")
            );
        }
    }
    redis.assert_all_sealed(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_message_is_shown_on_exactly_one_page_view_even_when_requests_race() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    for round in 0..10 {
        let (client, _) = browser();
        login(&client, &base, "ada").await;
        let views = (0..2).map(|_| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move { page(&client, &base).await })
        });
        let views = futures::future::join_all(views).await;
        let shown =
            views.into_iter().filter(|v| v.as_ref().expect("view").contains("Welcome")).count();
        assert_eq!(shown, 1, "round {round}: shown on exactly one of two racing views");
        assert!(!page(&client, &base).await.contains("Welcome"), "and never again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_cart_posts_all_land() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    let (client, _) = browser();
    login(&client, &base, "ada").await;
    let posts = (0..20).map(|i| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let response = client
                .post(format!("{base}/cart"))
                .form(&[("item", format!("item-{i:02}"))])
                .send();
            let response = response.await.expect("post");
            (response.status(), session_cookie(&response))
        })
    });
    for reply in futures::future::join_all(posts).await {
        let (status, cookie) = reply.expect("task");
        assert!(status.is_redirection());
        assert_eq!(cookie, None, "a save under the same token sets no cookie");
    }
    let cart = page(&client, &base).await;
    for i in 0..20 {
        assert!(cart.contains(&format!("item-{i:02}")), "item-{i:02} lost: {cart}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_cart_line_returns_its_value_to_the_handler() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    let (client, _) = browser();
    for item in ["Sencha", "Sencha", "Earl Grey"] {
        client.post(format!("{base}/cart")).form(&[("item", item)]).send().await.expect("add");
    }
    let remove = client.post(format!("{base}/cart/remove")).form(&[("item", "Sencha")]);
    assert!(remove.send().await.expect("remove").status().is_redirection());
    // The handler flashes the value `WebSession::remove` returned.
    let shop = page(&client, &base).await;
    assert!(shop.contains("<li>Sencha left your cart.</li>"), "{shop}");
    assert!(shop.contains("2 items"), "one of three lines gone: {shop}");
    let gone = client.post(format!("{base}/cart/remove")).form(&[("item", "Darjeeling")]);
    gone.send().await.expect("remove");
    let shop = page(&client, &base).await;
    assert!(!shop.contains("left your cart"), "nothing removed, nothing said: {shop}");
    assert!(shop.contains("2 items"), "{shop}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remember_me_gives_a_persistent_cookie_and_the_session_its_own_timeouts() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    for remember in [false, true] {
        let (client, _) = browser();
        let mut form = vec![("username", "ada"), ("password", "pw")];
        if remember {
            form.push(("remember", "on"));
        }
        let response = client.post(format!("{base}/login")).form(&form).send().await;
        let set_cookie = session_cookie(&response.expect("login")).expect("a cookie");
        let max_age = set_cookie.split("; ").find_map(|p| p.strip_prefix("Max-Age="));
        let max_age: Option<i64> = max_age.map(|secs| secs.parse().expect("seconds"));
        let meta = page(&client, &format!("{base}/sessions")).await;
        match remember {
            // The month to the session's own deadline, give or take the request.
            true => {
                assert!(max_age.is_some_and(|s| (30 * 86_400 - s).abs() < 60), "{set_cookie}");
                assert!(meta.contains("remembered"), "{meta}");
            }
            false => {
                assert_eq!(max_age, None, "a browser-session cookie: {set_cookie}");
                assert!(!meta.contains("remembered"), "{meta}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_destroys_the_session_and_the_old_cookie_loads_nothing() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    let (client, _) = browser();
    let cookie =
        cookie_value(&session_cookie(&login(&client, &base, "ada").await).expect("cookie"));
    let response = client.post(format!("{base}/logout")).send().await.expect("logout");
    let cleared = session_cookie(&response).expect("logout clears the cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(redis.keys().await.is_empty(), "the session is gone from Redis");
    let (replay, _) = browser();
    let old =
        replay.get(&base).header("cookie", format!("session={cookie}")).send().await.expect("get");
    assert!(old.text().await.expect("body").contains("Not logged in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cookie_is_left_alone_and_sessions_shows_only_metadata() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    let (client, _) = browser();
    let stale = "A".repeat(redis_sessions::TOKEN_LEN);
    let response =
        client.get(&base).header("cookie", format!("session={stale}")).send().await.expect("get");
    // Clearing it could erase the cookie a concurrent login is setting.
    assert!(session_cookie(&response).is_none(), "a stale cookie is not touched");
    assert_eq!(response.headers().get("vary").and_then(|v| v.to_str().ok()), Some("cookie"));
    assert_eq!(
        response.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("private")
    );

    login(&client, &base, "ada-lovelace").await;
    page(&client, &base).await; // shows the welcome, the one flash message naming the user
    let meta = page(&client, &format!("{base}/sessions")).await;
    assert!(meta.contains("idle TTL") && meta.contains("absolute deadline"), "{meta}");
    assert!(!meta.contains("ada-lovelace"), "metadata only, no attributes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_only_requests_keep_every_pending_message() {
    let redis = support::any_server();
    let base = serve(&redis, plain()).await;
    let (client, _) = browser();
    // A login without a password only flashes; each such request must keep the earlier ones.
    for _ in 0..3 {
        let response =
            client.post(format!("{base}/login")).form(&[("username", "x"), ("password", "")]);
        assert!(response.send().await.expect("post").status().is_redirection());
    }
    let shown = page(&client, &base).await.matches("Username and password, please.").count();
    assert_eq!(shown, 3);
    assert_eq!(
        page(&client, &base).await.matches("Username and password").count(),
        0,
        "and only once"
    );
}

/// A handler that logs out and says so.
async fn logout_with_message(
    session: redis_sessions::web::WebSession,
) -> Result<&'static str, redis_sessions::Error> {
    session.destroy().await?;
    session.flash("You have been logged out.").await?;
    Ok("bye")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_after_destroy_reaches_the_next_page_in_a_fresh_session() {
    let redis = support::any_server();
    let store = redis.store();
    let app = demo::routes(SessionLayer::new(store.clone()).with_cookie(plain())).merge(
        axum::Router::new()
            .route("/bye", axum::routing::post(logout_with_message))
            .layer(redis_sessions::web::SessionLayer::new(store).with_cookie(plain())),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (client, _) = browser();
    let old = cookie_value(&session_cookie(&login(&client, &base, "ada").await).expect("cookie"));
    let response = client.post(format!("{base}/bye")).send().await.expect("logout");
    let new = cookie_value(&session_cookie(&response).expect("a fresh session for the message"));
    assert_ne!(old, new);
    let next = page(&client, &base).await;
    assert!(next.contains("You have been logged out.") && next.contains("Not logged in"), "{next}");
    let (replay, _) = browser();
    let old_page =
        replay.get(&base).header("cookie", format!("session={old}")).send().await.expect("get");
    assert!(
        old_page.text().await.expect("body").contains("Not logged in"),
        "the old session is gone"
    );
}

// Flash messages through the layer: pushed once, popped only by a handler that reads them.

async fn flash_two(
    session: redis_sessions::web::WebSession,
) -> Result<&'static str, redis_sessions::Error> {
    session.flash("a").await?;
    session.flash("b").await?;
    session.insert("x", &1).await?;
    Ok("queued")
}

async fn touch(session: redis_sessions::web::WebSession) -> Result<String, redis_sessions::Error> {
    Ok(format!("{:?}", session.get::<i32>("x").await?))
}

async fn debug(session: redis_sessions::web::WebSession) -> Result<String, redis_sessions::Error> {
    session.insert("x", &2).await?;
    Ok(format!("{session:?}"))
}

async fn read(session: redis_sessions::web::WebSession) -> Result<String, redis_sessions::Error> {
    Ok(session.flashes::<String>().await?.join(","))
}

async fn wrong_type(session: redis_sessions::web::WebSession) -> &'static str {
    let _ = session.flash_now("now-only").await;
    match session.flashes::<u64>().await {
        Ok(_) => "decoded",
        Err(_) => "refused",
    }
}

async fn too_big(session: redis_sessions::web::WebSession) -> &'static str {
    match session.flash(&"x".repeat(100_000)).await {
        Err(redis_sessions::Error::TooLarge { .. }) => "too large",
        _ => "accepted",
    }
}

async fn note(
    session: redis_sessions::web::WebSession,
) -> Result<&'static str, redis_sessions::Error> {
    session.flash("noted").await?; // queued: pushed by the layer after the handler
    Ok("noted")
}

/// Empties the session: `cleared` and whether it is empty now, with its fingerprint.
async fn empty(session: redis_sessions::web::WebSession) -> Result<String, redis_sessions::Error> {
    let before = session.is_empty().await?;
    session.clear().await?;
    let print = session.fingerprint().await?.unwrap_or_default();
    Ok(format!("{before} {} {}", session.is_empty().await?, print.len()))
}

async fn serve_flash_routes(redis: &support::TestRedis) -> String {
    serve_flash_routes_with(redis, |layer| layer).await
}

async fn serve_flash_routes_with(
    redis: &support::TestRedis,
    adjust: impl FnOnce(redis_sessions::web::SessionLayer) -> redis_sessions::web::SessionLayer,
) -> String {
    use axum::routing::{get, post};
    let layer = redis_sessions::web::SessionLayer::new(redis.store()).with_cookie(plain());
    let app = axum::Router::new()
        .route("/empty", post(empty))
        .route("/flash", post(flash_two))
        .route("/note", post(note))
        .route("/touch", get(touch))
        .route("/debug", get(debug))
        .route("/read", get(read))
        .route("/wrong", get(wrong_type))
        .route("/big", post(too_big))
        .layer(adjust(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_messages_are_pushed_once_and_popped_only_when_read() {
    let redis = support::own_server(&[]);
    let base = serve_flash_routes(&redis).await;
    let (warm, _) = browser();
    warm.post(format!("{base}/flash")).send().await.expect("warm-up");
    page(&warm, &format!("{base}/read")).await; // every script loaded: no NOSCRIPT below

    let (client, _) = browser();
    let before = redis.script_calls().await;
    assert_eq!(client.post(format!("{base}/flash")).send().await.expect("post").status(), 200);
    assert_eq!(redis.script_calls().await - before, 3, "create, save, one push for two messages");
    // A pop is one transaction (MULTI/EXEC), not a script.
    let pops = || redis.command_calls("exec");
    let (before, pops_before) = (redis.script_calls().await, pops().await);
    for _ in 0..2 {
        assert_eq!(page(&client, &format!("{base}/touch")).await, "Some(1)");
    }
    assert_eq!(redis.script_calls().await - before, 0, "pages that do not read flashes run none");
    assert_eq!(pops().await - pops_before, 0, "and pop none");
    let (before, pops_before) = (redis.script_calls().await, pops().await);
    assert_eq!(page(&client, &format!("{base}/read")).await, "a,b", "in order, kept until read");
    assert_eq!(
        (redis.script_calls().await - before, pops().await - pops_before),
        (0, 1),
        "one pop"
    );
    let (before, pops_before) = (redis.script_calls().await, pops().await);
    assert_eq!(page(&client, &format!("{base}/read")).await, "", "shown once");
    let popped = (redis.script_calls().await - before, pops().await - pops_before);
    assert_eq!(popped, (0, 0), "nothing pending, nothing popped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_now_messages_never_reach_the_next_request_and_oversized_ones_fail_early() {
    let redis = support::any_server();
    let base = serve_flash_routes(&redis).await;
    let (client, _) = browser();
    client.post(format!("{base}/flash")).send().await.expect("post");
    assert_eq!(page(&client, &format!("{base}/wrong")).await, "refused");
    assert_eq!(
        page(&client, &format!("{base}/read")).await,
        "a,b",
        "popped messages a read refused come back; this request's flash_now ones do not"
    );
    let big = client.post(format!("{base}/big")).send().await.expect("post");
    assert_eq!(big.text().await.expect("body"), "too large", "the handler sees the limit");
}

#[tokio::test]
async fn the_web_session_debug_output_shows_no_token() {
    let redis = support::any_server();
    let base = serve_flash_routes(&redis).await;
    let (client, _) = browser();
    let response = client.post(format!("{base}/flash")).send().await.expect("post");
    let token = cookie_value(&session_cookie(&response).expect("a session cookie"));
    let shown = page(&client, &format!("{base}/debug")).await;
    assert!(shown.starts_with("WebSession"), "{shown}");
    assert!(!shown.contains(&token[4..]), "the secret is in the Debug output: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_503_with_retry_after_and_a_short_body() {
    let mut redis = support::own_server(&[]);
    let base = serve_flash_routes(&redis).await;
    let (client, _) = browser();
    client.post(format!("{base}/flash")).send().await.expect("a session");
    assert_eq!(page(&client, &format!("{base}/touch")).await, "Some(1)");
    redis.kill();

    // A handler's own `?` on a session operation, and the layer's push after the handler.
    let unavailable = "The session store is unavailable; try again shortly.";
    for (method, path) in [("GET", "/touch"), ("POST", "/note")] {
        let request = client.request(method.parse().expect("method"), format!("{base}{path}"));
        let response = request.send().await.expect("response");
        assert_eq!(response.status(), 503, "{path}");
        let retry = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii"));
        assert_eq!(retry, Some("5"), "{path}");
        let kind = response.headers().get("content-type").map(|v| v.as_bytes().to_vec());
        assert_eq!(kind.as_deref(), Some(&b"text/plain; charset=utf-8"[..]), "{path}");
        // The kind of failure, not its cause (no address, no connection error).
        assert_eq!(response.text().await.expect("body"), unavailable, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_renders_its_own_page_for_a_failure_after_the_handler() {
    let mut redis = support::own_server(&[]);
    let base = serve_flash_routes_with(&redis, |layer| {
        layer.with_error_page(|error| {
            let mut page = redis_sessions::web::error_response(error);
            *page.body_mut() = format!("<p>{}</p>", error.is_unavailable());
            page
        })
    })
    .await;
    let (client, _) = browser();
    client.post(format!("{base}/flash")).send().await.expect("a session");
    redis.kill();

    let response = client.post(format!("{base}/note")).send().await.expect("response");
    assert_eq!(response.status(), 503, "the default's status, kept by the page");
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(response.text().await.expect("body"), "<p>true</p>", "the app's own page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_empties_the_session_and_keeps_its_cookie_and_flash() {
    let redis = support::any_server();
    let base = serve_flash_routes(&redis).await;
    let (client, _) = browser();
    client.post(format!("{base}/flash")).send().await.expect("x and two messages");
    let response = client.post(format!("{base}/empty")).send().await.expect("empty");
    assert!(session_cookie(&response).is_none(), "the same session: no new cookie");
    assert_eq!(response.text().await.expect("body"), "false true 8");
    assert_eq!(page(&client, &format!("{base}/touch")).await, "None", "x is gone from Redis");
    assert_eq!(page(&client, &format!("{base}/read")).await, "a,b", "the messages stay");
}
