//! A chat connection's input: the read half of its socket, framed into lines, with the
//! unfinished-line deadline, as one flat stream of [`Input`].
//!
//! It owns the reads itself (no `FramedRead`) so that it knows when each byte arrived: the
//! deadline for an unfinished line runs from the read that brought its first byte, exactly,
//! and a connection with nothing unfinished waits with no timer at all.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tracing::debug;

use super::Ending;
use crate::codec::{Frame, LineCodec};

/// Initial read buffer; it grows up to the line limit only for clients that send long lines, so
/// an idle connection stays small.
const READ_BUFFER: usize = 1024;

/// What a connection's input yields next.
#[derive(Debug)]
pub enum Input {
    /// A complete line, not yet sanitised.
    Line {
        /// The text, invalid UTF-8 replaced by U+FFFD.
        text: String,
        /// Whether some bytes were replaced.
        invalid_utf8: bool,
    },
    /// A line over the limit began; it is skipped to its newline.
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// The input is over: FIN, reset, a vanished peer, or an unfinished line past its deadline.
    Ended(Ending),
}

/// Lines from one socket's read half.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    codec: LineCodec,
    buffer: BytesMut,
    line_timeout: Duration,
    /// When the read that brought the first byte of the unfinished line happened.
    unfinished_since: Option<Instant>,
    last_read_at: Instant,
    peer: SocketAddr,
    bytes_in: u64,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Frames `reader` into lines of at most `max_line` bytes; a begun line must end within
    /// `line_timeout`. `peer` names the connection in the log.
    pub fn new(reader: R, max_line: usize, line_timeout: Duration, peer: SocketAddr) -> Self {
        Self {
            reader,
            codec: LineCodec::new(max_line),
            buffer: BytesMut::with_capacity(READ_BUFFER),
            line_timeout,
            unfinished_since: None,
            last_read_at: Instant::now(),
            peer,
            bytes_in: 0,
        }
    }

    /// The next line, or how the input ended. Cancel-safe: a read that was interrupted loses
    /// nothing (its bytes stay in the buffer).
    pub async fn next(&mut self) -> Input {
        loop {
            match self.codec.decode(&mut self.buffer) {
                Ok(Some(frame)) => {
                    self.unfinished_since = None;
                    return input(frame);
                }
                Ok(None) => {}
                Err(error) => return Input::Ended(Ending::from_read_error(error)),
            }
            // Whatever is left began arriving with the latest read: every earlier read's
            // complete lines were decoded before it was waited for.
            let deadline = if self.buffer.is_empty() {
                None
            } else {
                let since = *self.unfinished_since.get_or_insert(self.last_read_at);
                Some(since + self.line_timeout)
            };
            let read = self.reader.read_buf(&mut self.buffer);
            let read = match deadline {
                None => read.await,
                Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
                    Ok(read) => read,
                    Err(_elapsed) => return Input::Ended(Ending::LineTimeout),
                },
            };
            match read {
                Ok(0) => return self.at_eof(),
                Ok(n) => {
                    self.last_read_at = Instant::now();
                    self.bytes_in += n as u64;
                    debug!(peer = %self.peer, bytes = n, "recv");
                }
                Err(error) => return Input::Ended(Ending::from_read_error(error)),
            }
        }
    }

    /// The peer sent FIN: a last line without a newline still counts, then the input is over.
    fn at_eof(&mut self) -> Input {
        match self.codec.decode_eof(&mut self.buffer) {
            Ok(Some(frame)) => input(frame),
            Ok(None) => Input::Ended(Ending::PeerClosed),
            Err(error) => Input::Ended(Ending::from_read_error(error)),
        }
    }

    /// Whether another complete line is already buffered, so reading it will not wait.
    pub fn has_buffered_line(&self) -> bool {
        self.buffer.contains(&b'\n')
    }

    /// Bytes read so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// The read half, for draining after the session (see `super::linger`).
    pub fn into_inner(self) -> R {
        self.reader
    }
}

fn input(frame: Frame) -> Input {
    match frame {
        Frame::Line { text, invalid_utf8 } => Input::Line { text, invalid_utf8 },
        Frame::TooLong { max } => Input::TooLong { max },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const PEER: &str = "127.0.0.1:9";

    fn reader(timeout: Duration) -> (LineReader<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64);
        let peer = PEER.parse().unwrap();
        (LineReader::new(ours, 16, timeout, peer), theirs)
    }

    #[tokio::test(start_paused = true)]
    async fn an_unfinished_line_times_out_from_its_first_byte() {
        let (mut lines, mut client) = reader(Duration::from_secs(30));
        let started = Instant::now();
        client.write_all(b"done\npart").await.unwrap();
        assert!(matches!(lines.next().await, Input::Line { text, .. } if text == "done"));
        tokio::time::sleep(Duration::from_secs(20)).await;
        client.write_all(b"ial").await.unwrap(); // more bytes do not restart the clock
        assert!(matches!(
            lines.next().await,
            Input::Ended(Ending::LineTimeout)
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_never_times_out() {
        let (mut lines, mut client) = reader(Duration::from_secs(30));
        let next = tokio::spawn(async move { (lines.next().await, Instant::now()) });
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        client.write_all(b"late\n").await.unwrap();
        let (input, at) = next.await.unwrap();
        assert!(matches!(input, Input::Line { text, .. } if text == "late"));
        assert_eq!(at - started, Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn a_too_long_line_is_an_item_and_eof_keeps_the_last_line() {
        let (mut lines, mut client) = reader(Duration::from_secs(30));
        client
            .write_all(b"0123456789abcdefXYZ\nok\nlast")
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        drop(client);
        assert!(matches!(lines.next().await, Input::TooLong { max: 16 }));
        assert!(matches!(lines.next().await, Input::Line { text, .. } if text == "ok"));
        assert!(matches!(lines.next().await, Input::Line { text, .. } if text == "last"));
        assert!(matches!(
            lines.next().await,
            Input::Ended(Ending::PeerClosed)
        ));
        assert_eq!(lines.bytes_in(), 27);
    }
}
