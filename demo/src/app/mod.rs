//! The shop's routes: log in, fill a cart, see flash messages, look at the session and the
//! user's devices, log out one device, every other one, or this one.
//!
//! What it shows: the session is created only when something is stored (a visitor who only
//! looks gets no cookie and costs no Redis key); login moves the session to a new token bound
//! to the user (anti-fixation), labelled with the browser's user agent, and flashes a welcome;
//! each cart line is its own attribute, so concurrent adds never overwrite each other; the
//! sessions page lists the user's devices, each with a button that logs it out, and one for
//! all the others; logout destroys the session.

mod page;

use std::time::Duration;

use axum::extract::Form;
use axum::http::header::USER_AGENT;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use redis_sessions::web::{SessionLayer, WebSession};
use redis_sessions::{Login, Timeouts};
use serde::Deserialize;

/// "Remember me": a week unused, or a month in all; the store's defaults otherwise.
const REMEMBER_ME: Timeouts =
    Timeouts::new(Duration::from_secs(7 * 86_400), Duration::from_secs(30 * 86_400));

/// Cart lines are attributes named `cart/<random id>`, each holding the item's name.
const CART_PREFIX: &str = "cart/";

/// The app's routes under `layer`: sessions in Redis, or stateless ones in signed cookies. The
/// handlers are the same either way.
pub fn routes(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/cart", post(add_to_cart))
        .route("/cart/remove", post(remove_from_cart))
        .route("/sessions", get(session_metadata))
        .route("/sessions/revoke", post(revoke_device))
        .route("/sessions/revoke-others", post(revoke_others))
        .route("/style.css", get(stylesheet))
        .layer(layer)
}

async fn index(session: WebSession) -> Result<Html<String>, redis_sessions::Error> {
    let user = session.user_id().await?;
    let flashes: Vec<String> = session.flashes().await?;
    let mut cart = Vec::new();
    for name in session.names().await?.iter().filter(|n| n.starts_with(CART_PREFIX)) {
        cart.extend(session.get::<String>(name).await?);
    }
    cart.sort();
    Ok(Html(page::shop(user.as_deref(), &flashes, &cart)))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    /// The "remember me" checkbox: present when ticked.
    remember: Option<String>,
}

async fn login(
    session: WebSession,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Redirect, redis_sessions::Error> {
    let username = form.username.trim();
    if username.is_empty() || form.password.is_empty() {
        session.flash("Username and password, please.").await?;
        return Ok(Redirect::to("/"));
    }
    // A new token, bound to the user: the one from before the login opens nothing now. Its
    // timeouts: a month when remembered, else the store's. The label is what the devices list
    // shows; the password is not checked, as this is a demo.
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("a browser");
    let login = Login::new(username).with_label(agent);
    session.login(&login.with_timeouts(form.remember.map(|_| REMEMBER_ME))).await?;
    session.flash(&format!("Welcome, {username}.")).await?;
    Ok(Redirect::to("/"))
}

async fn logout(session: WebSession) -> Result<Redirect, redis_sessions::Error> {
    session.destroy().await?;
    Ok(Redirect::to("/"))
}

#[derive(Deserialize)]
struct CartForm {
    item: String,
}

async fn add_to_cart(
    session: WebSession,
    Form(form): Form<CartForm>,
) -> Result<Redirect, redis_sessions::Error> {
    let item = form.item.trim();
    if !item.is_empty() {
        let name = format!("{CART_PREFIX}{:016x}", rand::random::<u64>());
        session.insert(&name, item).await?;
    }
    Ok(Redirect::to("/"))
}

/// Takes one line of `item` out of the cart.
async fn remove_from_cart(
    session: WebSession,
    Form(form): Form<CartForm>,
) -> Result<Redirect, redis_sessions::Error> {
    for name in session.names().await?.iter().filter(|n| n.starts_with(CART_PREFIX)) {
        if session.get::<String>(name).await?.as_deref() == Some(form.item.as_str()) {
            let removed: Option<String> = session.remove(name).await?;
            if let Some(item) = removed {
                session.flash(&format!("{item} left your cart.")).await?;
            }
            break;
        }
    }
    Ok(Redirect::to("/"))
}

async fn session_metadata(session: WebSession) -> Result<Html<String>, redis_sessions::Error> {
    let meta = session.metadata().await?;
    let fingerprint = session.fingerprint().await?;
    let flashes: Vec<String> = session.flashes().await?;
    let devices =
        page::Devices { list: session.user_sessions().await?, current: session.device_id().await? };
    Ok(Html(page::session(meta.zip(fingerprint), &devices, &flashes, page::now_ms())))
}

#[derive(Deserialize)]
struct DeviceForm {
    id: String,
}

/// Logs one of the user's devices out; this one's own id logs this visitor out.
async fn revoke_device(
    session: WebSession,
    Form(form): Form<DeviceForm>,
) -> Result<Redirect, redis_sessions::Error> {
    if session.device_id().await?.as_deref() == Some(form.id.as_str()) {
        session.destroy().await?;
        return Ok(Redirect::to("/"));
    }
    if session.revoke(&form.id).await? {
        session.flash("That device is logged out.").await?;
    }
    Ok(Redirect::to("/sessions"))
}

/// "Log out everywhere else".
async fn revoke_others(session: WebSession) -> Result<Redirect, redis_sessions::Error> {
    let ended = session.revoke_others().await?;
    session.flash(&format!("Logged out on {ended} other device(s).")).await?;
    Ok(Redirect::to("/sessions"))
}

async fn stylesheet() -> impl IntoResponse {
    ([("content-type", "text/css; charset=utf-8")], include_str!("style.css"))
}
