//! The data lines the senders write and the receivers check.
//!
//! Each is `@L SENDER SEQ SEND_NS xxx…x HASH`: exactly `--size` bytes before the newline, where
//! `SEND_NS` is nanoseconds since an `Instant` taken before connecting (one process, so one
//! clock) and `HASH` is a 64-bit checksum of everything before it, so a line that was cut,
//! merged or altered is caught as mangled. What the server puts before the marker is checked per
//! protocol ([`crate::proto`]).

use std::io::Write as _;

/// The start of every data line's body.
pub const MARKER: &[u8] = b"@L ";

/// Bytes after the padding: a space and 16 hex digits of hash.
const HASH_TAIL: usize = 17;

/// A 64-bit checksum of `bytes`, a word at a time (the last one padded with zeros); any cut,
/// merge or changed byte alters it.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |hash: u64, word: [u8; 8]| {
        (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29)
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut hash = bytes.len() as u64;
    for chunk in chunks.by_ref() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        hash = mix(hash, word);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = mix(hash, word);
    }
    hash ^ (hash >> 32)
}

/// `hash` as 16 lowercase hex digits. Checking a line compares these with the digits it carries
/// rather than parsing them: parsing hex branches on every digit, at random, and was most of the
/// load generator's time per delivery.
fn hex(hash: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[(hash >> (60 - 4 * i) & 0xf) as usize];
    }
    out
}

/// Appends one data line of exactly `size` bytes plus `\n` to `out`.
pub fn data_line(sender: usize, seq: u32, sent_ns: u64, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "@L {sender} {seq} {sent_ns} ");
    let used = out.len() - start;
    out.resize(start + size.saturating_sub(HASH_TAIL).max(used + 1), b'x');
    let hash = hex(checksum(&out[start..]));
    out.push(b' ');
    out.extend_from_slice(&hash);
    out.push(b'\n');
}

/// A parsed data line.
#[derive(Debug, PartialEq, Eq)]
pub struct Data {
    /// The sender's index among the clients.
    pub sender: usize,
    /// The line's number in its sender's sequence, from 0.
    pub seq: u32,
    /// When it was written, in nanoseconds since the run's epoch.
    pub sent_ns: u64,
}

/// Parses a data line body (from the marker on) of `size` bytes.
pub fn parse_body(body: &[u8], size: usize) -> Option<Data> {
    if body.len() != size {
        return None;
    }
    let (signed, tail) = body.split_at(size - HASH_TAIL);
    let (&space, digits) = tail.split_first()?;
    if space != b' ' || *digits != hex(checksum(signed)) {
        return None;
    }
    let mut fields = signed.strip_prefix(MARKER)?.split(|&b| b == b' ');
    Some(Data {
        sender: usize::try_from(parse_decimal(fields.next()?)?).ok()?,
        seq: u32::try_from(parse_decimal(fields.next()?)?).ok()?,
        sent_ns: parse_decimal(fields.next()?)?,
    })
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Where the data marker starts in `line`, if anywhere.
pub fn find_marker(line: &[u8]) -> Option<usize> {
    memchr::memchr_iter(MARKER[0], line).find(|&at| line[at..].starts_with(MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sender: usize, seq: u32, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        data_line(sender, seq, 123_456_789, size, &mut out);
        out
    }

    #[test]
    fn data_lines_have_the_exact_size_and_parse_back() {
        for size in [64, 100, 1000] {
            let mut out = line(7, 42, size);
            assert_eq!(out.pop(), Some(b'\n'));
            assert_eq!(out.len(), size);
            assert_eq!(
                parse_body(&out, size),
                Some(Data {
                    sender: 7,
                    seq: 42,
                    sent_ns: 123_456_789
                })
            );
        }
    }

    #[test]
    fn the_marker_is_found_past_false_starts() {
        assert_eq!(find_marker(b"<a> @x @L 1"), Some(7));
        assert_eq!(find_marker(b"@L 1"), Some(0));
        assert_eq!(find_marker(b"<a> @@L"), None);
        assert_eq!(find_marker(b"<a> x@L"), None);
        assert_eq!(find_marker(b""), None);
    }
}
