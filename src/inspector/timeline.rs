//! The session's steps in the article's words (`socket()`, `connect()`, `send()`, `recv()`,
//! FIN, `close()`), each timed from the first event the inspector saw, bounded to
//! [`TIMELINE_LEN`] entries (the oldest go first), and how far the view of it is scrolled back:
//! reconnect attempts add lines every few seconds, and a short pane must still reach the
//! session they followed.

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

/// The bounded timeline, the moment it starts from, and its view's scroll.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    start: Option<Instant>,
    entries: VecDeque<TimelineEntry>,
    /// Entries newer than the view's last row; 0 follows the newest.
    scrolled_back: usize,
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
        } else if self.scrolled_back > 0 {
            // A view scrolled back stays on what it shows.
            self.scrolled_back += 1;
        }
        self.entries.push_back(TimelineEntry {
            at: at.saturating_duration_since(start),
            text,
            step,
        });
    }

    /// Entries newer than the view's last row (0: the view follows the newest).
    pub(super) fn scrolled_back(&self) -> usize {
        self.scrolled_back
    }

    /// Moves the view `rows` entries back (negative: forward), never before the first entry
    /// nor past the newest.
    pub(super) fn scroll(&mut self, rows: isize) {
        let last = self.entries.len().saturating_sub(1);
        self.scrolled_back = self.scrolled_back.saturating_add_signed(rows).min(last);
    }

    /// `at` as time since the start (zero before anything was recorded).
    pub(super) fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start.unwrap_or(at))
    }
}
