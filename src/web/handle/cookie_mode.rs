//! The stateless mode of a [`WebSession`](crate::web::WebSession): where the handle's methods
//! go when the session is its cookie ([`StatelessSessions`](crate::stateless::StatelessSessions))
//! rather than a key in Redis.
//!
//! [`Cookies`] has the same methods with or without the `stateless` feature; without it, it is
//! a type with no value, so the handle's code reads the same either way and the compiler drops
//! the branches that would use it.

#[cfg(feature = "stateless")]
pub(crate) use with_feature::Cookies;
#[cfg(not(feature = "stateless"))]
pub(crate) use without_feature::Cookies;

#[cfg(feature = "stateless")]
mod with_feature {
    use crate::error::Result;
    use crate::session::Session;
    use crate::stateless::StatelessSessions;
    use crate::users::{Login, UserSession};
    use crate::Timeouts;

    /// Stateless sessions, and how many bytes a cookie value may take under the layer's
    /// cookie name.
    #[derive(Clone)]
    pub(crate) struct Cookies {
        pub(crate) sessions: StatelessSessions,
        pub(crate) budget: usize,
    }

    impl Cookies {
        /// For cookies named `name`: the value's budget is what the name leaves.
        pub(crate) fn named(&self, name: &str) -> Cookies {
            let budget = self.sessions.value_budget(name);
            Cookies { sessions: self.sessions.clone(), budget }
        }

        pub(crate) async fn open(&self, cookie: &str) -> Result<Option<Session>> {
            self.sessions.open(cookie).await
        }

        pub(crate) fn create(&self, timeouts: Option<&Timeouts>) -> Result<Session> {
            self.sessions.create(timeouts)
        }

        pub(crate) async fn regenerate(
            &self,
            session: &mut Session,
            timeouts: Option<Option<&Timeouts>>,
        ) -> Result<()> {
            self.sessions.regenerate(session, timeouts).await
        }

        pub(crate) async fn destroy(&self, session: &Session) -> Result<()> {
            self.sessions.destroy(session).await
        }

        /// The cookie to set after the handler, if one is due: the session changed, flash
        /// messages were taken (`changed`) or queued (`next`), or the idle expiry should slide.
        pub(crate) fn finish(
            &self,
            session: &Session,
            next: Vec<u8>,
            changed: bool,
        ) -> Result<Option<String>> {
            let due = changed || !next.is_empty() || session.is_changed();
            if !due && !self.sessions.refresh_due(session) {
                return Ok(None);
            }
            let flash = [session.flash.as_slice(), next.as_slice()].concat();
            self.sessions.issue(session, flash, self.budget).map(Some)
        }

        pub(crate) async fn login(&self, session: &mut Session, login: &Login) -> Result<()> {
            self.sessions.login(session, login).await
        }

        pub(crate) async fn user_sessions(&self, user: &str) -> Result<Vec<UserSession>> {
            self.sessions.user_sessions(user).await
        }

        pub(crate) async fn revoke(&self, user: &str, id: &str) -> Result<bool> {
            self.sessions.revoke(user, id).await
        }

        pub(crate) async fn revoke_user(
            &self,
            user: &str,
            keep: Option<&mut Session>,
        ) -> Result<usize> {
            self.sessions.revoke_user(user, keep).await
        }
    }
}

#[cfg(not(feature = "stateless"))]
mod without_feature {
    use crate::error::Result;
    use crate::session::Session;
    use crate::users::{Login, UserSession};
    use crate::Timeouts;

    /// No stateless mode without the feature: no value of this type exists.
    #[derive(Clone)]
    pub(crate) enum Cookies {}

    impl Cookies {
        pub(crate) fn named(&self, _: &str) -> Cookies {
            match *self {}
        }

        pub(crate) async fn open(&self, _: &str) -> Result<Option<Session>> {
            match *self {}
        }

        pub(crate) fn create(&self, _: Option<&Timeouts>) -> Result<Session> {
            match *self {}
        }

        pub(crate) async fn regenerate(
            &self,
            _: &mut Session,
            _: Option<Option<&Timeouts>>,
        ) -> Result<()> {
            match *self {}
        }

        pub(crate) async fn destroy(&self, _: &Session) -> Result<()> {
            match *self {}
        }

        pub(crate) fn finish(&self, _: &Session, _: Vec<u8>, _: bool) -> Result<Option<String>> {
            match *self {}
        }

        pub(crate) async fn login(&self, _: &mut Session, _: &Login) -> Result<()> {
            match *self {}
        }

        pub(crate) async fn user_sessions(&self, _: &str) -> Result<Vec<UserSession>> {
            match *self {}
        }

        pub(crate) async fn revoke(&self, _: &str, _: &str) -> Result<bool> {
            match *self {}
        }

        pub(crate) async fn revoke_user(&self, _: &str, _: Option<&mut Session>) -> Result<usize> {
            match *self {}
        }
    }
}
