//! Each server's conventions, as the load generator needs them: how its greeting looks, what it
//! puts before a relayed line, which of its lines are events and notices. tcpchat's own lines are
//! read with tcpchat's own reader ([`ServerLine::parse`]), so the two cannot disagree.
//!
//! Two servers never say that a client is in the room (tokio's chat design and the bare relay):
//! for them a probe client joins last and says [`BARRIER`], and whoever has read it is in.

use clap::ValueEnum;
use tcpchat::protocol::{Event, Scoped, ServerLine};

use crate::data::{Data, find_marker, parse_body};

/// A chat server's conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    /// `tcpchat --serve`: greeting `*** 连接成功! …`, lines `<guest-N> text` to everyone (the
    /// sender included), events `*** …`, errors `! …`.
    Chat,
    /// `ncat --chat`: `<announce> already connected: …` on connect; each *read* (not line)
    /// prefixed `<userFD> `; nothing is sent back to the sender.
    Ncat,
    /// `peers/chat_server.py`: `* welcome, you are user-N`, lines `<user-N> text` to
    /// everyone, the sender included.
    Python,
    /// tokio's chat example (`examples/chat_baseline.rs`, or the real one): the prompt
    /// `Please enter your username:`, then nothing to the new client; `NAME: text` to everyone
    /// but the sender; `NAME has joined the chat`, `NAME has left the chat`.
    TokioChat,
    /// `examples/bare_relay.rs`: no greeting, no prefix; what a client sends goes to everyone
    /// else as it was sent.
    Relay,
}

/// An echo server speaking the article's `server.py` protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EchoProto {
    /// `tcpchat --serve --mode echo`.
    #[value(name = "tcpchat-echo")]
    Tcpchat,
    /// `peers/echo_server.py`.
    #[value(name = "python-echo")]
    Python,
    /// `examples/bare_echo.rs`.
    #[value(name = "bare-echo")]
    Bare,
}

/// The echo servers' greeting, sent on accept without a newline.
pub const ECHO_GREETING: &str = tcpchat::protocol::CONNECTED;

/// The tokio-chat design's first line to a new connection.
pub const USERNAME_PROMPT: &[u8] = b"Please enter your username";

/// What the probe says once it is in the room, after every other client (see the module docs).
pub const BARRIER: &[u8] = b"@B barrier";

/// What one received line is.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A data line, intact, behind the prefix its server puts there.
    Data(Data),
    /// A server event (join, leave, announce…): not counted.
    Event,
    /// The probe's [`BARRIER`]: this client is in the room.
    Barrier,
    /// A server notice to this client (`! …` in tcpchat): counted apart.
    Notice,
    /// Cut, merged, altered or unexpected.
    Mangled,
}

/// Most senders whose prefixes a [`Classifier`] remembers; lines of others are read in full.
const MAX_KNOWN_SENDERS: usize = 4096;

/// One receiver's [`Proto::classify`], faster for tcpchat's data lines: the prefix before each
/// sender's lines (`<guest-N> `) is read with the protocol's parser the first time and compared
/// byte for byte after that. The answer is the same (whether a line reads as a message whose
/// text starts at the marker depends only on the bytes before the marker), at a fraction of
/// the cost of parsing every line: this runs for every delivery of a fan-out.
pub struct Classifier {
    proto: Proto,
    size: usize,
    /// By sender: the prefix already read as valid before its lines.
    known: Vec<Vec<u8>>,
}

impl Classifier {
    /// A classifier of `proto`'s lines, for data lines of `size` bytes.
    pub fn new(proto: Proto, size: usize) -> Self {
        Self {
            proto,
            size,
            known: Vec::new(),
        }
    }

    /// What `line` (without its newline) is.
    pub fn classify(&mut self, line: &[u8]) -> Received {
        let data = match find_marker(line) {
            Some(at) if self.proto == Proto::Chat => line.split_at(at),
            _ => return self.proto.classify(line, self.size),
        };
        let (prefix, body) = data;
        let Some(data) = parse_body(body, self.size) else {
            return Received::Mangled;
        };
        if self
            .known
            .get(data.sender)
            .is_some_and(|known| known == prefix)
        {
            return Received::Data(data);
        }
        let received = self.proto.classify(line, self.size);
        if matches!(received, Received::Data(_)) && data.sender < MAX_KNOWN_SENDERS {
            if self.known.len() <= data.sender {
                self.known.resize(data.sender + 1, Vec::new());
            }
            self.known[data.sender] = prefix.to_vec();
        }
        received
    }
}

/// `<name> ` with no other angle brackets inside.
fn angle_prefix(prefix: &[u8]) -> bool {
    prefix.len() > 3
        && prefix[0] == b'<'
        && prefix.ends_with(b"> ")
        && !prefix[1..prefix.len() - 2]
            .iter()
            .any(|&b| b == b'<' || b == b'>')
}

impl Proto {
    /// Whether the server sends a line back to its own sender.
    pub fn echoes_sender(self) -> bool {
        matches!(self, Self::Chat | Self::Python)
    }

    /// Whether the server never says a client is in the room, so that the probe's [`BARRIER`]
    /// must (see the module docs).
    pub fn needs_barrier(self) -> bool {
        matches!(self, Self::TokioChat | Self::Relay)
    }

    /// Whether the server says something to every new connection (so that one that heard it
    /// is served).
    pub fn greets(self) -> bool {
        self != Self::Relay
    }

    /// What `line` (without its newline) is, for data lines of `size` bytes.
    pub fn classify(self, line: &[u8], size: usize) -> Received {
        if let Some(at) = find_marker(line) {
            let (prefix, body) = line.split_at(at);
            let prefix_ok = std::str::from_utf8(prefix).is_ok()
                && match self {
                    // The whole line is a message whose text starts at the marker; a line
                    // replayed from history (a server reused across runs) is not a delivery.
                    Self::Chat => match std::str::from_utf8(line).ok().and_then(chat_line) {
                        Some(ServerLine::Message { text, .. }) => text.len() == body.len(),
                        Some(ServerLine::Replayed { .. }) => return Received::Event,
                        _ => false,
                    },
                    Self::Python => angle_prefix(prefix),
                    Self::Ncat => prefix.is_empty() || angle_prefix(prefix),
                    Self::TokioChat => {
                        prefix.len() > 2
                            && prefix.ends_with(b": ")
                            && !prefix[..prefix.len() - 2].contains(&b' ')
                    }
                    Self::Relay => prefix.is_empty(),
                };
            return match parse_body(body, size) {
                Some(data) if prefix_ok => Received::Data(data),
                _ => Received::Mangled,
            };
        }
        if line.ends_with(BARRIER) {
            return Received::Barrier;
        }
        let event = match self {
            Self::Chat => {
                return match std::str::from_utf8(line).ok().and_then(chat_line) {
                    Some(ServerLine::Event(_)) => Received::Event,
                    Some(ServerLine::Error(_)) => Received::Notice,
                    // A message without a data line, someone's `/me`, anything else: nobody
                    // in a benchmark says it.
                    _ => Received::Mangled,
                };
            }
            Self::Python => line.starts_with(b"* "),
            Self::Ncat => line.starts_with(b"<announce> "),
            Self::TokioChat => {
                line.ends_with(b" has joined the chat") || line.ends_with(b" has left the chat")
            }
            Self::Relay => false,
        };
        if event {
            Received::Event
        } else {
            Received::Mangled
        }
    }

    /// Whether `line`, read by a new client, ends its greeting: it is in the room (tcpchat,
    /// Python, ncat), or asked for a name (tokio-chat). The relay greets nobody.
    pub fn is_ready(self, line: &str) -> bool {
        match self {
            Self::Chat => matches!(
                ServerLine::parse(line),
                Some(ServerLine::Event(Event::Greeting { .. }))
            ),
            Self::Python => line.starts_with("* welcome"),
            Self::Ncat => line.starts_with("<announce> already connected:"),
            Self::TokioChat => line.as_bytes().starts_with(USERNAME_PROMPT),
            Self::Relay => true,
        }
    }
}

/// A tcpchat line without its room (`#bench <guest-3> ...` is read as `<guest-3> ...`).
fn chat_line(line: &str) -> Option<ServerLine<'_>> {
    Scoped::parse(line).map(|scoped| scoped.line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::data_line;

    /// A data line of 64 bytes, without its newline.
    fn body() -> String {
        let mut out = Vec::new();
        data_line(1, 2, 123_456_789, 64, &mut out);
        out.pop();
        String::from_utf8(out).unwrap()
    }

    fn classify(proto: Proto, line: &str) -> Received {
        proto.classify(line.as_bytes(), 64)
    }

    #[test]
    fn prefixes_are_checked_per_protocol_and_damage_is_mangled() {
        let body = body();
        let with = |prefix: &str| format!("{prefix}{body}");
        assert!(matches!(
            classify(Proto::Chat, &with("<guest-3> ")),
            Received::Data(_)
        ));
        assert!(matches!(classify(Proto::Ncat, &body), Received::Data(_)));
        assert!(matches!(classify(Proto::Relay, &body), Received::Data(_)));
        assert!(matches!(
            classify(Proto::TokioChat, &with("u3: ")),
            Received::Data(_)
        ));
        assert_eq!(classify(Proto::Chat, &body), Received::Mangled);
        assert_eq!(classify(Proto::Relay, &with("u3: ")), Received::Mangled);
        // ncat's prefix in the middle of a line split across two of its reads.
        let mut cut = with("<user5> ");
        cut.insert_str(30, "<user5> ");
        assert_eq!(classify(Proto::Ncat, &cut), Received::Mangled);
        // One byte changed.
        let changed = with("<guest-3> ").replacen("xx", "xy", 1);
        assert_eq!(classify(Proto::Chat, &changed), Received::Mangled);
        // Bytes that are not UTF-8 before the data.
        let mut invalid = b"<guest-\xff> ".to_vec();
        invalid.extend_from_slice(body.as_bytes());
        assert_eq!(Proto::Chat.classify(&invalid, 64), Received::Mangled);
        assert_eq!(Proto::Python.classify(&invalid, 64), Received::Mangled);
        assert_eq!(
            classify(Proto::Chat, "*** guest-9 joined; 2 online"),
            Received::Event
        );
        assert_eq!(
            classify(Proto::Chat, "*** guest-9 left (too slow); 1 online"),
            Received::Event
        );
        assert_eq!(classify(Proto::Chat, "! flood limit"), Received::Notice);
        // Someone's `/me` and a plain message are not what a benchmark room says.
        assert_eq!(classify(Proto::Chat, "* guest-9 joined"), Received::Mangled);
        assert_eq!(classify(Proto::Chat, "<guest-9> hi"), Received::Mangled);
        // A data line behind something that is not a nick.
        assert_eq!(
            classify(Proto::Chat, &with("<guest 3> ")),
            Received::Mangled
        );
        assert_eq!(classify(Proto::Ncat, "@<user5> L 1"), Received::Mangled);
        assert_eq!(
            classify(Proto::Chat, &with("[2026-11-30 10:01:02Z #170] <guest-3> ")),
            Received::Event
        );
        assert_eq!(
            classify(Proto::TokioChat, "u7 has joined the chat"),
            Received::Event
        );
        assert_eq!(
            classify(Proto::Relay, "u7 has joined the chat"),
            Received::Mangled
        );
    }

    #[test]
    fn the_barrier_is_read_behind_any_prefix() {
        for (proto, line) in [
            (Proto::Chat, "<guest-9> @B barrier"),
            (Proto::TokioChat, "u9: @B barrier"),
            (Proto::Relay, "@B barrier"),
        ] {
            assert_eq!(classify(proto, line), Received::Barrier, "{line}");
        }
        assert!(Proto::Relay.needs_barrier() && Proto::TokioChat.needs_barrier());
        assert!(!Proto::Chat.needs_barrier());
        assert!(Proto::TokioChat.greets() && !Proto::Relay.greets());
    }

    #[test]
    fn the_classifier_answers_as_the_protocol_does() {
        let body = body();
        let mut classifier = Classifier::new(Proto::Chat, 64);
        for _ in 0..2 {
            for line in [
                format!("<guest-3> {body}"),
                format!("<guest 3> {body}"),
                format!("<guest-4> {body}"),
                format!("*guest-3> {body}"),
                body.clone(),
                format!("<guest-3> {}", body.replacen("xx", "xy", 1)),
                "*** guest-9 joined; 2 online".to_owned(),
                "! flood limit".to_owned(),
            ] {
                assert_eq!(
                    classifier.classify(line.as_bytes()),
                    classify(Proto::Chat, &line),
                    "{line}"
                );
            }
        }
        let mut ncat = Classifier::new(Proto::Ncat, 64);
        assert!(matches!(ncat.classify(body.as_bytes()), Received::Data(_)));
    }

    #[test]
    fn a_chat_client_is_in_at_the_typed_greeting_only() {
        let greeting = "*** 连接成功! you are guest-1; 3 online; /help lists the commands";
        assert!(Proto::Chat.is_ready(greeting));
        for not_yet in [
            // The greeting before the events got their own prefix, and a `/me` forging it.
            "* 连接成功! you are guest-1; 3 online; /help lists the commands",
            "*** guest-2 joined; 2 online",
            "<guest-2> *** 连接成功! you are guest-1; 3 online; /help lists the commands",
        ] {
            assert!(!Proto::Chat.is_ready(not_yet), "{not_yet}");
        }
        assert!(Proto::TokioChat.is_ready("Please enter your username:"));
    }
}
