//! What the web layer does with a stateless session: open a cookie into a [`Session`], create
//! one, issue its cookie, log in, regenerate, destroy, list a user's sessions and revoke them.
//!
//! A stateless session is a [`Session`] held in memory, so that handlers read and write it the
//! way they do a session from Redis: its token is the cookie's `jti`, its creation time the
//! time its login began (what a user's "not before" is compared with), its flash messages the
//! cookie's. Its device id, which a logout revokes and the user's list shows, is a hash of the
//! `jti`, so the revocations never hold a `jti`.

use std::collections::BTreeMap;

use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::format::bound::{self, Bound, MAX_USER_BYTES};
use crate::format::packed::Packed;
use crate::session::{Metadata, Session};
use crate::stateless::cookie::{self, Body};
use crate::stateless::mirror::Verdict;
use crate::stateless::mirror::{device_id, device_of, now_ms, user_hash};
use crate::stateless::settings::{FeedDown, Refused, StatelessSessions};
use crate::store::expiry_rule;
use crate::store::stateless::Listed;
use crate::timeouts::{Timeouts, TimeoutsMs};
use crate::token::Token;
use crate::users::Login;

/// What a checked cookie holds (see [`StatelessSessions::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The id of the key that signed it.
    pub kid: String,
    /// The user its session is logged in as; `None` for an anonymous session.
    pub user: Option<String>,
    /// When it expires unless issued again, ms since the Unix epoch.
    pub expires_ms: i64,
}

impl StatelessSessions {
    /// Checks `cookie` as a request's cookie is checked: its key, algorithm, signature, expiry
    /// and contents, and this process's copy of the revocations (as it is, however old: a
    /// request also needs the copy current, see [`with_stale_after`](Self::with_stale_after)).
    ///
    /// # Errors
    ///
    /// Why it was refused.
    pub fn verify(&self, cookie: &str) -> std::result::Result<Verified, Refused> {
        let (session, kid, _) = self.checked(cookie)?;
        let user = session.user_id().map(str::to_owned);
        let expires_ms = session.meta.ttl_ms.saturating_add(now_ms());
        Ok(Verified { kid, user, expires_ms })
    }

    /// The session of a request's `cookie`; `None` when the cookie is refused (logged at DEBUG,
    /// with the reason and nothing of the cookie).
    ///
    /// # Errors
    ///
    /// [`Error::RevocationsStale`] when the copy of the revocations is not current and
    /// sessions fail closed.
    pub(crate) async fn open(&self, cookie: &str) -> Result<Option<Session>> {
        if !self.shared.mirror.ever_current() && self.settings.feed_down == FeedDown::Refuse {
            // A process's first requests wait for the first read of the revocations, within
            // the bound.
            self.ready().await?;
        }
        let (session, verdict) = match self.checked(cookie) {
            Ok((session, _, verdict)) => (session, verdict),
            Err(why) => {
                debug!(reason = ?why, "a stateless session's cookie was refused");
                return Ok(None);
            }
        };
        if let Verdict::Stale(silent_ms) = verdict {
            self.start_feed(); // again, if its task ended (its runtime was shut down, say)
            match self.settings.feed_down {
                FeedDown::Refuse => return Err(Error::RevocationsStale { silent_ms }),
                FeedDown::Accept => warn!(
                    silent_ms,
                    "the revocation feed is silent: a stateless session is served by the last known revocations"
                ),
            }
        }
        Ok(Some(session))
    }

    /// The cookie checked and read into a session, with the id of the key that signed it and
    /// what the copy of the revocations says (not revoked: valid, or not known to be current).
    fn checked(&self, cookie: &str) -> std::result::Result<(Session, String, Verdict), Refused> {
        let (now, skew) = (now_ms(), self.settings.clock_skew.as_secs());
        let seal_for = |jti: &str| self.store.cookie_binding(jti);
        let opened = cookie::open(&self.keys, cookie, skew, now, seal_for)?;
        let token = Token::parse(&opened.jti).ok_or(Refused::Malformed)?;
        let body = opened.body;
        let device = device_of(&token);
        let (start_ms, deadline_ms) = body.times();
        let user = (!body.user.is_empty()).then(|| user_hash(&body.user));
        let bound = self.settings.stale_after;
        let verdict =
            self.shared.mirror.check(&device_id(&device), user.as_deref(), start_ms, bound);
        if verdict == Verdict::Revoked {
            return Err(Refused::Revoked);
        }
        let config = self.store.config();
        let ms = match body.idle_ms {
            0 => TimeoutsMs::of_store(config),
            idle => TimeoutsMs::of(&Timeouts::new(millis(idle), millis(idle)), config)
                .map_err(|_| Refused::Malformed)?,
        };
        let meta = Metadata {
            created_ms: start_ms,
            deadline_ms,
            ttl_ms: opened.exp_ms.saturating_sub(now),
            idle_timeout_ms: (body.idle_ms > 0).then_some(ms.idle as i64),
            touch_after_ms: (body.idle_ms > 0).then_some(ms.touch_after),
        };
        let mut session = Session::new(token, String::new(), meta, config.limits, None)
            .with_attributes(body.record, BTreeMap::new());
        session.flash_pending = !body.flash.is_empty();
        session.flash = body.flash;
        if !body.user.is_empty() {
            let (user, label) = (body.user, body.label);
            session.bound = Some(Bound { rotated_ms: 0, device, user, label });
        }
        Ok((session, opened.kid, verdict))
    }

    /// A new anonymous session, beginning now, with `timeouts` of its own or the store's.
    ///
    /// # Errors
    ///
    /// [`Error::Entropy`]; [`Error::Config`] for timeouts out of range.
    pub(crate) fn create(&self, timeouts: Option<&Timeouts>) -> Result<Session> {
        let config = self.store.config();
        let ms = match timeouts {
            Some(own) => TimeoutsMs::of(own, config)?,
            None => TimeoutsMs::of_store(config),
        };
        let now = now_ms();
        let longest = u64::try_from(self.settings.max_lifetime.as_millis()).unwrap_or(u64::MAX);
        let lifetime = ms.absolute.min(longest);
        let deadline_ms = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
        let meta = Metadata {
            created_ms: now,
            deadline_ms,
            ttl_ms: (ms.idle as i64).min(deadline_ms - now),
            idle_timeout_ms: timeouts.map(|_| ms.idle as i64),
            touch_after_ms: timeouts.map(|_| ms.touch_after),
        };
        Ok(Session::new(Token::generate()?, String::new(), meta, config.limits, None))
    }

    /// True when the cookie should be issued again to slide its idle expiry: as much of the
    /// idle timeout is used up as makes a Redis session's load touch it, and the expiry would
    /// move.
    pub(crate) fn refresh_due(&self, session: &Session) -> bool {
        let (idle, touch_after) = self.idle(session);
        let due = expiry_rule::touch_due(session.meta.ttl_ms, idle, touch_after);
        due && expires_ms(session, idle, now_ms()) > now_ms() + session.meta.ttl_ms + 1000
    }

    fn idle(&self, session: &Session) -> (u64, u64) {
        let config = self.store.config();
        match (session.meta.idle_timeout_ms, session.meta.touch_after_ms) {
            (Some(idle), Some(touch_after)) => (idle as u64, touch_after),
            _ => (config.idle_ms(), config.touch_after_ms()),
        }
    }

    /// `session`'s cookie value, with `flash` pending for a later request; `budget` is the most
    /// bytes the value may take.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] (`"cookie"`) over the budget, with the size the cookie would have
    /// had; [`Error::Unseal`] when the contents could not be sealed.
    pub(crate) fn issue(&self, session: &Session, flash: Vec<u8>, budget: usize) -> Result<String> {
        let (idle, _) = self.idle(session);
        let now = now_ms();
        let (user, label) = match &session.bound {
            Some(bound) => (bound.user.clone(), bound.label.clone()),
            None => (String::new(), String::new()),
        };
        let body = Body {
            idle_ms: session.meta.idle_timeout_ms.map_or(0, |idle| idle as u64),
            user,
            label,
            flash,
            record: Packed::encoded(session.packed()),
        };
        let jti = session.token().expose();
        let seal = self.store.cookie_binding(jti);
        let value = cookie::issue(
            &self.keys,
            seal.as_ref(),
            jti,
            now,
            expires_ms(session, idle, now),
            &body,
        )?;
        if value.len() > budget {
            let overhead = self.settings.max_cookie_bytes.saturating_sub(budget);
            let (size, max) = (value.len() + overhead, self.settings.max_cookie_bytes);
            return Err(Error::TooLarge { limit: "cookie", size, max });
        }
        Ok(value)
    }

    /// The most bytes a cookie value may take under a cookie named `name`.
    pub(crate) fn value_budget(&self, name: &str) -> usize {
        self.settings.max_cookie_bytes.saturating_sub(name.len() + 1)
    }

    /// Logs `session` in as `login.user`: a new `jti` (so a device id of its own), beginning
    /// now on the server's clock (what a "log out everywhere" compares with), with the login's
    /// timeouts or the store's, and listed under the user. A session bound before (a login as
    /// someone else) is revoked: its cookie opens nothing now. An anonymous one's cookie stays
    /// what it was, with nobody logged in.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a user id outside 1 to 1024 bytes or timeouts out of range;
    /// Redis errors (the session is then left as it was).
    pub(crate) async fn login(&self, session: &mut Session, login: &Login) -> Result<()> {
        let user = login.user.as_str();
        if user.is_empty() || user.len() > MAX_USER_BYTES {
            let why = format!("a login's user id must be 1 to {MAX_USER_BYTES} bytes");
            return Err(Error::Config(why));
        }
        let mut fresh = self.create(login.timeouts.as_ref())?;
        let device = device_of(fresh.token());
        let label = bound::cut_label(&login.label);
        let (ends_ms, id) = (fresh.meta.deadline_ms, device_id(&device));
        let listed = Listed { device: id, created_ms: 0, ends_ms, label: label.clone() };
        fresh.meta.created_ms = self.store.list_cookie_device(user, &listed, None).await?;
        if session.bound.is_some() {
            self.end(session).await?;
        }
        session.meta = fresh.meta;
        session.rekey(fresh.token().clone(), String::new(), None);
        session.bound = Some(Bound { rotated_ms: 0, device, user: user.to_owned(), label });
        Ok(())
    }

    /// Moves `session` to a new `jti`, and revokes the old one: a cookie known before opens
    /// nothing from now on. With `Some`, new timeouts from now on (`None` inside: the store's).
    /// A bound session stays bound, under a new device id in its user's list, with the start
    /// it had.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create); Redis errors (the session is then left as it was).
    pub(crate) async fn regenerate(
        &self,
        session: &mut Session,
        timeouts: Option<Option<&Timeouts>>,
    ) -> Result<()> {
        let mut fresh = self.create(timeouts.flatten())?;
        fresh.meta.created_ms = session.meta.created_ms;
        if timeouts.is_none() {
            fresh.meta = session.meta;
        }
        let (device, old) = (device_of(fresh.token()), device_id(&device_of(session.token())));
        if let Some(bound) = &session.bound {
            let (ends_ms, label) = (fresh.meta.deadline_ms, bound.label.clone());
            let listed = Listed { device: device_id(&device), created_ms: 0, ends_ms, label };
            let start = Some(fresh.meta.created_ms);
            self.store.list_cookie_device(&bound.user, &listed, start).await?;
        }
        self.store.revoke_cookie_device(&old, self.until(session.meta.deadline_ms)).await?;
        // The old cookie is revoked: from here on the session must move.
        session.meta = fresh.meta;
        session.rekey(fresh.token().clone(), String::new(), None);
        if let Some(bound) = &mut session.bound {
            bound.device = device;
            if let Err(e) = self.store.unlist_cookie_devices(&bound.user, &[&old]).await {
                // Revoked already: the list leaves it out by the revocations.
                warn!(error = %e, "a regenerated session's old entry stays in its user's list");
            }
        }
        Ok(())
    }

    /// Revokes `session` until its deadline, and takes it off its user's list.
    ///
    /// # Errors
    ///
    /// Redis errors: the session is then not revoked.
    pub(crate) async fn destroy(&self, session: &Session) -> Result<()> {
        self.end(session).await
    }

    async fn end(&self, session: &Session) -> Result<()> {
        let device = device_id(&device_of(session.token()));
        self.store.revoke_cookie_device(&device, self.until(session.meta.deadline_ms)).await?;
        if let Some(user) = session.user_id() {
            self.store.unlist_cookie_devices(user, &[&device]).await?;
        }
        Ok(())
    }

    /// Until when a revocation of a session that ends at `deadline_ms` must hold: past the
    /// deadline by the clock skew that checks accept, and the second `exp` is rounded up by.
    pub(crate) fn until(&self, deadline_ms: i64) -> i64 {
        deadline_ms.saturating_add(self.margin_ms())
    }

    /// How long past a session's end its revocation must hold: a check accepts a cookie the
    /// clock skew past its end, by a clock that may be the skew ahead of the one that set the
    /// end (and `exp` is rounded up to the second).
    pub(crate) fn margin_ms(&self) -> i64 {
        let skew = i64::try_from(self.settings.clock_skew.as_millis()).unwrap_or(i64::MAX);
        skew.saturating_mul(2).saturating_add(1000)
    }
}

/// When `session`'s cookie issued at `now` expires: the idle timeout from now, or the deadline.
fn expires_ms(session: &Session, idle_ms: u64, now: i64) -> i64 {
    now.saturating_add(i64::try_from(idle_ms).unwrap_or(i64::MAX)).min(session.meta.deadline_ms)
}

fn millis(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}
