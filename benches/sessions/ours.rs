//! The same requests through redis-sessions.

use redis_sessions::{Result, SessionStore};

use crate::profile::{change_cart, CartItem};

/// A request that reads the user and the CSRF token: one get-and-touch, two attributes decoded.
pub async fn read_request(store: &SessionStore, token: &str) -> Result<bool> {
    let Some(session) = store.load(token).await? else { return Ok(false) };
    let user: Option<u64> = session.get("user_id")?;
    let csrf: Option<String> = session.get("csrf_token")?;
    Ok(user.is_some() && csrf.is_some())
}

/// A request that adds to the cart: load, change one attribute, save the delta.
pub async fn save_request(store: &SessionStore, token: &str, n: u64) -> Result<bool> {
    let Some(mut session) = store.load(token).await? else { return Ok(false) };
    let mut cart: Vec<CartItem> = session.get("cart")?.unwrap_or_default();
    change_cart(&mut cart, n);
    session.insert("cart", &cart)?;
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
    match store.push_flash(&session, "Your cart was updated.").await {
        Err(redis_sessions::Error::SessionGone) => return Ok(false),
        other => other?,
    }
    let Some(mut next) = store.load_and_pop_flash(token).await? else { return Ok(false) };
    Ok(!next.take_flash::<String>()?.is_empty())
}
