//! Every colour and style the chat screen uses, in one place: the nick palette and the look of
//! each kind of line, per [`Theme`]. (The inspector pane keeps its own few.)
//!
//! The theme is chosen once at start (`--theme`, or `theme` in the config file) and read by
//! every style below; `NO_COLOR` turns colour off whatever the theme ([`use_colour`]), keeping
//! bold and reverse, so your own lines still stand out. (crossterm's own `NO_COLOR` handling
//! drops every attribute too; the terminal module turns it off and leaves the choice here.)

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use ratatui::style::{Color, Modifier, Style};

use crate::scrollback::Kind;

/// How the screen is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Theme {
    /// The terminal's own 16 colours, which follow its theme (the default).
    #[default]
    #[value(name = "16")]
    Sixteen,
    /// 256-colour picks that read well on a dark background.
    Dark,
    /// 256-colour picks that read well on a light background.
    Light,
}

static THEME: AtomicU8 = AtomicU8::new(0);

static COLOUR: AtomicBool = AtomicBool::new(true);

/// Draws in colour or not (`NO_COLOR`): without, every cell keeps its bold, italic, underline
/// and reverse, and a cell that had a background colour (the status bar, a mention) is drawn
/// reversed, so it still stands out.
pub fn use_colour(on: bool) {
    COLOUR.store(on, Ordering::Relaxed);
}

/// Takes the colours out of a drawn frame, if colour is off (see [`use_colour`]).
pub fn apply_colour_choice(buf: &mut ratatui::buffer::Buffer) {
    if COLOUR.load(Ordering::Relaxed) {
        return;
    }
    for cell in &mut buf.content {
        if cell.bg != Color::Reset {
            cell.modifier.insert(Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

/// Uses `theme` from now on.
pub fn use_theme(theme: Theme) {
    THEME.store(theme as u8, Ordering::Relaxed);
}

/// The theme in use.
pub fn theme() -> Theme {
    match THEME.load(Ordering::Relaxed) {
        1 => Theme::Dark,
        2 => Theme::Light,
        _ => Theme::Sixteen,
    }
}

/// Nick colours on a dark background (xterm-256 indexes): ten hues, each at least 4.5:1
/// against black (checked in a test).
const DARK_PALETTE: [Color; 10] = [
    Color::Indexed(114),
    Color::Indexed(221),
    Color::Indexed(75),
    Color::Indexed(176),
    Color::Indexed(80),
    Color::Indexed(209),
    Color::Indexed(150),
    Color::Indexed(111),
    Color::Indexed(183),
    Color::Indexed(216),
];

/// Nick colours on a light background: ten hues, each at least 4.5:1 against white.
const LIGHT_PALETTE: [Color; 10] = [
    Color::Indexed(28),
    Color::Indexed(130),
    Color::Indexed(25),
    Color::Indexed(90),
    Color::Indexed(24),
    Color::Indexed(124),
    Color::Indexed(58),
    Color::Indexed(54),
    Color::Indexed(94),
    Color::Indexed(23),
];

/// Colours a nick can be drawn in with the terminal's 16; each nick always gets the same one.
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

/// A lesson's verdict when the prediction was right.
pub const RIGHT: Style = Style::new().fg(Color::Green).add_modifier(Modifier::BOLD);

/// A lesson's question and the choice made.
pub const STRONG: Style = Style::new().add_modifier(Modifier::BOLD);

/// A lesson's verdict when the prediction was wrong, or its step failed.
pub fn wrong() -> Style {
    Style::new().fg(alert()).add_modifier(Modifier::BOLD)
}

/// What the kernel itself said in a lesson (`TCP_INFO`, its table).
pub fn kernel_fact() -> Style {
    Style::new().fg(event())
}

/// The rule before the first line that arrived while a buffer was not on screen.
pub fn unread_marker() -> Style {
    Style::new().fg(alert())
}

/// Errors and the unread rule: bright red on a dark screen, a deep red on a light one.
fn alert() -> Color {
    match theme() {
        Theme::Light => Color::Indexed(124),
        _ => Color::LightRed,
    }
}

/// The server's events.
fn event() -> Color {
    match theme() {
        Theme::Sixteen => Color::Cyan,
        Theme::Dark => Color::Indexed(80),
        Theme::Light => Color::Indexed(23),
    }
}

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
    let palette = match theme() {
        Theme::Sixteen => &PALETTE,
        Theme::Dark => &DARK_PALETTE,
        Theme::Light => &LIGHT_PALETTE,
    };
    palette[hash as usize % palette.len()]
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
        Kind::Event => (0, Style::new(), Style::new().fg(event())),
        Kind::Replayed => (0, Style::new(), DIM),
        Kind::Rule => (
            0,
            Style::new(),
            DIM.add_modifier(Modifier::UNDERLINED | Modifier::ITALIC),
        ),
        Kind::Error => (0, Style::new(), Style::new().fg(alert())),
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

    /// The RGB of an xterm-256 colour index from the 6×6×6 cube or the grey ramp.
    fn rgb(index: u8) -> [f64; 3] {
        let level = |n: u8| if n == 0 { 0.0 } else { f64::from(55 + 40 * n) };
        match index {
            16..=231 => {
                let n = index - 16;
                [level(n / 36), level(n / 6 % 6), level(n % 6)]
            }
            232..=255 => [f64::from(8 + 10 * (index - 232)); 3],
            _ => unreachable!("the palettes use the cube and the ramp only"),
        }
    }

    /// WCAG relative luminance.
    fn luminance([r, g, b]: [f64; 3]) -> f64 {
        let channel = |c: f64| {
            let c = c / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn every_nick_colour_reads_on_its_themes_background() {
        let black = [0.0; 3];
        let white = [255.0; 3];
        for (palette, background, name) in [
            (&DARK_PALETTE, black, "dark"),
            (&LIGHT_PALETTE, white, "light"),
        ] {
            let mut seen = std::collections::HashSet::new();
            for colour in palette {
                let Color::Indexed(index) = *colour else {
                    panic!("{name}: {colour:?} is not a 256-colour index");
                };
                let ratio = contrast(rgb(index), background);
                assert!(ratio >= 4.5, "{name}: colour {index} is {ratio:.2}:1");
                assert!(seen.insert(index), "{name}: {index} twice");
            }
        }
        for (colour, background) in [(23, white), (124, white), (80, black)] {
            let ratio = contrast(rgb(colour), background);
            assert!(ratio >= 4.5, "event or alert colour {colour}: {ratio:.2}:1");
        }
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
