//! Draws the TCP inspector: a tab row, then either every section stacked (a tall pane) or the
//! page chosen with F5. Reads an [`Inspector`]; changes nothing.

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

use crate::i18n::Language;
use crate::inspector::{Arrow, Closer, Direction, Inspector, Knowledge, Page, Step};
use crate::tcpinfo::{self, TcpInfo};
use crate::tls::record::Content;

/// Rows from which every section is shown at once instead of one page.
const STACKED_FROM: u16 = 34;

/// Rows the stacked layout gives the ladder and the reads (the kernel figures get what they
/// need at the pane's width; the timeline the rest).
const LADDER_ROWS: u16 = 10;
const READS_ROWS: u16 = 7;

/// The tab row's hint, and the hint where the tabs leave no room for it (80 columns).
const HINT: &str = " F5 next · F2 closes";
const HINT_SHORT: &str = " F5 · F2";
const TITLE_TEXT: &str = " TCP inspector ";

pub(super) const DIM: Style = Style::new().fg(Color::DarkGray);
pub(super) const TITLE: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);

/// Whether a pane of `area` shows the client's four pages stacked in one.
pub(super) fn stacks(area: Rect) -> bool {
    area.height >= STACKED_FROM
}

/// Draws `inspector` into `area` (nothing if the area is empty); the server's and the framing
/// pages speak `language`.
pub(super) fn render(inspector: &Inspector, language: Language, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    buf.set_style(area, Style::new().bg(Color::Black));
    let stacked = stacks(area);
    render_tabs(inspector.page, stacked, row(area, 0), buf);
    let body = Rect::new(area.x, area.y + 1, area.width, area.height - 1);
    // The server's page and the framing lab's take the pane, however tall.
    if inspector.page == Page::Server {
        super::server_pane::render(inspector, language, body, buf);
    } else if inspector.page == Page::Framing {
        super::framing_pane::render(inspector, language, body, buf);
    } else if stacked {
        let mut y = body.y;
        for (page, rows) in [
            (Page::Ladder, LADDER_ROWS),
            (Page::Kernel, kernel_rows(inspector, body.width)),
            (Page::Reads, READS_ROWS),
        ] {
            let section = Rect::new(body.x, y, body.width, rows);
            buf.set_stringn(
                section.x,
                y,
                page.title(),
                usize::from(section.width),
                TITLE,
            );
            render_page(inspector, page, below_title(section), buf);
            y += rows;
        }
        let rest = Rect::new(body.x, y, body.width, body.bottom().saturating_sub(y));
        buf.set_stringn(
            rest.x,
            y,
            Page::Timeline.title(),
            usize::from(rest.width),
            TITLE,
        );
        render_page(inspector, Page::Timeline, below_title(rest), buf);
    } else {
        render_page(inspector, inspector.page, body, buf);
    }
}

fn below_title(area: Rect) -> Rect {
    Rect::new(
        area.x,
        area.y + 1,
        area.width,
        area.height.saturating_sub(1),
    )
}

fn row(area: Rect, y: u16) -> Rect {
    Rect::new(area.x, area.y + y, area.width, 1)
}

fn render_tabs(current: Page, stacked: bool, area: Rect, buf: &mut Buffer) {
    buf.set_style(area, Style::new().bg(Color::DarkGray).fg(Color::White));
    let mut x = area.x;
    let mut put = |text: &str, style: Style, buf: &mut Buffer| {
        let room = usize::from(area.right().saturating_sub(x));
        (x, _) = buf.set_stringn(x, area.y, text, room, style);
    };
    let bar = Style::new().bg(Color::DarkGray).fg(Color::White);
    put(TITLE_TEXT, bar.add_modifier(Modifier::BOLD), buf);
    let chosen = bar.bg(Color::Cyan).fg(Color::Black);
    if stacked {
        // Three views: the client's four pages stacked, the server's, the framing lab's.
        let views = [
            (" client ", !matches!(current, Page::Server | Page::Framing)),
            (" server ", current == Page::Server),
            (" framing ", current == Page::Framing),
        ];
        let used = TITLE_TEXT.len() + 1 + views.iter().map(|(name, _)| name.len()).sum::<usize>();
        let hint = match used + HINT.chars().count() <= usize::from(area.width) {
            true => HINT,
            false => HINT_SHORT,
        };
        put("│", bar, buf);
        for (name, on) in views {
            put(name, if on { chosen } else { bar }, buf);
        }
        put(hint, bar.fg(Color::Gray), buf);
        return;
    }
    let tabs: Vec<String> = Page::ALL
        .iter()
        .map(|page| format!(" {} ", page.title()))
        .collect();
    let used: usize = TITLE_TEXT.len() + tabs.iter().map(String::len).sum::<usize>();
    let width = usize::from(area.width);
    let hint = if used + HINT.chars().count() <= width {
        HINT
    } else {
        HINT_SHORT
    };
    if used + hint.chars().count() <= width {
        for (page, tab) in Page::ALL.iter().zip(&tabs) {
            put(tab, if *page == current { chosen } else { bar }, buf);
        }
    } else {
        // Too narrow for every tab: the page shown, and where it is among them.
        let at = Page::ALL.iter().position(|&p| p == current).unwrap_or(0);
        let tab = format!(" {} {}/{} ", current.title(), at + 1, Page::ALL.len());
        put(&tab, chosen, buf);
    }
    put(hint, bar.fg(Color::Gray), buf);
}

fn render_page(inspector: &Inspector, page: Page, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    match page {
        Page::Timeline => render_timeline(inspector, area, buf),
        Page::Ladder => render_ladders(inspector, area, buf),
        Page::Kernel => render_kernel(inspector, area, buf),
        Page::Reads => render_reads(inspector, area, buf),
        // Drawn by `render` itself, never stacked.
        Page::Server | Page::Framing => {}
    }
}

/// Writes `pieces` on one row, left to right, cut at the area's edge.
pub(super) fn put_row(buf: &mut Buffer, area: Rect, y: u16, pieces: &[(&str, Style)]) {
    let mut x = area.x;
    for (text, style) in pieces {
        let room = usize::from(area.right().saturating_sub(x));
        if room == 0 {
            break;
        }
        (x, _) = buf.set_stringn(x, y, text, room, *style);
    }
}

fn render_timeline(inspector: &Inspector, area: Rect, buf: &mut Buffer) {
    let entries = inspector.timeline();
    if entries.len() == 0 {
        put_row(buf, area, area.y, &[("nothing yet", DIM)]);
        return;
    }
    // Scrolled back, the last row says how much is newer instead of showing an entry.
    // The view never scrolls past a full first page.
    let rows = usize::from(area.height);
    let back = inspector
        .timeline_scrolled_back()
        .min(entries.len().saturating_sub(rows - 1));
    let shown = rows - usize::from(back > 0 && rows > 1);
    let end = entries.len() - back;
    let skip = end.saturating_sub(shown);
    let rows = inspector.timeline().skip(skip).take(end - skip);
    let mut y = area.y;
    for entry in rows {
        let time = format!("{:>9.4}s ", entry.at.as_secs_f64());
        let color = match entry.step {
            Step::Setup => Color::Cyan,
            Step::Send => Color::Green,
            Step::Recv => Color::White,
            Step::Close => Color::Yellow,
            Step::Error => Color::LightRed,
        };
        put_row(
            buf,
            area,
            y,
            &[(&time, DIM), (&entry.text, Style::new().fg(color))],
        );
        y += 1;
    }
    if back > 0 && y < area.bottom() {
        let marker = format!("↓ {back} newer · Alt-Down, Alt-PgDn");
        put_row(
            buf,
            area,
            y,
            &[(&marker, Style::new().fg(Color::Black).bg(Color::Yellow))],
        );
    }
}

fn render_ladders(inspector: &Inspector, area: Rect, buf: &mut Buffer) {
    let mut lines: Vec<Vec<(String, Style)>> = Vec::new();
    let took = inspector.handshake_took.map_or_else(String::new, |d| {
        format!(" (connect() took {})", crate::inspector::millis(d))
    });
    lines.push(vec![
        (format!("handshake{took}"), TITLE),
        ("   client ▸ server".to_owned(), DIM),
    ]);
    if inspector.handshake.is_empty() {
        lines.push(vec![("  not connected yet".to_owned(), DIM)]);
    }
    lines.extend(inspector.handshake.iter().map(arrow_line));
    let close_title = match inspector.closer {
        Some(Closer::Us) => "close: we closed first",
        Some(Closer::Server) => "close: the server closed first",
        Some(Closer::Both) => "close: both at once (the FINs crossed)",
        Some(Closer::Unknown) => "close: who closed first cannot be told",
        None => "close",
    };
    lines.push(vec![(close_title.to_owned(), TITLE)]);
    if inspector.close.is_empty() {
        lines.push(vec![(
            "  open (Ctrl-D sends exit, then our FIN)".to_owned(),
            DIM,
        )]);
    }
    lines.extend(inspector.close.iter().map(arrow_line));
    for (y, line) in (area.y..area.bottom()).zip(&lines) {
        let pieces: Vec<(&str, Style)> = line.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        put_row(buf, area, y, &pieces);
    }
}

fn arrow_line(arrow: &Arrow) -> Vec<(String, Style)> {
    // What is known is drawn solid; what is inferred, dashed.
    let shaft = match (arrow.direction, arrow.knowledge) {
        (Direction::Out, Knowledge::Observed) => " ─────────▶ ",
        (Direction::In, Knowledge::Observed) => " ◀───────── ",
        (Direction::Out, Knowledge::Inferred) => " ╌╌╌╌╌╌╌╌╌▶ ",
        (Direction::In, Knowledge::Inferred) => " ◀╌╌╌╌╌╌╌╌╌ ",
    };
    let (knowledge, style) = match arrow.knowledge {
        Knowledge::Observed => ("observed", Style::new().fg(Color::LightGreen)),
        Knowledge::Inferred => ("inferred", Style::new().fg(Color::Yellow)),
    };
    vec![
        (
            format!("  {:<8}", arrow.label),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        (shaft.to_owned(), Style::new().fg(Color::Cyan)),
        (format!("{knowledge} "), style),
        (arrow.evidence.clone(), DIM.fg(Color::Gray)),
    ]
}

/// One kernel figure: its label, its value as text, and whether it changed since the last
/// sample.
fn figures(info: &TcpInfo, previous: Option<&TcpInfo>) -> Vec<(&'static str, String, bool)> {
    let changed = |get: fn(&TcpInfo) -> Option<u64>| previous.is_some_and(|p| get(p) != get(info));
    let num = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), group);
    let ms = |us: Option<u64>| {
        us.map_or_else(
            || "-".to_owned(),
            |us| format!("{:.2} ms", us as f64 / 1000.0),
        )
    };
    let count = |label: &'static str, unit: &str, get: fn(&TcpInfo) -> Option<u64>| {
        (label, format!("{}{unit}", num(get(info))), changed(get))
    };
    vec![
        (
            "state",
            info.state.map_or("-", tcpinfo::state_name).to_owned(),
            previous.is_some_and(|p| p.state != info.state),
        ),
        (
            "rtt",
            format!("{} ± {}", ms(info.rtt_us), ms(info.rttvar_us)),
            changed(|i| i.rtt_us) || changed(|i| i.rttvar_us),
        ),
        ("rto", ms(info.rto_us), changed(|i| i.rto_us)),
        count("cwnd", " segs", |i| i.cwnd),
        count("mss", " B", |i| i.snd_mss),
        count("retrans", "", |i| i.retransmits),
        count("acked", " B", |i| i.bytes_acked),
        count("received", " B", |i| i.bytes_received),
        (
            "segs out/in",
            format!("{} / {}", num(info.segs_out), num(info.segs_in)),
            changed(|i| i.segs_out) || changed(|i| i.segs_in),
        ),
        count("unacked", " segs", |i| i.unacked),
        count("not sent", " B", |i| i.notsent_bytes),
        (
            "recv-q/send-q",
            format!("{} / {} B", num(info.recv_queue), num(info.send_queue)),
            changed(|i| i.recv_queue) || changed(|i| i.send_queue),
        ),
    ]
}

/// `1234567` → `1,234,567`.
pub(super) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render_kernel(inspector: &Inspector, area: Rect, buf: &mut Buffer) {
    let Some(info) = &inspector.kernel.latest else {
        let why = if cfg!(target_os = "linux") {
            "no TCP_INFO yet: it is read while connected"
        } else {
            "TCP_INFO is Linux's; the timeline works everywhere"
        };
        put_row(buf, area, area.y, &[(why, DIM)]);
        return;
    };
    let figures = figures(info, inspector.kernel.previous.as_ref());
    let columns = kernel_columns(&figures, area.width);
    let figure_rows = u16::try_from(figures.len().div_ceil(columns.len())).unwrap_or(u16::MAX);
    if on_loopback(inspector) && figure_rows < area.height {
        put_row(buf, area, area.y + figure_rows, &[(LOOPBACK_NOTE, DIM)]);
    }
    let mut x = area.x;
    for (col, (label_width, width)) in columns.iter().enumerate() {
        let column = figures.iter().skip(col).step_by(columns.len());
        for (y, (label, value, changed)) in (area.y..area.bottom()).zip(column) {
            let cell = Rect::new(x, y, (*width).min(area.right().saturating_sub(x)), 1);
            let value_style = if *changed {
                Style::new().fg(Color::Black).bg(Color::Yellow)
            } else {
                Style::new().fg(Color::White)
            };
            let label = format!("{label:<label_width$}");
            put_row(buf, cell, cell.y, &[(&label, DIM), (value, value_style)]);
        }
        x = x.saturating_add(*width + KERNEL_GAP);
    }
}

/// Columns between the kernel page's two columns.
const KERNEL_GAP: u16 = 2;

/// The kernel page's columns, each as (label width, whole width): two, side by side, when both
/// fit in `width` as their longest label and value need; otherwise one.
fn kernel_columns(figures: &[(&str, String, bool)], width: u16) -> Vec<(usize, u16)> {
    let measure = |skip: usize, step: usize| {
        let column = || figures.iter().skip(skip).step_by(step);
        let label = column().map(|(l, ..)| l.len() + 1).max().unwrap_or(0);
        let value = column()
            .map(|(_, v, _)| v.chars().count())
            .max()
            .unwrap_or(0);
        (label, u16::try_from(label + value).unwrap_or(u16::MAX))
    };
    let (left, right) = (measure(0, 2), measure(1, 2));
    if left.1.saturating_add(KERNEL_GAP).saturating_add(right.1) <= width {
        // Room to spare goes between the columns, so they read as two.
        let half = (width / 2).saturating_sub(KERNEL_GAP);
        let room = width - KERNEL_GAP - right.1;
        vec![(left.0, left.1.max(half.min(room))), right]
    } else {
        vec![measure(0, 1)]
    }
}

/// What a learner reading loopback's figures should know: they are not a network's.
const LOOPBACK_NOTE: &str = "loopback: mss ~64 KiB (Ethernet 1448), µs rtt, no loss";

/// Whether the current (or last) connection runs over loopback.
fn on_loopback(inspector: &Inspector) -> bool {
    inspector
        .connections
        .last()
        .is_some_and(|(_, peer)| peer.ip().is_loopback())
}

/// Rows the kernel figures need in `width`, their title (and the loopback note) included.
fn kernel_rows(inspector: &Inspector, width: u16) -> u16 {
    let Some(info) = &inspector.kernel.latest else {
        return 2;
    };
    let figures = figures(info, None);
    let columns = kernel_columns(&figures, width).len();
    let note = u16::from(on_loopback(inspector));
    u16::try_from(1 + figures.len().div_ceil(columns)).unwrap_or(u16::MAX) + note
}

fn render_reads(inspector: &Inspector, area: Rect, buf: &mut Buffer) {
    let reads = inspector.reads();
    if reads.len() == 0 {
        put_row(buf, area, area.y, &[("no recv() yet", DIM)]);
        return;
    }
    let skip = reads.len().saturating_sub(usize::from(area.height));
    for (y, read) in (area.y..).zip(inspector.reads().skip(skip)) {
        // After a reconnect the session is named: `s2#1` is the first read of the second.
        let number = match read.session {
            1 => format!("#{}", read.number),
            session => format!("s{session}#{}", read.number),
        };
        let head = format!(
            "{number:<6}{:>8.3}s {:>5} B  ",
            read.at.as_secs_f64(),
            read.len
        );
        // With TLS, the records that carried it: what the wire saw, beside what they carried.
        let tls = tls_records(&read.tls);
        // What is left is split between hex (3 columns a byte) and text (about 1 a byte).
        let room = usize::from(area.width).saturating_sub(head.len() + tls.chars().count());
        let shown = (room / 4).min(read.bytes.len());
        let mut hex = String::with_capacity(shown * 3);
        for byte in &read.bytes[..shown] {
            let _ = write!(hex, "{byte:02x} ");
        }
        // The text column decodes every kept byte, so a character is not cut where the hex
        // column stops; the screen edge cuts it by width instead.
        let text = printable(&read.bytes);
        let more = if shown < read.len { "…" } else { "" };
        put_row(
            buf,
            area,
            y,
            &[
                (&head, DIM),
                (&tls, Style::new().fg(Color::Cyan)),
                (&hex, Style::new().fg(Color::Gray)),
                (&text, Style::new().fg(Color::White)),
                (more, DIM),
            ],
        );
    }
}

/// The TLS records behind one read, e.g. `⟨TLS data 1262 B, data 90 B⟩ `: the ciphertext on
/// the wire beside the plaintext it carried. Nothing for plain TCP.
fn tls_records(records: &[(Content, u16)]) -> String {
    /// Records listed by size; past these, only how many more.
    const LISTED: usize = 3;
    if records.is_empty() {
        return String::new();
    }
    let mut list: Vec<String> = records
        .iter()
        .take(LISTED)
        .map(|(content, len)| {
            let name = match content {
                Content::ApplicationData => "data",
                other => other.name(),
            };
            format!("{name} {len} B")
        })
        .collect();
    if records.len() > LISTED {
        list.push(format!("+{}", records.len() - LISTED));
    }
    format!("⟨TLS {}⟩ ", list.join(", "))
}

/// The bytes as text, with line ends shown as `⏎` and other controls as `.`.
pub(super) fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| match c {
            '\n' => '⏎',
            c if c.is_control() || crate::codec::is_stripped(c) => '.',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(1234), "1,234");
        assert_eq!(group(1_234_567), "1,234,567");
    }

    #[test]
    fn only_changed_figures_are_marked() {
        let before = TcpInfo {
            segs_out: Some(2),
            rtt_us: Some(50),
            ..TcpInfo::default()
        };
        let after = TcpInfo {
            segs_out: Some(5),
            ..before
        };
        let marked: Vec<&str> = figures(&after, Some(&before))
            .into_iter()
            .filter(|(_, _, changed)| *changed)
            .map(|(label, _, _)| label)
            .collect();
        assert_eq!(marked, ["segs out/in"]);
    }

    #[test]
    fn controls_in_raw_reads_are_shown_not_sent() {
        assert_eq!(printable(b"hi\n\x1b[2J"), "hi⏎.[2J");
    }
}
