//! A member's outbox: the lines queued for its socket, bounded both in entries and in bytes.
//!
//! Entries alone do not bound memory: a reply only its asker receives (`/who` in a big room is
//! kilobytes) is one entry, and a client that sends `/who` a thousand times without reading
//! would pin a thousand of them. So every queued byte is counted: the room's [`Outbox::offer`]
//! refuses what would pass the byte budget exactly as it refuses a full channel (the member is
//! dropped as too slow), and a session waits with [`Room`] for its own queue to have room before
//! it handles a line whose reply would go there (see `session.rs`), which stops reading a
//! client that asks faster than it reads.
//!
//! [`Room`]: super::room::Room

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::sync::mpsc::{self, error::TrySendError};

/// Why a line could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The entry or byte budget is spent: the member is not reading.
    Full,
    /// The writer is gone.
    Closed,
}

/// The byte count the room and the writer share, and the writer's signal that it took some.
#[derive(Debug)]
struct Shared {
    queued: AtomicUsize,
    budget: usize,
    drained: Notify,
}

/// The room's end: offers lines.
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
}

/// The writer's end: takes lines in batches and gives their bytes back to the budget.
#[derive(Debug)]
pub struct OutboxReader {
    rx: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
}

/// The session's view of its own outbox: how full it is, without keeping it open.
#[derive(Debug, Clone)]
pub struct OutboxRoom {
    tx: mpsc::WeakSender<Bytes>,
    shared: Arc<Shared>,
}

/// An outbox of at most `entries` lines and `bytes` bytes.
pub fn outbox(entries: usize, bytes: usize) -> (Outbox, OutboxReader) {
    let (tx, rx) = mpsc::channel(entries.max(1));
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        budget: bytes.max(1),
        drained: Notify::new(),
    });
    let reader = OutboxReader {
        rx,
        shared: shared.clone(),
    };
    (Outbox { tx, shared }, reader)
}

impl Outbox {
    /// Queues `line` unless that would pass either budget. The room offers under its lock, so
    /// two offers never race past the byte budget together (the writer only ever lowers it).
    /// Found by a test: counting the bytes after the send let the writer subtract them first,
    /// so the count wrapped for a moment, and a session that looked then waited forever.
    pub fn offer(&self, line: Bytes) -> Result<(), Refused> {
        let len = line.len();
        // Counted before the line is in the channel: the writer may take it (and subtract its
        // bytes) the moment it is, and the count must never go below what is queued.
        let before = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        let refused = if before + len > self.shared.budget {
            Err(Refused::Full)
        } else {
            match self.tx.try_send(line) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(_)) => Err(Refused::Full),
                Err(TrySendError::Closed(_)) => Err(Refused::Closed),
            }
        };
        self.shared.queued.fetch_sub(len, Ordering::AcqRel);
        refused
    }

    /// A view of this outbox for its own session.
    pub fn room_view(&self) -> OutboxRoom {
        OutboxRoom {
            tx: self.tx.downgrade(),
            shared: self.shared.clone(),
        }
    }
}

impl OutboxReader {
    /// Waits for at least one line and takes up to `most` into `batch`; 0 once the room has
    /// closed the outbox and everything is taken.
    pub async fn take(&mut self, batch: &mut Vec<Bytes>, most: usize) -> usize {
        let before = batch.len();
        let received = self.rx.recv_many(batch, most).await;
        let bytes: usize = batch[before..].iter().map(Bytes::len).sum();
        self.shared.queued.fetch_sub(bytes, Ordering::AcqRel);
        self.shared.drained.notify_waiters();
        received
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

impl OutboxRoom {
    /// Whether the outbox could take `entries` more lines and half its byte budget is free,
    /// which is room for any one reply; a closed outbox has room (nobody should wait for it).
    pub fn has_room(&self, entries: usize) -> bool {
        let Some(tx) = self.tx.upgrade() else {
            return true;
        };
        let free_entries = tx.capacity() >= entries.min(tx.max_capacity());
        free_entries && self.shared.queued.load(Ordering::Acquire) <= self.shared.budget / 2
    }

    /// The outbox's byte budget.
    pub fn budget(&self) -> usize {
        self.shared.budget
    }

    /// Waits until [`OutboxRoom::has_room`].
    pub async fn wait_for_room(&self, entries: usize) {
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            // Registered before looking, so a drain between the look and the wait is not missed.
            drained.as_mut().enable();
            if self.has_room(entries) {
                return;
            }
            drained.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_are_bounded_as_well_as_entries() {
        let (outbox, mut reader) = outbox(8, 10);
        assert_eq!(outbox.offer(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(
            outbox.offer(Bytes::from_static(b"12345")),
            Err(Refused::Full),
            "11 bytes would pass a 10-byte budget"
        );
        let mut batch = Vec::new();
        assert_eq!(reader.take(&mut batch, 8).await, 1);
        assert_eq!(outbox.offer(Bytes::from_static(b"12345")), Ok(()));
        drop(outbox);
        batch.clear();
        assert_eq!(reader.take(&mut batch, 8).await, 1);
        assert_eq!(reader.take(&mut batch, 8).await, 0, "closed once empty");
    }

    #[tokio::test]
    async fn a_session_waits_until_its_writer_takes_lines() {
        let (outbox, mut reader) = outbox(8, 10);
        outbox.offer(Bytes::from_static(b"123456")).unwrap();
        let room = outbox.room_view();
        let waiting = tokio::spawn(async move { room.wait_for_room(1).await });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "6 of 10 bytes queued: more than half"
        );
        reader.take(&mut Vec::new(), 8).await;
        waiting.await.unwrap();
        // A closed outbox never keeps anyone waiting.
        let room = outbox.room_view();
        outbox.offer(Bytes::from_static(b"123456")).unwrap();
        drop(outbox);
        room.wait_for_room(1).await;
    }
}
