//! `--tls`: the load generator's connections inside TLS, built with tcpchat's own crypto
//! provider (ring), so a benchmark compares the same server with and without TLS. The server's
//! certificate is not checked (targets are loopback only; what is measured is the cost, not the
//! trust): the handshake's signature still is, so the work a real client makes the server do
//! is all there.
//!
//! [`Read`] and [`Write`] are the two halves either way, as enums: plain TCP keeps its own
//! split halves (no lock, no box), TLS gets tokio's split of its stream. Set once at start
//! ([`enable`]), read by every connection ([`connect`]): a process-wide choice, like the target.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

static CONNECTOR: OnceLock<TlsConnector> = OnceLock::new();

/// Every connection from now on speaks TLS.
pub fn enable() {
    let provider = tcpchat::tls::provider();
    let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
    let built = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|config| {
            config
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    if let Ok(config) = built {
        let _ = CONNECTOR.set(TlsConnector::from(Arc::new(config)));
    }
}

/// Whether connections speak TLS.
pub fn enabled() -> bool {
    CONNECTOR.get().is_some()
}

/// The halves of a connected `stream`, after the TLS handshake if [`enable`] was called.
pub async fn connect(stream: TcpStream) -> io::Result<(Read, Write)> {
    match CONNECTOR.get() {
        None => {
            let (rd, wr) = stream.into_split();
            Ok((Read::Plain(rd), Write::Plain(wr)))
        }
        Some(connector) => {
            let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
            let tls = connector.connect(name, stream).await?;
            let (rd, wr) = tokio::io::split(tls);
            Ok((Read::Tls(rd), Write::Tls(wr)))
        }
    }
}

/// A connection's read half.
pub enum Read {
    /// Plain TCP.
    Plain(OwnedReadHalf),
    /// TLS over TCP.
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// A connection's write half. With TLS a write must be flushed to reach the wire
/// (`AsyncWriteExt::flush`); on plain TCP flushing does nothing.
pub enum Write {
    /// Plain TCP.
    Plain(OwnedWriteHalf),
    /// TLS over TCP.
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl AsyncRead for Read {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(rd) => Pin::new(rd).poll_read(cx, buf),
            Self::Tls(rd) => Pin::new(rd).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Write {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(wr) => Pin::new(wr).poll_write(cx, buf),
            Self::Tls(wr) => Pin::new(wr).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(wr) => Pin::new(wr).poll_flush(cx),
            Self::Tls(wr) => Pin::new(wr).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(wr) => Pin::new(wr).poll_shutdown(cx),
            Self::Tls(wr) => Pin::new(wr).poll_shutdown(cx),
        }
    }
}

/// Accepts any certificate; checks the handshake's signature as usual.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
