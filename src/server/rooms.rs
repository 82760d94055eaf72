//! The server's rooms: who is online and by which nick, which rooms exist and who is in each,
//! and delivery into each member's outbox.
//!
//! One plain `std::sync::Mutex` around the maps (as in mini-redis's `db.rs`): every operation is
//! short, never awaits, and needs one consistent view (a line must reach every member of its
//! room in the same order). Delivery is `try_send` into each member's bounded outbox; a member
//! whose outbox is full is removed on the spot, its connection told to stop, and each of its
//! rooms told it left `(too slow)`. Nobody ever waits for a slow member, in any room.
//!
//! `#lobby` always exists and everyone starts in it; any other room is made by its first
//! `/join` and goes when its last member leaves (its history stays in the store).
//!
//! A member joins as a guest: `guest-N` from this server's own counter, or, in a cluster, the
//! nick its session claimed across the cluster just before ([`Rooms::give_next_guest`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::outbox::{Outbox, OutboxReader, OutboxRoom, Refused, outbox};
use super::removal::{Dropped, Removal};
use crate::names::{Nick, NickError, RoomName, fold};
use crate::protocol::{Event, LOBBY, Refusal, Scope, Scoped, ServerLine};
use bytes::Bytes;
use tokio::sync::Notify;

/// The reason given when a member whose outbox is full is dropped.
pub const TOO_SLOW: &str = "too slow";

/// Identifies one connection for its lifetime.
pub type MemberId = u64;

/// How much each member's outbox may hold.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    /// Entries (a burst of lines from one read is one entry).
    pub entries: usize,
    /// Bytes.
    pub bytes: usize,
}

/// The bounds on rooms; one past any of them is a `! ` line, and nothing else changes.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    /// Rooms one member may be in at once, `#lobby` included.
    pub per_member: usize,
    /// Rooms the server holds at once, `#lobby` included.
    pub rooms: usize,
    /// Members one room holds (not the lobby: the connection limit bounds that).
    pub members: usize,
    /// Largest room in which every join and leave is announced to everyone in it.
    pub announce_up_to: usize,
}

/// Everyone online and the rooms they are in.
#[derive(Debug)]
pub struct Rooms {
    state: Mutex<State>,
    outbox: OutboxLimits,
    limits: RoomLimits,
}

/// A nick's or a room's folded name ([`Nick::key`], [`RoomName::key`]), shared by every map
/// that holds it: a membership costs a pointer, not another copy of the name.
type Key = Arc<str>;

#[derive(Debug, Default)]
struct State {
    members: HashMap<MemberId, Member>,
    /// Every member by its nick's key: uniqueness in one look-up.
    by_nick: BTreeMap<Key, MemberId>,
    /// Every room by its key; `#lobby` is always there.
    rooms: BTreeMap<Key, Room>,
    next_id: MemberId,
    next_guest: u64,
    /// Guest nicks claimed across the cluster, for the next members to join, oldest first.
    guests: VecDeque<Nick>,
    closed: bool,
    /// Where membership changes are told, for the cluster's roster (cluster mode).
    mirror: Option<tokio::sync::mpsc::UnboundedSender<Change>>,
}

/// A change of who is in which room, or of a topic, as the cluster's roster is told of it
/// (see `cluster_link.rs`). Sent after the change, in the order they happen here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A member entered a room (the lobby too, on coming online).
    Entered {
        /// The room.
        room: RoomName,
        /// The member's nick.
        nick: Nick,
        /// The member (told here at once).
        member: MemberId,
    },
    /// A member left a room (parted, or went offline).
    Left {
        /// The room.
        room: RoomName,
        /// The member's nick.
        nick: Nick,
        /// Why, as the room was told.
        reason: String,
    },
    /// A member took another nick, in each of its rooms.
    Renamed {
        /// Its rooms.
        rooms: Vec<RoomName>,
        /// The nick before.
        old: Nick,
        /// The nick now.
        new: Nick,
        /// The member (told here at once).
        member: MemberId,
    },
    /// A member set a room's topic (empty: cleared).
    Topic {
        /// The room.
        room: RoomName,
        /// Who set it.
        nick: Nick,
        /// The topic.
        topic: String,
        /// Who set it (told here at once).
        member: MemberId,
    },
}

#[derive(Debug)]
struct Member {
    nick: Nick,
    /// Its nick's key.
    key: Key,
    outbox: Outbox,
    dropped: Dropped,
    /// Where it connects from, once its session says (for bans by nick).
    address: Option<IpAddr>,
    /// The keys of the rooms it is in: a few, so a list (a set would take a node per member).
    rooms: Vec<Key>,
    /// Woken when its nick's claim in the cluster is lost, for its session to rename it.
    nick_lost: Arc<Notify>,
}

impl Member {
    fn is_in(&self, room: &str) -> bool {
        self.rooms.iter().any(|key| **key == *room)
    }

    fn leave_room(&mut self, room: &str) -> bool {
        let before = self.rooms.len();
        self.rooms.retain(|key| **key != *room);
        self.rooms.len() < before
    }
}

#[derive(Debug)]
struct Room {
    key: Key,
    name: RoomName,
    /// Its members, by nick key (so `/who` is in order) and id.
    members: BTreeMap<Key, MemberId>,
    topic: Option<String>,
}

/// Who a line is for.
#[derive(Debug, Clone, Copy)]
enum To<'a> {
    /// One member.
    One(MemberId),
    /// Every member of the room with this key.
    Room(&'a str),
    /// Every member of the room but one.
    RoomBut(&'a str, MemberId),
    /// A member and everyone who shares a room with it, once each.
    Sharing(MemberId),
}

/// What a connection gets when it comes online.
#[derive(Debug)]
pub struct Joined {
    /// This member's id, for every later call.
    pub id: MemberId,
    /// The guest nick it was given.
    pub nick: Nick,
    /// Lines to write to this member's socket, in order. Closed when it leaves.
    pub outbox: OutboxReader,
    /// Set when the server lets this member go (too slow, kicked, replaced).
    pub dropped: Dropped,
    /// How full its own outbox is, without keeping it open: the session waits for room there
    /// before handling a line (see `session.rs`).
    pub own_outbox: OutboxRoom,
    /// Woken when its nick's claim in the cluster is lost ([`Rooms::nick_lost`]).
    pub nick_lost: Arc<Notify>,
}

/// How entering a room went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Joined; its display name.
    Joined(RoomName),
    /// Was in it already; its display name.
    AlreadyIn(RoomName),
}

/// Which limit refused a member a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// It is in as many rooms as one may be.
    Member(usize),
    /// The server holds as many rooms as it may.
    Server(usize),
    /// The room holds as many members as it may.
    Room(usize),
    /// The member went offline meanwhile.
    Gone,
    /// The room is not followed here yet and the cluster's engine cannot be reached to
    /// catch up with it (cluster mode).
    Unavailable,
}

impl Full {
    /// What the member is told, about `room`.
    pub fn refusal(self, room: &str) -> Refusal<'_> {
        match self {
            Self::Member(max) => Refusal::TooManyRooms { max },
            Self::Server(max) => Refusal::ServerRoomsFull { max },
            Self::Room(max) => Refusal::RoomFull { room, max },
            Self::Gone => Refusal::NoRoom,
            Self::Unavailable => Refusal::ClusterUnavailable,
        }
    }
}

/// A room as `/rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its members.
    pub online: usize,
    /// Its topic.
    pub topic: Option<String>,
}

impl From<crate::cluster::ListedRoom> for Listed {
    fn from(room: crate::cluster::ListedRoom) -> Self {
        Self {
            name: room.name,
            online: room.online,
            topic: room.topic,
        }
    }
}

fn scoped(scope: Scope<'_>, event: Event<'_>) -> Bytes {
    Scoped {
        scope,
        line: ServerLine::Event(event),
    }
    .to_bytes()
}

impl Rooms {
    /// No one online, and the lobby.
    pub fn new(outbox: OutboxLimits, limits: RoomLimits) -> Self {
        let lobby = Room {
            key: Key::from(LOBBY),
            name: RoomName::lobby(),
            members: BTreeMap::new(),
            topic: None,
        };
        let mut state = State::default();
        state.rooms.insert(lobby.key.clone(), lobby);
        Self {
            state: Mutex::new(state),
            outbox,
            limits,
        }
    }

    /// The largest room in which joins and leaves are announced.
    pub fn announce_up_to(&self) -> usize {
        self.limits.announce_up_to
    }

    /// Tells `mirror` of every membership change from now on (cluster mode).
    pub fn mirror_to(&self, mirror: tokio::sync::mpsc::UnboundedSender<Change>) {
        self.lock().mirror = Some(mirror);
    }

    /// Every room with members here, and their nicks: what the cluster's roster is rebuilt
    /// from after it could not be told of changes.
    pub fn snapshot(&self) -> Vec<(RoomName, Vec<Nick>)> {
        let state = self.lock();
        state
            .rooms
            .values()
            .filter(|room| !room.members.is_empty())
            .map(|room| {
                let nicks = room
                    .members
                    .values()
                    .filter_map(|id| state.members.get(id))
                    .map(|member| member.nick.clone())
                    .collect();
                (room.name.clone(), nicks)
            })
            .collect()
    }

    /// Takes the topic another node set for the room keyed `key` (its members here were told
    /// by the delivery), if the room is here.
    pub fn remember_topic(&self, key: &str, topic: &str) {
        if let Some(room) = self.lock().rooms.get_mut(key) {
            room.topic = (!topic.is_empty()).then(|| topic.to_owned());
        }
    }

    /// A poisoned lock means a connection task panicked mid-update; the maps are still usable
    /// and everyone else must live on, so the poison is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `nick` (a guest nick claimed across the cluster) to the next member to join, in
    /// place of one from this server's counter. Which member gets which does not matter: each
    /// session gives one before it joins, so every member of a cluster node gets a claimed one.
    pub fn give_next_guest(&self, nick: Nick) {
        self.lock().guests.push_back(nick);
    }

    /// A new connection: a fresh guest nick, its greeting, the lobby's recent history
    /// (`replay`), the lobby told. `None` once the server is shutting down.
    pub fn join(&self, replay: &[Bytes]) -> Option<Joined> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        let given = state.guests.pop_front();
        let nick = match given {
            Some(nick) if !state.by_nick.contains_key(nick.key().as_str()) => nick,
            _ => loop {
                state.next_guest += 1;
                let candidate = Nick::guest(state.next_guest);
                if !state.by_nick.contains_key(candidate.key().as_str()) {
                    break candidate;
                }
            },
        };
        let id = state.next_id;
        state.next_id += 1;
        let (tx, reader) = outbox(self.outbox.entries, self.outbox.bytes);
        let own_outbox = tx.room_view();
        let dropped = Dropped::default();
        let nick_lost = Arc::new(Notify::new());
        let key = Key::from(nick.key());
        state.by_nick.insert(key.clone(), id);
        let lobby = state.lobby_mut();
        let online = lobby.add(key.clone(), id);
        let lobby_key = lobby.key.clone();
        state.members.insert(
            id,
            Member {
                nick: nick.clone(),
                key,
                outbox: tx,
                dropped: dropped.clone(),
                address: None,
                rooms: vec![lobby_key],
                nick_lost: nick_lost.clone(),
            },
        );
        state.mirror(Change::Entered {
            room: RoomName::lobby(),
            nick: nick.clone(),
            member: id,
        });
        let greeting = Scoped::lobby(ServerLine::Event(Event::Greeting {
            nick: nick.as_str(),
            online,
        }))
        .to_bytes();
        state.deliver(To::One(id), greeting, &self.limits);
        for block in replay {
            state.deliver(To::One(id), block.clone(), &self.limits);
        }
        // In a cluster the lobby is told from the cluster's log, with the cluster's count.
        if online <= self.limits.announce_up_to && state.announces_here() {
            let joined = scoped(
                Scope::Lobby,
                Event::Joined {
                    nick: nick.as_str(),
                    online,
                },
            );
            state.deliver(To::RoomBut(LOBBY, id), joined, &self.limits);
        }
        Some(Joined {
            id,
            nick,
            outbox: reader,
            dropped,
            own_outbox,
            nick_lost,
        })
    }

    /// Puts member `id` in `room` (made if new, with `topic`: the one the cluster knows), within
    /// the limits: everyone in it is told (the member too: its client opens the room on that
    /// line), then the member gets the topic. The room's history is the caller's to send next
    /// (see `sequencer.rs`).
    pub fn enter(
        &self,
        id: MemberId,
        room: &RoomName,
        topic: Option<String>,
    ) -> Result<Entered, Full> {
        let mut state = self.lock();
        let key = room.key();
        let Some(member) = state.members.get(&id) else {
            return Err(Full::Gone);
        };
        if member.is_in(&key) {
            let name = state
                .rooms
                .get(key.as_str())
                .map_or_else(|| room.clone(), |r| r.name.clone());
            return Ok(Entered::AlreadyIn(name));
        }
        if member.rooms.len() >= self.limits.per_member {
            return Err(Full::Member(self.limits.per_member));
        }
        let (nick, nick_key) = (member.nick.clone(), member.key.clone());
        let exists = state.rooms.contains_key(key.as_str());
        if !exists && state.rooms.len() >= self.limits.rooms {
            return Err(Full::Server(self.limits.rooms));
        }
        let requested = room;
        let room_key = Key::from(key.as_str());
        let room = state.rooms.entry(room_key.clone()).or_insert_with(|| Room {
            key: room_key,
            name: requested.clone(),
            members: BTreeMap::new(),
            topic,
        });
        // The lobby holds everyone online: the connection limit bounds it.
        if room.members.len() >= self.limits.members && key != LOBBY {
            return Err(Full::Room(self.limits.members));
        }
        let online = room.add(nick_key, id);
        let (room_key, name, topic) = (room.key.clone(), room.name.clone(), room.topic.clone());
        if let Some(member) = state.members.get_mut(&id) {
            member.rooms.push(room_key);
        }
        state.mirror(Change::Entered {
            room: name.clone(),
            nick: nick.clone(),
            member: id,
        });
        let scope = Scope::room(name.as_str());
        let joined = scoped(
            scope,
            Event::Joined {
                nick: nick.as_str(),
                online,
            },
        );
        if online <= self.limits.announce_up_to && state.announces_here() {
            state.deliver(To::Room(&key), joined, &self.limits);
        } else {
            state.deliver(To::One(id), joined, &self.limits);
        }
        let topic = scoped(scope, Event::TopicIs(topic.as_deref()));
        state.deliver(To::One(id), topic, &self.limits);
        Ok(Entered::Joined(name))
    }

    /// Takes member `id` out of the room keyed `key`; everyone in it is told, the member too.
    /// Returns the room's name.
    pub fn part(&self, id: MemberId, key: &str, reason: &str) -> Option<RoomName> {
        let mut state = self.lock();
        state.part(id, key, reason, &self.limits)
    }

    /// Whether the room keyed `key` exists (someone is in it, or it is the lobby).
    pub fn exists(&self, key: &str) -> bool {
        self.lock().rooms.contains_key(key)
    }

    /// The display name of the room keyed `key`, if member `id` is in it.
    pub fn room_of(&self, id: MemberId, key: &str) -> Option<RoomName> {
        let state = self.lock();
        let member = state.members.get(&id)?;
        member
            .is_in(key)
            .then(|| state.rooms.get(key).map(|r| r.name.clone()))?
    }

    /// Some room member `id` is in, for when its current one is gone: the lobby if it is there.
    pub fn any_room_of(&self, id: MemberId) -> Option<RoomName> {
        let state = self.lock();
        let member = state.members.get(&id)?;
        let key = if member.is_in(LOBBY) {
            LOBBY
        } else {
            member.rooms.first()?
        };
        state.rooms.get(key).map(|r| r.name.clone())
    }

    /// Queues `text` for one member.
    pub fn send_to(&self, id: MemberId, text: Bytes) {
        self.lock().deliver(To::One(id), text, &self.limits);
    }

    /// Queues each of `entries`, in order, for every member of the room whose key it comes
    /// with but the member that comes with it, if one does.
    pub fn broadcast_but(&self, entries: Vec<(String, Option<MemberId>, Bytes)>) {
        let mut state = self.lock();
        for (key, but, text) in entries {
            let to = match but {
                Some(but) => To::RoomBut(&key, but),
                None => To::Room(&key),
            };
            state.deliver(to, text, &self.limits);
        }
    }

    /// Queues each of `entries`, in order, for every member of the room whose key it comes
    /// with.
    pub fn broadcast(&self, entries: Vec<(String, Bytes)>) {
        let mut state = self.lock();
        for (key, text) in entries {
            state.deliver(To::Room(&key), text, &self.limits);
        }
    }

    /// A private message from member `from` to the member called `to`: the recipient gets it
    /// under `@SENDER`, the sender its echo under `@RECIPIENT`.
    pub fn private<'t>(&self, from: MemberId, to: &'t str, text: &str) -> Result<(), Refusal<'t>> {
        let mut state = self.lock();
        let Some(&recipient) = state.by_nick.get(fold(to).as_str()) else {
            return Err(Refusal::NoSuchNick(to));
        };
        if recipient == from {
            return Err(Refusal::ToSelf);
        }
        let (Some(sender), Some(target)) =
            (state.members.get(&from), state.members.get(&recipient))
        else {
            return Err(Refusal::NoSuchNick(to));
        };
        let said = ServerLine::Message {
            nick: sender.nick.as_str(),
            text,
        };
        let received = Scoped {
            scope: Scope::Private(sender.nick.as_str()),
            line: said.clone(),
        }
        .to_bytes();
        let echo = Scoped {
            scope: Scope::Private(target.nick.as_str()),
            line: said,
        }
        .to_bytes();
        state.deliver(To::One(recipient), received, &self.limits);
        state.deliver(To::One(from), echo, &self.limits);
        Ok(())
    }

    /// Renames a member and tells it and everyone who shares a room with it, once each;
    /// refused if another member has that nick.
    pub fn rename(&self, id: MemberId, new: Nick) -> Result<(), NickError> {
        let mut state = self.lock();
        let key = Key::from(new.key());
        if state.by_nick.get(&key).is_some_and(|&owner| owner != id) {
            return Err(NickError::Taken(new.to_string()));
        }
        let Some(member) = state.members.get_mut(&id) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut member.nick, new.clone());
        if old == new {
            return Ok(());
        }
        let old_key = std::mem::replace(&mut member.key, key.clone());
        let rooms = member.rooms.clone();
        state.by_nick.remove(&old_key);
        state.by_nick.insert(key.clone(), id);
        for room in &rooms {
            if let Some(room) = state.rooms.get_mut(room) {
                room.members.remove(&old_key);
                room.members.insert(key.clone(), id);
            }
        }
        let names = rooms
            .iter()
            .filter_map(|room| state.rooms.get(room).map(|room| room.name.clone()))
            .collect();
        state.mirror(Change::Renamed {
            rooms: names,
            old: old.clone(),
            new: new.clone(),
            member: id,
        });
        let renamed = Scoped::lobby(ServerLine::Event(Event::Renamed {
            old: old.as_str(),
            new: new.as_str(),
        }))
        .to_bytes();
        let to = match state.announces_here() {
            true => To::Sharing(id),
            false => To::One(id),
        };
        state.deliver(to, renamed, &self.limits);
        Ok(())
    }

    /// The room keyed `key` as it is spelt, and who is in it, sorted without regard to case;
    /// `None` if there is no such room.
    pub fn who(&self, key: &str) -> Option<(RoomName, Vec<String>)> {
        let state = self.lock();
        let room = state.rooms.get(key)?;
        let who = room
            .members
            .values()
            .filter_map(|id| state.members.get(id))
            .map(|member| member.nick.to_string())
            .collect();
        Some((room.name.clone(), who))
    }

    /// Page `page` (from 1) of the rooms, `per_page` to a page, and how many rooms there are.
    pub fn list(&self, page: usize, per_page: usize) -> (usize, Vec<Listed>) {
        let state = self.lock();
        let listed = state
            .rooms
            .values()
            .skip(page.saturating_sub(1).saturating_mul(per_page))
            .take(per_page)
            .map(|room| Listed {
                name: room.name.to_string(),
                online: room.members.len(),
                topic: room.topic.clone(),
            })
            .collect();
        (state.rooms.len(), listed)
    }

    /// The topic of the room keyed `key`, for member `id`, who must be in it.
    pub fn topic(&self, id: MemberId, key: &str) -> Option<Option<String>> {
        let state = self.lock();
        let in_it = state.members.get(&id)?.is_in(key);
        in_it.then(|| state.rooms.get(key).and_then(|room| room.topic.clone()))
    }

    /// Sets the topic of the room keyed `key`; everyone in it is told. `false` if member `id`
    /// is not in it.
    pub fn set_topic(&self, id: MemberId, key: &str, topic: &str) -> bool {
        let mut state = self.lock();
        let Some(member) = state.members.get(&id) else {
            return false;
        };
        if !member.is_in(key) {
            return false;
        }
        let nick = member.nick.clone();
        let Some(room) = state.rooms.get_mut(key) else {
            return false;
        };
        room.topic = (!topic.is_empty()).then(|| topic.to_owned());
        let name = room.name.clone();
        state.mirror(Change::Topic {
            room: name.clone(),
            nick: nick.clone(),
            topic: topic.to_owned(),
            member: id,
        });
        let set = scoped(
            Scope::room(name.as_str()),
            Event::TopicSet {
                nick: nick.as_str(),
                topic,
            },
        );
        let to = match state.announces_here() {
            true => To::Room(key),
            false => To::One(id),
        };
        state.deliver(to, set, &self.limits);
        true
    }

    /// Takes a member offline (if it was not dropped already): each of its rooms is told why.
    /// `farewell`, if any, is queued to the member in the same step, so it is the last line it
    /// gets. Its outbox closes once drained, which ends its writer. Returns its nick.
    pub fn leave(&self, id: MemberId, reason: &str, farewell: Option<Bytes>) -> Option<Nick> {
        let mut state = self.lock();
        let member = state.members.get(&id)?;
        if let Some(farewell) = farewell {
            // A full queue means the member is not reading; it loses only this line.
            let _ = member.outbox.offer(farewell);
        }
        let member = state.remove(id, reason, &self.limits)?;
        Some(member.nick)
    }

    /// Notes where member `id` connects from.
    pub fn set_address(&self, id: MemberId, address: IpAddr) {
        if let Some(member) = self.lock().members.get_mut(&id) {
            member.address = Some(address);
        }
    }

    /// The nick of member `id`, as spelt now.
    pub fn nick_of(&self, id: MemberId) -> Option<Nick> {
        self.lock()
            .members
            .get(&id)
            .map(|member| member.nick.clone())
    }

    /// Tells the session of the member whose nick has key `key` that its claim in the cluster
    /// is lost; `false` if nobody here has that nick.
    pub fn nick_lost(&self, key: &str) -> bool {
        let state = self.lock();
        let Some(member) = state.by_nick.get(key).and_then(|id| state.members.get(id)) else {
            return false;
        };
        member.nick_lost.notify_one();
        true
    }

    /// The member whose nick has key `key`: its id, nick as spelt and address.
    pub fn find(&self, key: &str) -> Option<(MemberId, Nick, Option<IpAddr>)> {
        let state = self.lock();
        let id = *state.by_nick.get(key)?;
        let member = state.members.get(&id)?;
        Some((id, member.nick.clone(), member.address))
    }

    /// The members connected from an address `matches` accepts.
    pub fn connected_from(&self, matches: impl Fn(IpAddr) -> bool) -> Vec<MemberId> {
        let state = self.lock();
        state
            .members
            .iter()
            .filter(|(_, member)| member.address.is_some_and(&matches))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Lets member `id` go for `why`: each of its rooms is told, it gets one line saying why
    /// (its writer writes it, as for a member too slow to read), and its session ends.
    /// Returns its nick; `None` if it was gone already.
    pub fn remove(&self, id: MemberId, why: Removal) -> Option<Nick> {
        let mut state = self.lock();
        let member = state.members.get(&id)?;
        member.dropped.drop_for(why.clone());
        let member = state.remove(id, &why.reason(), &self.limits)?;
        Some(member.nick)
    }

    /// Refuses new members, tells everyone the server is going, and closes every outbox so each
    /// writer flushes what is queued and sends FIN.
    pub fn shut_down(&self) {
        let mut state = self.lock();
        state.closed = true;
        let going = Scoped::lobby(ServerLine::Event(Event::ShuttingDown)).to_bytes();
        let everyone: Vec<MemberId> = state.members.keys().copied().collect();
        for id in everyone {
            state.deliver(To::One(id), going.clone(), &self.limits);
        }
        state.members.clear();
        state.by_nick.clear();
        state.rooms.retain(|key, room| {
            room.members.clear();
            **key == *LOBBY
        });
    }
}

impl Room {
    /// Adds a member; returns how many are in the room now.
    fn add(&mut self, nick_key: Key, id: MemberId) -> usize {
        self.members.insert(nick_key, id);
        self.members.len()
    }
}

impl State {
    /// Whether this node tells a room who enters, leaves, renames and sets its topic. In a
    /// cluster the others are told from the cluster's log (so with the cluster's count, in the
    /// room's one order), and only the member itself is told here, at once.
    fn announces_here(&self) -> bool {
        self.mirror.is_none()
    }

    /// Tells the mirror of a change, if there is one (a mirror gone means the server stops).
    fn mirror(&self, change: Change) {
        if let Some(mirror) = &self.mirror {
            let _ = mirror.send(change);
        }
    }

    fn lobby_mut(&mut self) -> &mut Room {
        self.rooms
            .get_mut(LOBBY)
            .unwrap_or_else(|| unreachable!("the lobby always exists"))
    }

    /// Takes member `id` out of the room keyed `key`; tells the room (the member too).
    fn part(
        &mut self,
        id: MemberId,
        key: &str,
        reason: &str,
        limits: &RoomLimits,
    ) -> Option<RoomName> {
        let member = self.members.get_mut(&id)?;
        if !member.leave_room(key) {
            return None;
        }
        let (nick, nick_key) = (member.nick.clone(), member.key.clone());
        let room = self.rooms.get_mut(key)?;
        let announce = room.members.len() <= limits.announce_up_to;
        let change = Change::Left {
            room: room.name.clone(),
            nick: nick.clone(),
            reason: reason.to_owned(),
        };
        let name = room.name.clone();
        let online = room.members.len() - 1;
        let left = scoped(
            Scope::room(name.as_str()),
            Event::Left {
                nick: nick.as_str(),
                reason,
                online,
            },
        );
        self.mirror(change);
        // Told while still a member, so the member's own client sees it leave.
        if announce && self.announces_here() {
            self.deliver(To::Room(key), left, limits);
        } else {
            self.deliver(To::One(id), left, limits);
        }
        if let Some(room) = self.rooms.get_mut(key) {
            room.members.remove(&nick_key);
            if room.members.is_empty() && key != LOBBY {
                self.rooms.remove(key);
            }
        }
        Some(name)
    }

    /// Takes a member offline: out of every room, out of the nick index; each room it leaves
    /// behind is told why (unless it is big).
    fn remove(&mut self, id: MemberId, reason: &str, limits: &RoomLimits) -> Option<Member> {
        let (member, told) = self.remove_quietly(id, reason, limits)?;
        for (key, left) in told {
            self.deliver(To::Room(&key), left, limits);
        }
        Some(member)
    }

    /// [`State::remove`] without telling anyone yet: returns the member and, per room left
    /// behind, the line that tells it.
    fn remove_quietly(
        &mut self,
        id: MemberId,
        reason: &str,
        limits: &RoomLimits,
    ) -> Option<(Member, Vec<(Key, Bytes)>)> {
        let member = self.members.remove(&id)?;
        self.by_nick.remove(&member.key);
        let announces_here = self.announces_here();
        let mut told = Vec::new();
        for key in &member.rooms {
            let Some(room) = self.rooms.get_mut(key) else {
                continue;
            };
            room.members.remove(&member.key);
            let online = room.members.len();
            let change = Change::Left {
                room: room.name.clone(),
                nick: member.nick.clone(),
                reason: reason.to_owned(),
            };
            if let Some(mirror) = &self.mirror {
                let _ = mirror.send(change);
            }
            if room.members.is_empty() && **key != *LOBBY {
                self.rooms.remove(key);
            } else if online < limits.announce_up_to && announces_here {
                let left = scoped(
                    Scope::room(room.name.as_str()),
                    Event::Left {
                        nick: member.nick.as_str(),
                        reason,
                        online,
                    },
                );
                told.push((key.clone(), left));
            }
        }
        Some((member, told))
    }

    /// Offers `text` to the members `to` names. Members whose outbox is full are dropped and
    /// their rooms told, which may find more full outboxes: a work list, not recursion, so a
    /// thousand slow members cannot exhaust the stack.
    fn deliver(&mut self, to: To<'_>, text: Bytes, limits: &RoomLimits) {
        let mut slow = self.offer(to, &text);
        while let Some(id) = slow.pop() {
            let Some(member) = self.members.get(&id) else {
                continue;
            };
            member.dropped.drop_for(Removal::TooSlow);
            let Some((_, told)) = self.remove_quietly(id, TOO_SLOW, limits) else {
                continue;
            };
            for (key, left) in told {
                for more in self.offer(To::Room(&key), &left) {
                    if !slow.contains(&more) {
                        slow.push(more);
                    }
                }
            }
        }
    }

    /// Offers `text` to the members `to` names; returns those whose outbox was full.
    fn offer(&self, to: To<'_>, text: &Bytes) -> Vec<MemberId> {
        let mut full = Vec::new();
        let mut give = |id: MemberId| {
            if let Some(member) = self.members.get(&id)
                && member.outbox.offer(text.clone()) == Err(Refused::Full)
            {
                full.push(id);
            }
        };
        match to {
            To::One(id) => give(id),
            To::Room(key) => {
                if let Some(room) = self.rooms.get(key) {
                    room.members.values().for_each(|&id| give(id));
                }
            }
            To::RoomBut(key, but) => {
                if let Some(room) = self.rooms.get(key) {
                    room.members
                        .values()
                        .filter(|&&id| id != but)
                        .for_each(|&id| give(id));
                }
            }
            To::Sharing(id) => {
                let mut told = BTreeSet::from([id]);
                if let Some(member) = self.members.get(&id) {
                    for key in &member.rooms {
                        if let Some(room) = self.rooms.get(key) {
                            told.extend(room.members.values().copied());
                        }
                    }
                }
                told.into_iter().for_each(give);
            }
        }
        full
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn message(text: &str) -> Bytes {
        ServerLine::Message { nick: "x", text }.to_bytes()
    }

    /// Room for 8 entries, and bytes enough never to matter.
    const ROOMY: OutboxLimits = OutboxLimits {
        entries: 8,
        bytes: 1 << 20,
    };

    const UNLIMITED: RoomLimits = RoomLimits {
        per_member: usize::MAX,
        rooms: usize::MAX,
        members: usize::MAX,
        announce_up_to: usize::MAX,
    };

    fn lobby(entries: Vec<Bytes>) -> Vec<(String, Bytes)> {
        entries.into_iter().map(|e| (LOBBY.to_owned(), e)).collect()
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    /// Everything queued for `joined` now, as text.
    fn drain(joined: &mut Joined) -> Vec<String> {
        let mut batch = Vec::new();
        while let Some(1..) = joined.outbox.take(&mut batch, usize::MAX).now_or_never() {}
        batch
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn guests_are_numbered_and_greeted_and_others_hear_of_them() {
        let rooms = Rooms::new(ROOMY, UNLIMITED);
        let mut a = rooms.join(&[]).unwrap();
        let mut b = rooms.join(&[]).unwrap();
        assert_eq!(a.nick.as_str(), "guest-1");
        assert_eq!(b.nick.as_str(), "guest-2");
        assert_eq!(
            drain(&mut a),
            [
                "*** 连接成功! you are guest-1; 1 online; /help lists the commands\n",
                "*** guest-2 joined; 2 online\n"
            ]
        );
        assert_eq!(
            drain(&mut b),
            ["*** 连接成功! you are guest-2; 2 online; /help lists the commands\n"]
        );
    }

    #[test]
    fn a_guest_nick_given_is_used_before_the_counter_unless_someone_here_has_it() {
        let rooms = Rooms::new(ROOMY, UNLIMITED);
        rooms.give_next_guest(Nick::guest(41));
        assert_eq!(rooms.join(&[]).unwrap().nick.as_str(), "guest-41");
        let a = rooms.join(&[]).unwrap();
        assert_eq!(a.nick.as_str(), "guest-1", "none given: the counter");
        rooms.rename(a.id, Nick::parse("Guest-7").unwrap()).unwrap();
        rooms.give_next_guest(Nick::guest(7));
        assert_eq!(rooms.join(&[]).unwrap().nick.as_str(), "guest-2");
    }

    #[test]
    fn a_full_outbox_drops_only_that_member_and_announces_it() {
        let limits = OutboxLimits {
            entries: 2,
            ..ROOMY
        };
        let rooms = Rooms::new(limits, UNLIMITED);
        let mut reader = rooms.join(&[]).unwrap();
        let slow = rooms.join(&[]).unwrap(); // slow's queue holds its greeting: 1 of 2
        drain(&mut reader);
        rooms.broadcast(lobby(vec![message("one")])); // slow: 2 of 2
        assert!(!slow.dropped.is_dropped());
        assert_eq!(drain(&mut reader), ["<x> one\n"]);
        rooms.broadcast(lobby(vec![message("two")])); // slow: full
        assert!(slow.dropped.is_dropped());
        assert_eq!(
            drain(&mut reader),
            ["<x> two\n", "*** guest-2 left (too slow); 1 online\n"]
        );
        assert_eq!(rooms.who(LOBBY).unwrap().1, ["guest-1"]);
    }

    #[test]
    fn a_member_that_does_not_read_is_dropped_by_bytes_not_only_by_entries() {
        let limits = OutboxLimits {
            entries: 1024,
            bytes: 4096,
        };
        let rooms = Rooms::new(limits, UNLIMITED);
        let mut reader = rooms.join(&[]).unwrap();
        let asker = rooms.join(&[]).unwrap();
        drain(&mut reader);
        // Replies to the asker alone: a few big entries fill its bytes long before its entries.
        let big = Bytes::from(format!("*** online (1): {}\n", "x".repeat(1000)));
        for _ in 0..4 {
            rooms.send_to(asker.id, big.clone());
        }
        assert!(asker.dropped.is_dropped());
        assert_eq!(
            drain(&mut reader),
            ["*** guest-2 left (too slow); 1 online\n"]
        );
    }

    #[test]
    fn nicks_are_unique_without_regard_to_case() {
        let rooms = Rooms::new(ROOMY, UNLIMITED);
        let a = rooms.join(&[]).unwrap();
        let b = rooms.join(&[]).unwrap();
        rooms.rename(a.id, Nick::parse("Alice").unwrap()).unwrap();
        assert_eq!(
            rooms.rename(b.id, Nick::parse("aLiCe").unwrap()),
            Err(NickError::Taken("aLiCe".into()))
        );
        // Changing the case of one's own nick is allowed.
        rooms.rename(a.id, Nick::parse("ALICE").unwrap()).unwrap();
        assert_eq!(rooms.who(LOBBY).unwrap().1, ["ALICE", "guest-2"]);
    }

    #[test]
    fn a_big_room_does_not_hear_every_join_and_leave() {
        let rooms = Rooms::new(
            ROOMY,
            RoomLimits {
                announce_up_to: 2,
                ..UNLIMITED
            },
        );
        let mut a = rooms.join(&[]).unwrap();
        let b = rooms.join(&[]).unwrap();
        let c = rooms.join(&[]).unwrap();
        rooms.leave(c.id, "exit", None);
        rooms.leave(b.id, "exit", None);
        assert_eq!(
            drain(&mut a)[1..],
            [
                "*** guest-2 joined; 2 online\n",
                "*** guest-2 left (exit); 1 online\n"
            ]
        );
    }

    #[test]
    fn after_shutdown_nobody_can_join() {
        let rooms = Rooms::new(ROOMY, UNLIMITED);
        let mut a = rooms.join(&[]).unwrap();
        rooms.shut_down();
        assert!(rooms.join(&[]).is_none());
        assert_eq!(drain(&mut a).last().unwrap(), "*** server shutting down\n");
        // Nothing kept a sender: the outbox is closed once drained.
        let closed = a.outbox.take(&mut Vec::new(), 1).now_or_never();
        assert_eq!(closed, Some(0));
    }

    #[test]
    fn a_room_hears_its_own_lines_only_and_goes_when_its_last_member_parts() {
        let rooms = Rooms::new(ROOMY, UNLIMITED);
        let mut a = rooms.join(&[]).unwrap();
        let mut b = rooms.join(&[]).unwrap();
        assert_eq!(
            rooms.enter(a.id, &room("#Rust"), None),
            Ok(Entered::Joined(room("#Rust")))
        );
        // Names are compared without case; the first spelling stays.
        assert_eq!(
            rooms.enter(a.id, &room("#rust"), None),
            Ok(Entered::AlreadyIn(room("#Rust")))
        );
        drain(&mut a);
        drain(&mut b);
        let line = Scoped {
            scope: Scope::Room("#Rust"),
            line: ServerLine::Message {
                nick: "guest-1",
                text: "hi",
            },
        };
        rooms.broadcast(vec![("#rust".to_owned(), line.to_bytes())]);
        assert_eq!(drain(&mut a), ["#Rust <guest-1> hi\n"]);
        assert!(drain(&mut b).is_empty(), "b is not in #Rust");
        assert_eq!(rooms.list(1, 10).0, 2);
        assert_eq!(rooms.part(a.id, "#rust", "part"), Some(room("#Rust")));
        assert_eq!(drain(&mut a), ["#Rust *** guest-1 left (part); 0 online\n"]);
        assert_eq!(rooms.list(1, 10).0, 1, "an empty room goes");
        assert!(rooms.who("#rust").is_none());
    }

    #[test]
    fn each_limit_refuses_one_more_and_changes_nothing() {
        let rooms = Rooms::new(
            ROOMY,
            RoomLimits {
                per_member: 2,
                rooms: 3,
                members: 1,
                announce_up_to: usize::MAX,
            },
        );
        let a = rooms.join(&[]).unwrap();
        let b = rooms.join(&[]).unwrap();
        rooms.enter(a.id, &room("#a"), None).unwrap();
        assert_eq!(rooms.enter(a.id, &room("#b"), None), Err(Full::Member(2)));
        assert_eq!(rooms.enter(b.id, &room("#a"), None), Err(Full::Room(1)));
        rooms.enter(b.id, &room("#b"), None).unwrap();
        let c = rooms.join(&[]).unwrap();
        assert_eq!(rooms.enter(c.id, &room("#c"), None), Err(Full::Server(3)));
        assert_eq!(rooms.list(1, 10).0, 3);
        // The lobby is bounded by the connection limit, not by members per room.
        assert_eq!(rooms.who(LOBBY).unwrap().1.len(), 3);
    }

    #[test]
    fn a_private_message_reaches_its_recipient_and_the_senders_echo_only() {
        let rooms = Rooms::new(ROOMY, UNLIMITED);
        let mut a = rooms.join(&[]).unwrap();
        let mut b = rooms.join(&[]).unwrap();
        let mut c = rooms.join(&[]).unwrap();
        for member in [&mut a, &mut b, &mut c] {
            drain(member);
        }
        rooms.private(a.id, "GUEST-2", "psst").unwrap();
        assert_eq!(drain(&mut a), ["@guest-2 <guest-1> psst\n"]);
        assert_eq!(drain(&mut b), ["@guest-1 <guest-1> psst\n"]);
        assert!(drain(&mut c).is_empty());
        assert_eq!(rooms.private(a.id, "guest-1", "me"), Err(Refusal::ToSelf));
        assert_eq!(
            rooms.private(a.id, "nobody", "x"),
            Err(Refusal::NoSuchNick("nobody"))
        );
    }

    #[test]
    fn a_rename_is_told_once_to_everyone_who_shares_a_room() {
        let rooms = Rooms::new(
            OutboxLimits {
                entries: 64,
                ..ROOMY
            },
            UNLIMITED,
        );
        let mut a = rooms.join(&[]).unwrap();
        let mut b = rooms.join(&[]).unwrap();
        let mut c = rooms.join(&[]).unwrap();
        for name in ["#one", "#two", "#three"] {
            rooms.enter(a.id, &room(name), None).unwrap();
            rooms.enter(b.id, &room(name), None).unwrap();
        }
        rooms.part(c.id, LOBBY, "part");
        for member in [&mut a, &mut b, &mut c] {
            drain(member);
        }
        rooms.rename(a.id, Nick::parse("alice").unwrap()).unwrap();
        let renamed = ["*** guest-1 is now known as alice\n"];
        assert_eq!(drain(&mut a), renamed);
        assert_eq!(drain(&mut b), renamed, "once, though b shares four rooms");
        assert!(drain(&mut c).is_empty(), "c shares no room with a");
    }

    #[test]
    fn a_slow_member_is_dropped_from_every_room_and_each_is_told() {
        let limits = OutboxLimits {
            entries: 3,
            ..ROOMY
        };
        let rooms = Rooms::new(limits, UNLIMITED);
        let mut a = rooms.join(&[]).unwrap();
        let slow = rooms.join(&[]).unwrap(); // slow: its greeting
        drain(&mut a);
        rooms.enter(a.id, &room("#x"), None).unwrap();
        drain(&mut a);
        rooms.enter(slow.id, &room("#x"), None).unwrap(); // slow: joined, topic: full
        drain(&mut a);
        rooms.broadcast(vec![("#x".to_owned(), message("one"))]);
        assert!(slow.dropped.is_dropped());
        assert_eq!(
            drain(&mut a),
            [
                "<x> one\n",
                "*** guest-2 left (too slow); 1 online\n",
                "#x *** guest-2 left (too slow); 1 online\n"
            ]
        );
        assert_eq!(rooms.who(LOBBY).unwrap().1, ["guest-1"]);
    }
}
