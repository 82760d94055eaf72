//! The follower: one task per node that tails the streams of the rooms the node follows and
//! hands on each new line, in its room's order, none twice.
//!
//! It reads with `XREAD BLOCK` on a connection of its own: a blocked read on the shared
//! connection would hold up every command queued behind it. Each room has a cursor (the last
//! number handed on); a read asks for what comes after each cursor, so after the engine was
//! away the follower reconnects and catches up from where it was, and lines appended
//! meanwhile arrive in order. Adding or removing a room wakes a blocked read at once
//! (`CLIENT UNBLOCK` from the shared connection), so a new room is followed without waiting
//! out the block.
//!
//! The lines go out on a bounded channel: a consumer that does not keep up slows this
//! follower only (the lines wait in the engine, not in memory), never another node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};

use super::Cluster;
use super::inbox::{DIRECT_FIELD, Direct, inbox_key};
use super::log::{Entry, LineId, LogLine, Position, decode, room_of, stream_key};
use super::ops::{OP_FIELD, Op, ops_key};
use super::roster::Happened;
use crate::names::RoomName;

/// Most lines one read takes per room: what bounds the memory of one catch-up step.
const READ_COUNT: usize = 512;

/// How long the follower waits between two attempts to reach the engine, at most (it starts
/// at a tenth of a second and doubles).
const MOST_BACKOFF: Duration = Duration::from_secs(2);

/// How often a wake is repeated while the blocked read has not returned: the `CLIENT UNBLOCK`
/// can overtake the read it is meant for, which travels on another connection.
const UNBLOCK_AGAIN: Duration = Duration::from_millis(20);

/// One line of a followed room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// The room's key ([`RoomName::key`]).
    pub room: String,
    /// Its number there.
    pub id: LineId,
    /// The line.
    pub line: LogLine,
}

/// Something that happened in a followed room (see [`super::roster`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedEvent {
    /// The room's key.
    pub room: String,
    /// Where it is in the room's stream.
    pub at: Position,
    /// What happened.
    pub happened: Happened,
}

/// What the follower hands on, in its room's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tailed {
    /// A line.
    Line(Followed),
    /// Something that happened.
    Event(FollowedEvent),
    /// Something another node asks of this one (see [`super::inbox`]).
    Direct(Direct),
    /// An operator's decision for the whole cluster (see [`super::ops`]).
    Op(Op),
}

/// Where the follower is in one room.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The last entry handed on.
    after: Position,
    /// Which [`Follower::follow`] set it: a read begun before a room was followed anew must
    /// not move the new cursor.
    generation: u64,
}

#[derive(Debug, Default)]
struct Rooms {
    /// By stream key: the rooms' streams and this node's inbox.
    cursors: HashMap<String, Cursor>,
    generation: u64,
}

/// A node's follower: say which rooms to follow, take the lines as they come. Dropping it
/// stops its task.
#[derive(Debug)]
pub struct Follower {
    rooms: Arc<Mutex<Rooms>>,
    wake: Arc<Notify>,
    lines: mpsc::Receiver<Tailed>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Says which rooms a [`Follower`] follows, from anywhere (a thread of its own, say) while the
/// follower's lines are taken elsewhere. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Follows {
    rooms: Arc<Mutex<Rooms>>,
    wake: Arc<Notify>,
}

impl Follower {
    /// A handle that follows and unfollows rooms for this follower.
    pub fn follows(&self) -> Follows {
        Follows {
            rooms: self.rooms.clone(),
            wake: self.wake.clone(),
        }
    }

    /// Follows `room` from after `after`: see [`Follows::follow`].
    pub fn follow(&self, room: &RoomName, after: impl Into<Position>) {
        self.follows().follow(room, after);
    }

    /// Stops following `room`: see [`Follows::unfollow`].
    pub fn unfollow(&self, room: &RoomName) {
        self.follows().unfollow(room);
    }

    /// The next line or event of a followed room, in order within its room; `None` once the
    /// follower has stopped.
    pub async fn next(&mut self) -> Option<Tailed> {
        self.lines.recv().await
    }
}

impl Follows {
    /// Follows `room` from after `after` (its last line or event already handed on by other
    /// means, such as a replay; [`LineId::START`] for all of it). Following it again moves the
    /// cursor.
    pub fn follow(&self, room: &RoomName, after: impl Into<Position>) {
        let after = after.into();
        {
            let mut rooms = lock(&self.rooms);
            rooms.generation += 1;
            let generation = rooms.generation;
            rooms
                .cursors
                .insert(stream_key(&room.key()), Cursor { after, generation });
        }
        self.wake.notify_one();
    }

    /// Stops following `room`. Lines of it already read may still arrive.
    pub fn unfollow(&self, room: &RoomName) {
        lock(&self.rooms).cursors.remove(&stream_key(&room.key()));
        self.wake.notify_one();
    }

    /// Follows the inbox of node `node` (this one's) from after `after`.
    pub fn follow_inbox(&self, node: &str, after: Position) {
        self.follow_stream(inbox_key(node), after);
    }

    /// Follows the operators' decisions from after `after`.
    pub fn follow_ops(&self, after: Position) {
        self.follow_stream(ops_key(), after);
    }

    fn follow_stream(&self, key: String, after: Position) {
        {
            let mut rooms = lock(&self.rooms);
            rooms.generation += 1;
            let generation = rooms.generation;
            rooms.cursors.insert(key, Cursor { after, generation });
        }
        self.wake.notify_one();
    }
}

fn lock(rooms: &Mutex<Rooms>) -> std::sync::MutexGuard<'_, Rooms> {
    rooms.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// Starts this node's follower, with no rooms yet; `capacity` lines wait for the consumer
    /// before the follower waits for it.
    pub fn follower(&self, capacity: usize) -> Follower {
        let rooms = Arc::new(Mutex::new(Rooms::default()));
        let wake = Arc::new(Notify::new());
        let (tx, lines) = mpsc::channel(capacity.max(1));
        let following = Following {
            cluster: self.clone(),
            rooms: rooms.clone(),
            wake: wake.clone(),
            tx,
        };
        Follower {
            rooms,
            wake,
            lines,
            task: tokio::spawn(following.run()),
        }
    }
}

/// The follower's task.
struct Following {
    cluster: Cluster,
    rooms: Arc<Mutex<Rooms>>,
    wake: Arc<Notify>,
    tx: mpsc::Sender<Tailed>,
}

/// The follower's own connection and its id, which `CLIENT UNBLOCK` names.
struct Reading {
    conn: MultiplexedConnection,
    id: i64,
}

impl Following {
    async fn run(self) {
        let mut reading: Option<Reading> = None;
        let mut backoff = Duration::from_millis(100);
        let mut down = false;
        loop {
            let snapshot: Vec<(String, Cursor)> = lock(&self.rooms)
                .cursors
                .iter()
                .map(|(room, cursor)| (room.clone(), *cursor))
                .collect();
            if snapshot.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let connection = match reading.take() {
                Some(connection) => Ok(connection),
                None => self.connect().await,
            };
            let result = match connection {
                Ok(mut connection) => {
                    let read = self.read(&mut connection, &snapshot).await;
                    if read.is_ok() {
                        reading = Some(connection);
                    }
                    read
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(reply) => {
                    if std::mem::replace(&mut down, false) {
                        info!("the follower reads from the engine again");
                    }
                    backoff = Duration::from_millis(100);
                    if !self.hand_on(reply, &snapshot).await {
                        return;
                    }
                }
                Err(error) => {
                    if !std::mem::replace(&mut down, true) {
                        warn!("the follower cannot read from the engine: {error:#}");
                    }
                    // Woken early by a change of rooms, which the next attempt reads.
                    let _ = tokio::time::timeout(backoff, self.wake.notified()).await;
                    backoff = (backoff * 2).min(MOST_BACKOFF);
                }
            }
        }
    }

    /// A connection of the follower's own, whose replies may take a whole block.
    async fn connect(&self) -> anyhow::Result<Reading> {
        let settings = self.cluster.settings();
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.follow_block + settings.response_timeout));
        let mut conn = self
            .cluster
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("cannot open the follower's connection to the engine")?;
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await
            .context("the engine does not answer CLIENT ID")?;
        Ok(Reading { conn, id })
    }

    /// One blocking read after every cursor; a change of rooms ends it early, with what it
    /// read by then.
    async fn read(
        &self,
        reading: &mut Reading,
        snapshot: &[(String, Cursor)],
    ) -> anyhow::Result<Option<StreamReadReply>> {
        let keys: Vec<String> = snapshot.iter().map(|(key, _)| key.clone()).collect();
        let ids: Vec<String> = snapshot
            .iter()
            .map(|(_, cursor)| cursor.after.stream_id())
            .collect();
        let block = usize::try_from(self.cluster.settings().follow_block.as_millis())
            .unwrap_or(usize::MAX)
            .max(1);
        let options = StreamReadOptions::default().count(READ_COUNT).block(block);
        let mut conn = reading.conn.clone();
        let read = redis::AsyncCommands::xread_options::<_, _, Option<StreamReadReply>>(
            &mut conn, &keys, &ids, &options,
        );
        tokio::pin!(read);
        tokio::select! {
            reply = &mut read => return reply.context("the follower's read failed"),
            () = self.wake.notified() => {}
        }
        // Rooms changed: unblock the read (repeating until it returns, since the unblock may
        // reach the engine before the read does), and keep whatever it got.
        let mut shared = self.cluster.conn();
        loop {
            let _: redis::RedisResult<i64> = redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(reading.id)
                .query_async(&mut shared)
                .await;
            tokio::select! {
                reply = &mut read => return reply.context("the follower's read failed"),
                () = tokio::time::sleep(UNBLOCK_AGAIN) => {}
            }
        }
    }

    /// Hands on what a read brought, moving each room's cursor; `false` once nobody takes
    /// the lines any more.
    async fn hand_on(&self, reply: Option<StreamReadReply>, snapshot: &[(String, Cursor)]) -> bool {
        let Some(reply) = reply else {
            return true;
        };
        for stream in reply.keys {
            let Some((_, read_from)) = snapshot.iter().find(|(key, _)| *key == stream.key) else {
                continue;
            };
            // A room's stream, or else this node's inbox.
            let room = room_of(&stream.key);
            for entry in &stream.ids {
                let decoded = decode(entry);
                // Only while the room is still followed from the cursor this read began at.
                let at = {
                    let mut rooms = lock(&self.rooms);
                    let Some(cursor) = rooms.cursors.get_mut(&stream.key) else {
                        break;
                    };
                    // Every stream id is a position; one that is not cannot be passed over
                    // (the next read would return it again), so the room stops here, said.
                    let Some(at) = Position::from_stream_id(&entry.id) else {
                        warn!(
                            stream = stream.key,
                            id = entry.id,
                            "an entry has no position"
                        );
                        break;
                    };
                    if cursor.generation != read_from.generation || at <= cursor.after {
                        break;
                    }
                    cursor.after = at;
                    at
                };
                let tailed = match (room, decoded) {
                    (None, _) if stream.key == ops_key() => match decode_json(entry, OP_FIELD) {
                        Ok(op) => Tailed::Op(op),
                        Err(error) => {
                            warn!("an operator's decision in the engine is unreadable: {error:#}");
                            continue;
                        }
                    },
                    (None, _) => match decode_json(entry, DIRECT_FIELD) {
                        Ok(direct) => Tailed::Direct(direct),
                        Err(error) => {
                            warn!("a message in this node's inbox is unreadable: {error:#}");
                            continue;
                        }
                    },
                    (Some(room), Ok((_, Entry::Line(line)))) => Tailed::Line(Followed {
                        room: room.to_owned(),
                        id: at.line,
                        line,
                    }),
                    (Some(room), Ok((_, Entry::Event(happened)))) => Tailed::Event(FollowedEvent {
                        room: room.to_owned(),
                        at,
                        happened,
                    }),
                    // One bad entry must not stop the room: it is passed over, and said.
                    (Some(room), Err(error)) => {
                        warn!(room, "an entry in the engine is unreadable: {error:#}");
                        continue;
                    }
                };
                if self.tx.send(tailed).await.is_err() {
                    return false;
                }
            }
        }
        true
    }
}

/// An inbox's or the operators' entry: the JSON in its field `field`.
fn decode_json<T: serde::de::DeserializeOwned>(
    entry: &redis::streams::StreamId,
    field: &str,
) -> anyhow::Result<T> {
    let json: String = entry
        .get(field)
        .with_context(|| format!("entry {} has no {field} field", entry.id))?;
    serde_json::from_str(&json).with_context(|| format!("entry {} is not one: {json}", entry.id))
}
