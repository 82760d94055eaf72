//! The scrollback pane: the rows [`Scrollback::visible`] hands out, newest at the bottom, drawn
//! row by row (never through `Paragraph`'s wrap), so a frame costs the same with 100 lines of
//! history or 100,000; the unread marker, a rule before the first line that arrived while the
//! buffer was not on screen; and the marker that says how much is new below a view scrolled up.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use super::style;
use crate::i18n::{Language, tr};
use crate::scrollback::{Entry, Scrollback};

/// Columns the `HH:MM:SS ` timestamp takes when shown.
pub const TIMESTAMP_WIDTH: u16 = 9;

/// The scrollback as drawn.
#[derive(Debug)]
pub struct ScrollbackView<'a> {
    /// The lines.
    pub scrollback: &'a Scrollback,
    /// Whether each line starts with its arrival time.
    pub timestamps: bool,
    /// The number of the first line that arrived while the buffer was not on screen (see
    /// [`Scrollback::end`]): the unread marker goes before it, if it is in view.
    pub marker: Option<u64>,
    /// The language of the markers.
    pub language: Language,
}

impl Widget for ScrollbackView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let height = usize::from(area.height);
        let mut rows: Vec<Option<_>> = self
            .scrollback
            .visible(height)
            .into_iter()
            .map(Some)
            .collect();
        // The marker takes a row of its own before its line's first row; the top row gives
        // way if the view is full (and if that is the marked row, the marker is above the view).
        let marked = self.marker.and_then(|number| self.scrollback.get(number));
        let at = marked.and_then(|marked| {
            rows.iter().position(|row| {
                row.as_ref()
                    .is_some_and(|(entry, _, first)| *first && std::ptr::eq(*entry, marked))
            })
        });
        match at {
            Some(0) if rows.len() == height => {}
            Some(at) => {
                rows.insert(at, None);
                if rows.len() > height {
                    rows.remove(0);
                }
            }
            None => {}
        }
        // Rows fill from the bottom, as in every chat client.
        let top = area.bottom() - rows.len() as u16;
        let right = area.right();
        for (y, row) in (top..).zip(rows) {
            let Some((entry, range, first)) = row else {
                // The marker's words; the rest of its row is rule.
                let marker = tr!(self.language, "scrollback.new");
                let rest = usize::from(area.width).saturating_sub(marker.width());
                let rule = format!("{marker}{}", "─".repeat(rest));
                buf.set_stringn(
                    area.x,
                    y,
                    rule,
                    usize::from(area.width),
                    style::unread_marker(),
                );
                continue;
            };
            let mut x = area.x;
            if self.timestamps {
                if first {
                    let stamp = entry.time.format("%H:%M:%S").to_string();
                    buf.set_stringn(x, y, stamp, usize::from(right - x), style::DIM);
                }
                x = (x + TIMESTAMP_WIDTH).min(right);
            }
            for (text, style) in styled_row(entry, range) {
                if x >= right {
                    break;
                }
                (x, _) = buf.set_stringn(x, y, text, usize::from(right - x), style);
            }
        }
        if self.scrollback.offset() > 0 {
            let label = match self.scrollback.unread() {
                0 => tr!(self.language, "scrollback.scrolled_up"),
                unread => tr!(self.language, "scrollback.unread", count = unread),
            };
            let width = label.width() as u16;
            let x = right.saturating_sub(width).max(area.x);
            let (y, room) = (area.bottom() - 1, usize::from(area.width));
            buf.set_stringn(x, y, &label, room, style::SCROLLED);
        }
    }
}

/// Splits one row of an entry into styled pieces: the `<nick> ` prefix gets the nick's style.
fn styled_row(
    entry: &Entry,
    (start, end): (usize, usize),
) -> impl Iterator<Item = (&str, ratatui::style::Style)> {
    let text = &entry.text;
    let (prefix_len, prefix_style, body_style) = style::line_styles(entry.kind, text);
    let split = prefix_len.clamp(start, end);
    [
        (&text[start..split], prefix_style),
        (&text[split..end], body_style),
    ]
    .into_iter()
    .filter(|(piece, _)| !piece.is_empty())
}
