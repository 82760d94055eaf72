//! Drawing: renders an `&App` into a frame and nothing else (no state changes, no parsing).
//!
//! The screen is the scrollback on top, a status bar, and the edit box on the last row, with
//! help or a paste confirmation drawn over it. The scrollback is drawn row by row from the
//! rows [`crate::scrollback::Scrollback::visible`] hands out, never through `Paragraph`'s wrap,
//! so a frame costs the same with 100 lines of history or 100,000.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};
use unicode_segmentation::UnicodeSegmentation;

use crate::app::{App, Conn, Overlay, Role};
use crate::scrollback::{Entry, Kind};

mod inspector_pane;

/// Columns the `HH:MM:SS ` timestamp takes when shown.
pub const TIMESTAMP_WIDTH: usize = 9;

/// Colours a nick can be drawn in; [`crate::app::classify`] picks one per nick.
pub const NICK_COLORS: u8 = 10;

const PALETTE: [Color; NICK_COLORS as usize] = [
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

const PROMPT: &str = "> ";

/// Every key, as the help shows it.
pub const KEYS: &[(&str, &str)] = &[
    ("Enter", "send the line"),
    (
        "Ctrl-D",
        "empty line: send exit, quit when the server closes",
    ),
    ("exit, /quit", "typed: the same"),
    ("Ctrl-C", "quit at once"),
    ("F1, ?", "this help (? on an empty line)"),
    ("PageUp/PageDown", "scroll a page"),
    ("Shift-Up/Down", "scroll a line"),
    ("mouse wheel", "scroll three lines"),
    (
        "Ctrl-End, End",
        "jump to the newest line (End on an empty line)",
    ),
    ("Up/Down", "previous / next line typed"),
    ("Left/Right, Home/End", "move in the line"),
    ("Ctrl-A/E", "start / end of the line"),
    ("Ctrl-B/F", "back / forward one character"),
    ("Alt-B/F", "back / forward one word"),
    ("Ctrl-W", "delete the word before the caret"),
    ("Ctrl-U/K", "delete to the start / end of the line"),
    ("Ctrl-Y", "paste what was deleted"),
    ("F2", "TCP inspector: timeline, handshake, kernel, reads"),
    ("F5", "next inspector page (when it shows one at a time)"),
    ("F3", "show / hide timestamps"),
    ("F4", "release / capture the mouse (select text)"),
    ("Ctrl-L", "repaint the screen"),
];

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The history.
    pub scrollback: Rect,
    /// The TCP inspector (empty when closed).
    pub inspector: Rect,
    /// The status bar.
    pub status: Rect,
    /// The edit box.
    pub input: Rect,
}

/// Columns from which the inspector goes beside the scrollback instead of below it.
const INSPECTOR_BESIDE_FROM: u16 = 110;

/// Splits a terminal of `(cols, rows)`; on tiny terminals the edit box keeps its row first,
/// then the status bar. The inspector, when open, goes beside the scrollback on a wide
/// terminal and below it on a narrow one.
pub fn layout((cols, rows): (u16, u16), inspector: bool) -> Areas {
    let row = |y: u16, height: u16| Rect::new(0, y, cols, height);
    let input = row(rows.saturating_sub(1), rows.min(1));
    let status = row(rows.saturating_sub(2), u16::from(rows >= 2));
    let main = row(0, rows.saturating_sub(2));
    let (scrollback, inspector) = match inspector {
        false => (main, Rect::new(0, 0, 0, 0)),
        true if cols >= INSPECTOR_BESIDE_FROM => {
            let width = (cols / 2).clamp(56, 90);
            let left = Rect::new(0, 0, cols - width, main.height);
            (left, Rect::new(cols - width, 0, width, main.height))
        }
        true => {
            let height = main.height / 2;
            let top = Rect::new(0, 0, cols, main.height - height);
            (top, Rect::new(0, main.height - height, cols, height))
        }
    };
    Areas {
        scrollback,
        inspector,
        status,
        input,
    }
}

/// Draws the whole screen for `app`.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let areas = layout((area.width, area.height), app.inspector.visible);
    let buf = frame.buffer_mut();
    render_scrollback(app, areas.scrollback, buf);
    inspector_pane::render(&app.inspector, areas.inspector, buf);
    render_status(app, areas.status, buf);
    let cursor = render_input(app, areas.input, buf);
    match &app.overlay {
        Overlay::None => {
            if let Some(cursor) = cursor {
                frame.set_cursor_position(cursor);
            }
        }
        Overlay::Help => render_help(area, frame.buffer_mut()),
        Overlay::Paste(_) => {}
    }
}

fn render_scrollback(app: &App, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let rows = app.scrollback.visible(usize::from(area.height));
    // Rows fill from the bottom, as in every chat client.
    let top = area.bottom() - rows.len() as u16;
    for (y, (entry, range, first)) in (top..).zip(rows) {
        let mut x = area.x;
        let right = area.right();
        if app.timestamps {
            let stamp = if first {
                format!("{} ", entry.time)
            } else {
                String::new()
            };
            buf.set_stringn(
                x,
                y,
                &stamp,
                usize::from(right - x),
                Style::new().fg(Color::DarkGray),
            );
            x = (x + TIMESTAMP_WIDTH as u16).min(right);
        }
        for (text, style) in styled_row(entry, range) {
            if x >= right {
                break;
            }
            (x, _) = buf.set_stringn(x, y, text, usize::from(right - x), style);
        }
    }
    let unread = app.scrollback.unread();
    if app.scrollback.offset() > 0 {
        let label = if unread > 0 {
            format!(" ↓ {unread} new (End) ")
        } else {
            " ↓ scrolled up (End) ".into()
        };
        let width = label.chars().count() as u16;
        let x = area.right().saturating_sub(width).max(area.x);
        buf.set_stringn(
            x,
            area.bottom() - 1,
            &label,
            usize::from(area.width),
            Style::new().bg(Color::Yellow).fg(Color::Black),
        );
    }
}

/// Splits one row of an entry into styled pieces: the `<nick>` prefix gets the nick's style.
fn styled_row(entry: &Entry, (start, end): (usize, usize)) -> Vec<(&str, Style)> {
    let text = &entry.text;
    let (prefix_len, prefix_style, body_style) = match entry.kind {
        Kind::Own => (
            nick_prefix_len(text),
            Style::new().fg(Color::White).add_modifier(Modifier::BOLD),
            Style::new(),
        ),
        Kind::Message { nick_len, color } => (
            nick_len,
            Style::new()
                .fg(PALETTE[usize::from(color) % PALETTE.len()])
                .add_modifier(Modifier::BOLD),
            Style::new(),
        ),
        Kind::Event => (0, Style::new(), Style::new().fg(Color::Cyan)),
        Kind::Error => (0, Style::new(), Style::new().fg(Color::LightRed)),
        Kind::Plain => (0, Style::new(), Style::new()),
        Kind::Sent => (0, Style::new(), Style::new().fg(Color::Green)),
        Kind::Note => (
            0,
            Style::new(),
            Style::new()
                .fg(Color::DarkGray)
                .add_modifier(Modifier::ITALIC),
        ),
    };
    let split = prefix_len.clamp(start, end);
    [
        (&text[start..split], prefix_style),
        (&text[split..end], body_style),
    ]
    .into_iter()
    .filter(|(piece, _)| !piece.is_empty())
    .collect()
}

fn nick_prefix_len(text: &str) -> usize {
    text.find("> ").map_or(0, |i| i + 2)
}

fn render_status(app: &App, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let base = Style::new().bg(Color::Blue).fg(Color::White);
    buf.set_style(area, base);
    let (state, state_color) = match &app.conn {
        Conn::Connecting => ("connecting".to_owned(), Color::Yellow),
        Conn::Connected => ("connected".to_owned(), Color::LightGreen),
        Conn::Reconnecting { secs, .. } => (format!("reconnecting in {secs} s"), Color::Yellow),
        Conn::Closed(reason) => (format!("closed: {reason}"), Color::LightRed),
    };
    // Most useful first: a narrow terminal cuts the end.
    let mut parts = vec![(state, base.fg(state_color).add_modifier(Modifier::BOLD))];
    let role = match app.settings.role {
        Role::Hosting => "hosting",
        Role::Joined => "joined",
    };
    parts.push((role.to_owned(), base));
    if let Some(nick) = &app.nick {
        parts.push((nick.clone(), base.add_modifier(Modifier::BOLD)));
    }
    if let Some(online) = app.online {
        parts.push((format!("{online} online"), base));
    }
    let mode = if app.settings.raw { "raw" } else { "chat" };
    parts.push((mode.to_owned(), base));
    let traffic = format!("in {} out {}", bytes(app.bytes_in), bytes(app.bytes_out));
    parts.push((traffic, base));
    if app.conn == Conn::Connected
        && let Some(rtt) = app.inspector.info.and_then(|info| info.rtt_us)
    {
        parts.push((format!("rtt {:.2} ms", rtt as f64 / 1000.0), base));
    }
    let addr = match (app.local, app.peer) {
        (Some(local), Some(peer)) => format!("{local} → {peer}"),
        _ => app.settings.target.clone(),
    };
    parts.push((addr, base));
    let mut x = area.x + 1;
    for (i, (text, style)) in parts.iter().enumerate() {
        let room = usize::from(area.right().saturating_sub(x));
        if i > 0 {
            (x, _) = buf.set_stringn(x, area.y, " │ ", room, base);
        }
        let room = usize::from(area.right().saturating_sub(x));
        (x, _) = buf.set_stringn(x, area.y, text, room, *style);
    }
    let help = " F1 help ";
    let help_x = area.right().saturating_sub(help.len() as u16);
    if help_x > x {
        buf.set_stringn(help_x, area.y, help, help.len(), base.fg(Color::Gray));
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// Draws the edit box; returns where the terminal cursor goes (at the caret, by display width,
/// so an input method's candidate window opens in the right place).
fn render_input(app: &App, area: Rect, buf: &mut Buffer) -> Option<Position> {
    if area.is_empty() {
        return None;
    }
    if let Overlay::Paste(lines) = &app.overlay {
        let ask = format!(
            "paste {} lines? Enter sends each line, Esc drops them",
            lines.len()
        );
        buf.set_stringn(
            area.x,
            area.y,
            ask,
            usize::from(area.width),
            Style::new().fg(Color::Yellow),
        );
        return None;
    }
    let prompt_width = (PROMPT.len() as u16).min(area.width);
    buf.set_stringn(
        area.x,
        area.y,
        PROMPT,
        usize::from(prompt_width),
        Style::new().fg(Color::Cyan),
    );
    let width = usize::from(area.width - prompt_width);
    if width == 0 {
        return None;
    }
    let (cursor, scroll) = app.input.cursor_and_scroll(width);
    let mut column = 0;
    let mut visible = String::new();
    for grapheme in app.input.value().graphemes(true) {
        let cells = ratatui::buffer::CellWidth::cell_width(grapheme) as usize;
        if column >= scroll {
            visible.push_str(grapheme);
        } else if column + cells > scroll {
            // A wide character cut by the left edge: show the gap, not half of it.
            visible.extend(std::iter::repeat_n(' ', column + cells - scroll));
        }
        column += cells;
    }
    buf.set_stringn(area.x + prompt_width, area.y, &visible, width, Style::new());
    let caret = u16::try_from(cursor.saturating_sub(scroll)).unwrap_or(u16::MAX);
    Some(Position::new(
        (area.x + prompt_width)
            .saturating_add(caret)
            .min(area.right().saturating_sub(1)),
        area.y,
    ))
}

fn render_help(area: Rect, buf: &mut Buffer) {
    let key_width = KEYS.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let lines: Vec<String> = KEYS
        .iter()
        .map(|(key, what)| format!(" {key:key_width$}  {what}"))
        .collect();
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 3;
    let height = lines.len() as u16 + 2;
    let popup = Rect::new(
        area.x + area.width.saturating_sub(width) / 2,
        area.y + area.height.saturating_sub(height) / 2,
        width.min(area.width),
        height.min(area.height),
    );
    Clear.render(popup, buf);
    let block = Block::bordered()
        .title(" tcpchat keys (any key closes) ")
        .border_style(Style::new().fg(Color::Cyan));
    Paragraph::new(lines.join("\n"))
        .block(block)
        .render(popup, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_never_overlaps_or_overflows_down_to_one_cell() {
        for rows in 0..30 {
            for cols in [0, 1, 2, 80] {
                let areas = layout((cols, rows), false);
                let total = areas.scrollback.height + areas.status.height + areas.input.height;
                assert_eq!(total, rows, "{cols}x{rows}");
                for wide in [cols, 200] {
                    let open = layout((wide, rows), true);
                    let main = open.scrollback.union(open.inspector);
                    assert_eq!(main.height, rows.saturating_sub(2), "{wide}x{rows}");
                    assert!(!open.scrollback.intersects(open.inspector));
                }
                assert!(
                    areas.input.bottom() <= rows
                        && areas.status.bottom() <= areas.input.top().max(areas.status.bottom())
                );
            }
        }
    }

    #[test]
    fn byte_counts_read_like_a_person_writes_them() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1_048_576), "3.0 MiB");
    }
}
