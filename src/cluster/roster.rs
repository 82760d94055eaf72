//! Who is in which room, cluster-wide, and what happens in the rooms besides lines: members
//! entering and leaving, renames, topics.
//!
//! Each room has, beside its stream (see [`super::log`]):
//!
//! - `members:{ROOM}`, a hash from each member's folded nick to `NODE NICK` (the node it is on,
//!   and its nick as shown): `/who` reads it, leaving out members of nodes that are not live;
//! - `counts:{ROOM}`, a hash from each node to how many members it has there: `/rooms` sums
//!   the live nodes' counts without reading every member;
//! - `topic:{ROOM}`, its topic ([`Topic`], JSON), gone with the room's last member.
//!
//! `rooms` (one hash for the cluster) maps each room's key to its name as first spelt, for
//! `/rooms`. It is kept apart from the per-room keys (so it is not atomic with them): a room's
//! entry is written at every enter and dropped by a reader that finds the room empty, which at
//! worst lists an empty room once or misses a room until its next enter.
//!
//! What happens in a room is an entry in the room's own stream at `N-k` (after line N; see
//! [`super::log::Position`]), written by the same script that changes the membership, so it
//! keeps the room's one order and every node's follower hands it on with the lines. As on a
//! single node, entering and leaving are announced only in rooms of at most `announce_up_to`
//! members.

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::log::stream_key;
use crate::names::{Nick, RoomName};

/// Something that happened in a room, as its stream keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Happened {
    /// The node where it happened.
    pub node: String,
    /// The member it is about, by its id on that node, when that node told it at once (an
    /// enter, a rename, a topic): that node's delivery skips it. By id, not nick: the member
    /// may have renamed by the time the event comes back.
    #[serde(default)]
    pub member: Option<u64>,
    /// What happened.
    pub what: RoomEvent,
    /// How many were in the room just after, when the engine counted (enter and leave).
    #[serde(skip)]
    pub online: Option<usize>,
}

/// What can happen in a room besides a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomEvent {
    /// A member entered it.
    Entered {
        /// Its nick.
        nick: String,
    },
    /// A member left it.
    Left {
        /// Its nick.
        nick: String,
        /// Why, as the room is told.
        reason: String,
    },
    /// A member in it took another nick.
    Renamed {
        /// The nick it had.
        old: String,
        /// The nick it has.
        new: String,
    },
    /// A member set its topic (empty: cleared it).
    Topic {
        /// Who.
        nick: String,
        /// The topic.
        topic: String,
    },
}

/// A room's topic as the cluster keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// Who set it.
    pub nick: String,
    /// The topic.
    pub topic: String,
}

/// A room as `/rooms` lists it, cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRoom {
    /// Its name as first spelt.
    pub name: String,
    /// Its members on live nodes.
    pub online: usize,
    /// Its topic.
    pub topic: Option<String>,
}

/// A member enters: KEYS members, counts, stream, counter. ARGV nick key, `NODE NICK`, node,
/// announce-up-to, the event. Returns how many are in the room (-1: it was in already).
static ENTER: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local before = redis.call('HGET', KEYS[1], ARGV[1])
        if before == ARGV[2] then return -1 end
        if before then
            -- Held by another node's record (a node that died with this member on it).
            local other = string.match(before, '^(%S+)')
            if redis.call('HINCRBY', KEYS[2], other, -1) <= 0 then
                redis.call('HDEL', KEYS[2], other)
            end
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
        local online = redis.call('HLEN', KEYS[1])
        if online <= tonumber(ARGV[4]) then
            local line = redis.call('GET', KEYS[4]) or '0'
            redis.call('XADD', KEYS[3], line .. '-*', 'event', ARGV[5], 'online', online)
        end
        return online
        ",
    )
});

/// A member leaves: KEYS members, counts, stream, counter, topic. ARGV nick key, node,
/// announce-up-to, the event. Returns how many are left (-1: it was not in, or not from this
/// node).
static LEAVE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local before = redis.call('HGET', KEYS[1], ARGV[1])
        if not before or string.match(before, '^(%S+)') ~= ARGV[2] then return -1 end
        redis.call('HDEL', KEYS[1], ARGV[1])
        if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
            redis.call('HDEL', KEYS[2], ARGV[2])
        end
        local online = redis.call('HLEN', KEYS[1])
        if online < tonumber(ARGV[3]) then
            local line = redis.call('GET', KEYS[4]) or '0'
            redis.call('XADD', KEYS[3], line .. '-*', 'event', ARGV[4], 'online', online)
        end
        if online == 0 then redis.call('DEL', KEYS[5]) end
        return online
        ",
    )
});

/// A member renames: KEYS members, stream, counter. ARGV old key, new key, `NODE NEW`, the
/// event.
static RENAME: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
        local line = redis.call('GET', KEYS[3]) or '0'
        redis.call('XADD', KEYS[2], line .. '-*', 'event', ARGV[4])
        return 1
        ",
    )
});

/// A topic is set: KEYS topic, stream, counter. ARGV the topic (JSON; empty: cleared), the
/// event.
static TOPIC: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        if ARGV[1] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[1]) end
        local line = redis.call('GET', KEYS[3]) or '0'
        redis.call('XADD', KEYS[2], line .. '-*', 'event', ARGV[2])
        return 1
        ",
    )
});

fn members_key(room_key: &str) -> String {
    super::key("members", &format!("{{{room_key}}}"))
}

fn counts_key(room_key: &str) -> String {
    super::key("counts", &format!("{{{room_key}}}"))
}

fn topic_key(room_key: &str) -> String {
    super::key("topic", &format!("{{{room_key}}}"))
}

fn counter_key(room_key: &str) -> String {
    super::key("seq", &format!("{{{room_key}}}"))
}

pub(super) fn rooms_key() -> String {
    super::key("rooms", "index")
}

impl Cluster {
    fn happened(&self, what: RoomEvent, member: Option<u64>) -> anyhow::Result<String> {
        let happened = Happened {
            node: self.me().node.to_string(),
            member,
            what,
            online: None,
        };
        serde_json::to_string(&happened).context("cannot encode a room's event")
    }

    /// `NODE NICK`: a member's record in a room.
    fn record(&self, nick: &Nick) -> String {
        format!("{} {nick}", self.me().node)
    }

    /// Member `nick` (id `member` here, if it was told already) of this node entered `room`;
    /// announced in the room if it has at most `announce_up_to` members. Returns how many are
    /// in it, cluster-wide.
    pub async fn entered(
        &self,
        room: &RoomName,
        nick: &Nick,
        member: Option<u64>,
        announce_up_to: usize,
    ) -> anyhow::Result<usize> {
        let key = room.key();
        let event = self.happened(
            RoomEvent::Entered {
                nick: nick.to_string(),
            },
            member,
        )?;
        let online: i64 = ENTER
            .key(members_key(&key))
            .key(counts_key(&key))
            .key(stream_key(&key))
            .key(counter_key(&key))
            .arg(nick.key())
            .arg(self.record(nick))
            .arg(self.me().node.as_str())
            .arg(announce_up_to)
            .arg(event)
            .invoke_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot record {nick} entering {room} in the engine"))?;
        let _: () = redis::cmd("HSETNX")
            .arg(rooms_key())
            .arg(&key)
            .arg(room.as_str())
            .query_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot list {room} in the engine"))?;
        Ok(usize::try_from(online).unwrap_or(0))
    }

    /// Member `nick` of this node left `room`, for `reason`; announced if fewer than
    /// `announce_up_to` stay.
    pub async fn left(
        &self,
        room: &RoomName,
        nick: &Nick,
        reason: &str,
        announce_up_to: usize,
    ) -> anyhow::Result<()> {
        let key = room.key();
        let event = self.happened(
            RoomEvent::Left {
                nick: nick.to_string(),
                reason: reason.to_owned(),
            },
            None,
        )?;
        let _: i64 = LEAVE
            .key(members_key(&key))
            .key(counts_key(&key))
            .key(stream_key(&key))
            .key(counter_key(&key))
            .key(topic_key(&key))
            .arg(nick.key())
            .arg(self.me().node.as_str())
            .arg(announce_up_to)
            .arg(event)
            .invoke_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot record {nick} leaving {room} in the engine"))?;
        Ok(())
    }

    /// Member `old` (id `member` here) of this node is now `new`, in `room`.
    pub async fn renamed(
        &self,
        room: &RoomName,
        old: &Nick,
        new: &Nick,
        member: u64,
    ) -> anyhow::Result<()> {
        let key = room.key();
        let event = self.happened(
            RoomEvent::Renamed {
                old: old.to_string(),
                new: new.to_string(),
            },
            Some(member),
        )?;
        let _: i64 = RENAME
            .key(members_key(&key))
            .key(stream_key(&key))
            .key(counter_key(&key))
            .arg(old.key())
            .arg(new.key())
            .arg(self.record(new))
            .arg(event)
            .invoke_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot record {old} renamed {new} in the engine"))?;
        Ok(())
    }

    /// `nick` (id `member` here) set the topic of `room` (empty: cleared it).
    pub async fn set_topic(
        &self,
        room: &RoomName,
        nick: &Nick,
        topic: &str,
        member: u64,
    ) -> anyhow::Result<()> {
        let key = room.key();
        let stored = match topic.is_empty() {
            true => String::new(),
            false => serde_json::to_string(&Topic {
                nick: nick.to_string(),
                topic: topic.to_owned(),
            })
            .context("cannot encode a topic")?,
        };
        let event = self.happened(
            RoomEvent::Topic {
                nick: nick.to_string(),
                topic: topic.to_owned(),
            },
            Some(member),
        )?;
        let _: i64 = TOPIC
            .key(topic_key(&key))
            .key(stream_key(&key))
            .key(counter_key(&key))
            .arg(stored)
            .arg(event)
            .invoke_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot set {room}'s topic in the engine"))?;
        Ok(())
    }

    /// The topic of `room`, if it has one.
    pub async fn topic(&self, room: &RoomName) -> anyhow::Result<Option<String>> {
        self.topic_of(&room.key()).await
    }

    async fn topic_of(&self, room_key: &str) -> anyhow::Result<Option<String>> {
        let stored: Option<String> = redis::cmd("GET")
            .arg(topic_key(room_key))
            .query_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot read {room_key}'s topic from the engine"))?;
        stored
            .map(|json| {
                serde_json::from_str::<Topic>(&json)
                    .map(|topic| topic.topic)
                    .with_context(|| format!("{room_key}'s topic in the engine is not one: {json}"))
            })
            .transpose()
    }

    /// The nicks in `room` on live nodes, sorted without regard to case.
    pub async fn who(&self, room: &RoomName) -> anyhow::Result<Vec<String>> {
        let records: Vec<String> = redis::cmd("HVALS")
            .arg(members_key(&room.key()))
            .query_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot read who is in {room} from the engine"))?;
        let live = self.live_node_names().await?;
        let mut nicks: Vec<String> = records
            .iter()
            .filter_map(|record| record.split_once(' '))
            .filter(|(node, _)| live.iter().any(|live| live == node))
            .map(|(_, nick)| nick.to_owned())
            .collect();
        nicks.sort_by_key(|nick| crate::names::fold(nick));
        Ok(nicks)
    }

    /// Page `page` (from 1) of the rooms with members on live nodes, `per_page` to a page,
    /// and how many such rooms there are.
    pub async fn rooms(
        &self,
        page: usize,
        per_page: usize,
    ) -> anyhow::Result<(usize, Vec<ListedRoom>)> {
        let mut conn = self.conn();
        let index: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(rooms_key())
            .query_async(&mut conn)
            .await
            .context("cannot list the rooms from the engine")?;
        let live = self.live_node_names().await?;
        let mut pipe = redis::pipe();
        for key in index.keys() {
            pipe.cmd("HGETALL").arg(counts_key(key));
        }
        let counts: Vec<std::collections::HashMap<String, i64>> = pipe
            .query_async(&mut conn)
            .await
            .context("cannot count the rooms' members in the engine")?;
        let mut occupied = Vec::new();
        let mut empty = Vec::new();
        for ((key, name), counts) in index.into_iter().zip(counts) {
            let online: i64 = counts
                .iter()
                .filter(|(node, _)| live.contains(node))
                .map(|(_, count)| *count)
                .sum();
            match usize::try_from(online) {
                Ok(online) if online > 0 => occupied.push((key, name, online)),
                _ if counts.is_empty() => empty.push(key),
                _ => {}
            }
        }
        if !empty.is_empty() {
            // Nobody on any node: forget it (a concurrent enter lists it again).
            let _: redis::RedisResult<()> = redis::cmd("HDEL")
                .arg(rooms_key())
                .arg(&empty)
                .query_async(&mut conn)
                .await;
        }
        let total = occupied.len();
        let mut listed = Vec::new();
        for (key, name, online) in occupied
            .into_iter()
            .skip(page.saturating_sub(1).saturating_mul(per_page))
            .take(per_page)
        {
            let topic = self.topic_of(&key).await?;
            listed.push(ListedRoom {
                name,
                online,
                topic,
            });
        }
        Ok((total, listed))
    }

    async fn live_node_names(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .live_nodes()
            .await?
            .into_iter()
            .map(|node| node.node.to_string())
            .collect())
    }

    /// Removes this node's records from every room: those its earlier runs left (a node that
    /// died and came back must not be counted twice, nor list members it no longer has), or
    /// this run's before they are written again. Returns how many went.
    pub async fn forget_node_records(&self) -> anyhow::Result<usize> {
        let mut conn = self.conn();
        let rooms: Vec<String> = redis::cmd("HKEYS")
            .arg(rooms_key())
            .query_async(&mut conn)
            .await
            .context("cannot list the rooms from the engine")?;
        let me = self.me().node.to_string();
        let mut forgotten = 0;
        for room in rooms {
            let members: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                .arg(members_key(&room))
                .query_async(&mut conn)
                .await
                .with_context(|| format!("cannot read who is in {room} from the engine"))?;
            let mine: Vec<&String> = members
                .iter()
                .filter(|(_, record)| record.split_once(' ').is_some_and(|(node, _)| node == me))
                .map(|(key, _)| key)
                .collect();
            if mine.is_empty() {
                continue;
            }
            forgotten += mine.len();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("HDEL")
                .arg(members_key(&room))
                .arg(&mine)
                .ignore()
                .cmd("HDEL")
                .arg(counts_key(&room))
                .arg(&me)
                .ignore();
            let _: () = pipe
                .query_async(&mut conn)
                .await
                .with_context(|| format!("cannot clear {room} of this node's earlier run"))?;
        }
        Ok(forgotten)
    }
}
