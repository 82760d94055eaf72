//! The wire protocol, written once. Every line the chat server sends is a [`ServerLine`], with
//! one writer (its `Display`) and one reader ([`ServerLine::parse`]); every line a client sends
//! is a [`Command`]; the article's two servers speak [`article`]; a client frames what it sends
//! with [`Framing`]. Nothing else in the crate spells a protocol line.
//!
//! # The chat lines
//!
//! | line | kind | caused by |
//! |---|---|---|
//! | `<nick> text` | [`ServerLine::Message`] | a user |
//! | `* nick text` | [`ServerLine::Action`] (`/me`) | a user |
//! | `*** …` | [`ServerLine::Event`]: greeting, joins, leaves, renames, `/who`, help, goodbye | the server |
//! | `! …` | [`ServerLine::Error`]: a refusal, kept on one connection | the server |
//!
//! # Why an event cannot be forged
//!
//! Every line a user can make the server send starts with `<` or with `* ` followed by a nick:
//! its second character is a space, so it can never start with [`EVENT_PREFIX`] (`*** `), and
//! never with [`ERROR_PREFIX`] (`! `). Text never starts a line of its own: the codec splits at
//! `\n` and the sanitiser drops `\r` and every other control character. A reader that decides
//! by the prefix first, as [`ServerLine::parse`] does, therefore never takes
//! `/me is now known as alice` for a rename. Inside an event, the one field a user writes (a
//! `/quit` reason) is read from the fixed ends inwards, so a reason such as `x); 99 online`
//! cannot change the count or the nick. Nicks contain no spaces and cannot start with `*` or `#`
//! ([`Nick`]), which is what makes each split below unambiguous.

mod command;
mod scope;

pub mod article;

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};

pub use command::{
    COMMANDS, Command, CommandSpec, HistoryRequest, Refusal, help_lines, secret_start,
};
pub use scope::{Scope, Scoped};

use crate::names::{Nick, RoomName};

/// Starts every event line: what no user-caused line can start with (see the module docs).
pub const EVENT_PREFIX: &str = "*** ";

/// Starts every error line.
pub const ERROR_PREFIX: &str = "! ";

/// The article's "connected!", in the chat greeting and as the echo server's whole greeting.
pub const CONNECTED: &str = "连接成功!";

/// The article's word that ends a session, as a whole line (chat) or a whole read (article).
pub const EXIT: &str = "exit";

/// The room everyone is in.
pub const LOBBY: &str = "#lobby";

/// What kind of line a user said: the two kinds history keeps (and the cluster's room log
/// carries, by these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaidKind {
    /// `<nick> text`.
    Message,
    /// `* nick text`.
    Action,
}

/// One line from the chat server, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine<'a> {
    /// `<nick> text`: someone said something, to everyone in the room (the sender included).
    Message {
        /// Who said it.
        nick: &'a str,
        /// What they said, sanitised.
        text: &'a str,
    },
    /// `* nick text`: someone's `/me`.
    Action {
        /// Who did it.
        nick: &'a str,
        /// What they did, sanitised.
        text: &'a str,
    },
    /// `[2026-11-30 10:01:02Z #170] <nick> text`: a line said earlier, replayed from the
    /// store (on joining, `/history`, `/search`), with when it was said (UTC) and its number in
    /// the room. No user line starts with `[`.
    Replayed {
        /// When it was said: Unix seconds.
        at: i64,
        /// Its number in the room.
        seq: u64,
        /// Message or action.
        kind: SaidKind,
        /// Who said it.
        nick: &'a str,
        /// What they said.
        text: &'a str,
    },
    /// `*** …`: the server speaking.
    Event(Event<'a>),
    /// `! …`: something was refused or went wrong; the connection stays unless it says so.
    Error(Cow<'a, str>),
}

/// What the server says in its own name, after [`EVENT_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// `连接成功! you are NICK; N online; /help lists the commands`: the first line of a session.
    Greeting {
        /// The nick the server gave this connection.
        nick: &'a str,
        /// Members online, this one included.
        online: usize,
    },
    /// `NICK joined; N online`.
    Joined {
        /// Who joined.
        nick: &'a str,
        /// Members online now.
        online: usize,
    },
    /// `NICK left (REASON); N online`.
    Left {
        /// Who left.
        nick: &'a str,
        /// Why: `exit`, `quit: …` (the user's words), `closed`, `too slow`, ...
        reason: &'a str,
        /// Members online now.
        online: usize,
    },
    /// `OLD is now known as NEW`.
    Renamed {
        /// The nick before.
        old: &'a str,
        /// The nick after.
        new: &'a str,
    },
    /// `online (N): a, b, c`: the answer to `/who`.
    Online {
        /// Everyone online, sorted without regard to case.
        nicks: Vec<&'a str>,
    },
    /// `bye, NICK; closing the connection`: the answer to `exit` or `/quit`, the last line.
    Bye {
        /// The nick that leaves.
        nick: &'a str,
    },
    /// `server shutting down`: the last line everyone gets before the server closes.
    ShuttingDown,
    /// `history of ROOM: N lines; the next line is #SEQ` (`none yet` for 0): replayed lines
    /// follow, then [`Event::HistoryEnd`] (not after `none yet`). Live lines of the room are
    /// numbered from `next` on, which a client counts to know what it missed.
    History {
        /// The room.
        room: &'a str,
        /// How many lines follow.
        count: usize,
        /// The number the next line said in the room will have.
        next: u64,
    },
    /// `end of history of ROOM`.
    HistoryEnd {
        /// The room.
        room: &'a str,
    },
    /// `search in ROOM for WORDS: N lines, newest first`: found lines follow, then
    /// [`Event::FoundEnd`] (not after `0 lines`).
    Found {
        /// The room searched.
        room: &'a str,
        /// What was searched for, as the user typed it.
        words: &'a str,
        /// How many lines follow.
        count: usize,
    },
    /// `end of search in ROOM`.
    FoundEnd {
        /// The room searched.
        room: &'a str,
    },
    /// `NICK set the topic: TEXT` (scoped to the room).
    TopicSet {
        /// Who set it.
        nick: &'a str,
        /// The new topic.
        topic: &'a str,
    },
    /// `the topic is: TEXT`, or `no topic set` (scoped to the room): on joining, or `/topic`.
    TopicIs(Option<&'a str>),
    /// `now talking in ROOM`: plain lines go there from now on.
    Talking {
        /// The room.
        room: &'a str,
    },
    /// `rooms: N; page P of Q`: [`Event::RoomInfo`] lines follow, one per room on the page.
    Rooms {
        /// Rooms on the server.
        count: usize,
        /// This page, from 1.
        page: usize,
        /// Pages in all.
        pages: usize,
    },
    /// `ROOM: N online` or `ROOM: N online; topic: TEXT`.
    RoomInfo {
        /// The room.
        room: &'a str,
        /// Its members.
        online: usize,
        /// Its topic, if one is set.
        topic: Option<&'a str>,
    },
    /// `NICK is registered to you; next time: /login NICK PASSWORD`.
    Registered {
        /// The nick registered.
        nick: &'a str,
    },
    /// `you are logged in as NICK`: the account's nick is this connection's now.
    LoggedIn {
        /// The account's nick.
        nick: &'a str,
    },
    /// `this server needs a password: /pass PASSWORD`: the first line of a session on a
    /// server with a password; nothing else comes until it is given.
    PasswordNeeded,
    /// Any other text from the server: help lines, notices.
    Notice(Cow<'a, str>),
}

impl<'a> ServerLine<'a> {
    /// Reads one line (without its newline); `None` for a line that is not in the chat
    /// protocol (an article server's reply, plain text from another server).
    pub fn parse(line: &'a str) -> Option<Self> {
        if let Some(event) = line.strip_prefix(EVENT_PREFIX) {
            return Some(Self::Event(Event::parse(event)));
        }
        if let Some(error) = line.strip_prefix(ERROR_PREFIX) {
            return Some(Self::Error(Cow::Borrowed(error)));
        }
        if let Some(stamped) = line.strip_prefix('[') {
            return Self::parse_replayed(stamped);
        }
        if let Some(rest) = line.strip_prefix("* ") {
            let (nick, text) = rest.split_once(' ')?;
            return Nick::is_valid(nick).then_some(Self::Action { nick, text });
        }
        let (nick, text) = line.strip_prefix('<')?.split_once("> ")?;
        Nick::is_valid(nick).then_some(Self::Message { nick, text })
    }

    /// `2026-11-30 10:01:02Z #170] <nick> text` (after the `[`).
    fn parse_replayed(stamped: &'a str) -> Option<Self> {
        let (stamp, said) = stamped.split_once("] ")?;
        let (time, seq) = stamp.split_once(" #")?;
        let at = chrono::NaiveDateTime::parse_from_str(time, STAMP_FORMAT)
            .ok()?
            .and_utc()
            .timestamp();
        let seq = count(seq)? as u64;
        let (kind, nick, text) = match Self::parse(said)? {
            Self::Message { nick, text } => (SaidKind::Message, nick, text),
            Self::Action { nick, text } => (SaidKind::Action, nick, text),
            _ => return None,
        };
        Some(Self::Replayed {
            at,
            seq,
            kind,
            nick,
            text,
        })
    }

    /// The line as bytes on the wire, newline included.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        out.freeze()
    }

    /// Appends the line and its newline to `out` (lines gathered into one write).
    pub fn write_to(&self, out: &mut BytesMut) {
        use std::fmt::Write as _;
        // Writing into a `BytesMut` cannot fail.
        let _ = writeln!(out, "{self}");
    }
}

impl fmt::Display for ServerLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message { nick, text } => write!(f, "<{nick}> {text}"),
            Self::Action { nick, text } => write!(f, "* {nick} {text}"),
            Self::Replayed {
                at,
                seq,
                kind,
                nick,
                text,
            } => {
                let time = chrono::DateTime::from_timestamp(*at, 0).unwrap_or_default();
                write!(f, "[{} #{seq}] ", time.format(STAMP_FORMAT))?;
                match kind {
                    SaidKind::Message => write!(f, "<{nick}> {text}"),
                    SaidKind::Action => write!(f, "* {nick} {text}"),
                }
            }
            Self::Event(event) => write!(f, "{EVENT_PREFIX}{event}"),
            Self::Error(text) => write!(f, "{ERROR_PREFIX}{text}"),
        }
    }
}

impl<'a> From<Event<'a>> for ServerLine<'a> {
    fn from(event: Event<'a>) -> Self {
        Self::Event(event)
    }
}

impl From<Refusal<'_>> for ServerLine<'static> {
    fn from(refusal: Refusal<'_>) -> Self {
        Self::Error(Cow::Owned(refusal.to_string()))
    }
}

/// How a replayed line's time is written: UTC, to the second.
const STAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%SZ";

const GREETING_HEAD: &str = "连接成功! you are ";
const GREETING_TAIL: &str = "; /help lists the commands";
const RENAMED: &str = " is now known as ";
const BYE_TAIL: &str = "; closing the connection";
const SHUTTING_DOWN: &str = "server shutting down";
const NO_TOPIC: &str = "no topic set";
const PASSWORD_NEEDED: &str = "this server needs a password: /pass PASSWORD";
const LOGGED_IN: &str = "you are logged in as ";
const REGISTERED: &str = " is registered to you; next time: /login ";

impl<'a> Event<'a> {
    /// Reads the text after [`EVENT_PREFIX`]; anything that is not one of the typed events is
    /// a [`Event::Notice`].
    fn parse(text: &'a str) -> Self {
        Self::parse_typed(text).unwrap_or(Self::Notice(Cow::Borrowed(text)))
    }

    /// Each form is tried in turn and none commits early: a nick may be `bye,` or `online`,
    /// and a reason may contain ` is now known as `, so a line that starts like one form can
    /// still be another. No line fits two forms (the property test in `tests/fuzz.rs`).
    fn parse_typed(text: &'a str) -> Option<Self> {
        Self::greeting(text)
            .or_else(|| Self::history(text))
            .or_else(|| Self::rooms(text))
            .or_else(|| Self::online(text))
            .or_else(|| Self::bye(text))
            .or_else(|| (text == SHUTTING_DOWN).then_some(Self::ShuttingDown))
            .or_else(|| Self::account(text))
            .or_else(|| Self::renamed(text))
            .or_else(|| Self::joined_or_left(text))
    }

    fn greeting(text: &'a str) -> Option<Self> {
        let rest = text
            .strip_prefix(GREETING_HEAD)?
            .strip_suffix(GREETING_TAIL)?;
        let (nick, online) = rest.split_once("; ")?;
        Some(Self::Greeting {
            nick: valid(nick)?,
            online: count(online.strip_suffix(" online")?)?,
        })
    }

    /// The four history and search events; a room name has no spaces (it is `#` and a nick's
    /// characters), and the searched words are read from the fixed ends inwards.
    fn history(text: &'a str) -> Option<Self> {
        if let Some(rest) = text.strip_prefix("history of ") {
            let (room, rest) = rest.split_once(": ")?;
            let (count, next) = rest.split_once("; the next line is #")?;
            let count = match count {
                "none yet" => 0,
                lines => self::count(lines.strip_suffix(" lines")?)?,
            };
            return Some(Self::History {
                room: valid_room(room)?,
                count,
                next: self::count(next)? as u64,
            });
        }
        if let Some(room) = text.strip_prefix("end of history of ") {
            return Some(Self::HistoryEnd {
                room: valid_room(room)?,
            });
        }
        if let Some(rest) = text.strip_prefix("search in ") {
            let (room, rest) = rest.split_once(" for ")?;
            let (words, found) = rest.rsplit_once(": ")?;
            let found = found.strip_suffix(" lines, newest first")?;
            return Some(Self::Found {
                room: valid_room(room)?,
                words,
                count: count(found)?,
            });
        }
        let room = text.strip_prefix("end of search in ")?;
        Some(Self::FoundEnd {
            room: valid_room(room)?,
        })
    }

    /// Topics, the room being talked in, and the room list. A topic is the user's text: it is
    /// read last, after the fixed words before it.
    fn rooms(text: &'a str) -> Option<Self> {
        if let Some(topic) = text.strip_prefix("the topic is: ") {
            return Some(Self::TopicIs(Some(topic)));
        }
        if text == NO_TOPIC {
            return Some(Self::TopicIs(None));
        }
        if let Some(room) = text.strip_prefix("now talking in ") {
            return Some(Self::Talking {
                room: valid_room(room)?,
            });
        }
        if let Some(rest) = text.strip_prefix("rooms: ") {
            let (count, pages) = rest.split_once("; page ")?;
            let (page, of) = pages.split_once(" of ")?;
            return Some(Self::Rooms {
                count: self::count(count)?,
                page: self::count(page)?,
                pages: self::count(of)?,
            });
        }
        if text.starts_with('#') {
            let (room, rest) = text.split_once(": ")?;
            let (online, topic) = match rest.split_once(" online; topic: ") {
                Some((online, topic)) => (online, Some(topic)),
                None => (rest.strip_suffix(" online")?, None),
            };
            return Some(Self::RoomInfo {
                room: valid_room(room)?,
                online: count(online)?,
                topic,
            });
        }
        let (nick, topic) = text.split_once(" set the topic: ")?;
        Some(Self::TopicSet {
            nick: valid(nick)?,
            topic,
        })
    }

    fn online(text: &'a str) -> Option<Self> {
        let (n, list) = text.strip_prefix("online (")?.split_once("):")?;
        let nicks: Vec<&str> = match list {
            "" => Vec::new(),
            list => list.strip_prefix(' ')?.split(", ").collect(),
        };
        let all_valid = nicks.iter().all(|n| Nick::is_valid(n));
        (all_valid && count(n)? == nicks.len()).then_some(Self::Online { nicks })
    }

    fn account(text: &'a str) -> Option<Self> {
        if text == PASSWORD_NEEDED {
            return Some(Self::PasswordNeeded);
        }
        if let Some(nick) = text.strip_prefix(LOGGED_IN) {
            return Some(Self::LoggedIn { nick: valid(nick)? });
        }
        let (nick, again) = text.split_once(REGISTERED)?;
        (again.strip_suffix(" PASSWORD")? == nick).then_some(())?;
        Some(Self::Registered { nick: valid(nick)? })
    }

    fn bye(text: &'a str) -> Option<Self> {
        let nick = text.strip_prefix("bye, ")?.strip_suffix(BYE_TAIL)?;
        Some(Self::Bye { nick: valid(nick)? })
    }

    fn renamed(text: &'a str) -> Option<Self> {
        let (old, new) = text.split_once(RENAMED)?;
        Some(Self::Renamed {
            old: valid(old)?,
            new: valid(new)?,
        })
    }

    /// Both end in `; N online`, read from the right: a reason may contain anything.
    fn joined_or_left(text: &'a str) -> Option<Self> {
        let (head, online) = text.strip_suffix(" online")?.rsplit_once("; ")?;
        let online = count(online)?;
        if let Some(nick) = head.strip_suffix(" joined")
            && Nick::is_valid(nick)
        {
            return Some(Self::Joined { nick, online });
        }
        let (nick, reason) = head.strip_suffix(')')?.split_once(" left (")?;
        Some(Self::Left {
            nick: valid(nick)?,
            reason,
            online,
        })
    }
}

fn valid(nick: &str) -> Option<&str> {
    Nick::is_valid(nick).then_some(nick)
}

/// A room name, as [`RoomName`] has them.
fn valid_room(room: &str) -> Option<&str> {
    RoomName::is_valid(room).then_some(room)
}

/// A count as the server writes it: decimal digits only.
fn count(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Greeting { nick, online } => {
                write!(f, "{GREETING_HEAD}{nick}; {online} online{GREETING_TAIL}")
            }
            Self::Joined { nick, online } => write!(f, "{nick} joined; {online} online"),
            Self::Left {
                nick,
                reason,
                online,
            } => write!(f, "{nick} left ({reason}); {online} online"),
            Self::Renamed { old, new } => write!(f, "{old}{RENAMED}{new}"),
            Self::Online { nicks } => {
                write!(f, "online ({}):", nicks.len())?;
                for (i, nick) in nicks.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    f.write_str(nick)?;
                }
                Ok(())
            }
            Self::Bye { nick } => write!(f, "bye, {nick}{BYE_TAIL}"),
            Self::ShuttingDown => f.write_str(SHUTTING_DOWN),
            Self::Registered { nick } => write!(f, "{nick}{REGISTERED}{nick} PASSWORD"),
            Self::LoggedIn { nick } => write!(f, "{LOGGED_IN}{nick}"),
            Self::PasswordNeeded => f.write_str(PASSWORD_NEEDED),
            Self::History {
                room,
                count: 0,
                next,
            } => write!(f, "history of {room}: none yet; the next line is #{next}"),
            Self::History { room, count, next } => {
                write!(
                    f,
                    "history of {room}: {count} lines; the next line is #{next}"
                )
            }
            Self::HistoryEnd { room } => write!(f, "end of history of {room}"),
            Self::Found { room, words, count } => write!(
                f,
                "search in {room} for {words}: {count} lines, newest first"
            ),
            Self::FoundEnd { room } => write!(f, "end of search in {room}"),
            Self::TopicSet { nick, topic } => write!(f, "{nick} set the topic: {topic}"),
            Self::TopicIs(Some(topic)) => write!(f, "the topic is: {topic}"),
            Self::TopicIs(None) => f.write_str(NO_TOPIC),
            Self::Talking { room } => write!(f, "now talking in {room}"),
            Self::Rooms { count, page, pages } => {
                write!(f, "rooms: {count}; page {page} of {pages}")
            }
            Self::RoomInfo {
                room,
                online,
                topic: None,
            } => write!(f, "{room}: {online} online"),
            Self::RoomInfo {
                room,
                online,
                topic: Some(topic),
            } => write!(f, "{room}: {online} online; topic: {topic}"),
            Self::Notice(text) => f.write_str(text),
        }
    }
}

/// How a client puts what the user typed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One line per message, ended by `\n`: the chat protocol.
    Lines,
    /// Exactly the bytes typed, no newline: the article's servers compare a whole read with
    /// `b'exit'`.
    Raw,
}

impl Framing {
    /// The bytes to write for `text`.
    pub fn encode(self, text: &str) -> Bytes {
        match self {
            Self::Lines => Bytes::from(format!("{text}\n")),
            Self::Raw => Bytes::copy_from_slice(text.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(line: ServerLine<'_>) {
        let text = line.to_string();
        assert_eq!(ServerLine::parse(&text), Some(line), "{text:?}");
    }

    #[test]
    fn every_kind_of_line_reads_back_as_written() {
        round_trip(ServerLine::Message {
            nick: "bob",
            text: "> quoted <x> and * stars",
        });
        round_trip(ServerLine::Action {
            nick: "小明",
            text: "",
        });
        round_trip(ServerLine::Error(Cow::Borrowed(
            "nick bob is already taken",
        )));
        for kind in [SaidKind::Message, SaidKind::Action] {
            round_trip(ServerLine::Replayed {
                at: 1_796_032_862,
                seq: 170,
                kind,
                nick: "alice",
                text: "] #1 [said earlier",
            });
        }
        assert_eq!(
            ServerLine::Replayed {
                at: 1_796_032_862,
                seq: 7,
                kind: SaidKind::Message,
                nick: "a",
                text: "hi",
            }
            .to_string(),
            "[2026-11-30 10:01:02Z #7] <a> hi"
        );
        for event in [
            Event::Greeting {
                nick: "guest-1",
                online: 3,
            },
            Event::Joined {
                nick: "a;b",
                online: 2,
            },
            Event::Left {
                nick: "bob",
                reason: "quit: x); 99 online",
                online: 0,
            },
            Event::Left {
                nick: "bob",
                reason: "",
                online: 1,
            },
            Event::Renamed {
                old: "guest-1",
                new: "alice",
            },
            Event::Online {
                nicks: vec!["a,", ",", "b"],
            },
            Event::Online { nicks: Vec::new() },
            Event::Bye { nick: "alice" },
            Event::ShuttingDown,
            Event::History {
                room: LOBBY,
                count: 0,
                next: 1,
            },
            Event::History {
                room: LOBBY,
                count: 50,
                next: 170,
            },
            Event::HistoryEnd { room: LOBBY },
            Event::Found {
                room: LOBBY,
                words: "x: 9 lines, newest first",
                count: 2,
            },
            Event::FoundEnd { room: LOBBY },
            Event::TopicSet {
                nick: "alice",
                topic: "Rust; the next line is #3 ) set the topic: x",
            },
            Event::TopicIs(Some("")),
            Event::TopicIs(Some("no topic set")),
            Event::TopicIs(None),
            Event::Talking { room: "#rust" },
            Event::Rooms {
                count: 1234,
                page: 2,
                pages: 25,
            },
            Event::RoomInfo {
                room: "#rust",
                online: 3,
                topic: None,
            },
            Event::RoomInfo {
                room: "#rust",
                online: 3,
                topic: Some("x online; topic: y"),
            },
            Event::Notice(Cow::Borrowed("commands:")),
        ] {
            round_trip(ServerLine::Event(event));
        }
    }

    #[test]
    fn what_users_can_say_never_reads_as_an_event() {
        for said in [
            "is now known as alice",
            "* 连接成功! you are great; 1 online; /help lists the commands",
            "*** server shutting down",
            "left (exit); 0 online",
        ] {
            let action = ServerLine::Action {
                nick: "mallory",
                text: said,
            }
            .to_string();
            assert!(matches!(
                ServerLine::parse(&action),
                Some(ServerLine::Action {
                    nick: "mallory",
                    ..
                })
            ));
            let message = ServerLine::Message {
                nick: "mallory",
                text: said,
            }
            .to_string();
            assert!(matches!(
                ServerLine::parse(&message),
                Some(ServerLine::Message {
                    nick: "mallory",
                    ..
                })
            ));
        }
    }

    #[test]
    fn lines_outside_the_protocol_are_not_read_as_chat() {
        for line in [
            "第1条信息:hello",
            "连接成功!",
            "<no space> x",
            "<*bad> x",
            "* ",
            "**",
        ] {
            assert_eq!(ServerLine::parse(line), None, "{line:?}");
        }
        // A malformed event is still the server's word, shown as a notice.
        assert_eq!(
            ServerLine::parse("*** online (2): just-one"),
            Some(ServerLine::Event(Event::Notice(Cow::Borrowed(
                "online (2): just-one"
            ))))
        );
    }

    #[test]
    fn framing_adds_the_newline_only_for_lines() {
        assert_eq!(Framing::Lines.encode("exit"), "exit\n");
        assert_eq!(Framing::Raw.encode("exit"), "exit");
    }
}
