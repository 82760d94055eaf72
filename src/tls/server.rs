//! The server's side of TLS: its certificate and the accept step.
//!
//! The certificate comes from PEM files (`--tls-cert`, `--tls-key`) or, with `--tls` alone, is
//! made on first run with `rcgen` — self-signed, for `localhost`, `127.0.0.1`, `::1` and the
//! listen host — and kept in `DATA_DIR/tls/` (`cert.pem`, `key.pem`, both 0600, the directory
//! 0700), then reused, so the key clients pinned stays the same across restarts. A damaged or
//! half-present pair is an error that names the file; it is never replaced silently (that would
//! change the key every client pinned).
//!
//! [`ServerTls::reload`] reads the files again and swaps the certificate in place: handshakes
//! from then on use the new one, sessions already running keep theirs. A reload that fails
//! changes nothing.
//!
//! [`ServerTls::accept`] runs in the connection's own task, bounded by the handshake timeout,
//! so a client that stalls holds only its own slot. It peeks at the first byte first: a TLS
//! client always starts with a handshake record (0x16); anything else, or silence, is a
//! plaintext client, which is told in one line where it is (see [`NotAccepted`]).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use tracing::{info, warn};

use super::{Fingerprint, provider};
use crate::shutdown::Hangup;

/// The first byte of every TLS record that carries a handshake message (a ClientHello first).
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// Default time a client has from its TCP connection to a finished TLS handshake; a client
/// that stalls half-way is closed then. Real handshakes take a few round trips.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a client's first byte before it is taken for a plaintext client waiting
/// for a greeting (a TUI without `--tls`, `nc`) and told this port speaks TLS. A TLS client
/// sends its ClientHello right after the TCP handshake, in the same round trip as its ACK.
pub const FIRST_BYTE_WAIT: Duration = Duration::from_secs(2);

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// Made here on first run and kept in `dir` (`DATA_DIR/tls`), valid for `names`.
    SelfSigned {
        /// The directory holding `cert.pem` and `key.pem`.
        dir: PathBuf,
        /// Host names and addresses the certificate is made for.
        names: Vec<String>,
    },
    /// PEM files the operator provides (a CA-signed certificate, say).
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

impl CertSource {
    /// The self-signed certificate kept under the data directory `data_dir`, made for the
    /// loopback names and `listen_host` (the host part of `--listen`) if it names one.
    pub fn self_signed(data_dir: &Path, listen_host: &str) -> Self {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let host = listen_host.trim_start_matches('[').trim_end_matches(']');
        let unspecified = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if !host.is_empty() && !unspecified && !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
        Self::SelfSigned {
            dir: data_dir.join("tls"),
            names,
        }
    }

    /// The certificate file.
    pub fn cert_path(&self) -> PathBuf {
        match self {
            Self::SelfSigned { dir, .. } => dir.join("cert.pem"),
            Self::Files { cert, .. } => cert.clone(),
        }
    }

    /// The key file.
    pub fn key_path(&self) -> PathBuf {
        match self {
            Self::SelfSigned { dir, .. } => dir.join("key.pem"),
            Self::Files { key, .. } => key.clone(),
        }
    }
}

/// Why the certificate could not be had; each says which file and what to do.
#[derive(Debug)]
pub enum CertError {
    /// A file could not be read or written.
    Io(PathBuf, io::Error),
    /// A file is there but holds no usable certificate or key.
    Damaged(PathBuf, String),
    /// Only one of the self-signed pair is there.
    HalfPair {
        /// The one that is there.
        present: PathBuf,
        /// The one that is missing.
        missing: PathBuf,
    },
    /// The certificate and the key are not a pair, or rustls refuses them.
    Refused(String),
    /// Making a certificate failed.
    Generate(String),
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(path, error) => write!(f, "{}: {error}", path.display()),
            Self::Damaged(path, why) => write!(
                f,
                "{} is damaged ({why}); repair or replace it (for the self-signed pair: remove \
                 cert.pem and key.pem to make a new key, which clients will see as changed)",
                path.display()
            ),
            Self::HalfPair { present, missing } => write!(
                f,
                "{} is there but {} is not; restore it, or remove both to make a new key \
                 (clients will see it as changed)",
                present.display(),
                missing.display()
            ),
            Self::Refused(why) => write!(f, "the TLS certificate and key are refused: {why}"),
            Self::Generate(why) => write!(f, "cannot make a TLS certificate: {why}"),
        }
    }
}

impl std::error::Error for CertError {}

/// The certificate handshakes use now; [`ServerTls::reload`] swaps it.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The server's TLS: its acceptor, its certificate and where that comes from.
#[derive(Debug)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    current: Arc<Current>,
    source: CertSource,
}

/// What came instead of a finished handshake.
#[derive(Debug)]
pub enum NotAccepted {
    /// The first byte was not a TLS handshake record: a plaintext client spoke first.
    Plaintext(TcpStream),
    /// Nothing came within [`FIRST_BYTE_WAIT`], or the client closed its side without a byte:
    /// a plaintext client waiting for a greeting (or `nc` with its input at an end).
    Silent(TcpStream),
    /// The handshake did not finish within the handshake timeout.
    TimedOut,
    /// The handshake failed (garbage, a refused ClientHello, a reset).
    Failed(io::Error),
}

impl ServerTls {
    /// Loads the certificate `source` names, making the self-signed one if it is not there yet.
    pub fn new(source: CertSource) -> Result<Self, CertError> {
        if let CertSource::SelfSigned { dir, names } = &source {
            make_self_signed_unless_there(dir, names, &source)?;
        }
        let key = load(&source)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(key))));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| CertError::Refused(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // Our order (see [`provider`]), whatever the client's: the cheaper cipher suite.
        config.ignore_client_order = true;
        // No session tickets: tcpchat's client checks every connection's certificate with a
        // full handshake, and a ticket sent to every client would cost bytes and cache churn
        // for nothing.
        config.send_tls13_tickets = 0;
        Ok(Self {
            config: Arc::new(config),
            current,
            source,
        })
    }

    /// [`ServerTls::new`] for `--serve`: says in the log which certificate and key it serves.
    pub fn open(source: CertSource) -> Result<Arc<Self>, CertError> {
        let tls = Self::new(source)?;
        let cert = tls.source.cert_path();
        let key = tls.fingerprint();
        info!(
            "TLS certificate {}, key {key}; SIGHUP reloads it",
            cert.display()
        );
        Ok(Arc::new(tls))
    }

    /// What SIGHUP does to a TLS server: read the certificate again, or keep the old one if
    /// that fails; either way, one line in the log.
    pub fn reload_on_hangup(tls: &Arc<Self>) -> Hangup {
        let tls = tls.clone();
        Hangup::Reload(Box::new(move || match tls.reload() {
            Ok(key) => info!("SIGHUP: TLS certificate reloaded, key {key}"),
            Err(error) => warn!("SIGHUP: TLS certificate not reloaded, the old one stays: {error}"),
        }))
    }

    /// Where the certificate comes from.
    pub fn source(&self) -> &CertSource {
        &self.source
    }

    /// The fingerprint of the key handshakes present now (what clients pin).
    pub fn fingerprint(&self) -> Fingerprint {
        let current = self
            .current
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        current
            .end_entity_cert()
            .ok()
            .and_then(|cert| Fingerprint::of_certificate(cert).ok())
            .unwrap_or(Fingerprint::of_spki(&[]))
    }

    /// Reads the certificate and key again and uses them for every handshake from now on;
    /// on error the old ones stay. Returns the new key's fingerprint.
    pub fn reload(&self) -> Result<Fingerprint, CertError> {
        let key = Arc::new(load(&self.source)?);
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = key;
        Ok(self.fingerprint())
    }

    /// Peeks at the client's first byte, then runs the handshake; everything within
    /// `handshake_timeout` of the call.
    pub async fn accept(
        &self,
        stream: TcpStream,
        handshake_timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, NotAccepted> {
        let deadline = Instant::now() + handshake_timeout;
        let mut first = [0u8; 1];
        let wait = FIRST_BYTE_WAIT.min(handshake_timeout);
        match tokio::time::timeout(wait, stream.peek(&mut first)).await {
            Err(_elapsed) => return Err(NotAccepted::Silent(stream)),
            Ok(Ok(0)) => return Err(NotAccepted::Silent(stream)),
            Ok(Err(error)) => return Err(NotAccepted::Failed(error)),
            Ok(Ok(_)) if first[0] != HANDSHAKE_RECORD => {
                return Err(NotAccepted::Plaintext(stream));
            }
            Ok(Ok(_)) => {}
        }
        match tokio::time::timeout_at(
            deadline,
            TlsAcceptor::from(self.config.clone()).accept(stream),
        )
        .await
        {
            Err(_elapsed) => Err(NotAccepted::TimedOut),
            Ok(Err(error)) => Err(NotAccepted::Failed(error)),
            Ok(Ok(tls)) => Ok(tls),
        }
    }
}

/// Reads the certificate chain and key `source` names and checks that they are a pair.
fn load(source: &CertSource) -> Result<CertifiedKey, CertError> {
    let (cert_path, key_path) = (source.cert_path(), source.key_path());
    let cert_pem = fs::read(&cert_path).map_err(|e| CertError::Io(cert_path.clone(), e))?;
    let key_pem = fs::read(&key_path).map_err(|e| CertError::Io(key_path.clone(), e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Damaged(cert_path.clone(), e.to_string()))?;
    if chain.is_empty() {
        return Err(CertError::Damaged(cert_path, "no certificate in it".into()));
    }
    Fingerprint::of_certificate(&chain[0])
        .map_err(|e| CertError::Damaged(cert_path.clone(), e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| CertError::Damaged(key_path.clone(), e.to_string()))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => CertError::Refused(format!(
            "{} is not the key of {}",
            key_path.display(),
            cert_path.display()
        )),
        other => CertError::Damaged(key_path.clone(), other.to_string()),
    })
}

/// Makes the self-signed pair in `dir` unless both files are there; one without the other is
/// an error (never overwritten).
fn make_self_signed_unless_there(
    dir: &Path,
    names: &[String],
    source: &CertSource,
) -> Result<(), CertError> {
    let (cert, key) = (source.cert_path(), source.key_path());
    match (cert.exists(), key.exists()) {
        (true, true) => return Ok(()),
        (true, false) => {
            return Err(CertError::HalfPair {
                present: cert,
                missing: key,
            });
        }
        (false, true) => {
            return Err(CertError::HalfPair {
                present: key,
                missing: cert,
            });
        }
        (false, false) => {}
    }
    crate::data_dir::ensure(dir).map_err(|e| CertError::Io(dir.to_owned(), e))?;
    let signing_key = rcgen::KeyPair::generate().map_err(|e| CertError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| CertError::Generate(e.to_string()))?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, "tcpchat self-signed");
    params.distinguished_name = name;
    let made = params
        .self_signed(&signing_key)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    // The key goes in first: a crash between the two renames leaves a key without its
    // certificate, which the next start reports instead of silently making another key.
    write_private(&key, signing_key.serialize_pem().as_bytes())?;
    write_private(&cert, made.pem().as_bytes())?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (a temporary file, then a rename), readable by the
/// owner alone.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let io = |e| CertError::Io(path.to_owned(), e);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_self_signed_pair_is_made_once_private_and_reused() {
        let data = tempfile::tempdir().unwrap();
        let source = CertSource::self_signed(data.path(), "0.0.0.0");
        let first = ServerTls::new(source.clone()).unwrap().fingerprint();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&source.key_path()), 0o600);
            assert_eq!(mode(&source.cert_path()), 0o600);
            assert_eq!(mode(&data.path().join("tls")), 0o700);
        }
        let again = ServerTls::new(source).unwrap();
        assert_eq!(again.fingerprint(), first, "the same key on the next run");
        assert_eq!(again.reload().unwrap(), first);
    }

    #[test]
    fn a_damaged_or_half_pair_is_an_error_and_left_alone() {
        let data = tempfile::tempdir().unwrap();
        let source = CertSource::self_signed(data.path(), "localhost");
        ServerTls::new(source.clone()).unwrap();
        fs::write(
            source.cert_path(),
            b"-----BEGIN CERTIFICATE-----\nnonsense\n",
        )
        .unwrap();
        let error = ServerTls::new(source.clone()).unwrap_err().to_string();
        assert!(error.contains("cert.pem is damaged"), "{error}");
        assert_eq!(
            fs::read(source.cert_path()).unwrap(),
            b"-----BEGIN CERTIFICATE-----\nnonsense\n",
            "never overwritten"
        );
        fs::remove_file(source.cert_path()).unwrap();
        let error = ServerTls::new(source).unwrap_err().to_string();
        assert!(error.contains("key.pem is there but"), "{error}");
    }

    #[test]
    fn a_failed_reload_keeps_the_old_certificate() {
        let data = tempfile::tempdir().unwrap();
        let source = CertSource::self_signed(data.path(), "localhost");
        let tls = ServerTls::new(source.clone()).unwrap();
        let before = tls.fingerprint();
        fs::write(source.key_path(), b"garbage").unwrap();
        assert!(tls.reload().is_err());
        assert_eq!(tls.fingerprint(), before);
    }

    #[test]
    fn the_listen_host_is_one_of_the_names() {
        let dir = Path::new("/d");
        let names = |host| match CertSource::self_signed(dir, host) {
            CertSource::SelfSigned { names, .. } => names,
            CertSource::Files { .. } => unreachable!(),
        };
        assert_eq!(names("chat.example").last().unwrap(), "chat.example");
        assert_eq!(
            names("[::]").len(),
            3,
            "an unspecified address names nothing"
        );
        assert_eq!(names("127.0.0.1").len(), 3);
    }
}
