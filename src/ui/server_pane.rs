//! Draws the inspector's server page: the listener, the connections it accepted, the last
//! client SYN and the TIME-WAITs on its port, each figure with where it comes from (a kernel
//! field, `/proc/net/tcp`). Reads a [`ServerSide`]; changes nothing.

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use super::inspector_pane::{DIM, TITLE, group, put_row};
use crate::i18n::{Language, tr};
use crate::inspector::{Inspector, ServerSide};
use crate::saved_syn::Syn;
use crate::server::observe::{ConnectionSample, ListenerSample, ServerSample};
use crate::tcp_table::{Holder, Lingering};
use crate::tcpinfo::{self, TcpInfo};

const VALUE: Style = Style::new().fg(Color::White);
const STATE: Style = Style::new().fg(Color::LightGreen);
const NICK: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);

/// One row: pieces of text, each with its style.
type Line = Vec<(String, Style)>;

/// Draws the inspector's server page into `area`: its lines wrapped to the width, from the
/// row it is scrolled to, with a marker for what is above or below.
pub(super) fn render(inspector: &Inspector, language: Language, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let lines = match &inspector.server {
        ServerSide::Elsewhere => elsewhere(language),
        ServerSide::Sampled(sample) => sampled(sample, language, area.width),
    };
    let width = usize::from(area.width);
    let rows: Vec<Line> = lines
        .iter()
        .flat_map(|line| wrap_line(line, width))
        .collect();
    let height = usize::from(area.height);
    let top = inspector
        .server_scroll()
        .min(rows.len().saturating_sub(height));
    let below = rows.len().saturating_sub(top + height);
    let marker = Style::new().fg(Color::Black).bg(Color::Yellow);
    let mut shown: Vec<Line> = rows.into_iter().skip(top).take(height).collect();
    if top > 0
        && let Some(first) = shown.first_mut()
    {
        *first = vec![(tr!(language, "server_view.above", count = top), marker)];
    }
    if below > 0
        && height > 1
        && let Some(last) = shown.last_mut()
    {
        *last = vec![(
            tr!(language, "server_view.below", count = below + 1),
            marker,
        )];
    }
    for (y, line) in (area.y..area.bottom()).zip(&shown) {
        let pieces: Vec<(&str, Style)> = line.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        put_row(buf, area, y, &pieces);
    }
}

/// Continuation rows of a wrapped line start with this.
const CONTINUED: &str = "    ";

/// `line` cut into rows of `width` columns at spaces (mid-word only for a word longer than a
/// row), each row after the first indented.
fn wrap_line(line: &Line, width: usize) -> Vec<Line> {
    let indent = CONTINUED.len();
    let mut rows: Vec<Line> = vec![Vec::new()];
    let mut used = 0;
    for (text, style) in line {
        for word in text.split_inclusive(' ') {
            let columns = unicode_width::UnicodeWidthStr::width(word.trim_end());
            let fits_a_row = columns <= width.saturating_sub(indent);
            if used + columns > width && used > indent && fits_a_row {
                rows.push(vec![(CONTINUED.to_owned(), DIM)]);
                used = indent;
            }
            for c in word.chars() {
                let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                if used + w > width && used > indent {
                    if c == ' ' {
                        continue; // a space at the end of a row is not carried over
                    }
                    rows.push(vec![(CONTINUED.to_owned(), DIM)]);
                    used = indent;
                }
                if let Some(row) = rows.last_mut() {
                    match row.last_mut() {
                        Some((piece, last)) if *last == *style => piece.push(c),
                        _ => row.push((c.to_string(), *style)),
                    }
                }
                used += w;
            }
        }
    }
    rows
}

/// The plain answer when this process hosts no room.
fn elsewhere(language: Language) -> Vec<Line> {
    vec![
        vec![(tr!(language, "server_view.elsewhere"), VALUE)],
        Vec::new(),
        vec![(
            tr!(language, "server_view.elsewhere_how"),
            DIM.fg(Color::Gray),
        )],
    ]
}

fn sampled(sample: &ServerSample, language: Language, width: u16) -> Vec<Line> {
    let mut lines = listener(&sample.listener, language);
    lines.extend(connections(&sample.connections, language));
    lines.extend(syn(sample.last_syn.as_ref(), language, width));
    lines.extend(lingering(&sample.lingering, language));
    lines
}

fn listener(listener: &ListenerSample, language: Language) -> Vec<Line> {
    let info = listener.info.unwrap_or_default();
    let count = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), group);
    let reuse = match listener.reuse_address {
        Some(true) => tr!(language, "server_view.on"),
        Some(false) => tr!(language, "server_view.off"),
        None => "-".to_owned(),
    };
    let accepting = match listener.paused {
        true => (tr!(language, "server_view.paused"), NICK),
        false => (tr!(language, "server_view.accepting"), VALUE),
    };
    vec![
        vec![
            (tr!(language, "server_view.listener"), TITLE),
            (format!(" {} ", listener.addr), VALUE),
            (state(&info), STATE),
            (" · ".to_owned(), DIM),
            (
                tr!(
                    language,
                    "server_view.accept_queue",
                    queued = count(info.unacked),
                    backlog = count(info.sacked)
                ),
                VALUE,
            ),
            (" · ".to_owned(), DIM),
            (tr!(language, "server_view.reuseaddr", state = reuse), VALUE),
            (" · ".to_owned(), DIM),
            accepting,
        ],
        vec![(tr!(language, "server_view.listener_source"), DIM)],
    ]
}

fn state(info: &TcpInfo) -> String {
    info.state.map_or("-", tcpinfo::state_name).to_owned()
}

fn connections(connections: &[ConnectionSample], language: Language) -> Vec<Line> {
    let mut lines = vec![vec![
        (
            tr!(
                language,
                "server_view.connections",
                count = connections.len()
            ),
            TITLE,
        ),
        (tr!(language, "server_view.connections_source"), DIM),
    ]];
    if connections.is_empty() {
        lines.push(vec![(tr!(language, "server_view.none_yet"), DIM)]);
    }
    for connection in connections {
        let local = connection
            .local
            .map_or_else(|| "-".to_owned(), |addr| addr.to_string());
        let nick = match &connection.nick {
            Some(nick) => (nick.clone(), NICK),
            None => (tr!(language, "server_view.no_nick"), DIM),
        };
        let info = connection.info.unwrap_or_default();
        lines.push(vec![
            (format!("  {} ⇄ {local}  ", connection.peer), VALUE),
            nick,
            ("  ".to_owned(), DIM),
            (state(&info), STATE),
        ]);
        let count = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), group);
        let figures = tr!(
            language,
            "server_view.figures",
            rtt = rtt(info.rtt_us),
            received = count(info.bytes_received),
            acked = count(info.bytes_acked),
            segs_in = count(info.segs_in),
            segs_out = count(info.segs_out),
            recv_q = count(info.recv_queue),
            send_q = count(info.send_queue)
        );
        lines.push(vec![(format!("    {figures}"), DIM.fg(Color::Gray))]);
    }
    lines
}

/// `tcpi_rtt` (µs) as µs below a millisecond, as loopback's are, else as ms.
fn rtt(us: Option<u64>) -> String {
    match us {
        None => "-".to_owned(),
        Some(us) if us < 1000 => format!("{us} µs"),
        Some(us) => format!("{:.2} ms", us as f64 / 1000.0),
    }
}

fn syn(syn: Option<&Result<Syn, String>>, language: Language, width: u16) -> Vec<Line> {
    let mut lines = vec![vec![
        (tr!(language, "server_view.syn"), TITLE),
        (tr!(language, "server_view.syn_source"), DIM),
    ]];
    let syn = match syn {
        None => {
            lines.push(vec![(tr!(language, "server_view.syn_none"), DIM)]);
            return lines;
        }
        Some(Err(why)) => {
            lines.push(vec![(
                tr!(language, "server_view.syn_unread", why = why),
                DIM,
            )]);
            return lines;
        }
        Some(Ok(syn)) => syn,
    };
    lines[0].push((format!("  {} → {}", syn.source, syn.destination), VALUE));
    let options: Vec<String> = syn.options.iter().map(ToString::to_string).collect();
    lines.push(vec![(
        tr!(
            language,
            "server_view.syn_fields",
            isn = syn.isn,
            window = syn.window,
            options = options.join(", ")
        ),
        VALUE,
    )]);
    if let Some(mss) = syn.mss().filter(|_| syn.source.ip().is_loopback()) {
        lines.push(vec![(
            tr!(language, "server_view.loopback", mss = mss),
            Style::new().fg(Color::Yellow),
        )]);
    }
    // The raw headers, as saved: the IP header, then TCP's.
    let raw = &syn.raw;
    let split = syn.ip_header_len.min(raw.len());
    let per_row = usize::from(width).saturating_sub(6) / 3;
    for (name, bytes) in [("IP ", &raw[..split]), ("TCP", &raw[split..])] {
        for (i, chunk) in bytes.chunks(per_row.max(1)).enumerate() {
            let mut hex = String::with_capacity(chunk.len() * 3);
            for byte in chunk {
                let _ = write!(hex, "{byte:02x} ");
            }
            let label = if i == 0 { name } else { "   " };
            lines.push(vec![
                (format!("  {label} "), DIM),
                (hex, Style::new().fg(Color::Gray)),
            ]);
        }
    }
    lines
}

fn lingering(rows: &Result<Vec<Lingering>, String>, language: Language) -> Vec<Line> {
    let mut lines = vec![vec![
        (tr!(language, "server_view.time_wait"), TITLE),
        (tr!(language, "server_view.time_wait_source"), DIM),
    ]];
    match rows {
        Err(why) => lines.push(vec![(
            tr!(language, "server_view.time_wait_unread", why = why),
            DIM,
        )]),
        Ok(rows) if rows.is_empty() => {
            lines.push(vec![(tr!(language, "server_view.time_wait_none"), DIM)]);
        }
        Ok(rows) => {
            for row in rows {
                let holder = match row.holder {
                    Holder::Server => tr!(language, "server_view.held_server"),
                    Holder::Client => tr!(language, "server_view.held_client"),
                };
                let left = row.left.map_or_else(String::new, |left| {
                    tr!(language, "server_view.left", secs = left.as_secs())
                });
                lines.push(vec![
                    (format!("  {} ⇄ {}  ", row.client, row.server), VALUE),
                    (holder, Style::new().fg(Color::Yellow)),
                    (format!("  {left}"), DIM.fg(Color::Gray)),
                ]);
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_with_their_styles() {
        let text = |rows: &[Line]| -> Vec<String> {
            rows.iter()
                .map(|row| row.iter().map(|(t, _)| t.as_str()).collect())
                .collect()
        };
        let line: Line = vec![("ab cd ".to_owned(), DIM), ("ef gh".to_owned(), VALUE)];
        let rows = wrap_line(&line, 9);
        assert_eq!(text(&rows), ["ab cd ef ", "    gh"]);
        assert_eq!(rows[1].last(), Some(&("gh".to_owned(), VALUE)));
        // A word longer than a row is cut.
        let rows = wrap_line(&vec![("abcdefghijkl".to_owned(), VALUE)], 8);
        assert_eq!(text(&rows), ["abcdefgh", "    ijkl"]);
        // Wide characters count two columns.
        let rows = wrap_line(&vec![("服务器一侧的".to_owned(), VALUE)], 8);
        assert_eq!(rows[0], [("服务器一".to_owned(), VALUE)]);
    }

    #[test]
    fn loopback_rtts_read_in_microseconds() {
        assert_eq!(rtt(Some(52)), "52 µs");
        assert_eq!(rtt(Some(12_345)), "12.35 ms");
        assert_eq!(rtt(None), "-");
    }
}
