//! The status bar: the connection's state first, then what matters most, cut from the end on a
//! narrow terminal; the help hint at the right edge when there is room.

use std::net::SocketAddr;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

use super::style::STATUS;
use crate::app::{Conn, Role, TlsStatus};
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
}

const HELP_HINT: &str = " F1 help ";

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        buf.set_style(area, STATUS);
        let mut x = area.x + 1;
        for (i, (text, style)) in self.parts().iter().enumerate() {
            let room = |x: u16| usize::from(area.right().saturating_sub(x));
            if i > 0 {
                (x, _) = buf.set_stringn(x, area.y, " │ ", room(x), STATUS);
            }
            (x, _) = buf.set_stringn(x, area.y, text, room(x), *style);
        }
        let help_x = area.right().saturating_sub(HELP_HINT.len() as u16);
        if help_x > x {
            let hint = STATUS.fg(Color::Gray);
            buf.set_stringn(help_x, area.y, HELP_HINT, HELP_HINT.len(), hint);
        }
    }
}

impl StatusBar<'_> {
    /// The pieces, most useful first.
    fn parts(&self) -> Vec<(String, Style)> {
        let bold = STATUS.add_modifier(Modifier::BOLD);
        let (state, state_color) = match self.conn {
            Conn::Connecting => ("connecting".to_owned(), Color::Yellow),
            Conn::Connected => ("connected".to_owned(), Color::LightGreen),
            Conn::Reconnecting { secs, .. } => (format!("reconnecting in {secs} s"), Color::Yellow),
            Conn::Closed(reason) => (format!("closed: {reason}"), Color::LightRed),
        };
        let mut parts = vec![(state, bold.fg(state_color))];
        if let Some(tls) = self.tls {
            if tls.insecure {
                let loud = bold.fg(Color::White).bg(Color::Red);
                parts.push(("INSECURE: certificate not checked".to_owned(), loud));
            }
            if let Some(session) = tls.session {
                parts.push((session.to_string(), bold.fg(Color::LightGreen)));
            }
        }
        let role = match self.role {
            Role::Hosting => "hosting",
            Role::Joined => "joined",
        };
        parts.push((role.to_owned(), STATUS));
        if let Some(nick) = self.nick {
            parts.push((nick.to_owned(), bold));
        }
        if let Some(buffer) = self.buffer {
            parts.push((buffer.to_owned(), bold));
        }
        if let Some(online) = self.online {
            parts.push((format!("{online} online"), STATUS));
        }
        let mode = match self.framing {
            Framing::Lines => "chat",
            Framing::Raw => "raw",
        };
        parts.push((mode.to_owned(), STATUS));
        let traffic = format!("in {} out {}", bytes(self.bytes_in), bytes(self.bytes_out));
        parts.push((traffic, STATUS));
        if let Some(rtt) = self.rtt_us {
            parts.push((format!("rtt {:.2} ms", rtt as f64 / 1000.0), STATUS));
        }
        let addr = match self.ends {
            Some((local, peer)) => format!("{local} → {peer}"),
            None => self.target.to_owned(),
        };
        parts.push((addr, STATUS));
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
    fn byte_counts_read_like_a_person_writes_them() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1_048_576), "3.0 MiB");
    }
}
