//! The client's side of TLS (`tcpchat --tls HOST:PORT`): how the server's certificate is
//! trusted, and the handshake.
//!
//! Trust, in order:
//! 1. `--tls-insecure`: nothing about the certificate is checked (the handshake's signature
//!    still is). The session is encrypted but anyone on the path could be the other end; the
//!    scrollback and the status bar say so.
//! 2. A certificate that chains to a trusted root — the system's (`rustls-native-certs`: the
//!    same store `curl` and `openssl` read on this machine) or one given with `--tls-ca` — and is
//!    valid for the host name is accepted as any TLS client would. Expired or for another name:
//!    refused.
//! 3. A certificate that chains to no trusted root (a self-signed one, as `tcpchat --serve
//!    --tls` makes) is trusted by its key, SSH style: the first connection pins the key's
//!    fingerprint in `known_hosts` and shows it; later ones must present the same key. A
//!    different key is refused, with both fingerprints and the command that accepts the new
//!    one, and never retried by itself.
//!
//! Only the chain and name checks are replaced by the pin: the server must still prove, with
//! the handshake's signature, that it holds the pinned key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::known_hosts::KnownHosts;
use super::record::{RecordTap, Recorder};
use super::{Fingerprint, Negotiated, provider};

/// How long the TLS handshake may take once TCP is connected.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the command line says about TLS on the client.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--tls-insecure`: accept any certificate.
    pub insecure: bool,
    /// `--tls-ca FILE`: more roots to trust (a private CA), PEM.
    pub ca: Option<PathBuf>,
    /// Where pins are kept; `None` without a data directory (then a key is trusted for this
    /// run only, and the user is told).
    pub known_hosts: Option<KnownHosts>,
}

/// How the server's certificate was trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// It chains to a trusted root and names the host.
    Verified,
    /// It chains to no trusted root; its key was seen for the first time and pinned.
    PinnedNow {
        /// The key's fingerprint.
        fingerprint: Fingerprint,
        /// The file it was pinned in, or why it could not be.
        kept: Result<PathBuf, String>,
    },
    /// It chains to no trusted root; its key is the one pinned.
    Pinned {
        /// The key's fingerprint.
        fingerprint: Fingerprint,
    },
    /// `--tls-insecure`: not checked at all.
    Unchecked {
        /// The key's fingerprint, for the record.
        fingerprint: Fingerprint,
    },
}

/// A finished handshake: what was agreed and how the server was trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// Version and cipher suite.
    pub negotiated: Negotiated,
    /// How the certificate was trusted.
    pub trust: Trust,
}

/// Why there is no TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's key is not the one pinned for this `HOST:PORT`.
    KeyChanged {
        /// `HOST:PORT`.
        target: String,
        /// The key pinned.
        pinned: Fingerprint,
        /// The key the server presented.
        presented: Fingerprint,
        /// The file the pin is in.
        known_hosts: PathBuf,
    },
    /// The server answered in plaintext: it does not speak TLS.
    NotTls {
        /// `HOST:PORT`.
        target: String,
        /// The start of what it sent, as text.
        answered: String,
    },
    /// The certificate was refused (wrong name, expired, an untrusted chain), or the pins
    /// cannot be read.
    Refused(String),
    /// The handshake failed some other way (reset, closed, timed out): worth another try.
    Failed(String),
}

impl TlsFailure {
    /// Whether trying again could help. A changed key, a plaintext server or a refused
    /// certificate are answers, not accidents: the client stops and says so.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Failed(_))
    }
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::KeyChanged {
                target,
                pinned,
                presented,
                ..
            } => write!(
                f,
                "the TLS key of {target} changed (pinned {pinned}, presented {presented})"
            ),
            Self::NotTls { target, answered } => write!(
                f,
                "the server at {target} does not speak TLS (it answered in plaintext: \
                 \"{answered}\"); connect without --tls"
            ),
            Self::Refused(why) => write!(f, "TLS refused: {why}"),
            Self::Failed(why) => write!(f, "TLS handshake failed: {why}"),
        }
    }
}

/// The client's TLS for one `HOST:PORT`: its configuration and verifier.
#[derive(Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    verifier: Arc<Verifier>,
    name: ServerName<'static>,
    target: String,
    known_hosts: Option<KnownHosts>,
}

impl ClientTls {
    /// The TLS client for `target` (`HOST:PORT`). Fails on an unreadable `--tls-ca` file.
    pub fn new(target: &str, options: ClientOptions) -> Result<Self, String> {
        let host = crate::net::host_and_port(target).0;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host} cannot be a TLS server name: {e}"))?;
        let mut roots = RootCertStore::empty();
        // A machine without a CA bundle still gets pinning; errors about single files in the
        // store are the store's business (as for any other client on this machine).
        let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(ca) = &options.ca {
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "--tls-ca {}: no CA certificate in it",
                    ca.display()
                ));
            }
        }
        let provider = provider();
        let chain = match roots.is_empty() {
            true => None,
            false => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("cannot set up certificate checks: {e}"))?,
            ),
        };
        let verifier = Arc::new(Verifier {
            chain,
            insecure: options.insecure,
            algorithms: provider.signature_verification_algorithms,
            state: Mutex::default(),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        // Every connection shows its certificate and is checked (a resumed session shows
        // none); a reconnect is rare enough that the full handshake costs nothing to notice.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            config: Arc::new(config),
            verifier,
            name,
            target: target.to_owned(),
            known_hosts: options.known_hosts,
        })
    }

    /// Whether any certificate is trusted (`--tls-insecure`).
    pub fn insecure(&self) -> bool {
        self.verifier.insecure
    }

    /// Runs the handshake over a connected `stream`; what passes is recorded in `tap`.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        tap: &RecordTap,
    ) -> Result<(TlsStream<Recorder<TcpStream>>, Established), TlsFailure> {
        let pinned = match &self.known_hosts {
            Some(known) => known
                .get(&self.target)
                .map_err(|e| TlsFailure::Refused(format!("cannot read the pinned keys: {e}")))?,
            None => None,
        };
        self.verifier.begin(pinned);
        let recorded = Recorder::new(stream, tap.clone());
        let handshake =
            TlsConnector::from(self.config.clone()).connect(self.name.clone(), recorded);
        let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await;
        let outcome = self.verifier.outcome();
        let stream = match result {
            Err(_elapsed) => {
                let secs = HANDSHAKE_TIMEOUT.as_secs();
                return Err(TlsFailure::Failed(format!("no TLS handshake in {secs} s")));
            }
            Ok(Err(error)) => return Err(self.failure(error, outcome, tap)),
            Ok(Ok(stream)) => stream,
        };
        let negotiated = Negotiated::of(stream.get_ref().1);
        let trust = match outcome {
            Some(Outcome::Verified) => Trust::Verified,
            Some(Outcome::Pinned(fingerprint)) => Trust::Pinned { fingerprint },
            Some(Outcome::Unchecked(fingerprint)) => Trust::Unchecked { fingerprint },
            // Pinned only now that the server proved it holds the key (the signature checked).
            Some(Outcome::FirstUse(fingerprint)) => Trust::PinnedNow {
                fingerprint,
                kept: match &self.known_hosts {
                    None => Err("no data directory to keep it in".to_owned()),
                    Some(known) => known
                        .pin(&self.target, fingerprint)
                        .map(|()| known.path().to_owned())
                        .map_err(|e| format!("{}: {e}", known.path().display())),
                },
            },
            Some(Outcome::Changed { .. }) | None => {
                return Err(TlsFailure::Refused(
                    "the certificate was not checked".into(),
                ));
            }
        };
        Ok((stream, Established { negotiated, trust }))
    }

    /// What a failed handshake means, from the verifier's outcome and the first bytes read.
    fn failure(
        &self,
        error: std::io::Error,
        outcome: Option<Outcome>,
        tap: &RecordTap,
    ) -> TlsFailure {
        if let Some(Outcome::Changed { pinned, presented }) = outcome {
            return TlsFailure::KeyChanged {
                target: self.target.clone(),
                pinned,
                presented,
                known_hosts: self
                    .known_hosts
                    .as_ref()
                    .map(|k| k.path().to_owned())
                    .unwrap_or_default(),
            };
        }
        let first = tap.first_received();
        if first
            .first()
            .is_some_and(|&byte| !super::record::is_content_type(byte))
        {
            return TlsFailure::NotTls {
                target: self.target.clone(),
                answered: plaintext_summary(&first),
            };
        }
        match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls @ rustls::Error::InvalidCertificate(_)) => {
                TlsFailure::Refused(format!("the server's certificate: {tls}"))
            }
            Some(tls @ rustls::Error::AlertReceived(_)) => {
                TlsFailure::Refused(format!("the server refused the handshake: {tls}"))
            }
            Some(tls) => TlsFailure::Failed(tls.to_string()),
            None => TlsFailure::Failed(error.to_string()),
        }
    }
}

/// The first line of what a plaintext server sent, short enough for one line.
fn plaintext_summary(bytes: &[u8]) -> String {
    const MOST: usize = 60;
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or_default();
    let mut shown: String = line.chars().take(MOST).collect();
    if line.chars().count() > MOST || text.lines().nth(1).is_some() {
        shown.push_str("...");
    }
    shown
}

/// What the verifier decided in the last handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Verified,
    FirstUse(Fingerprint),
    Pinned(Fingerprint),
    Unchecked(Fingerprint),
    Changed {
        pinned: Fingerprint,
        presented: Fingerprint,
    },
}

#[derive(Debug, Default)]
struct VerifyState {
    /// The key pinned for the host, read before the handshake.
    pinned: Option<Fingerprint>,
    outcome: Option<Outcome>,
}

/// The certificate check: the usual chain check, or the pin where there is no chain.
#[derive(Debug)]
struct Verifier {
    /// Checks against the trusted roots; `None` if there are none at all.
    chain: Option<Arc<WebPkiServerVerifier>>,
    insecure: bool,
    algorithms: WebPkiSupportedAlgorithms,
    /// One handshake at a time: the client has one connection.
    state: Mutex<VerifyState>,
}

impl Verifier {
    fn begin(&self, pinned: Option<Fingerprint>) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = VerifyState {
            pinned,
            outcome: None,
        };
    }

    fn outcome(&self) -> Option<Outcome> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .outcome
    }

    fn decide(&self, outcome: Outcome) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .outcome = Some(outcome);
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of_certificate(end_entity)?;
        if self.insecure {
            self.decide(Outcome::Unchecked(fingerprint));
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(chain) = &self.chain {
            match chain.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(verified) => {
                    self.decide(Outcome::Verified);
                    return Ok(verified);
                }
                Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {}
                Err(error) => return Err(error),
            }
        }
        let pinned = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pinned;
        match pinned {
            None => self.decide(Outcome::FirstUse(fingerprint)),
            Some(pinned) if pinned == fingerprint => self.decide(Outcome::Pinned(fingerprint)),
            Some(pinned) => {
                self.decide(Outcome::Changed {
                    pinned,
                    presented: fingerprint,
                });
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plaintext_answer_is_shown_as_its_first_line() {
        let greeting = "*** 连接成功! you are guest1; 1 online\n*** more\n";
        assert_eq!(
            plaintext_summary(greeting.as_bytes()),
            "*** 连接成功! you are guest1; 1 online..."
        );
        assert_eq!(plaintext_summary(b"hi"), "hi");
    }
}
