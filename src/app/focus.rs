//! Which buffer is on screen: going to one, opening and closing them, and keeping the server
//! talking in the room on screen (a `/switch` whenever it may be talking elsewhere); and the
//! terminal title's unread count, which changes as buffers are read.

use super::buffers::{self, Target};
use super::{App, Conn, Effect};
use crate::net::Outgoing;
use crate::protocol::{Command, Framing};
use crate::scrollback::Scrollback;

impl App {
    /// Whether a line may be sent now: connected, in the chat protocol.
    pub(super) fn chatting(&self) -> bool {
        self.conn == Conn::Connected && self.settings.framing == Framing::Lines
    }

    /// Puts buffer `index` on screen (see [`Buffers::focus`]) and, if it is a room, makes the
    /// server talk there.
    pub(super) fn go_to(&mut self, index: usize) -> Vec<Effect> {
        if !self.buffers.focus(index, &mut self.scrollback) {
            return Vec::new();
        }
        self.dirty = true;
        self.scrollback.set_width(self.width);
        let key = self.buffers.current().key().to_owned();
        self.joining.retain(|joining| *joining != key);
        self.talk_here()
    }

    /// `/switch` to the room on screen unless the server already talks there (as far as the
    /// lines sent so far say). One TCP stream keeps the order: the switch arrives before
    /// whatever is typed next.
    pub(super) fn talk_here(&mut self) -> Vec<Effect> {
        let Some(room) = self.buffers.current().room().map(str::to_owned) else {
            return Vec::new();
        };
        let key = buffers::room_key(&room);
        if !self.chatting() || self.talking_in.as_deref() == Some(key.as_str()) {
            return Vec::new();
        }
        self.talking_in = Some(key);
        vec![Effect::Send(Outgoing::Line(
            Command::Switch(&room).to_string(),
        ))]
    }

    /// The buffer for a room or a private conversation, opened (not shown) if it is not yet;
    /// `None` if no more buffers may be open.
    pub(super) fn open_buffer(&mut self, target: Target, name: &str) -> Option<usize> {
        let key = match target {
            Target::Room => buffers::room_key(name),
            Target::Private => buffers::private_key(name),
        };
        if let Some(index) = self.buffers.find(&key) {
            return Some(index);
        }
        let mut lines = Scrollback::new(self.settings.scrollback);
        lines.set_width(self.width);
        let shown = match target {
            Target::Room => name.to_owned(),
            Target::Private => format!("@{name}"),
        };
        self.dirty = true;
        self.buffers.open(target, shown, lines)
    }

    /// Closes buffer `index`; the lobby goes on screen if it was on screen.
    pub(super) fn close_buffer(&mut self, index: usize) -> Vec<Effect> {
        let shown = index == self.buffers.current_index();
        self.buffers.close(index, &mut self.scrollback);
        self.dirty = true;
        if shown {
            self.scrollback.set_width(self.width);
            return self.talk_here();
        }
        Vec::new()
    }

    /// The terminal title's effect, if the unread total changed since it was last shown.
    pub(super) fn retitle(&mut self) -> Option<Effect> {
        let unread = self.buffers.total_unread();
        (unread != self.titled).then(|| {
            self.titled = unread;
            Effect::Title { unread }
        })
    }
}
