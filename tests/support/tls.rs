//! TLS fixtures: certificates made at test time by redis-test (openssl), and TLS servers.

use std::path::PathBuf;

use redis_sessions::{Config, Pem, TlsConfig};
use redis_test::utils::{
    build_client_cert_with_custom_cn, build_keys_and_certs_for_tls, TlsFilePaths,
};
use tempfile::TempDir;

use super::TestRedis;

/// A CA, a server certificate it signed (for 127.0.0.1), and a client certificate it signed.
pub struct Certificates {
    pub dir: TempDir,
    pub server: TlsFilePaths,
    pub client_crt: PathBuf,
    pub client_key: PathBuf,
}

impl Certificates {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = build_keys_and_certs_for_tls(&dir);
        let ca_key = dir.path().join("ca.key");
        let client = build_client_cert_with_custom_cn(&dir, "app", &server.ca_crt, &ca_key);
        Certificates { server, client_crt: client.client_crt, client_key: client.client_key, dir }
    }

    /// Trust this CA, no client certificate.
    pub fn ca_only(&self) -> TlsConfig {
        TlsConfig::default().with_ca_cert(Pem::File(self.server.ca_crt.clone()))
    }

    /// Trust this CA and present the client certificate, given inline.
    pub fn with_client_cert(&self) -> TlsConfig {
        let read = |p: &PathBuf| std::fs::read_to_string(p).expect("read pem");
        self.ca_only().with_client_cert(
            Pem::Inline(read(&self.client_crt)),
            Pem::Inline(read(&self.client_key)),
        )
    }
}

/// A redis-server that speaks only TLS (`--port 0`), with `tls-auth-clients` set by `mtls`.
pub fn tls_server(certs: &Certificates, mtls: bool) -> TestRedis {
    super::tls_server(&certs.server, mtls)
}

impl TestRedis {
    /// This server's config with `tls` settings.
    pub fn tls_config(&self, tls: TlsConfig) -> Config {
        self.config().with_tls(tls)
    }
}
