//! Bytes ⇄ lines, and the sanitiser both sides use before text reaches a person.
//!
//! [`LineCodec`] frames a byte stream into `\n`-terminated lines. It is not tokio-util's
//! `LinesCodec`, which throws away the bytes of a line that is not valid UTF-8 (and a
//! `FramedRead` stops at the first error), while the protocol promises U+FFFD for invalid bytes
//! and a connection that survives both a bad line and a too-long one; nor its
//! `AnyDelimiterCodec`, whose byte-at-a-time search cost the server 50 ns a line. Here both are items ([`Frame::Line`] with `invalid_utf8`, [`Frame::TooLong`]),
//! never errors, so the stream only ends on a real I/O error or EOF.
//!
//! [`sanitize`] removes what must never reach another person's terminal: C0 controls except tab,
//! whole escape sequences (CSI, OSC, DCS, ...), C1 controls, DEL and bidi overrides/isolates.

use std::borrow::Cow;
use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// Default longest line, in bytes, excluding the `\n`. A longer line is reported as
/// [`Frame::TooLong`] and skipped up to its newline; the connection stays open.
pub const DEFAULT_MAX_LINE: usize = 8 * 1024;

/// One framed item read from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its `\n` (and without a `\r` before it).
    Line {
        /// The text, with any invalid UTF-8 replaced by U+FFFD. Not yet sanitised.
        text: String,
        /// Whether some bytes were not valid UTF-8 and were replaced.
        invalid_utf8: bool,
    },
    /// A line longer than the limit began; it is skipped up to its newline.
    TooLong {
        /// The limit that was exceeded, in bytes.
        max: usize,
    },
}

/// Line framing with a length limit where bad input is an item, not an error.
#[derive(Debug)]
pub struct LineCodec {
    max: usize,
    /// Where the search for the next newline resumes: what is before it has no newline.
    next_index: usize,
    /// Skipping the rest of a line that was too long, up to its newline.
    discarding: bool,
}

impl LineCodec {
    /// A codec that accepts lines of at most `max` bytes, not counting the `\n` nor a `\r`
    /// before it (a CRLF line of exactly `max` bytes is a line, as the LF one is).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            next_index: 0,
            discarding: false,
        }
    }

    /// The most a line may take before its `\n`: the limit and a `\r`.
    fn limit(&self) -> usize {
        self.max.saturating_add(1)
    }

    /// A line without its `\n`, as a frame.
    fn frame(&self, raw: &[u8]) -> Frame {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > self.max {
            return Frame::TooLong { max: self.max };
        }
        let (text, invalid_utf8) = match String::from_utf8_lossy(raw) {
            Cow::Borrowed(s) => (s.to_owned(), false),
            Cow::Owned(s) => (s, true),
        };
        Frame::Line { text, invalid_utf8 }
    }
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = io::Error;

    /// The next complete line. The newline is searched with `memchr`, never past the limit,
    /// and each byte is searched once however the line arrives.
    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Frame>> {
        loop {
            let read_to = self.limit().saturating_add(1).min(buf.len());
            let newline = memchr::memchr(b'\n', &buf[self.next_index..read_to])
                .map(|offset| offset + self.next_index);
            match (self.discarding, newline) {
                (true, Some(at)) => {
                    buf.advance(at + 1);
                    self.discarding = false;
                    self.next_index = 0;
                }
                (true, None) => {
                    buf.advance(read_to);
                    self.next_index = 0;
                    if buf.is_empty() {
                        return Ok(None);
                    }
                }
                (false, Some(at)) => {
                    self.next_index = 0;
                    let line = buf.split_to(at + 1);
                    return Ok(Some(self.frame(&line[..at])));
                }
                (false, None) if buf.len() > self.limit() => {
                    self.discarding = true;
                    return Ok(Some(Frame::TooLong { max: self.max }));
                }
                (false, None) => {
                    self.next_index = read_to;
                    return Ok(None);
                }
            }
        }
    }

    /// At the end of the input, a last line without a newline still counts.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Frame>> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.next_index = 0;
        let rest = buf.split_to(buf.len());
        Ok(Some(self.frame(&rest)))
    }
}

/// Removes terminal control from untrusted text; everything else passes unchanged.
///
/// Dropped: C0 controls except tab, DEL, C1 controls (U+0080–U+009F), whole escape sequences
/// (`ESC [ … final`, `ESC ] … BEL/ST`, DCS/SOS/PM/APC up to ST, two- and three-byte `ESC` forms,
/// and their C1 introducers), and the bidi embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069) that can make text read differently from what was sent.
/// An escape sequence left open at the end of the text is dropped to the end.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(needs_scan) || !text.chars().any(is_stripped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                Some(' '..='/') => {
                    // nF escape: intermediates, then one final byte.
                    while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push(c),
            c if is_stripped(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is a character [`sanitize`] never lets through on its own.
pub fn is_stripped(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Bytes that can start something [`sanitize`] must look at: ASCII controls, DEL, the lead byte
/// of C1 (`0xC2`) and of the bidi controls (`0xE2`). A cheap first check: text without them
/// (plain ASCII, most CJK) is never decoded into `char`s.
fn needs_scan(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2 || b == 0xe2
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    // Parameter and intermediate bytes are 0x20–0x3F; the final byte is 0x40–0x7E.
    for c in chars.by_ref() {
        if matches!(c, '\u{40}'..='\u{7e}') || !matches!(c, '\u{20}'..='\u{3f}') {
            break;
        }
    }
}

/// Skips an OSC/DCS-style string up to its terminator: BEL, `ESC \` or the C1 ST (U+009C).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            out.push(frame);
        }
        out
    }

    fn line(text: &str) -> Frame {
        Frame::Line {
            text: text.into(),
            invalid_utf8: false,
        }
    }

    #[test]
    fn coalesced_lines_come_out_one_by_one_and_crlf_is_dropped() {
        let mut codec = LineCodec::new(64);
        let frames = decode_all(&mut codec, b"hi\r\n<bob> x\nthird\n");
        assert_eq!(frames, vec![line("hi"), line("<bob> x"), line("third")]);
    }

    #[test]
    fn a_line_split_across_reads_waits_for_its_newline() {
        let mut codec = LineCodec::new(64);
        let mut buf = BytesMut::from(&b"hel"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"lo\nwor");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(line("hello")));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"ld\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(line("world")));
    }

    #[test]
    fn a_multibyte_character_split_across_reads_is_reassembled() {
        let bytes = "你好\n".as_bytes();
        let mut codec = LineCodec::new(64);
        let mut buf = BytesMut::from(&bytes[..2]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&bytes[2..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(line("你好")));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters_and_the_next_line_survives() {
        let mut codec = LineCodec::new(64);
        let frames = decode_all(&mut codec, b"a\xffb\xc0\xaf\n\xed\xa0\x80\nok\n");
        assert_eq!(
            frames,
            vec![
                Frame::Line {
                    text: "a\u{fffd}b\u{fffd}\u{fffd}".into(),
                    invalid_utf8: true
                },
                Frame::Line {
                    text: "\u{fffd}\u{fffd}\u{fffd}".into(),
                    invalid_utf8: true
                },
                line("ok"),
            ]
        );
    }

    #[test]
    fn max_length_is_inclusive_and_a_longer_line_is_skipped_not_fatal() {
        let mut codec = LineCodec::new(4);
        let frames = decode_all(&mut codec, b"abcd\nabcde\nnext\n");
        assert_eq!(
            frames,
            vec![line("abcd"), Frame::TooLong { max: 4 }, line("next")]
        );
    }

    #[test]
    fn the_cr_of_a_crlf_line_does_not_count_against_the_limit() {
        let mut codec = LineCodec::new(4);
        let frames = decode_all(&mut codec, b"abcd\r\nabcde\r\nabcd\r\r\nok\n");
        assert_eq!(
            frames,
            vec![
                line("abcd"),
                Frame::TooLong { max: 4 },
                Frame::TooLong { max: 4 },
                line("ok")
            ]
        );
    }

    #[test]
    fn a_too_long_line_arriving_in_pieces_is_reported_once_and_skipped() {
        let mut codec = LineCodec::new(4);
        let mut buf = BytesMut::from(&b"abcdefgh"[..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Frame::TooLong { max: 4 })
        );
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"ijklmnop");
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"q\nok\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(line("ok")));
    }

    #[test]
    fn a_last_line_without_newline_is_delivered_at_eof() {
        let mut codec = LineCodec::new(64);
        let mut buf = BytesMut::from(&b"one\nbye"[..]);
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), Some(line("one")));
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), Some(line("bye")));
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn sanitize_keeps_text_chinese_emoji_and_tabs_unchanged() {
        for text in ["hello", "你好,世界", "👨‍👩‍👧 ok ❤️", "a\tb", "é ü ß — …"]
        {
            assert!(
                matches!(sanitize(text), Cow::Borrowed(t) if t == text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn sanitize_strips_escape_sequences_whole() {
        let cases = [
            ("\x1b[2J\x1b[Hclear", "clear"),
            ("\x1b[31mred\x1b[0m", "red"),
            ("\x1b]0;title\x07after", "after"),
            ("\x1b]52;c;aGVsbG8=\x1b\\after", "after"),
            ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
            ("\x1bPq#0;2;0;0;0\x1b\\x", "x"),
            ("\x1b(Bx\x1b7y", "xy"),
            ("\u{9b}31mx", "x"),
            ("\u{9d}0;t\u{9c}x", "x"),
            ("open \x1b]0;never closed", "open "),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "{input:?}");
        }
    }

    #[test]
    fn sanitize_drops_lone_controls_del_c1_and_bidi() {
        assert_eq!(sanitize("a\x00b\x08c\x7fd\re\u{85}f"), "abcdef");
        assert_eq!(sanitize("x\u{202e}gnp.exe\u{202c}"), "xgnp.exe");
        assert_eq!(sanitize("\u{2066}a\u{2069}"), "a");
    }
}
