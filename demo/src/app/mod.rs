//! A small shop on axum with redis-sessions: log in, fill a cart, see flash messages, log out.
//!
//! `cargo run --features axum --example demo`, then open http://127.0.0.1:3000. It uses the
//! Redis at `REDIS_URL`, or redis://127.0.0.1:6379, or a throwaway redis-server from PATH when
//! nothing answers there.
//!
//! What it shows: the session is created only when something is stored (a visitor who only
//! looks gets no cookie and costs no Redis key); login regenerates the session (anti-fixation)
//! and flashes "Welcome"; each cart item is its own attribute, so concurrent adds never
//! overwrite each other; logout destroys the session.

use axum::extract::Form;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::Router;
use redis_sessions::web::{CookieConfig, Session, SessionLayer};
use redis_sessions::{Config, SessionStore};
use serde::Deserialize;

#[path = "support/throwaway.rs"]
mod throwaway;

/// Cart items are attributes named `cart/<id>`.
const CART_PREFIX: &str = "cart/";

/// The app's routes around a session store.
pub fn app(store: SessionStore, cookie: CookieConfig) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/cart", post(add_to_cart))
        .route("/sessions", get(session_metadata))
        .layer(SessionLayer::new(store).with_cookie(cookie))
}

async fn index(session: Session) -> Result<Html<String>, redis_sessions::Error> {
    let user: Option<String> = session.get("user").await?;
    let flashes: Vec<String> = session.flashes().await?;
    let mut cart = Vec::new();
    for name in session.names().await?.iter().filter(|n| n.starts_with(CART_PREFIX)) {
        cart.extend(session.get::<String>(name).await?);
    }
    cart.sort();
    Ok(Html(page(user.as_deref(), &flashes, &cart)))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(
    session: Session,
    Form(form): Form<LoginForm>,
) -> Result<Redirect, redis_sessions::Error> {
    if form.username.trim().is_empty() || form.password.is_empty() {
        session.flash("Username and password, please.").await?;
        return Ok(Redirect::to("/"));
    }
    session.regenerate().await?; // the token from before the login opens nothing now
    session.insert("user", form.username.trim()).await?;
    session.flash("Welcome").await?;
    Ok(Redirect::to("/"))
}

async fn logout(session: Session) -> Result<Redirect, redis_sessions::Error> {
    session.destroy().await?;
    Ok(Redirect::to("/"))
}

#[derive(Deserialize)]
struct CartForm {
    item: String,
}

async fn add_to_cart(
    session: Session,
    Form(form): Form<CartForm>,
) -> Result<Redirect, redis_sessions::Error> {
    let item = form.item.trim();
    if !item.is_empty() {
        let name = format!("{CART_PREFIX}{:016x}", rand::random::<u64>());
        session.insert(&name, item).await?;
    }
    Ok(Redirect::to("/"))
}

async fn session_metadata(session: Session) -> Result<Html<String>, redis_sessions::Error> {
    let body = match session.metadata().await? {
        None => "<p>No session.</p>".to_owned(),
        Some(meta) => format!(
            "<dl><dt>created (ms since epoch)</dt><dd>{}</dd><dt>absolute deadline</dt><dd>{}</dd>\
             <dt>idle TTL when loaded (ms)</dt><dd>{}</dd></dl>",
            meta.created_ms, meta.deadline_ms, meta.ttl_ms
        ),
    };
    Ok(Html(format!("<!doctype html><title>Your session</title><h1>Your session</h1>{body}<a href=\"/\">back</a>")))
}

fn page(user: Option<&str>, flashes: &[String], cart: &[String]) -> String {
    let flash: String =
        flashes.iter().map(|f| format!("<p class=\"flash\">{}</p>", escape(f))).collect();
    let who = match user {
        Some(user) => format!(
            "<p>Logged in as <b>{}</b>.</p><form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
            escape(user)
        ),
        None => "<p>Not logged in.</p><form method=\"post\" action=\"/login\">\
                 <input name=\"username\" placeholder=\"username\"> \
                 <input name=\"password\" type=\"password\" placeholder=\"any password\"> \
                 <button>Log in</button></form>"
            .to_owned(),
    };
    let items: String = cart.iter().map(|i| format!("<li>{}</li>", escape(i))).collect();
    format!(
        "<!doctype html><title>redis-sessions demo</title><h1>redis-sessions demo</h1>{flash}{who}\
         <h2>Cart</h2><ul>{items}</ul><form method=\"post\" action=\"/cart\">\
         <input name=\"item\" placeholder=\"item\"> <button>Add</button></form>\
         <p><a href=\"/sessions\">session metadata</a></p>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info,redis_sessions=debug").init();
    let (url, _throwaway) = throwaway::redis_url()?;
    let store =
        SessionStore::connect(Config::from_url(url).with_key_prefix("demo:session:")).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("demo on http://127.0.0.1:3000 (Secure cookies: browsers accept them on localhost)");
    axum::serve(listener, app(store, CookieConfig::default())).await?;
    Ok(())
}
