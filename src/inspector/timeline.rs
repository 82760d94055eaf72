//! The session's steps in the article's words (`socket()`, `connect()`, `send()`, `recv()`,
//! FIN, `close()`), each timed from the first event the inspector saw, bounded to
//! [`TIMELINE_LEN`] entries (the oldest go first).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Timeline entries kept; the oldest go first.
pub const TIMELINE_LEN: usize = 1000;

/// What a timeline entry is about, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Resolving, connecting, established.
    Setup,
    /// Bytes out.
    Send,
    /// Bytes in.
    Recv,
    /// FIN, close, reconnect.
    Close,
    /// Refused, reset, failed.
    Error,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Time since the first event.
    pub at: Duration,
    /// What happened, in the article's words.
    pub text: String,
    /// For the colour.
    pub step: Step,
}

/// The bounded timeline and the moment it starts from.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    start: Option<Instant>,
    entries: VecDeque<TimelineEntry>,
}

impl Timeline {
    /// The entries, oldest first.
    pub(super) fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = &TimelineEntry> + ExactSizeIterator {
        self.entries.iter()
    }

    /// Adds an entry; the first one ever recorded sets the start.
    pub(super) fn record(&mut self, at: Instant, step: Step, text: String) {
        let start = *self.start.get_or_insert(at);
        if self.entries.len() == TIMELINE_LEN {
            self.entries.pop_front();
        }
        self.entries.push_back(TimelineEntry {
            at: at.saturating_duration_since(start),
            text,
            step,
        });
    }

    /// `at` as time since the start (zero before anything was recorded).
    pub(super) fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start.unwrap_or(at))
    }
}
