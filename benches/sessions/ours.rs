//! The same requests through redis-sessions.

use redis_sessions::{Result, SessionStore};

use crate::profile::{
    change_cart, changed_attribute, new_csrf, new_order, view, CartItem, Profile, FLASH,
};
use crate::stores::Handlers;

/// Loads all attributes, or with `only` just those the request uses.
async fn load(
    store: &SessionStore,
    token: &str,
    only: Option<&[&str]>,
) -> Result<Option<redis_sessions::Session>> {
    match only {
        Some(names) => store.load_only(token, names).await,
        None => store.load(token).await,
    }
}

/// A request that reads the user and the CSRF token (or, with `read_all`, every attribute):
/// one load, the attributes decoded.
pub async fn read_request(store: &SessionStore, token: &str, handlers: Handlers) -> Result<bool> {
    let only: &[&str] = &["user_id", "csrf_token"];
    let partial = handlers.partial && !handlers.read_all;
    let Some(session) = load(store, token, partial.then_some(only)).await? else {
        return Ok(false);
    };
    if handlers.read_all {
        return Ok(Profile::read_from(&session)?.user_id > 0);
    }
    let user: Option<u64> = session.get("user_id")?;
    let csrf: Option<String> = session.get("csrf_token")?;
    Ok(user.is_some() && csrf.is_some())
}

/// A request that changes one attribute: load, change it, save the delta.
pub async fn save_request(
    store: &SessionStore,
    token: &str,
    n: u64,
    partial: bool,
) -> Result<bool> {
    let name = changed_attribute(n);
    let only = ["user_id", "csrf_token", name];
    let Some(mut session) = load(store, token, partial.then_some(&only[..])).await? else {
        return Ok(false);
    };
    match name {
        "cart" => {
            let mut cart: Vec<CartItem> = session.get(name)?.unwrap_or_default();
            change_cart(&mut cart, n);
            session.insert(name, &cart)?;
        }
        "recently_viewed" => {
            let mut viewed: Vec<String> = session.get(name)?.unwrap_or_default();
            view(&mut viewed, n);
            session.insert(name, &viewed)?;
        }
        "visits" => session.insert(name, &(session.get::<u32>(name)?.unwrap_or(0) + 1))?,
        "csrf_token" => session.insert(name, &new_csrf(n))?,
        _ => session.insert(name, &new_order(n))?,
    }
    match store.save(&mut session).await {
        Err(redis_sessions::Error::SessionGone) => Ok(false), // regenerated meanwhile
        other => other.map(|()| true),
    }
}

/// Login: move the session to a new token.
pub async fn regenerate_request(store: &SessionStore, token: &str) -> Result<Option<String>> {
    let Some(mut session) = store.load(token).await? else { return Ok(None) };
    match store.regenerate(&mut session).await {
        Ok(new) => Ok(Some(new.expose().to_owned())),
        Err(redis_sessions::Error::SessionGone) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Post/redirect/get: one request pushes a flash, the next pops it with its load.
pub async fn flash_request(store: &SessionStore, token: &str) -> Result<bool> {
    let Some(session) = store.load(token).await? else { return Ok(false) };
    match store.push_flash(&session, FLASH).await {
        Err(redis_sessions::Error::SessionGone) => return Ok(false),
        other => other?,
    }
    let Some(mut next) = store.load_and_pop_flash(token).await? else { return Ok(false) };
    Ok(!next.take_flash::<String>()?.is_empty())
}
