//! TLS for both sides (SPEC §3.1b): rustls with one crypto provider, *ring*, named here and
//! passed to every builder (no process-wide default is installed, so nothing else can pick a
//! different one behind our back; ring also builds without cmake).
//!
//! - [`server`]: the server's certificate (self-signed and kept in the data directory, or PEM
//!   files), reloaded in place on SIGHUP, and the accept step that tells a plaintext client
//!   which port it reached.
//! - [`transport`]: the byte streams a session runs over — plain TCP or TLS over it — as one
//!   trait, so the chat code is the same for both and the kernel's `TCP_INFO` is still read from
//!   the socket underneath.
//! - [`client`]: the client's verifier: a CA-signed certificate is checked against the system's
//!   roots (and `--tls-ca`); one that chains to no root is pinned by its public key on first use.
//! - [`known_hosts`]: the pinned keys, one `HOST:PORT SHA256:...` line each, SSH style.
//! - [`record`]: TLS record headers read as the bytes pass, for the inspector's TLS view.
//!
//! A key is named by its [`Fingerprint`]: the SHA-256 of its SubjectPublicKeyInfo, shown as
//! `SHA256:` and unpadded base64, as `ssh-keygen -l` shows SSH keys. Pinning the key, not the
//! certificate, lets a server renew its certificate with the same key without a warning.

pub mod client;
pub mod known_hosts;
pub mod record;
pub mod server;
pub mod transport;

use std::fmt;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

/// The one crypto provider every TLS configuration here is built with: ring, with
/// AES-128-GCM preferred (as Go's TLS does on hardware with AES instructions): as safe as
/// AES-256 for this purpose, and cheaper per byte, which is most of what TLS costs a chat
/// server's fan-out.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = rustls::crypto::ring::default_provider();
            let preferred = [
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ];
            provider
                .cipher_suites
                .sort_by_key(|suite| !preferred.contains(&suite.suite()));
            Arc::new(provider)
        })
        .clone()
}

/// The SHA-256 of a public key's SubjectPublicKeyInfo: what a pin compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// How a fingerprint is written: `SHA256:` then the digest in unpadded base64 (as SSH does).
const PREFIX: &str = "SHA256:";

impl Fingerprint {
    /// The fingerprint of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// The fingerprint of the key a certificate carries.
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Result<Self, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
        Ok(Self::of_spki(parsed.subject_public_key_info().as_ref()))
    }

    /// Reads `SHA256:base64`, as [`fmt::Display`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix(PREFIX)?;
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .ok()?;
        Some(Self(decoded.try_into().ok()?))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.0);
        write!(f, "{PREFIX}{encoded}")
    }
}

/// A negotiated TLS session as the status bar shows it: `TLS 1.3 TLS13_AES_128_GCM_SHA256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version, as rustls names it (`TLSv1_3`).
    pub version: &'static str,
    /// The cipher suite, as its RFC names it (`TLS13_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
}

impl Negotiated {
    /// What a finished handshake agreed on.
    pub fn of(state: &rustls::CommonState) -> Self {
        let version = match state.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
            Some(other) => other.as_str().unwrap_or("TLS ?"),
            None => "TLS ?",
        };
        let cipher = state
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or("?");
        Self { version, cipher }
    }
}

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version, self.cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_as_written() {
        let fingerprint = Fingerprint::of_spki(b"not really a key");
        let text = fingerprint.to_string();
        assert!(
            text.starts_with("SHA256:") && !text.ends_with('='),
            "{text}"
        );
        assert_eq!(text.len(), 7 + 43);
        assert_eq!(Fingerprint::parse(&text), Some(fingerprint));
        assert_eq!(Fingerprint::parse("SHA256:abc"), None);
        assert_eq!(Fingerprint::parse("MD5:abc"), None);
    }
}
