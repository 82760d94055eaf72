//! Nicknames and room names: what a valid one is, and when two are the same. Shared by the
//! server (who may take which nick, which room may exist), the protocol reader (a line names a
//! real nick or room or is not that kind of line) and the command line (`--nick`).
//!
//! Both follow one set of character rules (no spaces, controls, invisible characters, `<` or
//! `>`), both are stored composed (NFC) and compared by [`fold`] (compatibility forms and case
//! ignored). A nick cannot start with `*`, `#` or `@`: the protocol's events, rooms and private
//! conversations begin that way.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Longest nick, in characters.
pub const MAX_NICK_CHARS: usize = 24;

/// Longest room name, in characters after its `#`.
pub const MAX_ROOM_CHARS: usize = 32;

/// A validated nickname, kept in Unicode's composed form (NFC), so `e` + U+0301 is stored and
/// shown as `é`. Two nicks are the same person when their [`Nick::key`]s are equal: case and
/// compatibility forms are ignored, so `Alice`, `alice` and the full-width `ａｌｉｃｅ` cannot
/// all be online. Look-alikes from different scripts (Cyrillic `а` for Latin `a`) are not
/// folded: that needs Unicode's confusables table and a policy on mixed scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nick(String);

/// Why a requested nick was refused; the `Display` text is sent to the client after `! `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NickError {
    /// No characters at all.
    Empty,
    /// More than [`MAX_NICK_CHARS`] characters.
    TooLong,
    /// A space, a control character, an invisible one, or `<`/`>` that would fake a message prefix.
    BadCharacter(char),
    /// Starts with a character reserved for the protocol: `*` (events and `/me` lines), `#`
    /// (room names) or `@` (private conversations).
    BadStart(char),
    /// Someone online already has it (ignoring case).
    Taken(String),
}

impl fmt::Display for NickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "usage: /nick NAME"),
            Self::TooLong => write!(f, "nick too long: at most {MAX_NICK_CHARS} characters"),
            Self::BadCharacter(c) => write!(
                f,
                "nick may not contain {} (no spaces, control or invisible characters, < or >)",
                c.escape_unicode()
            ),
            Self::BadStart(c) => write!(
                f,
                "nick may not start with {c} (kept for events, rooms and private messages)"
            ),
            Self::Taken(nick) => write!(f, "nick {nick} is already taken"),
        }
    }
}

impl Nick {
    /// Validates a requested nick: 1–24 characters, none of them whitespace, control, invisible
    /// (zero-width, bidi, format) or `<`/`>`, and not starting with `*` or `#`.
    pub fn parse(requested: &str) -> Result<Self, NickError> {
        let composed: String = requested.nfc().collect();
        check(&composed)?;
        Ok(Self(composed))
    }

    /// Whether `text` is a nick [`Nick::parse`] would accept, without allocating.
    pub fn is_valid(text: &str) -> bool {
        check(text).is_ok()
    }

    /// The nick a server gives the `n`th guest.
    pub fn guest(n: u64) -> Self {
        Self(format!("guest-{n}"))
    }

    /// The identity used for uniqueness (see [`fold`]).
    pub fn key(&self) -> String {
        fold(&self.0)
    }

    /// The nick as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What two names are compared by: compatibility-composed (NFKC) and in lower case, so `Alice`,
/// `alice` and the full-width `ａｌｉｃｅ` are one.
pub fn fold(name: &str) -> String {
    let folded: String = name.nfkc().collect();
    folded.to_lowercase().nfkc().collect()
}

fn check(requested: &str) -> Result<(), NickError> {
    let Some(first) = requested.chars().next() else {
        return Err(NickError::Empty);
    };
    if requested.chars().count() > MAX_NICK_CHARS {
        return Err(NickError::TooLong);
    }
    if let Some(bad) = requested.chars().find(|&c| is_forbidden(c)) {
        return Err(NickError::BadCharacter(bad));
    }
    if matches!(first, '*' | '#' | '@') {
        return Err(NickError::BadStart(first));
    }
    Ok(())
}

/// A validated room name: `#` and 1–32 characters by the nick's character rules, stored
/// composed; two are one room when their [`RoomName::key`]s are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

/// Why a room name was refused; the `Display` text is sent after `! `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNameError {
    /// It does not start with `#`.
    NoHash,
    /// Nothing after the `#`, or a second `#`.
    Empty,
    /// More than [`MAX_ROOM_CHARS`] characters after the `#`.
    TooLong,
    /// A space, a control character, an invisible one, or `<`/`>`.
    BadCharacter(char),
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHash => f.write_str("a room's name starts with #, as in #lobby"),
            Self::Empty => f.write_str("a room needs a name after its #"),
            Self::TooLong => write!(
                f,
                "room name too long: at most {MAX_ROOM_CHARS} characters after the #"
            ),
            Self::BadCharacter(c) => write!(
                f,
                "a room's name may not contain {} (no spaces, control or invisible characters, < or >)",
                c.escape_unicode()
            ),
        }
    }
}

impl RoomName {
    /// Validates a requested room name.
    pub fn parse(requested: &str) -> Result<Self, RoomNameError> {
        let composed: String = requested.nfc().collect();
        check_room(&composed)?;
        Ok(Self(composed))
    }

    /// Whether `text` is a room name [`RoomName::parse`] would accept.
    pub fn is_valid(text: &str) -> bool {
        check_room(text).is_ok()
    }

    /// The room everyone starts in.
    pub fn lobby() -> Self {
        Self(crate::protocol::LOBBY.to_owned())
    }

    /// The identity rooms are told apart by (see [`fold`]).
    pub fn key(&self) -> String {
        fold(&self.0)
    }

    /// The name as text, `#` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_room(requested: &str) -> Result<(), RoomNameError> {
    let name = requested.strip_prefix('#').ok_or(RoomNameError::NoHash)?;
    if name.is_empty() || name.starts_with('#') {
        return Err(RoomNameError::Empty);
    }
    if name.chars().count() > MAX_ROOM_CHARS {
        return Err(RoomNameError::TooLong);
    }
    if let Some(bad) = name.chars().find(|&c| is_forbidden(c)) {
        return Err(RoomNameError::BadCharacter(bad));
    }
    Ok(())
}

fn is_forbidden(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>') || is_default_ignorable(c)
}

/// Unicode's `Default_Ignorable_Code_Point` set (DerivedCoreProperties.txt): characters a
/// renderer draws as nothing, so two nicks that look the same could differ by them.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_unicode_nicks_up_to_the_limit() {
        assert_eq!(Nick::parse("小明").unwrap().as_str(), "小明");
        assert!(Nick::parse(&"é".repeat(MAX_NICK_CHARS)).is_ok());
        assert_eq!(
            Nick::parse(&"x".repeat(MAX_NICK_CHARS + 1)),
            Err(NickError::TooLong)
        );
    }

    #[test]
    fn refuses_empty_spaces_controls_invisibles_and_brackets() {
        assert_eq!(Nick::parse(""), Err(NickError::Empty));
        for bad in [
            "a b",
            "a\tb",
            "a\x1bb",
            "a\u{200b}b",
            "a\u{202e}b",
            "<bob>",
            "a\u{feff}",
            "\u{3164}",
        ] {
            assert!(
                matches!(Nick::parse(bad), Err(NickError::BadCharacter(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_the_prefixes_of_events_and_rooms() {
        assert_eq!(Nick::parse("***"), Err(NickError::BadStart('*')));
        assert_eq!(Nick::parse("#lobby"), Err(NickError::BadStart('#')));
        assert_eq!(Nick::parse("@bob"), Err(NickError::BadStart('@')));
        assert!(Nick::parse("a*b#").is_ok());
    }

    #[test]
    fn composed_and_decomposed_forms_are_one_nick() {
        let composed = Nick::parse("\u{e9}").unwrap();
        let decomposed = Nick::parse("e\u{301}").unwrap();
        assert_eq!(decomposed.as_str(), "\u{e9}", "stored composed");
        assert_eq!(composed.key(), decomposed.key());
        let full_width = Nick::parse("ＡＬＩＣＥ").unwrap();
        assert_eq!(full_width.as_str(), "ＡＬＩＣＥ", "shown as typed");
        assert_eq!(full_width.key(), Nick::parse("alice").unwrap().key());
    }

    #[test]
    fn room_names_follow_the_nick_rules_after_their_hash() {
        assert_eq!(RoomName::parse("#Rust").unwrap().key(), "#rust");
        assert_eq!(
            RoomName::parse("#ＲＵＳＴ").unwrap().key(),
            RoomName::parse("#rust").unwrap().key()
        );
        assert!(RoomName::parse(&format!("#{}", "x".repeat(MAX_ROOM_CHARS))).is_ok());
        for (bad, error) in [
            ("rust", RoomNameError::NoHash),
            ("#", RoomNameError::Empty),
            ("##x", RoomNameError::Empty),
            ("#a b", RoomNameError::BadCharacter(' ')),
            ("#a/../b\u{202e}", RoomNameError::BadCharacter('\u{202e}')),
        ] {
            assert_eq!(RoomName::parse(bad), Err(error), "{bad:?}");
        }
        assert_eq!(
            RoomName::parse(&format!("#{}", "x".repeat(MAX_ROOM_CHARS + 1))),
            Err(RoomNameError::TooLong)
        );
        assert!(RoomName::is_valid("#lobby") && RoomName::is_valid("#中文"));
    }

    #[test]
    fn key_ignores_case() {
        assert_eq!(
            Nick::parse("Alice").unwrap().key(),
            Nick::parse("aLICE").unwrap().key()
        );
    }
}
