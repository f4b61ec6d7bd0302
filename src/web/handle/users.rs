//! A handler's view of the user its session is bound to: login, the user's devices, revoking
//! them, and rotating the token (the store's users_api.rs underneath).

use crate::error::Result;
use crate::web::WebSession;
// The store's methods these doc comments link to.
#[cfg(doc)]
use crate::SessionStore;

impl WebSession {
    /// Logs the visitor in: the session (created if there is none) moves to a new token bound
    /// to `login.user`, as [`SessionStore::login`] does, and the cookie is reissued (with a
    /// `Max-Age` when the login gives timeouts of the session's own).
    ///
    /// ```
    /// use redis_sessions::{web::WebSession, Login};
    ///
    /// async fn login(session: WebSession, user: &str, agent: &str) -> redis_sessions::Result<()> {
    ///     session.login(&Login::new(user).with_label(agent)).await
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`SessionStore::login`] and [`SessionStore::create`].
    pub async fn login(&self, login: &crate::Login) -> Result<()> {
        let mut state = self.inner.lock().await;
        let (store, cookies) = (state.store.clone(), state.cookies.clone());
        let session = state.live_or_create().await?;
        match cookies {
            Some(cookies) => cookies.login(session, login).await?,
            None => _ = store.login(session, login).await?,
        }
        state.reissue = true;
        Ok(())
    }

    /// The user the session is bound to; `None` without a session or a login.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    pub async fn user_id(&self) -> Result<Option<String>> {
        let mut state = self.inner.lock().await;
        Ok(state.live().await?.and_then(|s| s.user_id().map(str::to_owned)))
    }

    /// The session's id in its user's list ([`crate::UserSession::id`]), to mark "this device";
    /// `None` without a session or a login.
    ///
    /// # Errors
    ///
    /// Loading errors of [`SessionStore::load`].
    pub async fn device_id(&self) -> Result<Option<String>> {
        let mut state = self.inner.lock().await;
        Ok(state.live().await?.and_then(|s| s.device_id()))
    }

    /// The live sessions of the logged-in user ([`SessionStore::user_sessions`]); empty without
    /// a login.
    ///
    /// # Errors
    ///
    /// As [`SessionStore::user_sessions`].
    pub async fn user_sessions(&self) -> Result<Vec<crate::UserSession>> {
        let Some(user) = self.user_id().await? else { return Ok(Vec::new()) };
        let state = self.inner.lock().await;
        match state.cookies.clone() {
            Some(cookies) => cookies.user_sessions(&user).await,
            None => state.store.user_sessions(&user).await,
        }
    }

    /// Ends the logged-in user's session whose id is `id` ([`SessionStore::revoke`]); true when
    /// it was live. Revoking the current session's own id logs this visitor out too.
    ///
    /// # Errors
    ///
    /// As [`SessionStore::revoke`].
    pub async fn revoke(&self, id: &str) -> Result<bool> {
        let Some(user) = self.user_id().await? else { return Ok(false) };
        let state = self.inner.lock().await;
        match state.cookies.clone() {
            Some(cookies) => cookies.revoke(&user, id).await,
            None => state.store.revoke(&user, id).await,
        }
    }

    /// Ends every session of the logged-in user but this one ("log out everywhere else");
    /// returns how many were live.
    ///
    /// # Errors
    ///
    /// As [`SessionStore::revoke_others`].
    pub async fn revoke_others(&self) -> Result<usize> {
        let mut state = self.inner.lock().await;
        let (store, cookies) = (state.store.clone(), state.cookies.clone());
        let Some(session) = state.live().await? else { return Ok(0) };
        let Some(cookies) = cookies else { return store.revoke_others(session).await };
        let Some(user) = session.user_id().map(str::to_owned) else { return Ok(0) };
        // The user's "not before" moves to now; this session begins anew, in a new cookie,
        // which goes out even when a step after the revocation failed.
        let revoked = cookies.revoke_user(&user, Some(session)).await;
        state.reissue = true;
        revoked
    }

    /// Rotates the token of the logged-in session now (after a change of privilege), and
    /// reissues the cookie; see [`SessionStore::rotate`]. Without a session, or without a
    /// login, does nothing. A stateless session moves to a new `jti` and its old cookie is
    /// revoked at once, with no grace window.
    ///
    /// # Errors
    ///
    /// As [`SessionStore::rotate`].
    pub async fn rotate(&self) -> Result<()> {
        let mut state = self.inner.lock().await;
        let (store, cookies) = (state.store.clone(), state.cookies.clone());
        if let Some(session) = state.live().await?.filter(|s| s.user_id().is_some()) {
            match cookies {
                // A stateless session moves to a new `jti`, the old cookie revoked at once:
                // there is no grace window without a record in Redis to lead to the new one.
                Some(cookies) => cookies.regenerate(session, None).await?,
                None => _ = store.rotate(session).await?,
            }
            state.reissue = true;
        }
        Ok(())
    }
}
