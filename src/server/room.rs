//! The chat room: who is online, their nicks, and delivery into each member's outbox.
//!
//! The room is a plain `std::sync::Mutex` around a map (as in mini-redis's `db.rs`): every
//! operation is short, never awaits, and needs one consistent view (a broadcast must reach every
//! member in the same order). Delivery is `try_send` into each member's bounded outbox; a member
//! whose outbox is full is removed on the spot, its connection told to stop, and the others are
//! told it left `(too slow)`. Nobody ever waits for a slow member.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::outbox::{Outbox, OutboxReader, OutboxRoom, Refused, outbox};
use crate::names::{Nick, NickError};
use crate::protocol::{Event, ServerLine};

/// The reason given when the room drops a member whose outbox is full.
pub const TOO_SLOW: &str = "too slow";

/// Identifies one connection in the room for its lifetime.
pub type MemberId = u64;

/// How much each member's outbox may hold.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    /// Entries (a burst of lines from one read is one entry).
    pub entries: usize,
    /// Bytes.
    pub bytes: usize,
}

/// The room shared by every chat connection.
#[derive(Debug)]
pub struct Room {
    state: Mutex<State>,
    outbox: OutboxLimits,
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<MemberId, Member>,
    /// Every member by [`Nick::key`]: uniqueness in one look-up, `/who` already in order.
    by_key: BTreeMap<String, MemberId>,
    next_id: MemberId,
    next_guest: u64,
    closed: bool,
    announce_up_to: usize,
}

#[derive(Debug)]
struct Member {
    nick: Nick,
    outbox: Outbox,
    dropped: CancellationToken,
}

/// Who a line is for.
#[derive(Debug, Clone, Copy)]
enum To {
    /// One member.
    One(MemberId),
    /// Everyone but one member.
    AllBut(MemberId),
    /// Everyone.
    All,
}

/// What a connection gets when it joins.
#[derive(Debug)]
pub struct Joined {
    /// This member's id, for every later call.
    pub id: MemberId,
    /// The guest nick it was given.
    pub nick: Nick,
    /// Lines to write to this member's socket, in order. Closed when it leaves the room.
    pub outbox: OutboxReader,
    /// Cancelled when the room drops this member as too slow.
    pub dropped: CancellationToken,
    /// How full its own outbox is, without keeping it open: the session waits for room there
    /// before handling a line (see `session.rs`).
    pub own_outbox: OutboxRoom,
}

fn event(event: Event<'_>) -> Bytes {
    ServerLine::Event(event).to_bytes()
}

impl Room {
    /// An empty room whose members' outboxes hold at most `outbox`, and which announces joins
    /// and leaves only while it has at most `announce_up_to` members (see
    /// [`super::DEFAULT_ANNOUNCE_UP_TO`]).
    pub fn new(outbox: OutboxLimits, announce_up_to: usize) -> Self {
        Self {
            state: Mutex::new(State {
                announce_up_to,
                ..State::default()
            }),
            outbox,
        }
    }

    /// A poisoned lock means a connection task panicked mid-update; the map is still usable and
    /// the rest of the room must live on, so the poison is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a member with a fresh guest nick, greets it, queues `replay` (the room's recent
    /// history) after the greeting and tells the others. `None` once the server is shutting
    /// down.
    pub fn join(&self, replay: &[Bytes]) -> Option<Joined> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        let nick = loop {
            state.next_guest += 1;
            let candidate = Nick::guest(state.next_guest);
            if !state.by_key.contains_key(&candidate.key()) {
                break candidate;
            }
        };
        let id = state.next_id;
        state.next_id += 1;
        let (tx, reader) = outbox(self.outbox.entries, self.outbox.bytes);
        let own_outbox = tx.room_view();
        let dropped = CancellationToken::new();
        state.by_key.insert(nick.key(), id);
        state.members.insert(
            id,
            Member {
                nick: nick.clone(),
                outbox: tx,
                dropped: dropped.clone(),
            },
        );
        let online = state.members.len();
        let nick_str = nick.as_str();
        let greeting = event(Event::Greeting {
            nick: nick_str,
            online,
        });
        state.deliver(To::One(id), greeting);
        for block in replay {
            state.deliver(To::One(id), block.clone());
        }
        if online <= state.announce_up_to {
            let joined = event(Event::Joined {
                nick: nick_str,
                online,
            });
            state.deliver(To::AllBut(id), joined);
        }
        Some(Joined {
            id,
            nick,
            outbox: reader,
            dropped,
            own_outbox,
        })
    }

    /// Queues `text` for one member.
    pub fn send_to(&self, id: MemberId, text: Bytes) {
        self.lock().deliver(To::One(id), text);
    }

    /// Queues each of `entries`, in order, for every member.
    pub fn broadcast_each(&self, entries: Vec<Bytes>) {
        let mut state = self.lock();
        for text in entries {
            state.deliver(To::All, text);
        }
    }

    /// Renames a member and tells everyone; refused if another member has that nick.
    pub fn rename(&self, id: MemberId, new: Nick) -> Result<(), NickError> {
        let mut state = self.lock();
        let key = new.key();
        if state.by_key.get(&key).is_some_and(|&owner| owner != id) {
            return Err(NickError::Taken(new.to_string()));
        }
        let Some(member) = state.members.get_mut(&id) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut member.nick, new.clone());
        if old != new {
            state.by_key.remove(&old.key());
            state.by_key.insert(key, id);
            let renamed = event(Event::Renamed {
                old: old.as_str(),
                new: new.as_str(),
            });
            state.deliver(To::All, renamed);
        }
        Ok(())
    }

    /// Everyone online, sorted without regard to case.
    pub fn who(&self) -> Vec<String> {
        let state = self.lock();
        state
            .by_key
            .values()
            .filter_map(|id| state.members.get(id))
            .map(|member| member.nick.to_string())
            .collect()
    }

    /// Removes a member (if the room has not already dropped it) and tells the others why.
    /// `farewell`, if any, is queued to the member in the same step, so it is the last line the
    /// member gets: nothing broadcast meanwhile can slip in after it. Its outbox closes once
    /// drained, which ends its writer. Returns its nick if it was still in the room.
    pub fn leave(&self, id: MemberId, reason: &str, farewell: Option<Bytes>) -> Option<Nick> {
        let mut state = self.lock();
        let member = state.remove(id)?;
        if let Some(farewell) = farewell {
            // A full queue means the member is not reading; it loses only this line.
            let _ = member.outbox.offer(farewell);
        }
        let online = state.members.len();
        if online < state.announce_up_to {
            let left = event(Event::Left {
                nick: member.nick.as_str(),
                reason,
                online,
            });
            state.deliver(To::All, left);
        }
        Some(member.nick)
    }

    /// Refuses new members, tells everyone the server is going, and closes every outbox so each
    /// writer flushes what is queued and sends FIN.
    pub fn shut_down(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.deliver(To::All, event(Event::ShuttingDown));
        state.members.clear();
        state.by_key.clear();
    }
}

impl State {
    fn remove(&mut self, id: MemberId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.by_key.remove(&member.nick.key());
        Some(member)
    }

    /// Offers `text` to the members `to` names; members whose outbox is full are dropped and
    /// announced, which may in turn find more full outboxes.
    fn deliver(&mut self, to: To, text: Bytes) {
        let mut slow = self.offer(to, &text);
        while let Some(id) = slow.pop() {
            let Some(member) = self.remove(id) else {
                continue;
            };
            member.dropped.cancel();
            let online = self.members.len();
            if online >= self.announce_up_to {
                continue;
            }
            let notice = event(Event::Left {
                nick: member.nick.as_str(),
                reason: TOO_SLOW,
                online,
            });
            for more in self.offer(To::All, &notice) {
                if !slow.contains(&more) {
                    slow.push(more);
                }
            }
        }
    }

    /// Offers `text` to the members `to` names; returns those whose outbox was full.
    fn offer(&self, to: To, text: &Bytes) -> Vec<MemberId> {
        let full = |(&id, member): (&MemberId, &Member)| {
            (member.outbox.offer(text.clone()) == Err(Refused::Full)).then_some(id)
        };
        match to {
            To::One(id) => self
                .members
                .get_key_value(&id)
                .and_then(full)
                .into_iter()
                .collect(),
            To::AllBut(but) => self
                .members
                .iter()
                .filter(|&(&id, _)| id != but)
                .filter_map(full)
                .collect(),
            To::All => self.members.iter().filter_map(full).collect(),
        }
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
        let room = Room::new(ROOMY, usize::MAX);
        let mut a = room.join(&[]).unwrap();
        let mut b = room.join(&[]).unwrap();
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
    fn a_full_outbox_drops_only_that_member_and_announces_it() {
        let room = Room::new(
            OutboxLimits {
                entries: 2,
                ..ROOMY
            },
            usize::MAX,
        );
        let mut reader = room.join(&[]).unwrap();
        let slow = room.join(&[]).unwrap(); // slow's queue holds its greeting: 1 of 2
        drain(&mut reader);
        room.broadcast_each(vec![message("one")]); // slow: 2 of 2
        assert!(!slow.dropped.is_cancelled());
        assert_eq!(drain(&mut reader), ["<x> one\n"]);
        room.broadcast_each(vec![message("two")]); // slow: full
        assert!(slow.dropped.is_cancelled());
        assert_eq!(
            drain(&mut reader),
            ["<x> two\n", "*** guest-2 left (too slow); 1 online\n"]
        );
        assert_eq!(room.who(), ["guest-1"]);
    }

    #[test]
    fn a_member_that_does_not_read_is_dropped_by_bytes_not_only_by_entries() {
        let room = Room::new(
            OutboxLimits {
                entries: 1024,
                bytes: 4096,
            },
            usize::MAX,
        );
        let mut reader = room.join(&[]).unwrap();
        let asker = room.join(&[]).unwrap();
        drain(&mut reader);
        // Replies to the asker alone: a few big entries fill its bytes long before its entries.
        let big = Bytes::from(format!("*** online (1): {}\n", "x".repeat(1000)));
        for _ in 0..4 {
            room.send_to(asker.id, big.clone());
        }
        assert!(asker.dropped.is_cancelled());
        assert_eq!(
            drain(&mut reader),
            ["*** guest-2 left (too slow); 1 online\n"]
        );
    }

    #[test]
    fn nicks_are_unique_without_regard_to_case() {
        let room = Room::new(ROOMY, usize::MAX);
        let a = room.join(&[]).unwrap();
        let b = room.join(&[]).unwrap();
        room.rename(a.id, Nick::parse("Alice").unwrap()).unwrap();
        assert_eq!(
            room.rename(b.id, Nick::parse("aLiCe").unwrap()),
            Err(NickError::Taken("aLiCe".into()))
        );
        // Changing the case of one's own nick is allowed.
        room.rename(a.id, Nick::parse("ALICE").unwrap()).unwrap();
        assert_eq!(room.who(), ["ALICE", "guest-2"]);
    }

    #[test]
    fn a_big_room_does_not_hear_every_join_and_leave() {
        let room = Room::new(ROOMY, 2);
        let mut a = room.join(&[]).unwrap();
        let b = room.join(&[]).unwrap();
        let c = room.join(&[]).unwrap();
        room.leave(c.id, "exit", None);
        room.leave(b.id, "exit", None);
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
        let room = Room::new(ROOMY, usize::MAX);
        let mut a = room.join(&[]).unwrap();
        room.shut_down();
        assert!(room.join(&[]).is_none());
        assert_eq!(drain(&mut a).last().unwrap(), "*** server shutting down\n");
        // The room kept no sender: the outbox is closed once drained.
        let closed = a.outbox.take(&mut Vec::new(), 1).now_or_never();
        assert_eq!(closed, Some(0));
    }
}
