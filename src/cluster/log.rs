//! The rooms' log in the engine: one stream per room, whose entry ids are the room's line
//! numbers, the same on every node.
//!
//! [`Cluster::append`] (and [`Cluster::append_all`], for a block of lines) runs one Lua
//! script: `INCRBY` the room's counter, then `XADD` each line under the id `N-0`. Redis runs a
//! script alone, so two nodes appending at once get consecutive numbers and the stream holds
//! them in that order: one total order per room, with no gaps. A counter found behind its
//! stream's last number (an engine restored from an older file, a hand-made mistake) is moved
//! up to it first, and the stream itself refuses an id at or below its last one: no two lines
//! ever share a number, trimmed or not. [`Cluster::read_after`] is the gap fill: everything
//! after a number, in order.
//!
//! An append is idempotent across a lost answer. The engine may run the script and its answer
//! never arrive (a response timeout, a connection reset after the script ran): the caller
//! cannot tell whether the lines are in the log, and sending them again would add them twice.
//! So each append carries a token, (node, epoch, n) with n counting this run's appends, and
//! the script keeps per room each node's last token and the numbers it got (the HASH
//! `last:{ROOM}`, beside the room's other keys under the same hash tag). The same token again
//! appends nothing and answers the first numbers; [`Cluster::append_all`] retries with it when
//! an answer is lost, a few times within [`APPEND_RETRY_WITHIN`], so its caller never retries
//! and never sees a duplicate. The record holds only the last token: an older one (an append
//! overtaken by a later one of the same run) is refused, since whether it ran is no longer
//! known; this holds as long as one node's appends to a room reach the engine in the order
//! they were begun, which one appender task awaiting each call, or sending them in order on
//! the shared connection, gives.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::streams::{StreamId, StreamRangeReply};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::Cluster;
use super::roster::Happened;
use crate::names::RoomName;
use crate::protocol::SaidKind;

/// The stream field that holds a line's [`LogLine`], as JSON.
const LINE_FIELD: &str = "line";

/// The stream field that holds an event's [`Happened`], as JSON.
pub(super) const EVENT_FIELD: &str = "event";

/// The stream field with how many were in the room after an event (set by the engine).
pub(super) const ONLINE_FIELD: &str = "online";

/// The append: number and store in one atomic step, at most once per token
/// (`append.lua` says how: its keys, arguments, answer and refusals).
static APPEND: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("append.lua")));

/// The most times one append is sent when its answers are lost. A connection reset costs one
/// attempt and a stalled engine one more; more lost answers in a row than this mean the engine,
/// or the way to it, is failing, and the caller's degraded mode should take over rather than
/// this loop keep knocking.
pub const APPEND_ATTEMPTS: u32 = 4;

/// The longest one append goes on (all its attempts and waits together) before it gives up.
/// A member waits for their own line: past a few seconds, "it may not have been sent" serves
/// them better than silence. Yet it is longer than two response timeouts at their default
/// (2 s), so an engine stalled once (a fork for an append-only file rewrite, a slow command)
/// gets a second full chance, and far longer than a reconnect after a reset takes.
pub const APPEND_RETRY_WITHIN: Duration = Duration::from_secs(5);

/// The wait before an append's second attempt, doubled before each next: short, since most
/// lost answers are a dropped connection the manager has already begun to replace.
const APPEND_BACKOFF: Duration = Duration::from_millis(25);

/// A line's number in its room: 1 for the first, one more for each next, the same on every
/// node (the stream id `N-0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LineId(pub u64);

impl LineId {
    /// Before the first line: reading after it reads from the start.
    pub const START: Self = Self(0);

    /// The stream id this number is stored under.
    pub fn stream_id(self) -> String {
        format!("{}-0", self.0)
    }

    /// The number a stream id stands for; `None` for an id this module did not write.
    pub fn from_stream_id(id: &str) -> Option<Self> {
        let (number, "0") = id.split_once('-')? else {
            return None;
        };
        number.parse().ok().map(Self)
    }
}

/// Where an entry is in its room's stream. Line N is at `N-0`; what happens in the room after
/// line N and before line N + 1 (a member entering or leaving, a rename, a topic: see
/// [`super::roster`]) is at `N-1`, `N-2`..., so it keeps the room's one order without taking a
/// line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// The last line at or before it.
    pub line: LineId,
    /// 0 for the line itself; the events after it count from 1.
    pub event: u64,
}

impl Position {
    /// The position of line `line`.
    pub fn of_line(line: LineId) -> Self {
        Self { line, event: 0 }
    }

    /// The stream id it is stored under.
    pub fn stream_id(self) -> String {
        format!("{}-{}", self.line.0, self.event)
    }

    /// The position a stream id stands for; `None` for an id that is not one.
    pub fn from_stream_id(id: &str) -> Option<Self> {
        let (line, event) = id.split_once('-')?;
        Some(Self {
            line: LineId(line.parse().ok()?),
            event: event.parse().ok()?,
        })
    }
}

impl From<LineId> for Position {
    fn from(line: LineId) -> Self {
        Self::of_line(line)
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One line of a room as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Who said it, as shown.
    pub nick: String,
    /// Message or action.
    pub kind: SaidKind,
    /// What they said, sanitised.
    pub text: String,
    /// When the node that took it received it, Unix milliseconds (that node's clock: the
    /// number, not the time, is the order).
    pub at_ms: i64,
    /// The node the sayer was on.
    pub node: String,
}

/// The stream of the room keyed `room_key` (a folded [`RoomName::key`]).
pub(super) fn stream_key(room_key: &str) -> String {
    super::key("room", &format!("{{{room_key}}}"))
}

/// The room key a stream key names; `None` for a key this module did not make.
pub(super) fn room_of(stream_key: &str) -> Option<&str> {
    stream_key
        .strip_prefix(super::PREFIX)?
        .strip_prefix("room:{")?
        .strip_suffix('}')
}

fn counter_key(room_key: &str) -> String {
    super::key("seq", &format!("{{{room_key}}}"))
}

/// The room's record of each node's last append: node → `epoch:n:first:count`.
fn record_key(room_key: &str) -> String {
    super::key("last", &format!("{{{room_key}}}"))
}

/// Whether an attempt was lost on the way to or from the engine (its answer, if any, never
/// came), rather than refused by it: only then is sending it again worth it. The engine still
/// loading its file after a restart has not run the script either.
fn lost_in_transit(error: &RedisError) -> bool {
    error.is_io_error() || error.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading)
}

/// What a room's stream holds at one position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A line said, numbered by its position's line.
    Line(LogLine),
    /// Something that happened in the room.
    Event(Happened),
}

/// A stream entry, where it is and what it holds.
pub(super) fn decode(entry: &StreamId) -> anyhow::Result<(Position, Entry)> {
    let at = Position::from_stream_id(&entry.id)
        .with_context(|| format!("stream id {} is not a position", entry.id))?;
    if at.event == 0 {
        let json: String = entry
            .get(LINE_FIELD)
            .with_context(|| format!("entry {} has no {LINE_FIELD} field", entry.id))?;
        let line = serde_json::from_str(&json)
            .with_context(|| format!("entry {} is not a line: {json}", entry.id))?;
        return Ok((at, Entry::Line(line)));
    }
    let json: String = entry
        .get(EVENT_FIELD)
        .with_context(|| format!("entry {} has no {EVENT_FIELD} field", entry.id))?;
    let mut happened: Happened = serde_json::from_str(&json)
        .with_context(|| format!("entry {} is not an event: {json}", entry.id))?;
    happened.online = entry.get(ONLINE_FIELD);
    Ok((at, Entry::Event(happened)))
}

impl Cluster {
    /// Numbers `line` in `room` and stores it; its number is the one every node will know it
    /// by. Retried as [`Cluster::append_all`] says; when it still errs, the error says whether
    /// the line may be in the log: a reader finds out by reading.
    pub async fn append(&self, room: &RoomName, line: &LogLine) -> anyhow::Result<LineId> {
        let ids = self.append_all(room, std::slice::from_ref(line)).await?;
        ids.first().copied().context("the engine numbered no line")
    }

    /// Numbers and stores `lines` (what one member said in one go) as one block: consecutive
    /// numbers, nobody else's line between them, one round trip when nothing goes wrong.
    ///
    /// An attempt whose answer is lost (a response timeout, a connection dropped) is sent
    /// again under the same token, at most [`APPEND_ATTEMPTS`] times within
    /// [`APPEND_RETRY_WITHIN`]: the lines are in the log once, and the numbers returned are
    /// the ones they got, whichever attempt ran. When every answer was lost the error says the
    /// lines may or may not be in the log. The engine refusing (a key of the wrong type; a
    /// later append of this run already recorded, or a later run of this node: see the
    /// [module](self)) is not retried.
    pub async fn append_all(
        &self,
        room: &RoomName,
        lines: &[LogLine],
    ) -> anyhow::Result<Vec<LineId>> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let room_key = room.key();
        let me = self.me();
        let n = self.inner.appends.fetch_add(1, Ordering::Relaxed) + 1;
        let mut invocation = APPEND.prepare_invoke();
        invocation
            .key(counter_key(&room_key))
            .key(stream_key(&room_key))
            .key(record_key(&room_key))
            .arg(me.node.as_str())
            .arg(me.epoch)
            .arg(n);
        for line in lines {
            invocation.arg(serde_json::to_string(line).context("cannot encode a line")?);
        }
        let started = Instant::now();
        let mut backoff = APPEND_BACKOFF;
        let mut attempt = 1;
        let first: u64 = loop {
            let remaining = APPEND_RETRY_WITHIN.saturating_sub(started.elapsed());
            let outcome =
                tokio::time::timeout(remaining, invocation.invoke_async(&mut self.conn()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(RedisError::from(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "no answer within {APPEND_RETRY_WITHIN:?} of the first attempt"
                            ),
                        )))
                    });
            let error = match outcome {
                Ok(first) => break first,
                Err(error) => error,
            };
            let lost = lost_in_transit(&error);
            if lost
                && attempt < APPEND_ATTEMPTS
                && started.elapsed() + backoff < APPEND_RETRY_WITHIN
            {
                debug!(%room, n, attempt, "an append's answer was lost ({error}); sending it again");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
                continue;
            }
            let what = format!("{} line(s) to {room}", lines.len());
            let context = if lost {
                format!(
                    "cannot append {what}: no answer from the engine in {attempt} attempt(s) \
                     over {:?}; they may or may not be in the log",
                    started.elapsed()
                )
            } else if attempt > 1 {
                format!(
                    "the engine refused to append {what} after an earlier attempt's answer \
                     was lost; they may or may not be in the log"
                )
            } else {
                format!("the engine refused to append {what}")
            };
            return Err(error).context(context);
        };
        Ok((first..).take(lines.len()).map(LineId).collect())
    }

    /// Up to `limit` lines of `room` after `after`, in order: what a member who saw `after`
    /// last has missed (the newest first if there are more is the caller's choice: it reads
    /// again after the last one returned).
    pub async fn read_after(
        &self,
        room: &RoomName,
        after: LineId,
        limit: usize,
    ) -> anyhow::Result<Vec<(LineId, LogLine)>> {
        let mut lines = Vec::new();
        let mut from = Position::of_line(after);
        // The events between the lines are not what a gap fill asks for: read on past them
        // until `limit` lines or the end.
        while lines.len() < limit {
            let page = self.read_entries_after(room, from, limit).await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            from = *last;
            let whole = page.len() == limit;
            for (at, entry) in page {
                if let Entry::Line(line) = entry
                    && lines.len() < limit
                {
                    lines.push((at.line, line));
                }
            }
            if !whole {
                break;
            }
        }
        Ok(lines)
    }

    /// Up to `limit` entries of `room` after `after` (lines and events), in order, and where
    /// the last one read is: a catch-up goes on following from there.
    pub async fn read_entries_after(
        &self,
        room: &RoomName,
        after: Position,
        limit: usize,
    ) -> anyhow::Result<Vec<(Position, Entry)>> {
        let reply = self
            .range_after(&stream_key(&room.key()), after, limit)
            .await
            .with_context(|| {
                format!("cannot read {room}'s entries after {after:?} from the engine")
            })?;
        reply.ids.iter().map(decode).collect()
    }

    /// Up to `limit` entries of the stream `key` after `after`, in order.
    pub(super) async fn range_after(
        &self,
        key: &str,
        after: Position,
        limit: usize,
    ) -> redis::RedisResult<StreamRangeReply> {
        redis::cmd("XRANGE")
            .arg(key)
            .arg(format!("({}", after.stream_id()))
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn())
            .await
    }

    /// Retention: drops `room`'s lines before `keep_from`; returns how many went. Numbering
    /// goes on from the counter regardless, and the stream still refuses any number at or below
    /// its last, so a trimmed room never reuses a number.
    pub async fn forget_before(&self, room: &RoomName, keep_from: LineId) -> anyhow::Result<u64> {
        redis::cmd("XTRIM")
            .arg(stream_key(&room.key()))
            .arg("MINID")
            .arg(keep_from.stream_id())
            .query_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot drop {room}'s lines before {keep_from} in the engine"))
    }

    /// The number of the last line appended to `room` (0: none yet): where a node that starts
    /// following it now begins.
    pub async fn last_id(&self, room: &RoomName) -> anyhow::Result<LineId> {
        let last: Option<u64> = redis::cmd("GET")
            .arg(counter_key(&room.key()))
            .query_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot read {room}'s last line number from the engine"))?;
        Ok(LineId(last.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_stream_ids() {
        assert_eq!(LineId(42).stream_id(), "42-0");
        assert_eq!(LineId::from_stream_id("42-0"), Some(LineId(42)));
        for foreign in ["42-1", "42", "x-0", "-0", "1700000000000-3"] {
            assert_eq!(LineId::from_stream_id(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn a_rooms_keys_share_its_hash_tag() {
        let tag = "{#lobby}";
        for key in [
            stream_key("#lobby"),
            counter_key("#lobby"),
            record_key("#lobby"),
        ] {
            assert!(key.ends_with(tag), "{key}");
        }
    }

    #[test]
    fn stream_keys_name_their_room() {
        let key = stream_key("#lobby");
        assert_eq!(key, "tcpchat:room:{#lobby}");
        assert_eq!(room_of(&key), Some("#lobby"));
        assert_eq!(room_of("tcpchat:seq:{#lobby}"), None);
        assert_eq!(room_of(&record_key("#lobby")), None);
        assert_eq!(room_of("other:room:{#lobby}"), None);
    }
}
