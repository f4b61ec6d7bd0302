//! Configuration: where Redis is, how long sessions live, and how big they may grow.
//!
//! [`Config`] deserializes with serde (durations as `"30m"`, `"250ms"`, through humantime), so
//! it can sit in a service's own config file; [`Config::from_url`] plus `with_*` methods build
//! it in code. Defaults suit a web request: command timeouts in milliseconds, not seconds.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::cache::LocalCache;
use crate::connection::tls::TlsConfig;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::rotation::Rotation;
use crate::seal::keys::Encryption;

/// Longest idle or absolute timeout: 100 years, so that deadlines in ms stay exact in Lua's
/// doubles (below 2^53) and every conversion to u64 is lossless.
const MAX_TIMEOUT_MS: u128 = 100 * 365 * 24 * 3600 * 1000;

/// A session timeout (the store's, or a session's own) in whole ms; `None` outside 1 ms to 100
/// years, the range every timeout is held to.
pub(crate) fn session_timeout_ms(timeout: Duration) -> Option<u64> {
    let ms = timeout.as_millis();
    (1..=MAX_TIMEOUT_MS).contains(&ms).then_some(ms as u64)
}

/// Everything a [`SessionStore`](crate::SessionStore) needs to know.
///
/// ```
/// use std::time::Duration;
/// use redis_sessions::Config;
///
/// let config = Config::from_url("redis://127.0.0.1:6379")
///     .with_idle_timeout(Duration::from_secs(20 * 60))
///     .with_absolute_timeout(Duration::from_secs(8 * 3600));
/// assert_eq!(config.key_prefix, "session:");
/// ```
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Redis URL: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. With
    /// `cluster`, one seed node of the cluster.
    pub url: String,
    /// The server is a Redis Cluster. Default false.
    pub cluster: bool,
    /// More seed nodes of the cluster besides `url` (any one that answers is enough). Default
    /// none.
    pub cluster_nodes: Vec<String>,
    /// Custom CA and client certificate for `rediss://`. Default: system roots, no client
    /// certificate.
    pub tls: TlsConfig,
    /// Prefix of every session key. Default `"session:"`.
    pub key_prefix: String,
    /// Put the session's Cluster hash tag in its key on a single server too. Default false:
    /// there the tag only lengthens every command that names the key, in the AOF and the
    /// replication stream, by 6 bytes. Keys in a Redis Cluster always carry it.
    pub hash_tags: bool,
    /// A session unused this long expires. Default 30 minutes.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session expires this long after it was created, however busy. Default 12 hours.
    #[serde(with = "humantime_serde")]
    pub absolute_timeout: Duration,
    /// Fraction (0.0, inclusive, to 1.0, exclusive) of the idle timeout that must be used up before a read extends the
    /// expiry. Default 0.1: with a 30-minute idle timeout a session is touched at most once
    /// every 3 minutes, and it may expire up to 3 minutes before a full idle timeout since its
    /// last use. 0.0 touches on every read.
    pub touch_threshold: f64,
    /// Connections kept open and shared by all operations, round robin. Each is multiplexed
    /// (many requests in flight at once), so a few serve a busy service: more spread the load
    /// over more sockets, fewer batch more requests per system call. Default 2.
    pub pool_max_size: usize,
    /// How long an operation waits for a connection that another operation is opening.
    /// Default 500 ms.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
    /// How long opening a new connection may take. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one Redis call (a script, or a load's pipeline) may take. Default 500 ms.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Size limits, enforced before anything is written.
    pub limits: Limits,
    /// Encryption at rest of attribute values and flash messages. Default none: values are
    /// stored as plain MessagePack.
    pub encryption: Option<Encryption>,
    /// A cache of sessions in this process, kept exact by Redis' `CLIENT TRACKING`. Default
    /// none: every load reads Redis. A single server only.
    pub local_cache: Option<LocalCache>,
    /// Rotation of the tokens of sessions bound to a user ([`login`](crate::SessionStore::login)),
    /// with a grace window and reuse detection. Default none: a token changes only when the app
    /// regenerates or rotates it.
    pub rotation: Option<Rotation>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: "redis://127.0.0.1:6379".to_owned(),
            cluster: false,
            cluster_nodes: Vec::new(),
            tls: TlsConfig::default(),
            key_prefix: "session:".to_owned(),
            hash_tags: false,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            touch_threshold: 0.1,
            pool_max_size: 2,
            wait_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(500),
            limits: Limits::default(),
            encryption: None,
            local_cache: None,
            rotation: None,
        }
    }
}

impl Config {
    /// Default settings for the Redis at `url`.
    ///
    /// ```
    /// let config = redis_sessions::Config::from_url("rediss://cache.example.com:6380");
    /// assert!(config.url.starts_with("rediss://"));
    /// ```
    pub fn from_url(url: impl Into<String>) -> Self {
        Config { url: url.into(), ..Config::default() }
    }

    /// Sets the URL. Default `redis://127.0.0.1:6379`.
    ///
    /// ```
    /// let config = redis_sessions::Config::default().with_url("redis://cache:6379/1");
    /// assert_eq!(config.url, "redis://cache:6379/1");
    /// ```
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Settings for the Redis Cluster reached through `urls` (seed nodes; any one that answers
    /// is enough). An empty list leaves the default URL as the only seed.
    ///
    /// ```
    /// let config = redis_sessions::Config::for_cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
    /// assert!(config.cluster);
    /// assert_eq!(config.seed_urls().count(), 2);
    /// ```
    pub fn for_cluster<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        let mut urls = urls.into_iter().map(Into::into);
        let url = urls.next().unwrap_or_else(|| Config::default().url);
        Config { url, cluster: true, cluster_nodes: urls.collect(), ..Config::default() }
    }

    /// Treats `url` as a seed node of a Redis Cluster. Default false.
    ///
    /// ```
    /// let config = redis_sessions::Config::from_url("redis://10.0.0.1:7000").with_cluster(true);
    /// assert!(config.cluster);
    /// ```
    pub fn with_cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }

    /// Sets the TLS certificates. Default [`TlsConfig::default`]: system roots, no client
    /// certificate.
    ///
    /// ```
    /// use redis_sessions::{Config, Pem, TlsConfig};
    /// let tls = TlsConfig::default().with_ca_cert(Pem::File("/etc/redis/ca.crt".into()));
    /// let config = Config::from_url("rediss://redis.internal:6380").with_tls(tls);
    /// assert!(config.tls.is_custom());
    /// ```
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// `url`, then `cluster_nodes`.
    pub fn seed_urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.cluster_nodes.iter().map(String::as_str))
    }

    /// True when the URL asks for TLS (`rediss://`).
    pub(crate) fn is_tls(&self) -> bool {
        scheme(&self.url) == Some("rediss")
    }

    /// Sets the key prefix. Default `"session:"`.
    ///
    /// ```
    /// let config = redis_sessions::Config::default().with_key_prefix("myapp:sess:");
    /// assert_eq!(config.key_prefix, "myapp:sess:");
    /// ```
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Puts the Cluster hash tag in keys on a single server too, for a server whose sessions
    /// will move to a Redis Cluster as they are (a server's keys and a cluster's differ, so
    /// moving without this ends every session). Default false; a cluster always tags.
    ///
    /// ```
    /// let config = redis_sessions::Config::default().with_hash_tags(true);
    /// assert!(config.hash_tags);
    /// ```
    pub fn with_hash_tags(mut self, hash_tags: bool) -> Self {
        self.hash_tags = hash_tags;
        self
    }

    /// True when keys carry the Cluster hash tag.
    pub(crate) fn tags_keys(&self) -> bool {
        self.cluster || self.hash_tags
    }

    /// Sets the idle timeout. Default 30 minutes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let config = redis_sessions::Config::default().with_idle_timeout(Duration::from_secs(600));
    /// assert_eq!(config.idle_timeout, Duration::from_secs(600));
    /// ```
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets the absolute timeout. Default 12 hours.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = redis_sessions::Config::default().with_absolute_timeout(Duration::from_secs(3600));
    /// assert_eq!(c.absolute_timeout, Duration::from_secs(3600));
    /// ```
    pub fn with_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = timeout;
        self
    }

    /// Sets the touch threshold, a fraction of the idle timeout. Default 0.1.
    ///
    /// ```
    /// let config = redis_sessions::Config::default().with_touch_threshold(0.25);
    /// assert_eq!(config.touch_threshold, 0.25);
    /// ```
    pub fn with_touch_threshold(mut self, fraction: f64) -> Self {
        self.touch_threshold = fraction;
        self
    }

    /// Sets how many shared connections are kept. Default 2.
    ///
    /// ```
    /// let config = redis_sessions::Config::default().with_pool_max_size(4);
    /// assert_eq!(config.pool_max_size, 4);
    /// ```
    pub fn with_pool_max_size(mut self, size: usize) -> Self {
        self.pool_max_size = size;
        self
    }

    /// Sets the wait, connect and command timeouts. Defaults 500 ms, 1 s and 500 ms.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let ms = Duration::from_millis;
    /// let config = redis_sessions::Config::default().with_timeouts(ms(100), ms(200), ms(50));
    /// assert_eq!(config.command_timeout, ms(50));
    /// ```
    pub fn with_timeouts(mut self, wait: Duration, connect: Duration, command: Duration) -> Self {
        self.wait_timeout = wait;
        self.connect_timeout = connect;
        self.command_timeout = command;
        self
    }

    /// Sets the size limits. Default [`Limits::default`].
    ///
    /// ```
    /// use redis_sessions::{Config, Limits};
    /// let config = Config::default().with_limits(Limits::default().with_max_value_bytes(1024));
    /// assert_eq!(config.limits.max_value_bytes, 1024);
    /// ```
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Seals attribute values and flash messages with these keys. Default none.
    ///
    /// ```
    /// use redis_sessions::{Config, Encryption, EncryptionKey};
    /// let key = EncryptionKey::from_bytes(1, [0x5a; 32]); // a real key is random
    /// let config = Config::default().with_encryption(Encryption::new(key));
    /// assert!(config.encryption.is_some());
    /// ```
    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = Some(encryption);
        self
    }

    /// Serves loads from a cache in this process. Default none.
    ///
    /// ```
    /// use redis_sessions::{Config, LocalCache};
    /// let cache = LocalCache::default().with_max_entries(500);
    /// let config = Config::default().with_local_cache(cache);
    /// assert_eq!(config.local_cache.map(|cache| cache.max_entries), Some(500));
    /// ```
    pub fn with_local_cache(mut self, cache: LocalCache) -> Self {
        self.local_cache = Some(cache);
        self
    }

    /// Rotates the tokens of bound sessions. Default none.
    ///
    /// ```
    /// use redis_sessions::{Config, Rotation};
    /// let config = Config::default().with_rotation(Rotation::default());
    /// assert!(config.rotation.is_some());
    /// ```
    pub fn with_rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = Some(rotation);
        self
    }

    /// The idle timeout in whole milliseconds, as the scripts take it (bounded by `validate`).
    pub(crate) fn idle_ms(&self) -> u64 {
        self.idle_timeout.as_millis() as u64
    }

    /// The absolute timeout in whole milliseconds (bounded by `validate`).
    pub(crate) fn absolute_ms(&self) -> u64 {
        self.absolute_timeout.as_millis() as u64
    }

    /// How much of the idle timeout must be used up before a read extends it, in ms.
    pub(crate) fn touch_after_ms(&self) -> u64 {
        (self.idle_ms() as f64 * self.touch_threshold) as u64
    }

    /// Checks the settings that would otherwise fail later, and less clearly.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first invalid setting.
    pub fn validate(&self) -> Result<()> {
        let fail = |why: &str| Err(Error::Config(why.to_owned()));
        let first = scheme(&self.url);
        if !matches!(first, Some("redis" | "rediss"))
            || !self.seed_urls().all(|url| scheme(url) == first)
        {
            return fail("url (and cluster_nodes) must all start with redis:// or all rediss://");
        }
        for url in self.seed_urls() {
            check_url(url)?;
        }
        if self.tls.is_custom() && !self.is_tls() {
            return fail("tls certificates are set but the url is not rediss://");
        }
        if session_timeout_ms(self.idle_timeout).is_none()
            || session_timeout_ms(self.absolute_timeout).is_none()
        {
            return fail("idle_timeout and absolute_timeout must be between 1 ms and 100 years");
        }
        if !(0.0..1.0).contains(&self.touch_threshold) {
            return fail("touch_threshold must be at least 0.0 and below 1.0");
        }
        if self.pool_max_size == 0 {
            return fail("pool_max_size must be at least 1");
        }
        if self.command_timeout.is_zero()
            || self.wait_timeout.is_zero()
            || self.connect_timeout.is_zero()
        {
            return fail("command_timeout, connect_timeout and wait_timeout must be above zero");
        }
        if let Some(cache) = &self.local_cache {
            if self.cluster {
                return fail("local_cache works with a single server, not a Redis Cluster");
            }
            if cache.max_entries == 0 || cache.max_bytes == 0 {
                return fail("local_cache max_entries and max_bytes must be at least 1");
            }
            if self.touch_after_ms() == 0 {
                return fail(
                    "local_cache serves nothing when touch_threshold is 0: every load writes",
                );
            }
        }
        if let Some(rotation) = &self.rotation {
            if rotation.every.is_zero() || rotation.grace.is_zero() {
                return fail("rotation every and grace must be above zero");
            }
            // Else a token could rotate again while the one before is still in its window,
            // and chains of stubs grow that loads must follow hop by hop.
            if rotation.grace >= rotation.every {
                return fail("rotation grace must be shorter than every");
            }
        }
        self.limits.validate()
    }
}

impl fmt::Debug for Config {
    /// Shows everything but the URL's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("cluster", &self.cluster)
            .field(
                "cluster_nodes",
                &self.cluster_nodes.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .field("hash_tags", &self.hash_tags)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("touch_threshold", &self.touch_threshold)
            .field("pool_max_size", &self.pool_max_size)
            .field("wait_timeout", &self.wait_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("limits", &self.limits)
            .field("encryption", &self.encryption)
            .field("local_cache", &self.local_cache)
            .field("rotation", &self.rotation)
            .finish()
    }
}

/// The URL's scheme as redis-rs reads it (lower case, surrounding white space ignored).
fn scheme(url: &str) -> Option<&'static str> {
    match redis::parse_redis_url(url)?.scheme() {
        "redis" => Some("redis"),
        "rediss" => Some("rediss"),
        _ => Some("other"),
    }
}

/// Refuses a URL that redis-rs cannot read, or that it reads as TLS without certificate checks.
///
/// The check reads the connection information redis-rs will connect with, not the text: the
/// URL parser drops tabs and newlines anywhere and trims spaces and control characters at the
/// ends, so `#insec\nure` and `#insecure ` both mean `#insecure` to it. This crate does not
/// enable redis-rs' `tls-rustls-insecure`, but Cargo merges features, so another crate of the
/// application may: then such a URL would really switch certificate checks off.
fn check_url(url: &str) -> Result<()> {
    use redis::{ConnectionAddr, IntoConnectionInfo};
    // The error names what is wrong with the URL, never the URL (it may hold a password).
    let info =
        url.into_connection_info().map_err(|e| Error::Config(format!("bad Redis URL: {e}")))?;
    if let ConnectionAddr::TcpTls { insecure: true, .. } = info.addr() {
        return Err(Error::Config(
            "certificate verification cannot be switched off (#insecure)".into(),
        ));
    }
    Ok(())
}

/// The URL with its user name, password and query replaced by `***`, for logs. All of the user
/// information goes: in `redis://secret@host` redis-rs reads `secret` as a user name, but it is
/// often a password written without its colon.
pub(crate) fn redact_url(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut parsed) => {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                let _ = parsed.set_password(None);
                let _ = parsed.set_username("***");
            }
            // A query may carry credentials too (`?pass=` of a socket URL).
            if parsed.query().is_some() {
                parsed.set_query(Some("***"));
            }
            parsed.to_string()
        }
        None => "<unparsable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_with_human_durations_and_defaults() {
        let json = r#"{"url": "rediss://:pw@cache:6380/2", "idle_timeout": "20m",
                       "command_timeout": "150ms", "limits": {"max_attributes": 10}}"#;
        let config: Config = serde_json::from_str(json).expect("valid config");
        assert_eq!(config.idle_timeout, Duration::from_secs(1200));
        assert_eq!(config.command_timeout, Duration::from_millis(150));
        assert_eq!(config.limits.max_attributes, 10);
        assert_eq!(config.limits.max_value_bytes, Limits::default().max_value_bytes);
        assert_eq!(config.key_prefix, "session:");
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains(":pw@"));
    }

    #[test]
    fn a_misspelt_setting_is_an_error_not_a_silent_default() {
        for json in [
            r#"{"idle_timout": "5m"}"#,
            r#"{"limits": {"max_atributes": 10}}"#,
            r#"{"tls": {"ca_certs": "/etc/ca.pem"}}"#,
        ] {
            let err = serde_json::from_str::<Config>(json).expect_err("unknown field");
            assert!(err.to_string().contains("unknown field"), "{err}");
        }
    }

    #[test]
    fn debug_hides_every_part_of_the_user_information() {
        for url in [
            "redis://SECRET@cache:6379",
            "redis://user:SECRET@cache",
            "redis://:SECRET@h",
            "redis+unix:///run/redis.sock?pass=SECRET",
        ] {
            let config = Config::from_url(url).with_cluster(true);
            let config = Config { cluster_nodes: vec![url.to_owned()], ..config };
            let shown = format!("{config:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        assert!(format!("{:?}", Config::default()).contains("redis://127.0.0.1:6379"));
    }

    #[test]
    fn touch_window_is_a_share_of_the_idle_timeout() {
        let config = Config::default().with_idle_timeout(Duration::from_secs(100));
        assert_eq!(config.touch_after_ms(), 10_000);
        assert_eq!(config.with_touch_threshold(0.0).touch_after_ms(), 0);
    }
}
