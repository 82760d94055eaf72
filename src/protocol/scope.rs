//! Where a line belongs. A line about the lobby has no prefix, exactly as a client that never
//! leaves `#lobby` has always read it; a line about another room starts with the room's name,
//! `#rust <alice> hi`; a line of a private conversation starts with `@` and the other party's
//! nick, `@bob <alice> hi` (what alice said to bob, as both of them get it).
//!
//! No user-caused line starts with `#` or `@` (a user's line starts with `<` or `* `), nicks
//! cannot start with either, and neither name holds a space: so the scope is read off the front
//! of a line before anything else, and cannot be forged any more than an event can.

use std::fmt;

use super::ServerLine;
use crate::names::{Nick, RoomName};

/// Where a line belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// `#lobby`: no prefix.
    Lobby,
    /// Another room, by its name (`#rust`).
    Room(&'a str),
    /// A private conversation, by the other party's nick.
    Private(&'a str),
}

/// A line and where it belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoped<'a> {
    /// Where it belongs.
    pub scope: Scope<'a>,
    /// The line itself.
    pub line: ServerLine<'a>,
}

impl<'a> Scope<'a> {
    /// The scope of the room `room`: the lobby has no prefix.
    pub fn room(room: &'a str) -> Self {
        if room.eq_ignore_ascii_case(super::LOBBY) {
            Self::Lobby
        } else {
            Self::Room(room)
        }
    }
}

impl<'a> Scoped<'a> {
    /// Reads one line with its scope; `None` if what follows the scope is not a chat line.
    pub fn parse(line: &'a str) -> Option<Self> {
        let (scope, rest) = match line.as_bytes().first() {
            Some(b'#') => {
                let (room, rest) = line.split_once(' ')?;
                if !RoomName::is_valid(room) {
                    return None;
                }
                (Scope::room(room), rest)
            }
            Some(b'@') => {
                let (nick, rest) = line[1..].split_once(' ')?;
                if !Nick::is_valid(nick) {
                    return None;
                }
                (Scope::Private(nick), rest)
            }
            _ => (Scope::Lobby, line),
        };
        Some(Self {
            scope,
            line: ServerLine::parse(rest)?,
        })
    }

    /// A line of the lobby.
    pub fn lobby(line: ServerLine<'a>) -> Self {
        Self {
            scope: Scope::Lobby,
            line,
        }
    }
}

impl fmt::Display for Scope<'_> {
    /// The prefix, with its space (nothing for the lobby).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lobby => Ok(()),
            Self::Room(room) => write!(f, "{room} "),
            Self::Private(nick) => write!(f, "@{nick} "),
        }
    }
}

impl fmt::Display for Scoped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.scope, self.line)
    }
}

impl Scoped<'_> {
    /// The line as bytes on the wire, newline included.
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut out = bytes::BytesMut::new();
        self.write_to(&mut out);
        out.freeze()
    }

    /// Appends the line and its newline to `out`.
    pub fn write_to(&self, out: &mut bytes::BytesMut) {
        use std::fmt::Write as _;
        // Writing into a `BytesMut` cannot fail.
        let _ = writeln!(out, "{self}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Event;

    fn round_trip(scoped: Scoped<'_>) -> String {
        let text = scoped.to_string();
        assert_eq!(Scoped::parse(&text), Some(scoped), "{text:?}");
        text
    }

    #[test]
    fn lobby_lines_have_no_prefix_and_others_name_their_place() {
        let hi = ServerLine::Message {
            nick: "alice",
            text: "hi #rust @bob",
        };
        assert_eq!(
            round_trip(Scoped::lobby(hi.clone())),
            "<alice> hi #rust @bob"
        );
        let in_rust = Scoped {
            scope: Scope::Room("#Rust"),
            line: hi.clone(),
        };
        assert_eq!(round_trip(in_rust), "#Rust <alice> hi #rust @bob");
        let private = Scoped {
            scope: Scope::Private("bob"),
            line: hi,
        };
        assert_eq!(round_trip(private), "@bob <alice> hi #rust @bob");
        let joined = Scoped {
            scope: Scope::Room("#中文"),
            line: ServerLine::Event(Event::Joined {
                nick: "小明",
                online: 2,
            }),
        };
        assert_eq!(round_trip(joined), "#中文 *** 小明 joined; 2 online");
        // `#lobby` named explicitly is the lobby.
        assert_eq!(
            Scoped::parse("#lobby <a> x").map(|s| s.scope),
            Some(Scope::Lobby)
        );
    }

    #[test]
    fn a_scope_must_be_a_real_name_before_a_real_line() {
        for line in [
            "#",
            "# <a> x",
            "#a",
            "#a b",
            "@",
            "@ <a> x",
            "@#x <a> y",
            "@a",
            "#a\u{202e} <a> x",
        ] {
            assert_eq!(Scoped::parse(line), None, "{line:?}");
        }
    }
}
