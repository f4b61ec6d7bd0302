//! [`StatelessSessions`], its settings with their `with_*` builders, and the two enums that say
//! what happens when the feed is down ([`FeedDown`]) and why a cookie was refused ([`Refused`]).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::connection::connector;
use crate::error::{Error, Result};
use crate::stateless::feed;
use crate::stateless::keys::{JwtKey, KeyRing};
use crate::stateless::mirror::Mirror;
use crate::SessionStore;

/// What stateless sessions do while their copy of the revocations is not known to be current
/// (see [`StatelessSessions::with_feed_down`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedDown {
    /// Refuse them: each request that uses its session gets [`Error::RevocationsStale`] (503
    /// from the web layer) until the feed answers. A revoked session is never served.
    Refuse,
    /// Serve them by the copy as it last was, logging a warning: a session revoked meanwhile
    /// stays usable until the feed is back or the session expires.
    Accept,
}

/// Why a stateless session's cookie was refused. The web layer treats each like no cookie at
/// all (the visitor has no session) and logs the reason at DEBUG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// Not a JWT, a claim missing or of the wrong type, or contents that do not read.
    Malformed,
    /// No `kid`, or one that names no key held.
    UnknownKey,
    /// An `alg` that is not the algorithm of the key the `kid` names (`none` included).
    Algorithm,
    /// The signature does not verify: the token was changed, or signed with another key.
    Signature,
    /// Past its `exp`, or past the session's absolute deadline (beyond the clock skew).
    Expired,
    /// Issued in the future (beyond the clock skew).
    Future,
    /// Its contents are sealed and do not open with the store's encryption keys (or are not
    /// sealed, and the store requires it).
    Sealed,
    /// Revoked: logged out, or the user logged out everywhere after it began.
    Revoked,
}

/// Sessions in signed cookies, with their revocations in Redis. Cheap to clone: clones share
/// the keys and the copy of the revocations.
///
/// The store gives the settings that both modes share: the timeouts, the limits, the key prefix
/// and, when set, the encryption keys, which then seal the session inside the cookie (the JWT's
/// registered claims stay readable; the rest, user id included, does not).
#[derive(Clone)]
pub struct StatelessSessions {
    pub(crate) store: SessionStore,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) settings: Settings,
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) clock_skew: Duration,
    pub(crate) stale_after: Duration,
    pub(crate) feed_down: FeedDown,
    pub(crate) max_cookie_bytes: usize,
    pub(crate) max_lifetime: Duration,
}

/// What clones share: the copy of the revocations, and the feed once started.
pub(crate) struct Shared {
    pub(crate) mirror: Arc<Mirror>,
    /// The feed's task, and what stops it: dropped with the last clone.
    feed: Mutex<Option<Feed>>,
}

struct Feed {
    /// Dropped with the last clone, which stops the task.
    _stop: watch::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// The longest lifetime [`StatelessSessions::with_max_lifetime`] takes.
const MAX_LIFETIME: Duration = Duration::from_secs(400 * 86_400);

/// The largest clock skew [`StatelessSessions::with_clock_skew`] takes.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

impl StatelessSessions {
    /// Stateless sessions signed with `key`, with their revocations in `store`'s Redis. Opens no
    /// connection: the feed starts with the first request.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the store's URL cannot open a connection of the feed's, or when no
    /// JWT crypto provider is available: jsonwebtoken chooses one by
    /// its features, and finds none when another crate of the application enables its
    /// `aws_lc_rs` feature beside the `rust_crypto` this crate enables (install one with
    /// `jsonwebtoken::crypto::CryptoProvider::install_default` first).
    pub fn new(store: SessionStore, key: JwtKey) -> Result<Self> {
        // The feed's connection: a URL it cannot use is an error now, not a feed that never
        // starts.
        connector::single_client(store.config(), redis::ProtocolVersion::RESP3)?;
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            let why = "jsonwebtoken has no crypto provider (both of its backends are enabled?): \
                       install one with CryptoProvider::install_default";
            return Err(Error::Config(why.into()));
        }
        let settings = Settings {
            clock_skew: Duration::from_secs(30),
            stale_after: Duration::from_secs(5),
            feed_down: FeedDown::Refuse,
            max_cookie_bytes: 4096,
            max_lifetime: Duration::from_secs(30 * 86_400),
        };
        let shared = Arc::new(Shared { mirror: Arc::new(Mirror::new()), feed: Mutex::default() });
        Ok(StatelessSessions {
            store,
            keys: Arc::new(KeyRing::new(key, Vec::new())?),
            settings,
            shared,
        })
    }

    /// Adds a key that checks cookies but no longer signs them: after a key rotation, cookies
    /// signed with the old key stay valid until they expire, and new ones are signed with the
    /// key given to [`new`](Self::new). Default none.
    ///
    /// ```
    /// use redis_sessions::stateless::{JwtKey, StatelessSessions};
    /// # fn demo(store: redis_sessions::SessionStore) -> redis_sessions::Result<()> {
    /// let new = JwtKey::hs256("2027-01", &[2u8; 32])?;
    /// let old = JwtKey::hs256("2026-12", &[1u8; 32])?;
    /// let sessions = StatelessSessions::new(store, new)?.with_previous_key(old)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a key with the same id is already held.
    pub fn with_previous_key(mut self, key: JwtKey) -> Result<Self> {
        let ring = &*self.keys;
        let mut previous: Vec<JwtKey> =
            ring.kids().into_iter().skip(1).filter_map(|kid| ring.get(kid).cloned()).collect();
        previous.push(key);
        self.keys = Arc::new(KeyRing::new(ring.current().clone(), previous)?);
        Ok(self)
    }

    /// Sets how far apart the clocks of the processes that issue and check cookies may be:
    /// the leeway on `exp` and on the session's deadline, and how far in the future an `iat`
    /// may be. Default 30 seconds; at most 5 minutes (a larger value is taken as 5 minutes).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn demo(sessions: redis_sessions::stateless::StatelessSessions) {
    /// let sessions = sessions.with_clock_skew(Duration::from_secs(5));
    /// # }
    /// ```
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.settings.clock_skew = skew.min(MAX_CLOCK_SKEW);
        self
    }

    /// Sets how long the revocation feed may be silent before the copy of the revocations is no
    /// longer trusted (see [`with_feed_down`](Self::with_feed_down)). Default 5 seconds. A
    /// revocation reaches every process within this bound whatever happens to the feed, or
    /// requests fail closed; while the feed works it takes a few milliseconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn demo(sessions: redis_sessions::stateless::StatelessSessions) {
    /// let sessions = sessions.with_stale_after(Duration::from_secs(2));
    /// # }
    /// ```
    pub fn with_stale_after(mut self, bound: Duration) -> Self {
        self.settings.stale_after = bound;
        self
    }

    /// Sets what happens while the feed has been silent longer than the bound. Default
    /// [`FeedDown::Refuse`]: fail closed.
    ///
    /// ```
    /// use redis_sessions::stateless::FeedDown;
    /// # fn demo(sessions: redis_sessions::stateless::StatelessSessions) {
    /// let sessions = sessions.with_feed_down(FeedDown::Accept);
    /// # }
    /// ```
    pub fn with_feed_down(mut self, feed_down: FeedDown) -> Self {
        self.settings.feed_down = feed_down;
        self
    }

    /// Sets the largest cookie (name, `=` and value) a response may set: a session that would
    /// need more fails with [`Error::TooLarge`] (`limit: "cookie"`) before the response is sent,
    /// and the web layer answers with its error page instead. Default 4096 bytes, what every
    /// browser keeps (RFC 6265, 6.1).
    ///
    /// ```
    /// # fn demo(sessions: redis_sessions::stateless::StatelessSessions) {
    /// let sessions = sessions.with_max_cookie_bytes(3000);
    /// # }
    /// ```
    pub fn with_max_cookie_bytes(mut self, max: usize) -> Self {
        self.settings.max_cookie_bytes = max;
        self
    }

    /// Sets the longest a stateless session may live, whatever its timeouts: a "log out
    /// everywhere" is kept in Redis this long, so every session it revoked has ended by then.
    /// Default 30 days; at most 400 days (a longer one is taken as 400 days).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn demo(sessions: redis_sessions::stateless::StatelessSessions) {
    /// let sessions = sessions.with_max_lifetime(Duration::from_secs(7 * 86_400));
    /// # }
    /// ```
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.max_lifetime = lifetime.min(MAX_LIFETIME);
        self
    }

    /// The store that holds the revocations and the users' lists.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// Starts the feed if it is not running, and waits until the copy of the revocations is
    /// current, or the bound of [`with_stale_after`](Self::with_stale_after) has passed.
    ///
    /// # Errors
    ///
    /// [`Error::RevocationsStale`] when the copy is not current by then.
    pub async fn ready(&self) -> Result<()> {
        self.start_feed();
        let mut synced = self.shared.mirror.synced();
        let waited = tokio::time::timeout(self.settings.stale_after, synced.wait_for(|s| *s));
        let synced = matches!(waited.await, Ok(Ok(_)));
        synced.then_some(()).ok_or(Error::RevocationsStale { silent_ms: 0 })
    }

    /// Starts the feed's task for all clones, unless it runs: the first time, and again when
    /// it ended (the runtime it ran on was shut down).
    pub(crate) fn start_feed(&self) {
        let mut feed = self.shared.feed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if feed.as_ref().is_some_and(|feed| !feed.task.is_finished()) {
            return;
        }
        let (stop, stopped) = watch::channel(());
        let (store, mirror) = (self.store.clone(), Arc::clone(&self.shared.mirror));
        let task = tokio::spawn(feed::run(store, mirror, stopped));
        *feed = Some(Feed { _stop: stop, task });
    }
}

impl fmt::Debug for StatelessSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatelessSessions")
            .field("store", &self.store)
            .field("kids", &self.keys.kids())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
