//! The buffers: one per room and one per private conversation, as irssi's windows and
//! weechat's buffers are. Each keeps its own lines (and so its own scroll position), its own
//! line numbering for what was missed while away, how many people are in it, and what arrived
//! while it was not on screen: an unread count, a mention count and the unread marker. Buffer
//! 0 is `#lobby` and always exists. State only; `ui::buffer_bar` draws the list.
//!
//! Where a line goes is decided by [`place`]: a line names its room or conversation (see
//! [`crate::protocol::Scope`]), lobby lines have no prefix, and the replies that are about no
//! room (errors, notices, the room list, renames) go to the buffer on screen.

use crate::names::fold;
use crate::protocol::{Event, LOBBY, Scope, ServerLine};
use crate::scrollback::Scrollback;

use super::numbering::Numbering;

/// Most buffers open at once: more than the rooms a server lets one client be in (50 by
/// default) plus private conversations. A private message that would open one more is shown,
/// with its `@nick`, in the buffer on screen; each buffer's lines are bounded by its
/// [`Scrollback`].
pub const MAX_BUFFERS: usize = 100;

/// What a buffer is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A room (`#lobby` included).
    Room,
    /// A private conversation.
    Private,
}

/// One room or private conversation.
#[derive(Debug)]
pub struct Buffer {
    /// A room or a private conversation.
    pub target: Target,
    /// Its name as shown: the room's (`#rust`) or `@` and the other party's nick (`@bob`).
    pub name: String,
    /// The name as names are compared (see [`fold`]).
    key: String,
    /// Its lines, while it is not on screen (the screen's buffer lends them to the app).
    lines: Scrollback,
    /// Messages and actions from others that arrived while it was not on screen.
    pub unread: usize,
    /// Of those, the ones that named us (every one, in a private buffer).
    pub mentions: usize,
    /// People in the room, as its last join, leave or `/who` said.
    pub online: Option<usize>,
    /// The number of the first line that arrived after it was last left (see
    /// [`Scrollback::end`]): the unread marker goes before that line. `None` before it was
    /// ever left; one marker per buffer, moved each time it is left.
    pub marker: Option<u64>,
    /// Its room's line numbers, for what was missed while away.
    pub(super) numbering: Numbering,
}

impl Buffer {
    fn new(target: Target, name: String, lines: Scrollback) -> Self {
        Self {
            target,
            key: fold(&name),
            name,
            lines,
            unread: 0,
            mentions: 0,
            online: None,
            marker: None,
            numbering: Numbering::default(),
        }
    }

    /// The room's name, for a room's buffer.
    pub fn room(&self) -> Option<&str> {
        (self.target == Target::Room).then_some(self.name.as_str())
    }

    /// The other party's nick, for a private buffer.
    pub fn peer(&self) -> Option<&str> {
        match self.target {
            Target::Private => self.name.strip_prefix('@'),
            Target::Room => None,
        }
    }

    /// The key it is found by (see [`room_key`], [`private_key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether this is `#lobby`'s buffer.
    pub fn is_lobby(&self) -> bool {
        self.key == LOBBY
    }
}

/// The key a room's buffer is found by.
pub fn room_key(room: &str) -> String {
    fold(room)
}

/// The key a private buffer is found by.
pub fn private_key(nick: &str) -> String {
    fold(&format!("@{nick}"))
}

/// Every buffer, and which is on screen.
#[derive(Debug)]
pub struct Buffers {
    list: Vec<Buffer>,
    current: usize,
}

/// Where a line from the server goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    /// `#lobby`'s buffer.
    Lobby,
    /// A room's buffer.
    Room(&'a str),
    /// The private buffer with this nick.
    Private(&'a str),
    /// The buffer on screen: a reply about no room.
    Current,
}

/// Where `line`, read with `scope`, goes. Lobby lines have no prefix, and neither have the
/// replies that are about no room, which go where the user is looking.
pub fn place<'a>(scope: Scope<'a>, line: &ServerLine<'_>) -> Place<'a> {
    match scope {
        Scope::Room(room) => Place::Room(room),
        Scope::Private(nick) => Place::Private(nick),
        Scope::Lobby => match line {
            ServerLine::Error(_)
            | ServerLine::Event(
                Event::Notice(_)
                | Event::Rooms { .. }
                | Event::RoomInfo { .. }
                | Event::Renamed { .. }
                | Event::Talking { .. }
                | Event::Bye { .. }
                | Event::ShuttingDown,
            ) => Place::Current,
            _ => Place::Lobby,
        },
    }
}

impl Buffers {
    /// Only `#lobby`, on screen; its lines are the screen's (see [`Buffers::lines_mut`]).
    pub fn new() -> Self {
        Self {
            list: vec![Buffer::new(
                Target::Room,
                LOBBY.to_owned(),
                Scrollback::new(1),
            )],
            current: 0,
        }
    }

    /// How many buffers are open (at least the lobby's).
    pub fn count(&self) -> usize {
        self.list.len()
    }

    /// Every buffer, in the bar's order.
    pub fn iter(&self) -> impl Iterator<Item = &Buffer> {
        self.list.iter()
    }

    /// The index of the buffer on screen.
    pub fn current_index(&self) -> usize {
        self.current
    }

    /// The buffer on screen.
    pub fn current(&self) -> &Buffer {
        &self.list[self.current]
    }

    /// Buffer `index`.
    pub fn get(&self, index: usize) -> Option<&Buffer> {
        self.list.get(index)
    }

    pub(super) fn get_mut(&mut self, index: usize) -> &mut Buffer {
        &mut self.list[index]
    }

    /// The buffer whose key is `key`.
    pub fn find(&self, key: &str) -> Option<usize> {
        self.list.iter().position(|buffer| buffer.key == key)
    }

    /// Every buffer's unread count, added up.
    pub fn total_unread(&self) -> usize {
        self.list.iter().map(|buffer| buffer.unread).sum()
    }

    /// Opens a buffer at the end of the list, with `lines` (an empty scrollback); its index, or
    /// `None` when [`MAX_BUFFERS`] are open.
    pub(super) fn open(
        &mut self,
        target: Target,
        name: String,
        lines: Scrollback,
    ) -> Option<usize> {
        if self.list.len() >= MAX_BUFFERS {
            return None;
        }
        self.list.push(Buffer::new(target, name, lines));
        Some(self.list.len() - 1)
    }

    /// The lines of buffer `index`: `screen` (the lines on screen) if it is the current one.
    pub(super) fn lines_mut<'a>(
        &'a mut self,
        index: usize,
        screen: &'a mut Scrollback,
    ) -> &'a mut Scrollback {
        if index == self.current {
            screen
        } else {
            &mut self.list[index].lines
        }
    }

    /// Puts buffer `to` on screen: the lines on screen (`screen`) go back to the buffer being
    /// left, whose unread marker moves to its end, and `to`'s lines take their place; `to`'s
    /// unread and mention counts are read. Whether anything changed.
    pub(super) fn focus(&mut self, to: usize, screen: &mut Scrollback) -> bool {
        if to >= self.list.len() || to == self.current {
            return false;
        }
        let left = &mut self.list[self.current];
        std::mem::swap(&mut left.lines, screen);
        left.marker = Some(left.lines.end());
        self.current = to;
        let shown = &mut self.list[to];
        std::mem::swap(&mut shown.lines, screen);
        shown.unread = 0;
        shown.mentions = 0;
        true
    }

    /// Closes buffer `index` (never the lobby's); the lobby goes on screen if it was.
    pub(super) fn close(&mut self, index: usize, screen: &mut Scrollback) {
        if index == 0 || index >= self.list.len() {
            return;
        }
        if index == self.current {
            self.focus(0, screen);
        }
        self.list.remove(index);
        if self.current > index {
            self.current -= 1;
        }
    }

    /// The private buffer with `old` becomes the one with `new` (a rename), unless one with
    /// `new` is open already. Its index, if it was renamed.
    pub(super) fn rename_private(&mut self, old: &str, new: &str) -> Option<usize> {
        let index = self.find(&private_key(old))?;
        if self.find(&private_key(new)).is_some() {
            return None;
        }
        let buffer = &mut self.list[index];
        buffer.name = format!("@{new}");
        buffer.key = private_key(new);
        Some(index)
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    use crate::scrollback::Kind;

    fn push(lines: &mut Scrollback, text: &str) {
        lines.push(text, Kind::Plain, NaiveTime::MIN);
    }

    #[test]
    fn each_buffer_keeps_its_own_lines_and_the_screen_shows_the_current_ones() {
        let mut screen = Scrollback::new(10);
        let mut buffers = Buffers::new();
        push(&mut screen, "in the lobby");
        let rust = buffers
            .open(Target::Room, "#rust".into(), Scrollback::new(10))
            .unwrap();
        push(buffers.lines_mut(rust, &mut screen), "in rust");
        assert!(buffers.focus(rust, &mut screen));
        assert_eq!(&*screen.entries().next().unwrap().text, "in rust");
        assert!(!buffers.focus(rust, &mut screen), "already there");
        push(buffers.lines_mut(0, &mut screen), "lobby, while away");
        buffers.focus(0, &mut screen);
        let texts: Vec<&str> = screen.entries().map(|e| &*e.text).collect();
        assert_eq!(texts, ["in the lobby", "lobby, while away"]);
        let marker = buffers.get(0).unwrap().marker;
        assert_eq!(
            marker.and_then(|n| screen.get(n)).map(|e| &*e.text),
            Some("lobby, while away")
        );
    }

    #[test]
    fn closing_the_current_buffer_shows_the_lobby_and_keeps_indices_right() {
        let mut screen = Scrollback::new(10);
        let mut buffers = Buffers::new();
        let a = buffers
            .open(Target::Room, "#a".into(), Scrollback::new(10))
            .unwrap();
        let b = buffers
            .open(Target::Private, "@bob".into(), Scrollback::new(10))
            .unwrap();
        buffers.focus(b, &mut screen);
        buffers.close(a, &mut screen);
        assert_eq!(buffers.current().name, "@bob");
        assert_eq!(buffers.current_index(), 1);
        buffers.close(1, &mut screen);
        assert_eq!(buffers.current_index(), 0);
        assert!(buffers.current().is_lobby());
        buffers.close(0, &mut screen);
        assert_eq!(buffers.count(), 1, "the lobby's stays");
    }

    #[test]
    fn buffers_are_found_without_regard_to_case_and_bounded() {
        let mut buffers = Buffers::new();
        buffers.open(Target::Room, "#Rust".into(), Scrollback::new(1));
        buffers.open(Target::Private, "@Bob".into(), Scrollback::new(1));
        assert_eq!(buffers.find(&room_key("#rUST")), Some(1));
        assert_eq!(buffers.find(&private_key("BOB")), Some(2));
        assert_eq!(buffers.find(&room_key("#lobby")), Some(0));
        assert_eq!(buffers.rename_private("bob", "robert"), Some(2));
        assert_eq!(buffers.get(2).unwrap().peer(), Some("robert"));
        assert_eq!(buffers.find(&private_key("bob")), None);
        while buffers.count() < MAX_BUFFERS {
            let n = buffers.count();
            assert!(
                buffers
                    .open(Target::Room, format!("#r{n}"), Scrollback::new(1))
                    .is_some()
            );
        }
        assert_eq!(
            buffers.open(Target::Room, "#more".into(), Scrollback::new(1)),
            None
        );
    }

    #[test]
    fn lines_go_to_their_room_the_lobby_or_the_screen() {
        let cases = [
            ("#rust <a> hi", Place::Room("#rust")),
            ("@bob <bob> psst", Place::Private("bob")),
            ("<a> hi", Place::Lobby),
            ("* a waves", Place::Lobby),
            ("[2026-11-30 10:01:02Z #7] <a> hi", Place::Lobby),
            ("*** a joined; 2 online", Place::Lobby),
            ("*** a left (exit); 1 online", Place::Lobby),
            (
                "*** history of #lobby: 2 lines; the next line is #8",
                Place::Lobby,
            ),
            ("*** the topic is: x", Place::Lobby),
            ("*** online (1): a", Place::Lobby),
            ("! no", Place::Current),
            ("*** commands:", Place::Current),
            ("*** rooms: 2; page 1 of 1", Place::Current),
            ("*** #rust: 2 online", Place::Current),
            ("*** a is now known as b", Place::Current),
            ("*** now talking in #rust", Place::Current),
            ("*** server shutting down", Place::Current),
        ];
        for (text, want) in cases {
            let scoped = crate::protocol::Scoped::parse(text).unwrap();
            assert_eq!(place(scoped.scope, &scoped.line), want, "{text}");
        }
    }
}
