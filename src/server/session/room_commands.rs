//! The commands about rooms and people: `/join`, `/part`, `/switch`, `/rooms`, `/topic`,
//! `/who` and private `/msg`. Each answers with one line or one block for the member alone,
//! except what changes a room for everyone in it (joining, parting, a new topic), which
//! [`Rooms`](super::Rooms) announces there.

use bytes::BytesMut;
use tokio::sync::oneshot;

use super::{Me, Session};
use crate::cluster::Direct;
use crate::names::{Nick, RoomName};
use crate::protocol::{Event, Refusal, Scope, Scoped, ServerLine};
use crate::server::Ending;
use crate::server::rooms::{Entered, Listed};
use crate::server::sequencer::Request;

/// Rooms listed per `/rooms` page: a page is one bounded reply, however many rooms there are.
pub const ROOMS_PER_PAGE: usize = 50;

/// Longest topic, in characters (IRC servers commonly allow 390).
pub const MAX_TOPIC_CHARS: usize = 390;

/// `/msg #room TEXT`'s room and text, if that is what `args` are.
pub fn room_message(args: &str) -> Option<(&str, &str)> {
    let (target, text) = args.trim_start().split_once(' ')?;
    (target.starts_with('#') && !text.trim().is_empty()).then_some((target, text))
}

/// A room name given as an argument, read.
fn room_named(requested: &str) -> Result<RoomName, Refusal<'_>> {
    RoomName::parse(requested).map_err(Refusal::RoomName)
}

impl Session<'_> {
    /// The room `requested` names, as the server spells it, if this member is in it.
    pub(super) fn joined<'r>(&self, requested: &'r str) -> Result<RoomName, Refusal<'r>> {
        let room = room_named(requested)?;
        self.rooms
            .room_of(self.id, &room.key())
            .ok_or(Refusal::NotInRoom(requested))
    }

    /// The room an optional argument names, or the current one.
    fn named_or_current<'r>(&self, me: &Me, requested: &'r str) -> Result<RoomName, Refusal<'r>> {
        match (requested.trim(), &me.current) {
            ("", Some(current)) => Ok(current.clone()),
            ("", None) => Err(Refusal::NoRoom),
            (requested, _) => room_named(requested),
        }
    }

    /// `/who [#ROOM]`: who is in a room, the current one by default (any room may be asked
    /// about, as `/rooms` lists them all); cluster-wide in a cluster.
    pub(super) async fn who(&self, me: &Me, requested: &str) {
        let room = match self.named_or_current(me, requested) {
            Ok(room) => room,
            Err(refusal) => return self.tell(refusal),
        };
        if let Some(cluster) = self.cluster {
            return match cluster.who(&room).await {
                Ok(who) if who.is_empty() => self.tell(Refusal::NoSuchRoom(requested.trim())),
                Ok(who) => {
                    let name = self.rooms.room_of(self.id, &room.key()).unwrap_or(room);
                    let nicks = who.iter().map(String::as_str).collect();
                    self.tell_about(&name, Event::Online { nicks });
                }
                Err(error) => {
                    tracing::warn!("cannot ask the cluster who is in {room}: {error:#}");
                    self.tell(Refusal::ClusterUnavailable);
                }
            };
        }
        match self.rooms.who(&room.key()) {
            Some((name, who)) => {
                let nicks = who.iter().map(String::as_str).collect();
                self.tell_about(&name, Event::Online { nicks });
            }
            None => self.tell(Refusal::NoSuchRoom(requested.trim())),
        }
    }

    /// `/join #ROOM`: enters the room through the sequencer (so its history replay meets its
    /// live lines exactly) and talks there from now on.
    pub(super) async fn join(&self, me: &mut Me, requested: &str) -> Result<(), Ending> {
        let Some(requested) = requested.split_whitespace().next() else {
            self.tell(Refusal::Usage("/join #ROOM"));
            return Ok(());
        };
        let room = match room_named(requested) {
            Ok(room) => room,
            Err(refusal) => {
                self.tell(refusal);
                return Ok(());
            }
        };
        let (reply, entered) = oneshot::channel();
        let enter = Request::Enter {
            id: self.id,
            room,
            reply,
        };
        if self
            .unless_ended(self.sequencer.send(enter))
            .await?
            .is_err()
        {
            return Err(Ending::Shutdown); // the sequencer is gone: the server is stopping
        }
        match self.unless_ended(entered).await? {
            Ok(Ok(Entered::Joined(name) | Entered::AlreadyIn(name))) => self.talk_in(me, name),
            Ok(Err(full)) => self.tell(full.refusal(requested)),
            Err(_) => return Err(Ending::Shutdown),
        }
        Ok(())
    }

    /// `/part [#ROOM] [REASON]`: leaves a room, the current one by default. Parting the
    /// current room makes another current (the lobby if the member is in it).
    pub(super) fn part(&self, me: &mut Me, args: &str) {
        let args = args.trim();
        let (requested, reason) = match args.starts_with('#') {
            true => args.split_once(' ').unwrap_or((args, "")),
            false => ("", args),
        };
        let room = match requested {
            "" => self.named_or_current(me, ""),
            requested => self.joined(requested),
        };
        let room = match room {
            Ok(room) => room,
            Err(refusal) => return self.tell(refusal),
        };
        let reason = match reason.trim() {
            "" => "part".to_owned(),
            reason => format!("part: {reason}"),
        };
        let key = room.key();
        self.rooms.part(self.id, &key, &reason);
        if me
            .current
            .as_ref()
            .is_some_and(|current| current.key() == key)
        {
            match self.rooms.any_room_of(self.id) {
                Some(next) => self.talk_in(me, next),
                None => {
                    me.current = None;
                    self.tell(Refusal::NoRoom);
                }
            }
        }
    }

    /// `/switch #ROOM`: talks in a room the member is already in.
    pub(super) fn switch(&self, me: &mut Me, requested: &str) {
        match requested.trim() {
            "" => self.tell(Refusal::Usage("/switch #ROOM")),
            requested => match self.joined(requested) {
                Ok(room) => self.talk_in(me, room),
                Err(refusal) => self.tell(refusal),
            },
        }
    }

    /// Makes `room` current and says so.
    fn talk_in(&self, me: &mut Me, room: RoomName) {
        self.tell(Event::Talking {
            room: room.as_str(),
        });
        me.current = Some(room);
    }

    /// `/rooms [PAGE]`: one page of the rooms, as one block; cluster-wide in a cluster.
    pub(super) async fn list_rooms(&self, page: &str) {
        let page = match page.trim() {
            "" => 1,
            page => match page.parse::<usize>() {
                Ok(page @ 1..) => page,
                _ => return self.tell(Refusal::Usage("/rooms [PAGE]")),
            },
        };
        let (count, listed) = match self.cluster {
            None => self.rooms.list(page, ROOMS_PER_PAGE),
            Some(cluster) => match cluster.rooms(page, ROOMS_PER_PAGE).await {
                Ok((count, listed)) => (count, listed.into_iter().map(Listed::from).collect()),
                Err(error) => {
                    tracing::warn!("cannot list the cluster's rooms: {error:#}");
                    return self.tell(Refusal::ClusterUnavailable);
                }
            },
        };
        let mut block = BytesMut::new();
        ServerLine::Event(Event::Rooms {
            count,
            page,
            pages: count.div_ceil(ROOMS_PER_PAGE).max(1),
        })
        .write_to(&mut block);
        for room in &listed {
            ServerLine::Event(Event::RoomInfo {
                room: &room.name,
                online: room.online,
                topic: room.topic.as_deref(),
            })
            .write_to(&mut block);
        }
        self.rooms.send_to(self.id, block.freeze());
    }

    /// `/topic [TEXT]`: the current room's topic, or a new one for everyone in it.
    pub(super) fn topic(&self, me: &Me, topic: &str) {
        let Some(room) = &me.current else {
            return self.tell(Refusal::NoRoom);
        };
        let key = room.key();
        let topic = topic.trim();
        if topic.is_empty() {
            match self.rooms.topic(self.id, &key) {
                Some(topic) => self.tell_about(room, Event::TopicIs(topic.as_deref())),
                None => self.tell(Refusal::NotInRoom(room.as_str())),
            }
        } else if topic.chars().count() > MAX_TOPIC_CHARS {
            self.tell(Refusal::TopicTooLong {
                max: MAX_TOPIC_CHARS,
            });
        } else if !self.rooms.set_topic(self.id, &key, topic) {
            self.tell(Refusal::NotInRoom(room.as_str()));
        }
    }

    /// `/msg NICK TEXT`: a private message, to the recipient and echoed to the sender; not
    /// stored. (`/msg #room TEXT` is said in the room, like a plain line.) In a cluster, a
    /// recipient on another node gets it through that node's inbox.
    pub(super) async fn private(&self, me: &Me, args: &str) {
        let message = args
            .trim_start()
            .split_once(' ')
            .filter(|(target, text)| !target.starts_with('#') && !text.trim().is_empty());
        let Some((nick, text)) = message else {
            return self.tell(Refusal::Usage("/msg #ROOM|NICK TEXT"));
        };
        match self.rooms.private(self.id, nick, text) {
            Err(Refusal::NoSuchNick(nick)) if self.cluster.is_some() => {
                Box::pin(self.private_elsewhere(me, nick, text)).await;
            }
            Err(refusal) => self.tell(refusal),
            Ok(()) => {}
        }
    }

    /// A private message to a member of another node.
    async fn private_elsewhere(&self, me: &Me, nick: &str, text: &str) {
        let Some(cluster) = self.cluster else { return };
        let Ok(to) = Nick::parse(nick) else {
            return self.tell(Refusal::NoSuchNick(nick));
        };
        let sent = match cluster.holder_of(&to).await {
            Ok(Some(holder)) if holder.node != cluster.me().node => {
                let direct = Direct::Private {
                    from: me.nick.to_string(),
                    from_node: Some(cluster.me().node.to_string()),
                    to: to.key(),
                    text: text.to_owned(),
                };
                cluster.send_direct(&holder.node, &direct).await
            }
            Ok(_) => return self.tell(Refusal::NoSuchNick(nick)),
            Err(error) => Err(error),
        };
        match sent {
            Ok(()) => {
                let echo = Scoped {
                    scope: Scope::Private(to.as_str()),
                    line: ServerLine::Message {
                        nick: me.nick.as_str(),
                        text,
                    },
                };
                self.rooms.send_to(self.id, echo.to_bytes());
            }
            Err(error) => {
                tracing::warn!("cannot send a private message through the cluster: {error:#}");
                self.tell(Refusal::ClusterUnavailable);
            }
        }
    }
}
