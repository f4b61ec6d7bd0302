//! The crate's one error type.
//!
//! Every fallible call returns [`Error`]. Variants that wrap another error keep it as
//! [`std::error::Error::source`], so callers and error reporters see the whole chain. No variant
//! carries a session token: error text is safe to log.

use std::fmt;

/// What went wrong in a session operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (a bad URL, a zero timeout, limits that contradict).
    Config(String),
    /// Waited longer than the wait timeout for a connection that another operation was opening.
    PoolTimeout,
    /// Redis answered with an error, or the connection failed.
    Redis(redis::RedisError),
    /// Redis did not answer within the configured command timeout.
    Timeout(redis::RedisError),
    /// The operating system's random source failed, so no token could be drawn.
    Entropy(getrandom::Error),
    /// The session no longer exists: it expired, was destroyed, or was moved to a new token by
    /// a regenerate. Nothing was written.
    SessionGone,
    /// A checked save found the session changed in Redis since it was read. Nothing was
    /// written; reload the session and apply the change again.
    Conflict,
    /// A value, the whole session, the attribute count or the pending flash messages would
    /// exceed a configured limit. Nothing was written.
    TooLarge {
        /// Which limit: `"value"`, `"session"`, `"attributes"` or `"flash"`.
        limit: &'static str,
        /// The size the operation would have reached (bytes, or attributes for `"attributes"`).
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// [`Session::get`](crate::Session::get) of an attribute that a partial load
    /// ([`load_only`](crate::SessionStore::load_only)) did not read.
    NotLoaded(String),
    /// An attribute name was empty, started with `@` (reserved for metadata) or was over
    /// 65,535 bytes (the packed record's limit).
    InvalidName(String),
    /// A value could not be encoded to MessagePack.
    Encode {
        /// The attribute (or `"@flash"`) being encoded.
        attribute: String,
        /// The encoder's error.
        source: rmp_serde::encode::Error,
    },
    /// Stored bytes could not be decoded into the requested type. Only this attribute is
    /// affected; the rest of the session reads as usual.
    Decode {
        /// The attribute (or `"@flash"`) being decoded.
        attribute: String,
        /// The decoder's error.
        source: rmp_serde::decode::Error,
    },
    /// The key holds something that is not a session of this crate (a foreign value under the
    /// prefix, a wrong Redis type, or missing metadata).
    Corrupt(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "invalid configuration: {why}"),
            Error::PoolTimeout => f.write_str("no Redis connection available in time"),
            Error::Redis(_) => f.write_str("Redis command failed"),
            Error::Timeout(_) => f.write_str("Redis did not answer within the command timeout"),
            Error::Entropy(_) => f.write_str("the operating system's random source failed"),
            Error::SessionGone => f.write_str("the session no longer exists"),
            Error::Conflict => write!(f, "session changed concurrently since it was read"),
            Error::TooLarge { limit, size, max } => {
                write!(f, "{limit} limit exceeded: {size} > {max}")
            }
            Error::InvalidName(name) => write!(f, "invalid attribute name {name:?}"),
            Error::NotLoaded(name) => write!(f, "attribute {name:?} was not loaded"),
            Error::Encode { attribute, .. } => write!(f, "cannot encode attribute {attribute:?}"),
            Error::Decode { attribute, .. } => write!(f, "cannot decode attribute {attribute:?}"),
            Error::Corrupt(why) => write!(f, "corrupt session data: {why}"),
        }
    }
}

impl Error {
    /// True when Redis could not be reached or did not answer in time: the request may succeed
    /// later unchanged (a web layer answers 503). False for errors about the session or the data.
    ///
    /// ```
    /// assert!(!redis_sessions::Error::SessionGone.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::PoolTimeout | Error::Timeout(_) => true,
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || matches!(
                        e.code(),
                        Some("LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN")
                    )
            }
            _ => false,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis(e) | Error::Timeout(e) => Some(e),
            Error::Entropy(e) => Some(e),
            Error::Encode { source, .. } => Some(source),
            Error::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<redis::RedisError> for Error {
    /// Server replies that mean "this key is not one of our sessions" become
    /// [`Error::Corrupt`]; everything else stays a Redis error.
    fn from(e: redis::RedisError) -> Self {
        match server_code(&e).as_deref() {
            Some("CORRUPT") | Some("WRONGTYPE") => Error::Corrupt(e.to_string()),
            _ if e.kind() == redis::ErrorKind::UnexpectedReturnType => {
                Error::Corrupt(e.to_string())
            }
            _ if e.is_timeout() => Error::Timeout(e),
            _ => Error::Redis(e),
        }
    }
}

/// The server's error code, also when the error came back inside a pipeline.
fn server_code(e: &redis::RedisError) -> Option<String> {
    if let Some(code) = e.code() {
        return Some(code.to_owned());
    }
    let errors = e.clone().into_server_errors()?;
    errors.first().map(|(_, error)| error.code().to_owned())
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
