//! TLS records as they pass over the TCP socket, for the inspector: a thin wrapper under rustls
//! ([`Recorder`]) reads each record's 5-byte header (content type, version, length) from the
//! bytes going each way, without touching them, and notes the type of each handshake message
//! that still travels in the clear (ClientHello, ServerHello). Everything after the
//! ServerHello in TLS 1.3 is encrypted, so it shows as application data: what an observer on
//! the path sees too.
//!
//! It also keeps the first bytes the server sent, so a server that answered in plaintext can be
//! quoted instead of reported as a corrupt message.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Records kept until the network task takes them; past this the oldest go.
const RECORDS_KEPT: usize = 1024;

/// Bytes of the server's first answer kept, to quote it.
const FIRST_BYTES_KEPT: usize = 256;

/// Which way a record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From us to the server.
    Sent,
    /// From the server to us.
    Received,
}

/// A record's content type (RFC 8446 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// 20: the legacy ChangeCipherSpec TLS 1.3 still sends for middleboxes.
    ChangeCipherSpec,
    /// 21: an alert (in the clear only before encryption starts).
    Alert,
    /// 22: handshake messages in the clear.
    Handshake,
    /// 23: encrypted: application data, or in TLS 1.3 the rest of the handshake too.
    ApplicationData,
    /// Anything else: not TLS.
    Other(u8),
}

impl Content {
    fn of(byte: u8) -> Self {
        match byte {
            20 => Self::ChangeCipherSpec,
            21 => Self::Alert,
            22 => Self::Handshake,
            23 => Self::ApplicationData,
            other => Self::Other(other),
        }
    }

    /// Its name as the RFC writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ChangeCipherSpec => "change_cipher_spec",
            Self::Alert => "alert",
            Self::Handshake => "handshake",
            Self::ApplicationData => "application_data",
            Self::Other(_) => "not TLS",
        }
    }
}

/// Whether `byte` can begin a TLS record.
pub fn is_content_type(byte: u8) -> bool {
    (20..=23).contains(&byte)
}

/// The name of a handshake message type (RFC 8446 §4).
pub fn handshake_name(kind: u8) -> &'static str {
    match kind {
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        _ => "handshake message",
    }
}

/// One record header seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// When its header was seen.
    pub at: Instant,
    /// Which way it went.
    pub way: Way,
    /// Its content type.
    pub content: Content,
    /// The length of its body (the header's 5 bytes not counted).
    pub len: u16,
    /// For a handshake record in the clear, the first message's type.
    pub handshake: Option<u8>,
}

/// Reads record headers out of one direction's bytes, across reads of any size.
#[derive(Debug, Default)]
struct Parser {
    header: [u8; 5],
    have: usize,
    /// Body bytes of the current record still to come.
    body_left: usize,
    /// A handshake record whose first body byte (the message type) is not seen yet.
    pending: Option<Record>,
}

impl Parser {
    fn feed(&mut self, mut bytes: &[u8], way: Way, at: Instant, out: &mut Vec<Record>) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                if let Some(mut record) = self.pending.take() {
                    record.handshake = Some(bytes[0]);
                    out.push(record);
                }
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
                continue;
            }
            let take = (5 - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < 5 {
                return;
            }
            self.have = 0;
            let content = Content::of(self.header[0]);
            let len = u16::from_be_bytes([self.header[3], self.header[4]]);
            if let Content::Other(_) = content {
                // Not TLS: note it once and stop reading headers out of noise.
                out.push(Record {
                    at,
                    way,
                    content,
                    len: 0,
                    handshake: None,
                });
                self.body_left = usize::MAX;
                return;
            }
            self.body_left = usize::from(len);
            let record = Record {
                at,
                way,
                content,
                len,
                handshake: None,
            };
            match content {
                Content::Handshake if len > 0 => self.pending = Some(record),
                _ => out.push(record),
            }
        }
    }
}

#[derive(Debug, Default)]
struct Seen {
    records: Vec<Record>,
    first_received: Vec<u8>,
    sent: Parser,
    received: Parser,
}

/// The records a [`Recorder`] saw, shared with whoever reports them.
#[derive(Debug, Clone, Default)]
pub struct RecordTap(Arc<Mutex<Seen>>);

impl RecordTap {
    /// A tap for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the records seen since the last call, oldest first.
    pub fn take(&self) -> Vec<Record> {
        std::mem::take(&mut self.lock().records)
    }

    /// The first bytes the server sent (up to 256).
    pub fn first_received(&self) -> Vec<u8> {
        self.lock().first_received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note(&self, way: Way, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut seen = self.lock();
        let seen = &mut *seen;
        if way == Way::Received && seen.first_received.len() < FIRST_BYTES_KEPT {
            let room = FIRST_BYTES_KEPT - seen.first_received.len();
            seen.first_received
                .extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
        let parser = match way {
            Way::Sent => &mut seen.sent,
            Way::Received => &mut seen.received,
        };
        parser.feed(bytes, way, Instant::now(), &mut seen.records);
        if seen.records.len() > RECORDS_KEPT {
            let excess = seen.records.len() - RECORDS_KEPT;
            seen.records.drain(..excess);
        }
    }
}

/// A stream that passes every byte through unchanged and tells its [`RecordTap`] what went by.
#[derive(Debug)]
pub struct Recorder<S> {
    inner: S,
    tap: RecordTap,
}

impl<S> Recorder<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, tap: RecordTap) -> Self {
        Self { inner, tap }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.tap.note(Way::Received, &buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.tap.note(Way::Sent, &buf[..n]);
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_across_reads_of_any_size() {
        let mut wire = vec![22, 3, 1, 0, 4, 1, 0, 0, 0];
        wire.extend([23, 3, 3, 0, 2, 0xaa, 0xbb]);
        wire.extend([21, 3, 3, 0, 2, 1, 0]);
        for size in 1..wire.len() {
            let mut parser = Parser::default();
            let mut out = Vec::new();
            let at = Instant::now();
            for chunk in wire.chunks(size) {
                parser.feed(chunk, Way::Received, at, &mut out);
            }
            let seen: Vec<_> = out
                .iter()
                .map(|r| (r.content, r.len, r.handshake))
                .collect();
            assert_eq!(
                seen,
                [
                    (Content::Handshake, 4, Some(1)),
                    (Content::ApplicationData, 2, None),
                    (Content::Alert, 2, None),
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn plaintext_is_one_not_tls_record_and_the_first_bytes_are_kept() {
        let tap = RecordTap::new();
        tap.note(Way::Received, b"*** hello\n");
        tap.note(Way::Received, b"more text here\n");
        let records = tap.take();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].content, Content::Other(b'*'));
        assert_eq!(tap.first_received(), b"*** hello\nmore text here\n");
    }
}
