//! Whether a line names us: our nick as a whole word, in any case. Word characters are
//! letters and digits of any script, `_` and `-` (the characters nicks are mostly made of), so
//! `alice` is named in `hi alice!` and `@ALICE:` but not in `malice` or `alice_bot`.

use crate::names::fold;

/// Whether `text` names `nick` as a whole word, compared as the server compares nicks
/// (case and compatibility forms ignored).
pub fn names(text: &str, nick: &str) -> bool {
    // Most lines are ASCII, where folding is lower-casing: the Unicode forms are skipped.
    let fold = |s: &str| match s.is_ascii() {
        true => s.to_ascii_lowercase(),
        false => fold(s),
    };
    let nick = fold(nick);
    if nick.is_empty() {
        return false;
    }
    let text = fold(text);
    text.match_indices(&nick).any(|(at, found)| {
        let before = text[..at].chars().next_back();
        let after = text[at + found.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// A character that continues a word.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn a_nick_is_named_as_a_whole_word_in_any_case() {
        for text in [
            "alice",
            "hi alice!",
            "ALICE: look",
            "@Alice, you there?",
            "(alice)",
            "thanks alice.",
            "“alice”",
            "malice alice",
        ] {
            assert!(names(text, "alice"), "{text:?}");
        }
        for text in [
            "malice",
            "alice_bot",
            "alice-2",
            "alices",
            "xalice",
            "ali ce",
            "",
        ] {
            assert!(!names(text, "alice"), "{text:?}");
        }
    }

    #[test]
    fn word_boundaries_know_other_scripts() {
        assert!(names("你好 小明!", "小明"));
        assert!(
            !names("小明明", "小明"),
            "a letter of any script continues a word"
        );
        assert!(names("ПРИВЕТ, Иван", "иван"));
        assert!(!names("Иванов", "иван"));
        assert!(names("hey ａｌｉｃｅ", "alice"), "full-width forms fold");
        assert!(names("guest-1: hi", "guest-1"));
        assert!(!names("guest-12: hi", "guest-1"));
    }
}
