//! The raw bytes of the last reads, so read boundaries can be seen: each `recv()` as it really
//! fell, its real size, its first [`READ_BYTES_KEPT`] bytes, and with TLS the records that
//! carried it. Bounded to [`READS_KEPT`] reads.

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
    /// 1 for the first read of the program, counting on over reconnects.
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
    total: u64,
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
        self.total += 1;
        if self.kept.len() == READS_KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(ReadRecord {
            number: self.total,
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

    /// A new connection: records carried for the last one's reads are dropped.
    pub(super) fn drop_carried(&mut self) {
        self.carried.clear();
    }
}
