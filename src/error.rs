//! The crate's one error type.
//!
//! Every fallible call returns [`Error`]. Variants that wrap another error keep it as
//! [`std::error::Error::source`], so callers and error reporters see the whole chain, and their
//! Display names the cause too, so that an application that logs `{e}` alone learns what went
//! wrong. No variant carries a session token, and no text names a password: error text is safe
//! to log.

use std::fmt;

/// What went wrong in a session operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (a bad URL, a zero timeout, limits that contradict).
    Config(String),
    /// Waited longer than the wait timeout for a connection that another operation was opening.
    PoolTimeout,
    /// Redis answered with an error (out of memory, say), or the connection failed.
    Redis(redis::RedisError),
    /// Redis did not answer within the configured command timeout.
    Timeout(redis::RedisError),
    /// No connection to Redis could be opened: refused, unreachable, not within the connect
    /// timeout, or closed by the server as it opened (a server at its `maxclients` does that).
    Connect(redis::RedisError),
    /// Redis refused the credentials (none given where a password is required, or a wrong
    /// one) or a permission (an ACL that denies a command or a key). The configuration must
    /// change: retrying does not help.
    Auth(redis::RedisError),
    /// The TLS handshake with Redis failed: the server's certificate was refused (an unknown
    /// issuer, a wrong name, expired or not yet valid: a misconfiguration, or an interception)
    /// or the server refused ours. The configuration must change: retrying does not help.
    Tls(redis::RedisError),
    /// The operating system's random source failed, so no token could be drawn.
    Entropy(getrandom::Error),
    /// The session no longer exists: it expired, was destroyed, or was moved to a new token by
    /// a regenerate. Nothing was written.
    SessionGone,
    /// A checked save found the session changed in Redis since it was read. Nothing was
    /// written; reload the session and apply the change again.
    Conflict,
    /// A token retired by a rotation was presented after its grace window: it was most likely
    /// stolen. The session it led to has been revoked (every session of the user, when
    /// [`Rotation::revoke_user_on_reuse`](crate::Rotation::revoke_user_on_reuse) is set). Tell
    /// the user, and treat the request as logged out.
    TokenReused {
        /// The user the session belonged to. Not in the `Display` text: a user id may be
        /// personal data.
        user: String,
        /// How many sessions were revoked (0 when they were already gone).
        revoked: usize,
    },
    /// Stateless sessions' revocations are not known to be current: the feed that mirrors them
    /// from Redis has been silent for longer than its bound, and stateless sessions fail closed
    /// ([`FeedDown::Refuse`](crate::stateless::FeedDown::Refuse)). Passes once the feed is back.
    RevocationsStale {
        /// How long the feed has been silent, in ms (0 when it never answered).
        silent_ms: u64,
    },
    /// A value, the whole session, the attribute count, the pending flash messages or a
    /// stateless session's cookie would exceed a configured limit. Nothing was written.
    TooLarge {
        /// Which limit: `"value"`, `"session"`, `"attributes"`, `"flash"` or `"cookie"`.
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
    /// A stored value did not open ([encryption at rest](crate::Encryption)), or, rarely, a
    /// value could not be sealed (the random source failed). Only this attribute is affected;
    /// the rest of the session reads as usual.
    Unseal {
        /// The attribute (or `"@flash"`) being opened.
        attribute: String,
        /// Why it did not open (or could not be sealed).
        cause: Unseal,
    },
}

/// Why a stored value did not open (see [`Error::Unseal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unseal {
    /// It is sealed under a key id the key ring does not hold (a key retired too early).
    UnknownKey(u16),
    /// It does not authenticate: changed in Redis, copied from another attribute or another
    /// session, or sealed under other key material with the same id.
    Rejected,
    /// It is sealed, and the store has no encryption keys configured.
    NoKeys,
    /// It is not sealed, and the store does not accept unsealed values
    /// ([`Encryption::accept_unsealed`](crate::Encryption::accept_unsealed)).
    NotSealed,
    /// It is too short or cut to be a sealed value.
    Malformed,
    /// The operating system's random source failed, so no nonce could be drawn (a seal).
    NoEntropy,
    /// The value is too long to seal (over 64 GiB).
    TooLong,
}

impl fmt::Display for Unseal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unseal::UnknownKey(id) => {
                write!(f, "sealed under key id {id}, which the key ring lacks")
            }
            Unseal::Rejected => f.write_str(
                "it does not authenticate (changed, moved from another attribute or session, or \
                 sealed under other key material with its key id)",
            ),
            Unseal::NoKeys => f.write_str("it is sealed and no encryption key is configured"),
            Unseal::NotSealed => f.write_str("it is not sealed and unsealed values are refused"),
            Unseal::Malformed => f.write_str("it is not a whole sealed value"),
            Unseal::NoEntropy => f.write_str("the random source failed"),
            Unseal::TooLong => f.write_str("it is too long to seal"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "invalid configuration: {why}"),
            Error::PoolTimeout => f.write_str("no Redis connection available in time"),
            Error::RevocationsStale { silent_ms: 0 } => f.write_str(
                "the revocation feed has not synchronised yet: stateless sessions are refused",
            ),
            Error::RevocationsStale { silent_ms } => write!(
                f,
                "the revocation feed has been silent for {silent_ms} ms, over its bound: \
                 stateless sessions are refused until it answers"
            ),
            Error::Redis(e) if server_code(e).as_deref() == Some("OOM") => f.write_str(
                "Redis is out of memory (used memory over maxmemory): the write was refused",
            ),
            Error::Redis(e) => write!(f, "Redis command failed: {}", Cause(e)),
            Error::Timeout(_) => f.write_str("Redis did not answer within the command timeout"),
            Error::Connect(e) if e.is_timeout() => {
                f.write_str("cannot connect to Redis: it did not answer in time")
            }
            Error::Connect(e) => write!(f, "cannot connect to Redis: {}", Cause(e)),
            Error::Auth(e) => {
                write!(f, "Redis refused the credentials or permission: {}", Cause(e))
            }
            Error::Tls(e) => write!(f, "TLS handshake with Redis failed: {}", Cause(e)),
            Error::Entropy(_) => f.write_str("the operating system's random source failed"),
            Error::SessionGone => f.write_str("the session no longer exists"),
            Error::Conflict => write!(f, "session changed concurrently since it was read"),
            Error::TokenReused { revoked, .. } => write!(
                f,
                "a session token retired by a rotation was used after its grace window (likely \
                 stolen): {revoked} session(s) of its user revoked"
            ),
            Error::TooLarge { limit, size, max } => {
                write!(f, "{limit} limit exceeded: {size} > {max}")
            }
            Error::InvalidName(name) => write!(f, "invalid attribute name {name:?}"),
            Error::NotLoaded(name) => write!(f, "attribute {name:?} was not loaded"),
            Error::Encode { attribute, .. } => write!(f, "cannot encode attribute {attribute:?}"),
            Error::Decode { attribute, .. } => write!(f, "cannot decode attribute {attribute:?}"),
            Error::Corrupt(why) => write!(f, "corrupt session data: {why}"),
            Error::Unseal { attribute, cause: cause @ (Unseal::NoEntropy | Unseal::TooLong) } => {
                write!(f, "attribute {attribute:?} cannot be sealed: {cause}")
            }
            Error::Unseal { attribute, cause } => {
                write!(f, "attribute {attribute:?} does not open: {cause}")
            }
        }
    }
}

impl Error {
    /// True when Redis could not be reached, did not answer in time, or refused for a passing
    /// reason (out of memory, loading, a failover): the request may succeed later unchanged (a
    /// web layer answers 503). False for errors about the session or the data, and for
    /// misconfigurations that retrying cannot mend ([`Error::Auth`], [`Error::Tls`]).
    ///
    /// ```
    /// assert!(!redis_sessions::Error::SessionGone.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::PoolTimeout | Error::Timeout(_) | Error::Connect(_) => true,
            Error::RevocationsStale { .. } => true,
            Error::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || matches!(
                        server_code(e).as_deref(),
                        Some(
                            "LOADING"
                                | "TRYAGAIN"
                                | "CLUSTERDOWN"
                                | "MASTERDOWN"
                                | "MOVED"
                                | "ASK"
                                | "READONLY"
                                | "OOM"
                                | "BUSY"
                        )
                    )
            }
            _ => false,
        }
    }

    /// The error for a failure to open a connection: [`Error::Connect`], unless the server
    /// refused the credentials or the TLS handshake failed.
    pub(crate) fn connecting(e: redis::RedisError) -> Self {
        match Error::from(e) {
            Error::Redis(e) | Error::Timeout(e) => Error::Connect(e),
            other => other,
        }
    }
}

impl std::error::Error for Unseal {}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis(e)
            | Error::Timeout(e)
            | Error::Connect(e)
            | Error::Auth(e)
            | Error::Tls(e) => Some(e),
            Error::Entropy(e) => Some(e),
            Error::Encode { source, .. } => Some(source),
            Error::Decode { source, .. } => Some(source),
            Error::Unseal { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

impl From<redis::RedisError> for Error {
    /// Server replies that mean "this key is not one of our sessions" become
    /// [`Error::Corrupt`]; refused credentials or permissions [`Error::Auth`]; a failed TLS
    /// handshake [`Error::Tls`]; everything else stays a Redis error.
    fn from(e: redis::RedisError) -> Self {
        match server_code(&e).as_deref() {
            Some("CORRUPT") | Some("WRONGTYPE") => Error::Corrupt(e.to_string()),
            Some("NOAUTH" | "WRONGPASS" | "NOPERM") => Error::Auth(e),
            _ if e.kind() == redis::ErrorKind::AuthenticationFailed => Error::Auth(e),
            _ if e.kind() == redis::ErrorKind::UnexpectedReturnType => {
                Error::Corrupt(e.to_string())
            }
            _ if tls_failure(&e).is_some_and(is_certificate_problem) => Error::Tls(e),
            _ if e.is_timeout() => Error::Timeout(e),
            _ => Error::Redis(e),
        }
    }
}

/// The rustls error behind a failed TLS handshake. redis-rs keeps it in an `Arc`, inside an I/O
/// error whose own `source` skips it, so it is looked for by hand.
fn tls_failure(e: &redis::RedisError) -> Option<&rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let source = std::error::Error::source(e)?;
    let source = source.downcast_ref::<Shared>().map_or(source, |shared| &**shared as _);
    let io = source.downcast_ref::<std::io::Error>()?;
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// True for a TLS failure that only a change of configuration mends: a certificate refused by
/// either side. Other handshake failures (a proxy restarting, a broken record) may pass.
fn is_certificate_problem(e: &rustls::Error) -> bool {
    use rustls::AlertDescription as Alert;
    match e {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::UnsupportedNameType => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::CertificateRequired
                | Alert::AccessDenied
        ),
        _ => false,
    }
}

/// A Redis error as the end of a sentence: the server's code and message, or the failure of
/// the connection, cut where a server's message would go on to quote the command's arguments
/// (which may hold session data).
struct Cause<'a>(&'a redis::RedisError);

impl fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        if let Some(tls) = tls_failure(e) {
            return write!(f, "{tls}");
        }
        let cut = |detail: &str| {
            detail.split(", with args beginning with").next().unwrap_or_default().to_owned()
        };
        match (e.code(), e.clone().into_server_errors()) {
            (Some(code), _) => write!(f, "{code} {}", cut(e.detail().unwrap_or_default())),
            (None, Some(errors)) => match errors.first() {
                Some((_, error)) => {
                    write!(f, "{} {}", error.code(), cut(error.details().unwrap_or_default()))
                }
                None => write!(f, "{e}"),
            },
            (None, None) => write!(f, "{e}"),
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
