//! The status bar: the connection's state first, then the rest, whole parts only, the least
//! useful dropped first on a narrow terminal (the state never); the hint to the help at the right edge from
//! 40 columns on (80×24 included).

use std::net::SocketAddr;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use super::style::STATUS;
use crate::app::{Conn, Role, TlsStatus};
use crate::i18n::{Language, tr};
use crate::protocol::Framing;

/// Everything the status bar shows.
#[derive(Debug)]
pub struct StatusBar<'a> {
    /// The connection's state.
    pub conn: &'a Conn,
    /// Hosting or joined.
    pub role: Role,
    /// Our nick, once the server said it.
    pub nick: Option<&'a str>,
    /// The buffer on screen (`#lobby`, `#rust`, `@bob`), in the chat protocol.
    pub buffer: Option<&'a str>,
    /// Users online, once the server said it.
    pub online: Option<usize>,
    /// Chat lines or raw reads.
    pub framing: Framing,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// The kernel's smoothed RTT, in microseconds, while connected.
    pub rtt_us: Option<u64>,
    /// Both ends, once connected.
    pub ends: Option<(SocketAddr, SocketAddr)>,
    /// What we connect to, until then.
    pub target: &'a str,
    /// The TLS layer, with `--tls`.
    pub tls: Option<TlsStatus>,
    /// The key that opens the help (F1 unless the config file says otherwise), for the hint;
    /// without one, no hint.
    pub help_key: Option<&'a str>,
    /// The language of its words.
    pub language: Language,
}

/// From this width on, the hint to the help always shows.
const HINT_FROM: u16 = 40;

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        buf.set_style(area, STATUS);
        // The hint to the help keeps its place from HINT_FROM columns on (80×24 included):
        // the parts before it are shown whole, as many as fit, the least useful go first.
        let hint = self
            .help_key
            .map(|key| tr!(self.language, "status.help_hint", key = key));
        let hint_width = hint.as_deref().map_or(0, UnicodeWidthStr::width) as u16;
        let show_hint = area.width >= HINT_FROM && hint.is_some();
        let end = match show_hint {
            true => area.right().saturating_sub(hint_width),
            false => area.right(),
        };
        let mut parts = self.parts();
        let room = usize::from(end.saturating_sub(area.x + 1));
        let width = |parts: &[Part]| {
            parts.iter().map(|p| p.text.width()).sum::<usize>() + 3 * parts.len().saturating_sub(1)
        };
        // The least useful part goes until the rest fit (the state is never dropped).
        while parts.len() > 1 && width(&parts) > room {
            let Some(least) = parts
                .iter()
                .enumerate()
                .skip(1)
                .max_by_key(|(_, part)| part.rank)
                .map(|(at, _)| at)
            else {
                break;
            };
            parts.remove(least);
        }
        let mut x = area.x + 1;
        for (i, part) in parts.iter().enumerate() {
            let room = |x: u16| usize::from(end.saturating_sub(x));
            if i > 0 {
                (x, _) = buf.set_stringn(x, area.y, " │ ", room(x), STATUS);
            }
            (x, _) = buf.set_stringn(x, area.y, &part.text, room(x), part.style);
        }
        if let Some(hint) = hint.filter(|_| show_hint) {
            let style = STATUS.fg(Color::Gray);
            buf.set_stringn(end, area.y, &hint, usize::from(hint_width), style);
        }
    }
}

/// One piece of the status bar.
#[derive(Debug)]
struct Part {
    text: String,
    style: Style,
    /// How useful it is: 0 most; the largest goes first when the bar is too narrow.
    rank: u8,
}

impl StatusBar<'_> {
    /// The pieces, in the order shown, each with how useful it is.
    fn parts(&self) -> Vec<Part> {
        self.pieces()
            .into_iter()
            .map(|(text, style, rank)| Part { text, style, rank })
            .collect()
    }

    fn pieces(&self) -> Vec<(String, Style, u8)> {
        let bold = STATUS.add_modifier(Modifier::BOLD);
        let language = self.language;
        let (state, state_color) = match self.conn {
            Conn::Connecting => (tr!(language, "status.connecting"), Color::Yellow),
            Conn::Connected => (tr!(language, "status.connected"), Color::LightGreen),
            Conn::Reconnecting { secs, .. } => (
                tr!(language, "status.reconnecting", secs = secs),
                Color::Yellow,
            ),
            Conn::Closed(reason) => (
                tr!(language, "status.closed", reason = reason),
                Color::LightRed,
            ),
        };
        let mut parts = vec![(state, bold.fg(state_color), 0)];
        if let Some(tls) = self.tls {
            if tls.insecure {
                // Never dropped before the nick: what it gives up must stay in sight.
                let loud = bold.fg(Color::White).bg(Color::Red);
                parts.push((tr!(language, "status.insecure"), loud, 1));
            }
            if let Some(session) = tls.session {
                parts.push((session.to_string(), bold.fg(Color::LightGreen), 3));
            }
        }
        let role = match self.role {
            Role::Hosting => "status.hosting",
            Role::Joined => "status.joined",
        };
        parts.push((tr!(language, role), STATUS, 4));
        if let Some(nick) = self.nick {
            parts.push((nick.to_owned(), bold, 1));
        }
        if let Some(buffer) = self.buffer {
            parts.push((buffer.to_owned(), bold, 2));
        }
        if let Some(online) = self.online {
            parts.push((tr!(language, "status.online", count = online), STATUS, 5));
        }
        // Raw mode is worth saying; chat is what nearly every session is.
        let (mode, rank) = match self.framing {
            Framing::Lines => ("status.chat", 7),
            Framing::Raw => ("status.raw", 1),
        };
        parts.push((tr!(language, mode), STATUS, rank));
        let (received, sent) = (bytes(self.bytes_in), bytes(self.bytes_out));
        let traffic = tr!(language, "status.traffic", received = received, sent = sent);
        parts.push((traffic, STATUS, 3));
        if let Some(rtt) = self.rtt_us {
            let ms = format!("{:.2}", rtt as f64 / 1000.0);
            parts.push((tr!(language, "status.rtt", ms = ms), STATUS, 6));
        }
        let addr = match self.ends {
            Some((local, peer)) => format!("{local} → {peer}"),
            None => self.target.to_owned(),
        };
        parts.push((addr, STATUS, 8));
        parts
    }
}

/// A byte count as a person writes it.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_hint_shows_at_80_columns_and_parts_are_never_cut() {
        let conn = Conn::Connected;
        let bar = || sample(&conn, Some("F1"));
        for width in [40, 80, 100] {
            let area = Rect::new(0, 0, width, 1);
            let mut buf = Buffer::empty(area);
            bar().render(area, &mut buf);
            let row: String = buf.content.iter().map(|c| c.symbol()).collect();
            assert!(row.trim_end().ends_with("F1 help"), "{width}: {row:?}");
            let shown = row.trim_end().strip_suffix("F1 help").unwrap().trim_end();
            let shown: Vec<&str> = shown.trim_start().split(" │ ").collect();
            let all: Vec<String> = bar().parts().into_iter().map(|p| p.text).collect();
            assert!(
                shown.iter().all(|s| all.iter().any(|p| p == s)),
                "{width}: every part whole: {shown:?}"
            );
            assert_eq!(shown[0], "connected");
            if width == 80 {
                assert!(shown.contains(&"in 120.6 KiB out 789 B"), "{shown:?}");
            }
        }
    }

    #[test]
    fn the_hint_names_the_key_the_help_is_on_and_goes_when_none_is() {
        let conn = Conn::Connected;
        let row = |help_key| {
            let area = Rect::new(0, 0, 80, 1);
            let mut buf = Buffer::empty(area);
            sample(&conn, help_key).render(area, &mut buf);
            buf.content.iter().map(|c| c.symbol()).collect::<String>()
        };
        assert!(row(Some("F10")).trim_end().ends_with(" F10 help"));
        assert!(!row(None).contains("help"));
    }

    fn sample<'a>(conn: &'a Conn, help_key: Option<&'a str>) -> StatusBar<'a> {
        StatusBar {
            conn,
            role: Role::Joined,
            nick: Some("alice"),
            buffer: Some("#lobby"),
            online: Some(12),
            framing: Framing::Lines,
            bytes_in: 123_456,
            bytes_out: 789,
            rtt_us: Some(42),
            ends: Some((
                "127.0.0.1:51234".parse().unwrap(),
                "127.0.0.1:8888".parse().unwrap(),
            )),
            help_key,
            target: "127.0.0.1:8888",
            tls: None,
            language: Language::English,
        }
    }

    #[test]
    fn byte_counts_read_like_a_person_writes_them() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1_048_576), "3.0 MiB");
    }
}
