//! Whether a line names us: our nick as a whole word, in any case. Word characters are
//! letters and digits of any script, `_` and `-` (the characters nicks are mostly made of), so
//! `alice` is named in `hi alice!` and `@ALICE:` but not in `malice` or `alice_bot`.
//!
//! Case is ignored by Unicode's lower-casing; compatibility forms (a full-width `ａｌｉｃｅ`)
//! are not folded as the server folds nicks: that costs a normalisation of every line received,
//! for a spelling nobody types to name someone.

/// Whether `text` names `nick` as a whole word, in any case. Every line received is asked, so
/// an ASCII nick (most are) is looked for in place, without copying the line.
pub fn names(text: &str, nick: &str) -> bool {
    if nick.is_empty() || text.len() < nick.len() / 4 {
        return false;
    }
    if nick.is_ascii() {
        return names_ascii(text, nick.as_bytes());
    }
    let nick = nick.to_lowercase();
    let text = text.to_lowercase();
    text.match_indices(&nick)
        .any(|(at, found)| whole_word(&text, at, at + found.len()))
}

/// [`names`] for an ASCII nick: each place its first letter (in either case) starts.
fn names_ascii(text: &str, nick: &[u8]) -> bool {
    let bytes = text.as_bytes();
    let Some(last_start) = bytes.len().checked_sub(nick.len()) else {
        return false;
    };
    let first = nick[0];
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, &bytes[..=last_start]).any(|at| {
        let end = at + nick.len();
        // `at` and `end` fall on ASCII bytes: both are character boundaries.
        bytes[at..end].eq_ignore_ascii_case(nick) && whole_word(text, at, end)
    })
}

/// Whether `text[start..end]` is a word of its own: no word character touches either end.
fn whole_word(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
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
        assert!(names("guest-1: hi", "guest-1"));
        assert!(!names("guest-12: hi", "guest-1"));
    }
}
