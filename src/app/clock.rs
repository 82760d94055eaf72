//! The wall clock, handed in: transitions are given monotonic moments (`Instant`), and the
//! times shown beside lines come from them through a [`Clock`] read once at start, so nothing
//! in the state reads the clock itself and tests choose both.

use chrono::{NaiveDateTime, Timelike};
use tokio::time::Instant;

/// Ties the monotonic moments the transitions are given to the wall-clock time lines show.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    wall: NaiveDateTime,
}

impl Clock {
    /// The clock as it reads now.
    pub fn now() -> Self {
        Self::starting(Instant::now(), chrono::Local::now().naive_local())
    }

    /// A clock on which `instant` is `wall` (tests pick both).
    pub fn starting(instant: Instant, wall: NaiveDateTime) -> Self {
        Self { instant, wall }
    }

    /// The local date and time of the Unix time `secs` (a line said earlier, as the server
    /// dates it).
    pub(super) fn local(&self, secs: i64) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::from_timestamp(secs, 0)?;
        Some(utc.with_timezone(&chrono::Local).naive_local())
    }

    /// The local date and time at `at`, to the second.
    pub(super) fn wall(&self, at: Instant) -> NaiveDateTime {
        let since = chrono::Duration::from_std(at.saturating_duration_since(self.instant))
            .unwrap_or_default();
        let time = self.wall.checked_add_signed(since).unwrap_or(self.wall);
        time.with_nanosecond(0).unwrap_or(time)
    }
}
