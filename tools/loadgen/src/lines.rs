//! Lines from a socket, two ways over one buffer: the receivers read one chunk, take every
//! complete line out of it, then read again, so a whole read is handled at one timestamp and
//! with one update of the shared counters.
//!
//! - [`Lines::next_line`] frames with tcpchat's own codec ([`LineCodec`]): decoded text, the
//!   protocol's rules for CRLF, invalid UTF-8 and over-long lines. Used where being right matters
//!   more than speed: the greeting and the username prompt, once per connection.
//! - [`Lines::next_raw`] splits with `memchr` and lends each line as bytes: no allocation, no
//!   decoding. Used on the hot path, where a fan-out receiver handles every delivery. The codec
//!   takes about 100 ns for a 76-byte line (tokio-util's delimiter search goes a byte at a time,
//!   and each line becomes a new `String`) where this takes a few: with the codec the load
//!   generator, not the server, set the burst figures on 2 cores. A data line needs no decoding:
//!   its checksum proves its bytes, and the prefix before it is compared with one that was
//!   parsed in full ([`crate::proto::Classifier`]).
//!
//! The two are not mixed on one connection: the codec until the client is in, then raw lines.

use bytes::{Buf, BytesMut};
use tcpchat::codec::{Frame, LineCodec};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

/// Longest line kept whole while looking for its newline; a longer one is one
/// [`Frame::TooLong`] (or [`Raw::TooLong`]), skipped to its end (counted as mangled).
pub const MAX_LINE: usize = 1 << 20;

/// One line from [`Lines::next_raw`].
#[derive(Debug, PartialEq, Eq)]
pub enum Raw<'a> {
    /// A complete line without its `\n` (nor a `\r` before it), as bytes.
    Line(&'a [u8]),
    /// A line longer than [`MAX_LINE`], skipped up to its newline.
    TooLong,
}

/// A reader, the bytes read from it that are not yet a whole line, and the codec that frames them.
pub struct Lines<R> {
    reader: R,
    buffer: BytesMut,
    codec: LineCodec,
    /// Room made before each read: the most one read can bring.
    chunk: usize,
    /// [`Self::next_raw`]: where the next line starts in `buffer` (lines before it are taken).
    taken: usize,
    /// [`Self::next_raw`]: bytes after `taken` already searched for a newline, in vain.
    searched: usize,
    /// [`Self::next_raw`]: inside a line longer than [`MAX_LINE`], dropping it.
    skipping: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    /// Lines from `reader`, read up to `chunk` bytes at a time.
    pub fn new(reader: R, chunk: usize) -> Self {
        Self {
            reader,
            buffer: BytesMut::with_capacity(chunk),
            codec: LineCodec::new(MAX_LINE),
            chunk,
            taken: 0,
            searched: 0,
            skipping: false,
        }
    }

    /// Reads once more; returns the bytes read (0 at EOF).
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        self.buffer.advance(self.taken);
        self.taken = 0;
        // Once the lines taken out are dropped the buffer is the only owner of its memory again,
        // so this moves the unfinished line to the front instead of allocating.
        self.buffer.reserve(self.chunk);
        self.reader.read_buf(&mut self.buffer).await
    }

    /// The next complete line already read, decoded by tcpchat's codec (without its newline).
    pub fn next_line(&mut self) -> Option<Frame> {
        // Decoding a buffer cannot fail: the codec's only errors are the reader's.
        self.codec.decode(&mut self.buffer).ok().flatten()
    }

    /// The next complete line already read, as bytes: the fast path (see the module's docs).
    pub fn next_raw(&mut self) -> Option<Raw<'_>> {
        let rest = &self.buffer[self.taken..];
        let Some(at) = memchr::memchr(b'\n', &rest[self.searched..]) else {
            if rest.len() > MAX_LINE {
                // Too long: drop what is here, and the rest up to the next newline.
                self.taken = self.buffer.len();
                self.searched = 0;
                self.skipping = true;
            } else {
                self.searched = rest.len();
            }
            return None;
        };
        let start = self.taken;
        let end = start + self.searched + at;
        self.taken = end + 1;
        self.searched = 0;
        if std::mem::take(&mut self.skipping) {
            return Some(Raw::TooLong);
        }
        let line = &self.buffer[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some(if line.len() > MAX_LINE {
            Raw::TooLong
        } else {
            Raw::Line(line)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Option<Frame> {
        Some(Frame::Line {
            text: text.to_owned(),
            invalid_utf8: false,
        })
    }

    #[tokio::test]
    async fn a_line_split_across_reads_comes_out_whole() {
        let reads = AsyncReadExt::chain(&b"one\ntw"[..], &b"o\nthree"[..]);
        let mut lines = Lines::new(reads, 16);
        assert_eq!(lines.fill().await.unwrap(), 6);
        assert_eq!(lines.next_line(), line("one"));
        assert_eq!(lines.next_line(), None);
        assert_eq!(lines.fill().await.unwrap(), 7);
        assert_eq!(lines.next_line(), line("two"));
        assert_eq!(lines.next_line(), None);
        assert_eq!(lines.fill().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_line_past_the_limit_is_one_too_long_item() {
        let mut long = vec![b'x'; MAX_LINE + 10];
        long.extend_from_slice(b"\nafter\n");
        let mut lines = Lines::new(&long[..], 64 * 1024);
        let mut frames = Vec::new();
        while lines.fill().await.unwrap() > 0 {
            frames.extend(std::iter::from_fn(|| lines.next_line()));
        }
        assert_eq!(
            frames,
            [Frame::TooLong { max: MAX_LINE }, line("after").unwrap()]
        );
    }

    /// Every raw line of `input` read `chunk` bytes at a time, as owned bytes (`None`: too long).
    async fn raw_lines(input: &[u8], chunk: usize) -> Vec<Option<Vec<u8>>> {
        let mut lines = Lines::new(input, chunk);
        let mut out = Vec::new();
        while lines.fill().await.unwrap() > 0 {
            while let Some(raw) = lines.next_raw() {
                out.push(match raw {
                    Raw::Line(bytes) => Some(bytes.to_vec()),
                    Raw::TooLong => None,
                });
            }
        }
        out
    }

    #[tokio::test]
    async fn raw_lines_are_the_codecs_lines_as_bytes() {
        let input = b"one\r\ntwo\n\nthr\xffee\nunfinished";
        let expected: Vec<Option<Vec<u8>>> = [&b"one"[..], b"two", b"", b"thr\xffee"]
            .iter()
            .map(|line| Some(line.to_vec()))
            .collect();
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(raw_lines(input, chunk).await, expected, "chunk {chunk}");
        }
    }

    #[tokio::test]
    async fn a_raw_line_past_the_limit_is_one_too_long_item_however_it_arrives() {
        let mut long = b"before\n".to_vec();
        long.resize(long.len() + MAX_LINE + 10, b'x');
        long.extend_from_slice(b"\nafter\n");
        for chunk in [4096, 64 * 1024, 2 * MAX_LINE] {
            assert_eq!(
                raw_lines(&long, chunk).await,
                [Some(b"before".to_vec()), None, Some(b"after".to_vec())],
                "chunk {chunk}"
            );
        }
    }
}
