//! The raw bytes of the last reads, so read boundaries can be seen: each `recv()` as it really
//! fell, its real size, its first [`READ_BYTES_KEPT`] bytes, and with TLS the records that
//! carried it; numbered per connection, so a reconnect starts again from 1. Bounded to
//! [`READS_KEPT`] reads.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::tls::record::Content;

/// Reads whose bytes are kept for the raw view.
pub const READS_KEPT: usize = 64;

/// Bytes kept of each read (the size is always the real one).
pub const READ_BYTES_KEPT: usize = 512;

/// One `recv()` as it really fell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// The connection it was read on: 1 for the first, counting on over reconnects.
    pub session: u32,
    /// 1 for the first read of its connection.
    pub number: u64,
    /// Time since the first event.
    pub at: Duration,
    /// Bytes the read returned.
    pub len: usize,
    /// Its first [`READ_BYTES_KEPT`] bytes.
    pub bytes: Bytes,
    /// With TLS: the records that came off the socket for it (content type, body length),
    /// the ciphertext beside the plaintext `bytes` it carried.
    pub tls: Vec<(Content, u16)>,
}

/// The kept reads, and the TLS records waiting for the read they carried.
#[derive(Debug, Default)]
pub(super) struct Reads {
    kept: VecDeque<ReadRecord>,
    /// The connection being read (0 before the first one).
    session: u32,
    /// Reads made on it so far.
    in_session: u64,
    /// TLS records received since the last read, for the read they carried.
    carried: Vec<(Content, u16)>,
}

impl Reads {
    /// The kept reads, oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &ReadRecord> + ExactSizeIterator {
        self.kept.iter()
    }

    /// Keeps one read that happened `at` (time since the timeline's start).
    pub(super) fn keep(&mut self, at: Duration, bytes: &Bytes) {
        self.in_session += 1;
        if self.kept.len() == READS_KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(ReadRecord {
            session: self.session.max(1),
            number: self.in_session,
            at,
            len: bytes.len(),
            bytes: bytes.slice(..bytes.len().min(READ_BYTES_KEPT)),
            tls: std::mem::take(&mut self.carried),
        });
    }

    /// A TLS record that came off the socket for the next read.
    pub(super) fn carry(&mut self, record: (Content, u16)) {
        self.carried.push(record);
    }

    /// A new connection: its reads count from 1 again, and records carried for the last
    /// one's reads are dropped.
    pub(super) fn new_session(&mut self) {
        self.session += 1;
        self.in_session = 0;
        self.carried.clear();
    }
}
