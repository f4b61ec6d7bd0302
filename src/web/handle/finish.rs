//! What happens to a request's session after the handler: the save and the flash messages
//! for later requests (or, in the stateless mode, the new cookie), the rotation of a due token,
//! and what the layer must do with the cookie.

use super::{CookieAction, Loaded, State};
use crate::error::{Error, Result};
use crate::SessionStore;

impl State {
    /// Saves, pushes flash messages, rotates a due token, and says what to do with the cookie.
    pub(super) async fn finish(&mut self) -> Result<CookieAction> {
        if self.reused && !matches!(self.session, Loaded::Live(_)) {
            return Ok(CookieAction::Clear);
        }
        if self.destroyed {
            // Whatever was pending belonged to the destroyed session. A message flashed after
            // the destroy ("You have been logged out") goes into a fresh session.
            self.popped.clear();
            if self.next.is_empty() && !matches!(self.session, Loaded::Live(_)) {
                return Ok(if self.cookie.is_some() {
                    CookieAction::Clear
                } else {
                    CookieAction::Keep
                });
            }
        }
        if !self.next.is_empty() {
            self.live_or_create().await?;
        }
        // Messages popped that no read took (wrong type) go back, ahead of the new ones.
        if !self.popped.is_empty() {
            let next = std::mem::take(&mut self.next);
            self.next = std::mem::take(&mut self.popped);
            self.next.extend(next);
        }
        let store = self.store.clone();
        // No live session: nothing to write. A cookie that names no live session is left
        // alone: clearing it could race with, and erase, the cookie a concurrent login sets.
        let Loaded::Live(session) = &mut self.session else { return Ok(CookieAction::Keep) };
        if let Some(cookies) = &self.cookies {
            // The session is the cookie: nothing to save, a new cookie when it changed.
            let next = std::mem::take(&mut self.next);
            return Ok(match cookies.finish(session, next, self.reissue)? {
                Some(value) => issue(session, value),
                None => CookieAction::Keep,
            });
        }
        let before = session.token().clone();
        save_and_flash(&store, session, &mut self.next).await?;
        // A save that found the token rotated by a concurrent request went to the new one.
        self.reissue |= *session.token() != before;
        // A bound session in use rotates its token once due (Config::rotation). The handler's
        // work is saved by now: a rotation that fails costs the rotation, not the response,
        // and the next request tries again.
        match store.rotate_if_due(session).await {
            Ok(rotated) => self.reissue |= rotated.is_some(),
            Err(e) => tracing::warn!(error = %e, "the token's rotation failed: it stays as it was"),
        }
        if !self.reissue {
            return Ok(CookieAction::Keep);
        }
        Ok(issue(session, session.token().expose().to_owned()))
    }
}

/// Hands out `value` as `session`'s cookie.
fn issue(session: &crate::Session, value: String) -> CookieAction {
    // Only a cookie lifetime hint (the store or the token enforces the deadline), so the app's
    // clock will do.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    let max_age_secs = session.metadata().deadline_ms.saturating_sub(now_ms) / 1000;
    let persistent = session.metadata().idle_timeout_ms.is_some();
    CookieAction::Issue { token: value, max_age_secs, persistent }
}

/// Saves the delta, then queues the messages for later requests in one more call.
async fn save_and_flash(
    store: &SessionStore,
    session: &mut crate::Session,
    next: &mut Vec<u8>,
) -> Result<()> {
    store.save(session).await?;
    if !next.is_empty() {
        let messages = std::mem::take(next);
        match store.push_flash_encoded(session, messages.clone()).await {
            // A concurrent request rotated the token since the load (and nothing was saved to
            // follow it): the messages go to the session it moved to.
            Err(Error::SessionGone) if store.follow_rotation(session).await? => {
                store.push_flash_encoded(session, messages).await?;
            }
            pushed => pushed?,
        }
    }
    Ok(())
}
