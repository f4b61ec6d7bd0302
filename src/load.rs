//! Loading sessions: get-and-touch, mostly without a script.
//!
//! A load reads the hash's values with one command (`HVALS`, or `HMGET` of the metadata and
//! the loose fields a request names): each value says which field it is (fields.rs), so the
//! names need not cross the network. One of them is the key's expiry (`@t`), which every
//! script that sets the TTL records, so the load judges from it and the server's time as
//! estimated here (server_clock.rs) whether the idle expiry is due to slide, without a `PTTL`.
//! Nothing is written, and no script runs, unless something must be written. When the expiry is
//! due (once per touch window), or the hash records none, the get-and-touch script does the
//! read, the checks and the writes atomically, on the server's clock. A load that pops flash
//! messages deletes them with its read, in one transaction (flash_pop.rs). Reading without a
//! script is safe because the load judges by the expiry the hash records and the deadline in its
//! record, both on the server's clock as estimated here, which is never behind: past either the
//! load goes to the script, which checks the deadline whatever the key's TTL says (one set by
//! hand, or by a `RESTORE`, may run past it). And it is cheap: a plain read costs Redis a
//! fraction of what a script does (docs/performance.md).

use redis::Value;
use tracing::{debug, instrument, warn};

use crate::error::Result;
use crate::keys;
use crate::reply::{self, Loaded, Snapshot, TouchRule};
use crate::scripts::SCRIPTS;
use crate::session::Session;
use crate::store::SessionStore;
use crate::token::Token;

/// Which attributes a load reads.
#[derive(Clone, Copy)]
pub(crate) enum Read<'a> {
    All,
    Only(&'a [&'a str]),
}

impl SessionStore {
    /// Loads the session a cookie names, sliding its idle expiry when due (get-and-touch).
    ///
    /// `Ok(None)` when there is no live session: expired, destroyed, regenerated away, or a
    /// malformed token (which sends nothing to Redis). Pending flash messages stay pending.
    ///
    /// # Errors
    ///
    /// Connection errors as for [`create`](Self::create); [`Error::Corrupt`](crate::Error::Corrupt)
    /// when the key holds something that is not a session.
    pub async fn load(&self, token: &str) -> Result<Option<Session>> {
        self.read(token, Read::All, false).await
    }

    /// Like [`load`](Self::load), and takes the pending flash messages, which
    /// [`Session::take_flash`] then returns. No other request will see them. On one server the
    /// read deletes them in the same transaction: one round trip when no touch is due, two
    /// otherwise; on a Redis Cluster, two when messages are pending (see `src/flash_pop.rs`). A
    /// message is shown at most once: one whose reply is lost with the connection is gone, and
    /// so is one read from a hash that the load then refuses as corrupt.
    ///
    /// # Errors
    ///
    /// As for [`load`](Self::load).
    pub async fn load_and_pop_flash(&self, token: &str) -> Result<Option<Session>> {
        self.read(token, Read::All, true).await
    }

    /// Like [`load`](Self::load), but reads only the packed record and the loose fields of
    /// `names` (with `HMGET`), and [`Session::get`] of any other attribute is an
    /// [`Error::NotLoaded`](crate::Error::NotLoaded). Since attributes are packed into one
    /// field this saves little over [`load`](Self::load); it remains for a request that wants
    /// to state what it reads. Saving works as usual (it writes only what changed), but never
    /// compacts, since the session was not read whole.
    ///
    /// ```no_run
    /// # async fn demo(store: redis_sessions::SessionStore, cookie: &str) -> redis_sessions::Result<()> {
    /// if let Some(session) = store.load_only(cookie, &["user_id"]).await? {
    ///     let user: Option<u64> = session.get("user_id")?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`load`](Self::load).
    pub async fn load_only(&self, token: &str, names: &[&str]) -> Result<Option<Session>> {
        self.read(token, Read::Only(names), false).await
    }

    #[instrument(level = "debug", name = "session.load", skip_all, fields(session))]
    async fn read(&self, text: &str, what: Read<'_>, pop_flash: bool) -> Result<Option<Session>> {
        let Some(token) = Token::parse(text) else {
            debug!("malformed token: no session");
            return Ok(None);
        };
        tracing::Span::current().record("session", tracing::field::debug(&token));
        let key = keys::session_key(&self.config, &token);
        let Some((loaded, by_script)) = self.fetch(&key, what, pop_flash).await? else {
            debug!("no live session");
            return Ok(None);
        };
        let mut session = Session::new(token, key, loaded.meta, self.config.limits)
            .with_attributes(loaded.packed, loaded.loose);
        match pop_flash {
            true => session.flash = loaded.flash,
            false => session.flash_pending = !loaded.flash.is_empty(),
        }
        Ok(Some(match what {
            Read::Only(names) if !by_script => session.loaded_only(names),
            _ => session, // the script read every field
        }))
    }

    /// Reads the session at `key`: the plain pipeline, then a script only if something must be
    /// written. The flag says whether get-and-touch read it (then whole, whatever `what` asked).
    async fn fetch(
        &self,
        key: &str,
        what: Read<'_>,
        pop_flash: bool,
    ) -> Result<Option<(Loaded, bool)>> {
        if pop_flash {
            return self.fetch_popping(key).await;
        }
        let (values, rule) = self.timed_read(read_pipeline(key, what)).await?;
        let values = match what {
            Read::All => values,
            Read::Only(names) => reply::hmget_as_hvals(values, names)?,
        };
        match reply::snapshot(values, rule)? {
            Snapshot::Missing => Ok(None),
            Snapshot::Fresh(loaded) => Ok(Some((loaded, false))),
            Snapshot::NeedsScript(_) => {
                Ok(self.get_and_touch(key, false).await?.map(|loaded| (loaded, true)))
            }
        }
    }

    /// Sends a plain read, with `TIME` when the clock is due for a sync (server_clock.rs): the
    /// values it read, and the rule to judge their expiry by.
    pub(crate) async fn timed_read(&self, mut pipe: redis::Pipeline) -> Result<(Value, TouchRule)> {
        let sent = self.clock.claim_sync();
        if sent.is_some() {
            pipe.cmd("TIME");
        }
        let (values, time) = reply::read_replies(self.run_read(&pipe).await?, sent.is_some())?;
        // An unreadable TIME costs the estimate, not the load: a popping read has already
        // taken the flash messages, and without an estimate the script judges the expiry.
        if let Some(Err(e)) = sent.zip(time).map(|(sent, time)| self.clock.sync(sent, time)) {
            warn!(error = %e, "the clock sync failed: the estimate stays as it was");
        }
        let (idle_ms, touch_after_ms) = (self.config.idle_ms(), self.config.touch_after_ms());
        Ok((values, TouchRule { now_ms: self.clock.now_ms(), idle_ms, touch_after_ms }))
    }

    /// Runs get-and-touch on `key`, popping the flash messages when `pop_flash`.
    pub(crate) async fn get_and_touch(&self, key: &str, pop_flash: bool) -> Result<Option<Loaded>> {
        let mut call = SCRIPTS.get_and_touch.call(&[key]);
        call.arg(self.config.idle_ms()).arg(self.config.touch_after_ms());
        call.arg(u8::from(pop_flash));
        reply::loaded(self.run::<Value>(&call).await?)
    }
}

/// `HVALS` (or `HMGET` of the metadata and `names`).
pub(crate) fn read_pipeline(key: &str, what: Read<'_>) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    match what {
        Read::All => pipe.cmd("HVALS").arg(key),
        Read::Only(names) => {
            let hmget = pipe.cmd("HMGET").arg(key).arg(&reply::METADATA[..]);
            reply::hmget_names(names).fold(hmget, |hmget, name| hmget.arg(name))
        }
    };
    pipe
}
