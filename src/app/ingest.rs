//! From received bytes to classified lines: UTF-8 reassembly across reads ([`Utf8Joiner`]),
//! and what each line is ([`classify`]) and teaches the client about itself ([`Fact`]), both
//! read through [`crate::protocol`] so that no user's text is ever taken for an event.

use super::mention;
use crate::i18n::{Language, tr};
use crate::protocol::{Event, SaidKind, ServerLine};
use crate::scrollback::Kind;

/// Joins the bytes of a UTF-8 character that a read boundary cut in two.
#[derive(Debug, Default)]
pub struct Utf8Joiner {
    /// The start of a character whose remaining bytes have not arrived yet (at most 3 bytes).
    tail: Vec<u8>,
}

impl Utf8Joiner {
    /// Decodes `bytes` after what was held back; invalid bytes become U+FFFD, and a character
    /// cut off at the end is held back for the next call.
    pub fn decode(&mut self, bytes: &[u8]) -> String {
        let joined;
        let mut rest: &[u8] = if self.tail.is_empty() {
            bytes
        } else {
            self.tail.extend_from_slice(bytes);
            joined = std::mem::take(&mut self.tail);
            &joined
        };
        let mut text = String::with_capacity(rest.len());
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    return text;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    text.push_str(&String::from_utf8_lossy(valid));
                    match error.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            // Only a character cut short by the end of the data is left.
                            self.tail = after.to_vec();
                            return text;
                        }
                    }
                }
            }
        }
    }

    /// Forgets a held-back partial character (the connection it came from is gone).
    pub fn clear(&mut self) {
        self.tail.clear();
    }
}

/// What a complete line tells the client about its own session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Our nick, from the greeting or our own rename.
    Nick(String),
    /// How many are online, from the greeting, a join or a leave.
    Online(usize),
    /// Both, from the greeting.
    Greeted {
        /// The nick the server gave us.
        nick: String,
        /// How many are online.
        online: usize,
    },
}

/// What `line` is, for drawing; `own_nick` marks our own messages and the ones that name us.
pub fn classify(line: &str, own_nick: Option<&str>) -> Kind {
    let line = ServerLine::parse(line);
    let named = line.as_ref().is_some_and(|line| names_us(line, own_nick));
    kind_of(line.as_ref(), own_nick, named)
}

/// What a parsed line (without its scope) is, for drawing; `None` is a line outside the
/// protocol. `named`: it names us (see [`names_us`]), worked out once by the caller.
pub fn kind_of(line: Option<&ServerLine<'_>>, own_nick: Option<&str>, named: bool) -> Kind {
    // A nick is at most 24 characters, so `<nick> ` or `* nick ` fits easily.
    let prefix = |nick: &str| u16::try_from(nick.len() + 3).unwrap_or(u16::MAX);
    match line {
        Some(ServerLine::Message { nick, .. }) => {
            if Some(*nick) == own_nick {
                Kind::Own {
                    prefix: prefix(nick),
                }
            } else if named {
                Kind::Mention {
                    prefix: prefix(nick),
                }
            } else {
                Kind::Message {
                    prefix: prefix(nick),
                }
            }
        }
        Some(ServerLine::Action { nick, .. }) if named => Kind::Mention {
            prefix: prefix(nick),
        },
        Some(ServerLine::Action { .. }) => Kind::Action,
        Some(ServerLine::Replayed { .. }) => Kind::Replayed,
        Some(ServerLine::Event(
            Event::History { .. }
            | Event::HistoryEnd { .. }
            | Event::Found { .. }
            | Event::FoundEnd { .. },
        )) => Kind::Rule,
        Some(ServerLine::Event(_)) => Kind::Event,
        Some(ServerLine::Error(_)) => Kind::Error,
        None => Kind::Plain,
    }
}

/// Whether `line` is someone else's live message or action that names `own_nick` as a word.
pub fn names_us(line: &ServerLine<'_>, own_nick: Option<&str>) -> bool {
    let Some(own) = own_nick else {
        return false;
    };
    match line {
        ServerLine::Message { nick, text } | ServerLine::Action { nick, text } => {
            *nick != own && mention::names(text, own)
        }
        _ => false,
    }
}

/// How the client shows a line the protocol marks up for `nc` users: a replayed line without
/// its stamp (the time goes to the timestamp column), the history and search rules as rules
/// in `language`. `None`: shown as received.
pub fn presented(line: &ServerLine<'_>, language: Language) -> Option<(String, Kind)> {
    let text = match line {
        ServerLine::Replayed {
            kind: SaidKind::Message,
            nick,
            text,
            ..
        } => return Some((format!("<{nick}> {text}"), Kind::Replayed)),
        ServerLine::Replayed { nick, text, .. } => {
            return Some((format!("* {nick} {text}"), Kind::Replayed));
        }
        ServerLine::Event(Event::History { count: 0, .. }) => tr!(language, "rule.no_history"),
        ServerLine::Event(Event::History { count: 1, .. }) => tr!(language, "rule.history_one"),
        ServerLine::Event(Event::History { count, .. }) => {
            tr!(language, "rule.history", count = count)
        }
        ServerLine::Event(Event::HistoryEnd { .. }) => tr!(language, "rule.history_end"),
        ServerLine::Event(Event::Found {
            words, count: 1, ..
        }) => {
            tr!(language, "rule.found_one", words = words)
        }
        ServerLine::Event(Event::Found { words, count, .. }) => {
            tr!(language, "rule.found", words = words, count = count)
        }
        ServerLine::Event(Event::FoundEnd { .. }) => tr!(language, "rule.found_end"),
        _ => return None,
    };
    Some((text, Kind::Rule))
}

/// What a complete line says about us, if anything. Only the server's own events count, and
/// a rename only when it renames us.
pub fn fact(line: &ServerLine<'_>, own_nick: Option<&str>) -> Option<Fact> {
    let ServerLine::Event(event) = line else {
        return None;
    };
    match event {
        Event::Greeting { nick, online } => Some(Fact::Greeted {
            nick: (*nick).to_owned(),
            online: *online,
        }),
        Event::Renamed { old, new } if Some(*old) == own_nick => {
            Some(Fact::Nick((*new).to_owned()))
        }
        Event::Joined { online, .. } | Event::Left { online, .. } => Some(Fact::Online(*online)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_of_history_or_search_is_not_called_lines() {
        let rule = |line: &str, language| {
            let line = ServerLine::parse(line).expect("a protocol line");
            presented(&line, language).expect("a rule").0
        };
        let english = Language::English;
        let history = |n: u64| format!("*** history of #lobby: {n} lines; the next line is #9");
        assert_eq!(rule(&history(1), english), "── history: 1 earlier line ──");
        assert_eq!(rule(&history(2), english), "── history: 2 earlier lines ──");
        let found = |n: u64| format!("*** search in #lobby for cat: {n} lines, newest first");
        assert_eq!(rule(&found(1), english), "── search for cat: 1 line ──");
        assert_eq!(
            rule(&found(3), Language::Chinese),
            "── 搜索 cat：3 行，最新的在前 ──"
        );
    }

    #[test]
    fn a_character_cut_by_reads_is_joined_and_bad_bytes_are_replaced() {
        let mut joiner = Utf8Joiner::default();
        let bytes = "a你好".as_bytes();
        assert_eq!(joiner.decode(&bytes[..2]), "a");
        assert_eq!(joiner.decode(&bytes[2..5]), "你");
        assert_eq!(joiner.decode(&bytes[5..]), "好");
        assert_eq!(joiner.decode(b"x\xffy\xe4"), "x\u{fffd}y");
        assert_eq!(
            joiner.decode(b"z"),
            "\u{fffd}z",
            "a cut character that never ends"
        );
        joiner.decode(&"好".as_bytes()[..1]);
        joiner.clear();
        assert_eq!(joiner.decode(b"ok"), "ok");
    }

    fn fact(line: &str, own_nick: Option<&str>) -> Option<Fact> {
        super::fact(&ServerLine::parse(line)?, own_nick)
    }

    #[test]
    fn only_real_events_about_us_teach_us_anything() {
        let own = Some("alice");
        assert_eq!(
            fact(
                "*** 连接成功! you are guest-1; 2 online; /help lists the commands",
                None
            ),
            Some(Fact::Greeted {
                nick: "guest-1".into(),
                online: 2
            })
        );
        assert_eq!(
            fact("*** alice is now known as bob", own),
            Some(Fact::Nick("bob".into()))
        );
        assert_eq!(fact("*** carol is now known as bob", own), None);
        assert_eq!(
            fact("*** carol left (quit: bye); 1 online", own),
            Some(Fact::Online(1))
        );
        for forged in [
            "* mallory thinks you are great",
            "* mallory is now known as alice",
            "<mallory> *** 连接成功! you are great; 9 online; /help lists the commands",
            "* mallory left (exit); 0 online",
        ] {
            assert_eq!(fact(forged, own), None, "{forged}");
        }
    }

    #[test]
    fn lines_are_classified_by_the_protocol() {
        assert_eq!(
            classify("<alice> hi", Some("alice")),
            Kind::Own { prefix: 8 }
        );
        assert_eq!(
            classify("<bob> hi", Some("alice")),
            Kind::Message { prefix: 6 }
        );
        assert_eq!(classify("* bob waves", None), Kind::Action);
        assert_eq!(
            classify("<bob> hi Alice!", Some("alice")),
            Kind::Mention { prefix: 6 }
        );
        assert_eq!(
            classify("* bob waves at alice", Some("alice")),
            Kind::Mention { prefix: 6 }
        );
        assert_eq!(
            classify("<alice> I am alice", Some("alice")),
            Kind::Own { prefix: 8 }
        );
        assert_eq!(
            classify("<bob> malice", Some("alice")),
            Kind::Message { prefix: 6 }
        );
        assert_eq!(classify("*** bob joined; 2 online", None), Kind::Event);
        assert_eq!(classify("! oops", None), Kind::Error);
        assert_eq!(classify("第1条信息:hi", None), Kind::Plain);
    }
}
