//! Retention in the engine: a room's stream keeps what the nodes' `--retain` and
//! `--retain-lines` say, like each node's copy. Any node may trim any room, at any time, as
//! often as it likes: trimming to a bound already reached does nothing, so the nodes need no
//! lease to share the work (each trims every room about once an hour). Numbering is not
//! affected (see [`super::log`]): a trimmed room never reuses a number.

use anyhow::Context;
use redis::streams::StreamRangeReply;

use super::Cluster;
use super::log::{Entry, LineId, decode, stream_key};
use crate::names::RoomName;

/// Entries read per step while looking for the first line young enough to keep.
const PAGE: usize = 200;

/// Most entries looked at per room per trim: the rest is for the next one.
const MOST_LOOKED_AT: usize = 10_000;

impl Cluster {
    /// Drops `room`'s lines older than `before_ms` and all but its newest `keep_lines`;
    /// returns how many entries went.
    pub async fn trim(
        &self,
        room: &RoomName,
        keep_lines: u64,
        before_ms: i64,
    ) -> anyhow::Result<u64> {
        let last = self.last_id(room).await?;
        let by_lines = LineId((last.0 + 1).saturating_sub(keep_lines.max(1)));
        // Lines are appended in the order they are said, so the first young one ends the old.
        let mut by_age = LineId::START;
        let mut from = "-".to_owned();
        let mut looked_at = 0;
        'pages: while looked_at < MOST_LOOKED_AT {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(stream_key(&room.key()))
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut self.conn())
                .await
                .with_context(|| format!("cannot read {room}'s oldest lines from the engine"))?;
            looked_at += page.ids.len();
            for entry in &page.ids {
                if let Ok((at, Entry::Line(line))) = decode(entry) {
                    if line.at_ms >= before_ms {
                        break 'pages;
                    }
                    by_age = LineId(at.line.0 + 1);
                }
            }
            match page.ids.last() {
                Some(entry) if page.ids.len() == PAGE => from = format!("({}", entry.id),
                _ => break,
            }
        }
        let keep_from = by_lines.max(by_age);
        if keep_from <= LineId(1) {
            return Ok(0);
        }
        self.forget_before(room, keep_from).await
    }

    /// Every room the cluster lists, and the lobby.
    pub async fn listed_rooms(&self) -> anyhow::Result<Vec<RoomName>> {
        let keys: Vec<String> = redis::cmd("HVALS")
            .arg(super::roster::rooms_key())
            .query_async(&mut self.conn())
            .await
            .context("cannot list the rooms from the engine")?;
        let mut rooms: Vec<RoomName> = keys
            .iter()
            .filter_map(|name| RoomName::parse(name).ok())
            .collect();
        if !rooms
            .iter()
            .any(|room| room.key() == RoomName::lobby().key())
        {
            rooms.push(RoomName::lobby());
        }
        Ok(rooms)
    }
}
