//! TLS settings: a custom CA and a client certificate (mTLS), kept all the way to the socket.
//!
//! `rediss://` URLs verify the server against the system's root store (or the Mozilla roots
//! compiled in, with the `webpki-roots` feature). A private CA and a client certificate are
//! given here as PEM, from a file or inline. Certificate checks cannot be turned off: the crate
//! does not enable redis-rs' `tls-rustls-insecure`, so a `#insecure` URL is refused.
//!
//! The redis-rs clients are built with these certificates (see `connector.rs`).

use std::fmt;
use std::path::PathBuf;

use redis::{ClientTlsConfig, TlsCertificates};
use serde::Deserialize;

use crate::error::{Error, Result};

/// PEM data, from a file or inline.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Pem {
    /// Read from this file when the store is built.
    File(PathBuf),
    /// The PEM text itself.
    Inline(String),
}

impl Pem {
    fn read(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
            Pem::File(path) => std::fs::read(path)
                .map_err(|e| Error::Config(format!("cannot read {what} {}: {e}", path.display()))),
        }
    }
}

impl fmt::Debug for Pem {
    /// File paths are shown; inline PEM (possibly a private key) is not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

/// Custom certificates for `rediss://` connections. All optional.
///
/// ```
/// use redis_sessions::{Pem, TlsConfig};
/// let tls = TlsConfig::default()
///     .with_ca_cert(Pem::File("/etc/redis/ca.crt".into()))
///     .with_client_cert(Pem::File("client.crt".into()), Pem::File("client.key".into()));
/// assert!(tls.is_custom());
/// ```
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Trust only this CA (instead of the system or webpki roots). Default none.
    pub ca_cert: Option<Pem>,
    /// Client certificate chain for servers with `tls-auth-clients yes`. Default none.
    pub client_cert: Option<Pem>,
    /// The client certificate's private key. Default none.
    pub client_key: Option<Pem>,
}

impl TlsConfig {
    /// Trusts `ca` instead of the default roots. Default: the default roots.
    ///
    /// ```
    /// # use redis_sessions::{Pem, TlsConfig};
    /// let tls = TlsConfig::default().with_ca_cert(Pem::Inline("-----BEGIN CERTIFICATE-----".into()));
    /// assert!(tls.ca_cert.is_some());
    /// ```
    pub fn with_ca_cert(mut self, ca: Pem) -> Self {
        self.ca_cert = Some(ca);
        self
    }

    /// Presents `cert` (with its `key`) to the server. Default: no client certificate.
    ///
    /// ```
    /// # use redis_sessions::{Pem, TlsConfig};
    /// let tls = TlsConfig::default().with_client_cert(Pem::File("c.crt".into()), Pem::File("c.key".into()));
    /// assert!(tls.client_key.is_some());
    /// ```
    pub fn with_client_cert(mut self, cert: Pem, key: Pem) -> Self {
        self.client_cert = Some(cert);
        self.client_key = Some(key);
        self
    }

    /// True when anything differs from the default roots without a client certificate.
    pub fn is_custom(&self) -> bool {
        self != &TlsConfig::default()
    }

    /// The certificates in the form redis-rs takes them, files read, and a client certificate
    /// checked against its key.
    pub(crate) fn certificates(&self) -> Result<TlsCertificates> {
        let client_tls = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let (client_cert, client_key) =
                    (cert.read("client certificate")?, key.read("client key")?);
                check_client_key(&client_cert, &client_key)?;
                Some(ClientTlsConfig { client_cert, client_key })
            }
            (None, None) => None,
            _ => return Err(Error::Config("client_cert and client_key go together".into())),
        };
        let root_cert = self.ca_cert.as_ref().map(|ca| ca.read("CA certificate")).transpose()?;
        Ok(TlsCertificates { client_tls, root_cert })
    }
}

/// Refuses a client certificate that is not PEM, or whose key is not the private key of its
/// first certificate: redis-rs would take either, and fail at the first connection. The errors
/// name the problem, never the key's bytes.
fn check_client_key(cert: &[u8], key: &[u8]) -> Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::Config("the client certificate is not PEM".into()))?;
    if certs.is_empty() {
        return Err(Error::Config("the client certificate file holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|_| Error::Config("the client key is not a PEM private key".into()))?;
    // The provider the connections will use: the application's, else ring (see below).
    let ring;
    let provider = match rustls::crypto::CryptoProvider::get_default() {
        Some(provider) => provider.as_ref(),
        None => {
            ring = rustls::crypto::ring::default_provider();
            &ring
        }
    };
    rustls::sign::CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        Error::Config(format!("the client key does not fit the client certificate: {e}"))
    })?;
    Ok(())
}

/// Makes rustls' ring provider the process default unless one is already installed, so a
/// `rediss://` URL works without the application knowing that rustls needs a provider.
pub(crate) fn install_crypto_provider() {
    // An Err only says that a provider is already installed: the application chose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
