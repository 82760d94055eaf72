//! Each server's conventions, as the load generator needs them: how its greeting looks, what it
//! puts before a relayed line, which of its lines are events and notices. tcpchat's own lines are
//! read with tcpchat's own reader ([`ServerLine::parse`]), so the two cannot disagree.

use clap::ValueEnum;
use tcpchat::protocol::{Event, ServerLine};

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
    /// `examples/chat_baseline.rs` (tokio's chat example's design): a username prompt, then
    /// `* welcome …`; lines `NAME: text` to everyone but the sender; `NAME has joined the chat`.
    TokioChat,
}

/// An echo server speaking the article's `server.py` protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EchoProto {
    /// `tcpchat --serve --mode echo`.
    TcpchatEcho,
    /// `peers/echo_server.py`.
    PythonEcho,
}

/// The echo servers' greeting, sent on accept without a newline.
pub const ECHO_GREETING: &str = tcpchat::protocol::CONNECTED;

/// The tokio-chat design's first line to a new connection.
pub const USERNAME_PROMPT: &str = "Please enter your username";

/// What one received line is.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A data line, intact, behind the prefix its server puts there.
    Data(Data),
    /// A server event (join, leave, announce…): not counted.
    Event,
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
    pub fn classify(&mut self, line: &str) -> Received {
        let bytes = line.as_bytes();
        let data = match find_marker(bytes) {
            Some(at) if self.proto == Proto::Chat => bytes.split_at(at),
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

    /// What `line` (without its newline) is, for data lines of `size` bytes.
    pub fn classify(self, line: &str, size: usize) -> Received {
        let bytes = line.as_bytes();
        if let Some(at) = find_marker(bytes) {
            let (prefix, body) = bytes.split_at(at);
            let prefix_ok = match self {
                // The whole line is a message whose text starts at the marker.
                Self::Chat => matches!(
                    ServerLine::parse(line),
                    Some(ServerLine::Message { text, .. }) if text.len() == body.len()
                ),
                Self::Python => angle_prefix(prefix),
                Self::Ncat => prefix.is_empty() || angle_prefix(prefix),
                Self::TokioChat => {
                    prefix.len() > 2
                        && prefix.ends_with(b": ")
                        && !prefix[..prefix.len() - 2].contains(&b' ')
                }
            };
            return match parse_body(body, size) {
                Some(data) if prefix_ok => Received::Data(data),
                _ => Received::Mangled,
            };
        }
        let event = match self {
            Self::Chat => {
                return match ServerLine::parse(line) {
                    Some(ServerLine::Event(_)) => Received::Event,
                    Some(ServerLine::Error(_)) => Received::Notice,
                    // A message without a data line, or someone's `/me`: nobody in a benchmark
                    // says either.
                    Some(ServerLine::Message { .. } | ServerLine::Action { .. }) | None => {
                        Received::Mangled
                    }
                };
            }
            Self::Python => line.starts_with("* "),
            Self::Ncat => line.starts_with("<announce> "),
            Self::TokioChat => {
                line.starts_with("* ")
                    || line.ends_with(" has joined the chat")
                    || line.ends_with(" has left the chat")
            }
        };
        if event {
            Received::Event
        } else {
            Received::Mangled
        }
    }

    /// Whether `line` tells a new client it is in the room (for idle: that it was served).
    pub fn is_ready(self, line: &str, joining: bool) -> bool {
        match self {
            Self::Chat => matches!(
                ServerLine::parse(line),
                Some(ServerLine::Event(Event::Greeting { .. }))
            ),
            Self::Python => line.starts_with("* welcome"),
            Self::Ncat => line.starts_with("<announce> already connected:"),
            Self::TokioChat if joining => line.starts_with("* welcome"),
            Self::TokioChat => line.starts_with(USERNAME_PROMPT),
        }
    }
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

    #[test]
    fn prefixes_are_checked_per_protocol_and_damage_is_mangled() {
        let body = body();
        let with = |prefix: &str| format!("{prefix}{body}");
        assert!(matches!(
            Proto::Chat.classify(&with("<guest-3> "), 64),
            Received::Data(_)
        ));
        assert!(matches!(Proto::Ncat.classify(&body, 64), Received::Data(_)));
        assert!(matches!(
            Proto::TokioChat.classify(&with("u3: "), 64),
            Received::Data(_)
        ));
        assert_eq!(Proto::Chat.classify(&body, 64), Received::Mangled);
        // ncat's prefix in the middle of a line split across two of its reads.
        let mut cut = with("<user5> ");
        cut.insert_str(30, "<user5> ");
        assert_eq!(Proto::Ncat.classify(&cut, 64), Received::Mangled);
        // One byte changed.
        let changed = with("<guest-3> ").replacen("xx", "xy", 1);
        assert_eq!(Proto::Chat.classify(&changed, 64), Received::Mangled);
        assert_eq!(
            Proto::Chat.classify("*** guest-9 joined; 2 online", 64),
            Received::Event
        );
        assert_eq!(
            Proto::Chat.classify("*** guest-9 left (too slow); 1 online", 64),
            Received::Event
        );
        assert_eq!(Proto::Chat.classify("! flood limit", 64), Received::Notice);
        // Someone's `/me` and a plain message are not what a benchmark room says.
        assert_eq!(
            Proto::Chat.classify("* guest-9 joined", 64),
            Received::Mangled
        );
        assert_eq!(Proto::Chat.classify("<guest-9> hi", 64), Received::Mangled);
        // A data line behind something that is not a nick.
        assert_eq!(
            Proto::Chat.classify(&with("<guest 3> "), 64),
            Received::Mangled
        );
        assert_eq!(Proto::Ncat.classify("@<user5> L 1", 64), Received::Mangled);
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
                    classifier.classify(&line),
                    Proto::Chat.classify(&line, 64),
                    "{line}"
                );
            }
        }
        let mut ncat = Classifier::new(Proto::Ncat, 64);
        assert!(matches!(ncat.classify(&body), Received::Data(_)));
    }

    #[test]
    fn a_chat_client_is_in_at_the_typed_greeting_only() {
        let greeting = "*** 连接成功! you are guest-1; 3 online; /help lists the commands";
        assert!(Proto::Chat.is_ready(greeting, true));
        for not_yet in [
            // The greeting before the events got their own prefix, and a `/me` forging it.
            "* 连接成功! you are guest-1; 3 online; /help lists the commands",
            "*** guest-2 joined; 2 online",
            "<guest-2> *** 连接成功! you are guest-1; 3 online; /help lists the commands",
        ] {
            assert!(!Proto::Chat.is_ready(not_yet, true), "{not_yet}");
        }
    }
}
