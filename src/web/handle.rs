//! [`WebSession`], a handler's view of its request's session, and what happens to it after the
//! handler.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::format::codec;
use crate::SessionStore;

mod cookie_mode;
mod finish;
mod users;

pub(crate) use cookie_mode::Cookies;

/// The session of the current request, for handlers. Cheap to clone; clones share the state.
///
/// Loaded on first use; for a visitor who has none, created on the first `insert` (or after
/// the handler, when it only queued a `flash`); saved after the handler with only what changed.
/// Needs [`SessionLayer`](super::SessionLayer).
#[derive(Clone)]
pub struct WebSession {
    inner: Arc<Mutex<State>>,
}

/// What the layer must do with the cookie after the handler.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CookieAction {
    Keep,
    /// Hand out `token`; with a `Max-Age` of `max_age_secs` when `persistent` (the session has
    /// its own expiry) or the cookie config says so.
    Issue {
        token: String,
        max_age_secs: i64,
        persistent: bool,
    },
    Clear,
}

struct State {
    store: SessionStore,
    /// The stateless mode: the session is the cookie (`None`: it is in Redis).
    cookies: Option<Cookies>,
    cookie: Option<String>,
    session: Loaded,
    /// Flash messages taken from Redis but not yet delivered (a read with the wrong type).
    popped: Vec<u8>,
    /// This request's own messages ([`WebSession::flash_now`]).
    now: Vec<u8>,
    /// Messages for a later request, pushed after the handler in one call.
    next: Vec<u8>,
    reissue: bool,
    destroyed: bool,
    /// The cookie named a retired token used after its grace window: it is cleared.
    reused: bool,
}

enum Loaded {
    NotYet,
    Missing,
    Live(Box<crate::Session>),
}

impl WebSession {
    pub(crate) fn new(
        store: SessionStore,
        cookies: Option<Cookies>,
        cookie: Option<String>,
    ) -> Self {
        let state = State {
            store,
            cookies,
            cookie,
            session: Loaded::NotYet,
            popped: Vec::new(),
            now: Vec::new(),
            next: Vec::new(),
            reissue: false,
            destroyed: false,
            reused: false,
        };
        WebSession { inner: Arc::new(Mutex::new(state)) }
    }

    /// Attribute `name`, decoded; `Ok(None)` when unset or when there is no session.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`]; [`Error::Decode`] when the value is not a `T`,
    /// [`Error::Unseal`] when it is sealed and does not open.
    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let mut state = self.inner.lock().await;
        match state.live().await? {
            Some(session) => session.get(name),
            None => Ok(None),
        }
    }

    /// Names of the attributes set.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    pub async fn names(&self) -> Result<Vec<String>> {
        let mut state = self.inner.lock().await;
        Ok(state.live().await?.map(|s| s.names().map(str::to_owned).collect()).unwrap_or_default())
    }

    /// Sets attribute `name`; creates the session if the visitor has none.
    ///
    /// # Errors
    ///
    /// As [`crate::Session::insert`], and Redis errors when the session must be created.
    pub async fn insert<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        let mut state = self.inner.lock().await;
        state.live_or_create().await?.insert(name, value)
    }

    /// Removes attribute `name` and returns its value, decoded; `Ok(None)` when it was not set.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`]; [`Error::Decode`] when the value is not a `T`
    /// (the attribute then stays).
    #[doc(alias = "take")]
    pub async fn remove<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let mut state = self.inner.lock().await;
        match state.live().await? {
            Some(session) => session.remove(name),
            None => Ok(None),
        }
    }

    /// Removes attribute `name` without decoding it; true when it was set.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    pub async fn delete(&self, name: &str) -> Result<bool> {
        let mut state = self.inner.lock().await;
        Ok(state.live().await?.is_some_and(|session| session.delete(name)))
    }

    /// Removes every attribute; the session, its cookie and its pending flash messages stay
    /// (see [`destroy`](Self::destroy) to end it).
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    #[doc(alias = "flush")]
    pub async fn clear(&self) -> Result<()> {
        let mut state = self.inner.lock().await;
        if let Some(session) = state.live().await? {
            session.clear();
        }
        Ok(())
    }

    /// True when the visitor has no session, or one with no attribute set.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    pub async fn is_empty(&self) -> Result<bool> {
        let mut state = self.inner.lock().await;
        Ok(state.live().await?.is_none_or(|session| session.is_empty()))
    }

    /// A short name for the visitor's session in logs ([`crate::Session::fingerprint`]);
    /// `None` when there is none.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    #[doc(alias = "id")]
    #[doc(alias = "session_id")]
    pub async fn fingerprint(&self) -> Result<Option<String>> {
        let mut state = self.inner.lock().await;
        Ok(state.live().await?.map(|session| session.fingerprint()))
    }

    /// Moves the session to a new token, so a token known before (planted by an attacker,
    /// say) opens nothing from now on. Call it on login, logout and any change of privilege.
    /// The session keeps its timeouts and deadline ([`regenerate_with_timeouts`] sets new
    /// ones). Without a session it does nothing: the next insert creates one with a fresh
    /// token.
    ///
    /// [`regenerate_with_timeouts`]: Self::regenerate_with_timeouts
    ///
    /// # Errors
    ///
    /// Redis errors of [`SessionStore::regenerate`].
    #[doc(alias = "cycle_id")]
    #[doc(alias = "renew")]
    pub async fn regenerate(&self) -> Result<()> {
        let mut state = self.inner.lock().await;
        let (store, cookies) = (state.store.clone(), state.cookies.clone());
        if let Some(session) = state.live().await? {
            match cookies {
                Some(cookies) => cookies.regenerate(session, None).await?,
                None => _ = store.regenerate(session).await?,
            }
            state.reissue = true;
        }
        Ok(())
    }

    /// Moves the session to a new token, as [`regenerate`](Self::regenerate) does, and gives it
    /// new timeouts from now on: with `Some`, timeouts of its own ("remember me" at login), and
    /// a cookie with a `Max-Age` to the new deadline, which the browser keeps across restarts;
    /// with `None`, the store's timeouts and a cookie that ends with the browser session (a
    /// login without "remember me"). See
    /// [`SessionStore::regenerate_with_timeouts`]. Without a session, `Some` creates one with
    /// those timeouts, so that the choice holds when the handler then stores something;
    /// `None` does nothing, as `regenerate` does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use redis_sessions::{web::WebSession, Timeouts};
    ///
    /// async fn login(session: WebSession, remember: bool) -> redis_sessions::Result<()> {
    ///     let day = Duration::from_secs(86_400);
    ///     let own = remember.then(|| Timeouts::new(7 * day, 30 * day));
    ///     session.regenerate_with_timeouts(own).await?;
    ///     session.insert("user", "ada").await
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SessionStore::regenerate_with_timeouts`] and
    /// [`SessionStore::create_with_timeouts`].
    #[doc(alias = "remember_me")]
    #[doc(alias = "set_expiry")]
    pub async fn regenerate_with_timeouts(&self, timeouts: Option<crate::Timeouts>) -> Result<()> {
        let mut state = self.inner.lock().await;
        let (store, cookies) = (state.store.clone(), state.cookies.clone());
        match (state.live().await?, timeouts, cookies) {
            (Some(session), _, Some(cookies)) => {
                cookies.regenerate(session, Some(timeouts.as_ref())).await?;
            }
            (Some(session), _, None) => {
                _ = store.regenerate_with_timeouts(session, timeouts).await?;
            }
            (None, Some(own), cookies) => {
                let session = match cookies {
                    Some(cookies) => cookies.create(Some(&own))?,
                    None => store.create_with_timeouts(own).await?,
                };
                state.session = Loaded::Live(Box::new(session));
            }
            (None, None, _) => return Ok(()),
        }
        state.reissue = true;
        Ok(())
    }

    /// Deletes the session and clears the cookie. The session is not loaded first unless the
    /// handler already used it: one round trip reads whether a login bound it (so its entry in
    /// the user's list goes too), and one deletes ([`SessionStore::destroy_token`]).
    ///
    /// # Errors
    ///
    /// Redis errors of [`SessionStore::destroy`].
    #[doc(alias = "purge")]
    #[doc(alias = "logout")]
    pub async fn destroy(&self) -> Result<()> {
        let mut state = self.inner.lock().await;
        let (store, cookies) = (state.store.clone(), state.cookies.clone());
        match (&state.session, state.cookie.clone(), cookies) {
            (Loaded::NotYet, Some(cookie), None) => _ = store.destroy_token(&cookie).await?,
            (_, _, cookies) => {
                if let Some(session) = state.live().await? {
                    match cookies {
                        Some(cookies) => cookies.destroy(session).await?,
                        None => _ = store.destroy(session).await?,
                    }
                }
            }
        }
        state.session = Loaded::Missing;
        state.destroyed = true;
        Ok(())
    }

    /// Queues a flash message for the next request that reads the flash messages.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`]; [`Error::TooLarge`] when this request's queued messages would exceed
    /// [`Limits::max_value_bytes`](crate::Limits::max_value_bytes) (checked here, so the
    /// handler sees it; messages already pending in Redis are checked after the handler).
    pub async fn flash<T: Serialize + ?Sized>(&self, message: &T) -> Result<()> {
        let bytes = codec::encode("@flash", message)?;
        let mut state = self.inner.lock().await;
        state.store.config().limits.check_value(state.next.len() + bytes.len())?;
        state.next.extend(bytes);
        Ok(())
    }

    /// Adds a flash message to this request's own, for a page rendered right away.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`].
    pub async fn flash_now<T: Serialize + ?Sized>(&self, message: &T) -> Result<()> {
        let bytes = codec::encode("@flash", message)?;
        self.inner.lock().await.now.extend(bytes);
        Ok(())
    }

    /// Takes the flash messages for this request: those queued by earlier requests (popped
    /// atomically here, so no other request shows them; only when the load found some) and
    /// those of [`flash_now`](Self::flash_now).
    ///
    /// # Errors
    ///
    /// Loading and Redis errors; [`Error::Decode`] when a message is not a `T` (the messages
    /// are kept: a read with the right type still gets them, and popped ones that no read
    /// takes go back to Redis after the handler); [`Error::Unseal`] once when popped messages
    /// did not open (the others are returned by the next call).
    pub async fn flashes<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let mut state = self.inner.lock().await;
        let (store, stateless) = (state.store.clone(), state.cookies.is_some());
        let (popped, unopened) = match state.live().await? {
            // The cookie carried them: taking them changes the cookie.
            Some(session) if session.flash_pending && stateless => {
                session.flash_pending = false;
                (std::mem::take(&mut session.flash), None)
            }
            Some(session) if session.flash_pending => {
                let popped = store.pop_flash_encoded(session).await?;
                (popped, session.flash_unopened.take())
            }
            _ => (Vec::new(), None),
        };
        state.reissue |= stateless && !popped.is_empty();
        state.popped.extend(popped);
        if let Some(cause) = unopened {
            // The messages that opened stay popped here: the next read returns them.
            return Err(Error::Unseal { attribute: "@flash".to_owned(), cause });
        }
        let mut messages: Vec<T> = codec::decode_all("@flash", &state.popped)?;
        messages.extend(codec::decode_all::<T>("@flash", &state.now)?);
        state.popped.clear();
        state.now.clear();
        Ok(messages)
    }

    /// Created, deadline and TTL of the session, if there is one.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    pub async fn metadata(&self) -> Result<Option<crate::Metadata>> {
        let mut state = self.inner.lock().await;
        Ok(state.live().await?.map(|session| session.metadata()))
    }

    /// After the handler: saves, pushes flash messages, and says what to do with the cookie,
    /// and whether the response depends on the session.
    pub(crate) async fn finish(&self) -> (Result<CookieAction>, bool) {
        let mut state = self.inner.lock().await;
        let action = state.finish().await;
        (action, state.accessed())
    }
}

impl State {
    /// The live session, loading it on first use. Flash messages stay in Redis until a
    /// handler reads them, so requests that do not read them never pop and requeue them.
    async fn live(&mut self) -> Result<Option<&mut crate::Session>> {
        if let Loaded::NotYet = self.session {
            let found = match (&self.cookie, &self.cookies) {
                (Some(cookie), Some(cookies)) => cookies.open(cookie).await,
                (Some(token), None) => self.store.load(token).await,
                (None, _) => Ok(None),
            };
            let found = found.inspect_err(|e| {
                if matches!(e, Error::TokenReused { .. }) {
                    (self.session, self.reused) = (Loaded::Missing, true);
                }
            })?;
            // A retired token within its grace window led to the session's new token.
            let followed =
                found.as_ref().map(|s| Some(s.token().expose()) != self.cookie.as_deref());
            self.reissue |= followed == Some(true) && self.cookies.is_none();
            self.session = match found {
                Some(session) => Loaded::Live(Box::new(session)),
                None => Loaded::Missing,
            };
        }
        Ok(match &mut self.session {
            Loaded::Live(session) => Some(session),
            _ => None,
        })
    }

    async fn live_or_create(&mut self) -> Result<&mut crate::Session> {
        if self.live().await?.is_none() {
            let session = match &self.cookies {
                Some(cookies) => cookies.create(None)?,
                None => self.store.create().await?,
            };
            self.session = Loaded::Live(Box::new(session));
            self.reissue = true;
        }
        match &mut self.session {
            Loaded::Live(session) => Ok(session),
            _ => Err(Error::SessionGone),
        }
    }

    /// True once the handler touched the session (the response then depends on it).
    fn accessed(&self) -> bool {
        !matches!(self.session, Loaded::NotYet) || self.destroyed
    }
}

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession").finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSession {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        parts.extensions.get::<WebSession>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the WebSession extractor needs SessionLayer around the router",
        ))
    }
}
