//! A user's stateless sessions: the list Redis keeps of them (written at login, logout,
//! regenerate and revoke; never by a request that only uses its session), revoking one, and
//! revoking all of them begun before now ("log out everywhere", with or without this one).

use crate::error::Result;
use crate::format::bound;
use crate::session::Session;
use crate::stateless::mirror::{device_id, device_of, now_ms, user_hash, Verdict};
use crate::stateless::settings::StatelessSessions;
use crate::store::stateless::Listed;
use crate::users::UserSession;

impl StatelessSessions {
    /// `user`'s stateless sessions that have not ended and are not revoked by this process's
    /// copy of the revocations. Redis knows when each began and ends, not when it was last
    /// used: `last_seen_ms` is `None`.
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub async fn user_sessions(&self, user: &str) -> Result<Vec<UserSession>> {
        let (now, hash, bound) = (now_ms(), user_hash(user), self.settings.stale_after);
        let mut list: Vec<UserSession> = (self.store.cookie_devices(user).await?.into_iter())
            .filter(|listed| listed.ends_ms > now)
            .filter(|listed| {
                let mirror = &self.shared.mirror;
                let verdict = mirror.check(&listed.device, Some(&hash), listed.created_ms, bound);
                verdict != Verdict::Revoked
            })
            .map(|listed| UserSession {
                id: listed.device,
                label: listed.label,
                created_ms: listed.created_ms,
                last_seen_ms: None,
                expires_ms: Some(listed.ends_ms),
            })
            .collect();
        list.sort_by_key(|session| session.created_ms);
        Ok(list)
    }

    /// Revokes `user`'s session `device`; true when the user's list held it. An id the list
    /// does not hold revokes nothing: a user can end only their own sessions, and the set every
    /// process mirrors holds only sessions that exist.
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub async fn revoke(&self, user: &str, device: &str) -> Result<bool> {
        if bound::parse_device(device).is_none() {
            return Ok(false);
        }
        let listed = self.store.cookie_devices(user).await?;
        let Some(entry) = listed.iter().find(|entry| entry.device == device) else {
            return Ok(false);
        };
        self.store.revoke_cookie_device(device, self.until(entry.ends_ms)).await?;
        Ok(self.store.unlist_cookie_devices(user, &[device]).await? > 0)
    }

    /// Revokes every session of `user` that began before now (the server's clock) but
    /// `keep`'s, which begins anew then (its cookie must be issued again, and its entry in the
    /// list is written with its new start). How many the user's list held besides it.
    ///
    /// # Errors
    ///
    /// Redis errors.
    pub(crate) async fn revoke_user(
        &self,
        user: &str,
        keep: Option<&mut Session>,
    ) -> Result<usize> {
        let lifetime = i64::try_from(self.settings.max_lifetime.as_millis()).unwrap_or(i64::MAX);
        let lifetime = lifetime.saturating_add(self.margin_ms());
        let not_before = self.store.revoke_cookie_user(&user_hash(user), lifetime).await?;
        let kept = keep.map(|session| {
            session.meta.created_ms = not_before;
            let label = session.bound.as_ref().map(|b| b.label.clone()).unwrap_or_default();
            let device = device_id(&device_of(session.token()));
            Listed { device, created_ms: not_before, ends_ms: session.meta.deadline_ms, label }
        });
        let unlisted = self.store.unlist_cookie_devices_but(user, kept.as_ref(), not_before);
        Ok(unlisted.await? as usize)
    }

    /// Revokes every stateless session of `user`: after a password change, an account's
    /// deletion, or from an administrator's tool. Each process refuses them once the
    /// revocation reaches it (see [`with_stale_after`](Self::with_stale_after)). How many the
    /// user's list held.
    ///
    /// ```no_run
    /// # async fn demo(sessions: redis_sessions::stateless::StatelessSessions) -> redis_sessions::Result<()> {
    /// let ended = sessions.revoke_all("user-42").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Redis errors: the sessions are then not revoked.
    pub async fn revoke_all(&self, user: &str) -> Result<usize> {
        self.revoke_user(user, None).await
    }
}
