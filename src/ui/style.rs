//! Every colour and style the chat screen uses, in one place: the nick palette and the look of
//! each kind of line. (The inspector pane keeps its own few.)

use ratatui::style::{Color, Modifier, Style};

use crate::scrollback::Kind;

/// Colours a nick can be drawn in; each nick always gets the same one.
const PALETTE: [Color; 10] = [
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// The status bar's background and text.
pub const STATUS: Style = Style::new().bg(Color::Blue).fg(Color::White);

/// Timestamps and other quiet text.
pub const DIM: Style = Style::new().fg(Color::DarkGray);

/// The edit box's prompt.
pub const PROMPT: Style = Style::new().fg(Color::Cyan);

/// Questions put to the user in the edit box's place (a paste waiting for Enter).
pub const ASK: Style = Style::new().fg(Color::Yellow);

/// The marker shown while scrolled up.
pub const SCROLLED: Style = Style::new().bg(Color::Yellow).fg(Color::Black);

/// Borders of popups (the help).
pub const POPUP_BORDER: Style = Style::new().fg(Color::Cyan);

/// Whatever says we were named: the nick of a line that names us, a buffer with a mention.
pub const MENTION: Style = Style::new()
    .bg(Color::Yellow)
    .fg(Color::Black)
    .add_modifier(Modifier::BOLD);

/// The rule before the first line that arrived while a buffer was not on screen.
pub const UNREAD_MARKER: Style = Style::new().fg(Color::LightRed);

/// The buffer bar's buffer on screen.
pub const BAR_CURRENT: Style = Style::new().add_modifier(Modifier::REVERSED.union(Modifier::BOLD));

/// The buffer bar's buffers with unread lines.
pub const BAR_UNREAD: Style = Style::new().add_modifier(Modifier::BOLD);

/// The buffer bar's quiet buffers.
pub const BAR_QUIET: Style = DIM;

/// The stable colour of `nick` (FNV-1a of its lower-case form), so `Bob` and `bob` agree.
pub fn nick_color(nick: &str) -> Color {
    let hash = nick
        .chars()
        .flat_map(char::to_lowercase)
        .fold(0x811c_9dc5_u32, |hash, c| {
            let mut bytes = [0; 4];
            c.encode_utf8(&mut bytes)
                .bytes()
                .fold(hash, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
        });
    PALETTE[hash as usize % PALETTE.len()]
}

/// How a line of `kind` whose text is `text` is drawn: the style of its `<nick> ` prefix (and
/// that prefix's length in bytes), and the style of the rest.
pub fn line_styles(kind: Kind, text: &str) -> (usize, Style, Style) {
    let nick = |prefix: u16| {
        let prefix = usize::from(prefix);
        let name = text.get(1..prefix.saturating_sub(2)).unwrap_or_default();
        (prefix, name)
    };
    match kind {
        Kind::Own { prefix } => (
            nick(prefix).0,
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            Style::new(),
        ),
        Kind::Message { prefix } => {
            let (len, name) = nick(prefix);
            let style = Style::new()
                .fg(nick_color(name))
                .add_modifier(Modifier::BOLD);
            (len, style, Style::new())
        }
        Kind::Mention { prefix } => (
            usize::from(prefix),
            MENTION,
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Kind::Action => (0, Style::new(), Style::new().fg(Color::Magenta)),
        Kind::Event => (0, Style::new(), Style::new().fg(Color::Cyan)),
        Kind::Replayed => (0, Style::new(), DIM),
        Kind::Rule => (
            0,
            Style::new(),
            DIM.add_modifier(Modifier::UNDERLINED | Modifier::ITALIC),
        ),
        Kind::Error => (0, Style::new(), Style::new().fg(Color::LightRed)),
        Kind::Plain => (0, Style::new(), Style::new()),
        Kind::Sent => (0, Style::new(), Style::new().fg(Color::Green)),
        Kind::Note => (0, Style::new(), DIM.add_modifier(Modifier::ITALIC)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nick_keeps_its_colour_whatever_its_case() {
        assert_eq!(nick_color("Bob"), nick_color("bOB"));
        let colours: std::collections::HashSet<Color> = ["alice", "bob", "carol", "dave", "eve"]
            .into_iter()
            .map(nick_color)
            .collect();
        assert!(colours.len() > 1, "different nicks get different colours");
    }

    #[test]
    fn a_line_that_names_us_has_its_nick_highlighted() {
        let (prefix, nick, body) = line_styles(Kind::Mention { prefix: 6 }, "<bob> hi alice");
        assert_eq!(prefix, 6);
        assert_eq!(nick, MENTION);
        assert!(body.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn own_lines_stand_out_on_any_background() {
        let (prefix, own, _) = line_styles(Kind::Own { prefix: 8 }, "<alice> hi");
        assert_eq!(prefix, 8);
        assert!(own.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(
            own.fg, None,
            "no fixed colour: white on a light terminal is invisible"
        );
    }
}
