//! The buffer bar: every buffer on one row, numbered as Alt-1…9 reach them, irssi's act bar
//! and weechat's buflist in one line: `1:#lobby 2:#rust(3) 3:@bob(1!)`. The buffer on screen
//! is highlighted; `(N)` counts unread lines, `(N!)` unread lines that named us (and
//! `(N,M!)` N unread of which M named us). When the row is too narrow it folds around the
//! buffer on screen and counts the hidden ones at each end, `<+2` and `+3>`, with a `!` if one
//! of them named us.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use super::style;

/// One buffer as the bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarItem<'a> {
    /// Its name (`#rust`, `@bob`).
    pub name: &'a str,
    /// Lines from others that arrived while it was not on screen.
    pub unread: usize,
    /// Of those, the ones that named us.
    pub mentions: usize,
}

/// The bar.
#[derive(Debug)]
pub struct BufferBar<'a> {
    /// Every buffer, in order.
    pub items: Vec<BarItem<'a>>,
    /// The index of the one on screen.
    pub current: usize,
}

impl BarItem<'_> {
    /// `2:#rust(3)`, numbered from 1.
    fn label(&self, index: usize) -> String {
        let counts = match (self.unread, self.mentions) {
            (0, 0) => String::new(),
            (unread, 0) => format!("({unread})"),
            (unread, mentions) if unread <= mentions => format!("({mentions}!)"),
            (unread, mentions) => format!("({unread},{mentions}!)"),
        };
        format!("{}:{}{counts}", index + 1, self.name)
    }

    fn style(&self, current: bool) -> Style {
        match (current, self.unread, self.mentions) {
            (true, ..) => style::BAR_CURRENT,
            (false, _, 1..) => style::MENTION,
            (false, 1.., 0) => style::BAR_UNREAD,
            (false, 0, 0) => style::BAR_QUIET,
        }
    }
}

/// How the hidden buffers at one end are counted: `<+2`, `+3!>`.
fn hidden(count: usize, mentioned: bool, left: bool) -> String {
    let bang = if mentioned { "!" } else { "" };
    match (count, left) {
        (0, _) => String::new(),
        (count, true) => format!("<+{count}{bang}"),
        (count, false) => format!("+{count}{bang}>"),
    }
}

impl BufferBar<'_> {
    /// The first and last buffer shown (the one on screen always among them) in `width`
    /// columns, with a space between items and the hidden counts at the ends; `None` if not
    /// even the one on screen fits with its counts.
    fn window(&self, labels: &[String], width: usize) -> Option<(usize, usize)> {
        let cell = |i: usize| labels[i].width() + 1;
        let count = self.items.len();
        let needs = |first: usize, last: usize| {
            let shown: usize = (first..=last).map(cell).sum();
            let mentioned = |range: std::ops::Range<usize>| {
                range.into_iter().any(|i| self.items[i].mentions > 0)
            };
            let left = hidden(first, mentioned(0..first), true);
            let right = hidden(count - 1 - last, mentioned(last + 1..count), false);
            shown + left.width() + usize::from(first > 0) + right.width()
        };
        let current = self.current.min(count - 1);
        if needs(current, current) > width {
            return None;
        }
        let (mut first, mut last) = (current, current);
        loop {
            let mut grew = false;
            if last + 1 < count && needs(first, last + 1) <= width {
                last += 1;
                grew = true;
            }
            if first > 0 && needs(first - 1, last) <= width {
                first -= 1;
                grew = true;
            }
            if !grew {
                return Some((first, last));
            }
        }
    }
}

impl Widget for BufferBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() || self.items.is_empty() {
            return;
        }
        let labels: Vec<String> = (0..self.items.len())
            .map(|i| self.items[i].label(i))
            .collect();
        let right_edge = area.right();
        let Some((first, last)) = self.window(&labels, usize::from(area.width)) else {
            // No room for the hidden counts: the buffer on screen, as much of it as fits.
            let current = self.current.min(labels.len() - 1);
            let width = usize::from(area.width);
            buf.set_stringn(area.x, area.y, &labels[current], width, style::BAR_CURRENT);
            return;
        };
        let room = |x: u16| usize::from(right_edge.saturating_sub(x));
        let mentioned =
            |range: std::ops::Range<usize>| range.into_iter().any(|i| self.items[i].mentions > 0);
        let mut x = area.x;
        let left_hidden = mentioned(0..first);
        let left = hidden(first, left_hidden, true);
        if !left.is_empty() {
            let look = if left_hidden {
                style::MENTION
            } else {
                style::BAR_QUIET
            };
            (x, _) = buf.set_stringn(x, area.y, &left, room(x), look);
            x = x.saturating_add(1).min(right_edge);
        }
        let shown = self.items.iter().zip(&labels).enumerate();
        for (index, (item, label)) in shown.take(last + 1).skip(first) {
            let look = item.style(index == self.current);
            (x, _) = buf.set_stringn(x, area.y, label, room(x), look);
            x = x.saturating_add(1).min(right_edge);
        }
        let count = self.items.len();
        let right_hidden = mentioned(last + 1..count);
        let right = hidden(count - 1 - last, right_hidden, false);
        if !right.is_empty() {
            let look = if right_hidden {
                style::MENTION
            } else {
                style::BAR_QUIET
            };
            buf.set_stringn(x, area.y, &right, room(x), look);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&'static str]) -> Vec<BarItem<'static>> {
        names
            .iter()
            .map(|name| BarItem {
                name,
                unread: 0,
                mentions: 0,
            })
            .collect()
    }

    fn row(bar: BufferBar<'_>, width: u16) -> String {
        let area = Rect::new(0, 0, width, 1);
        let mut buf = Buffer::empty(area);
        bar.render(area, &mut buf);
        (0..width)
            .map(|x| buf[(x, 0)].symbol())
            .collect::<String>()
            .trim_end()
            .to_owned()
    }

    #[test]
    fn counts_read_as_unread_and_mentions() {
        let item = |unread, mentions| BarItem {
            name: "#r",
            unread,
            mentions,
        };
        assert_eq!(item(0, 0).label(1), "2:#r");
        assert_eq!(item(3, 0).label(1), "2:#r(3)");
        assert_eq!(item(2, 2).label(1), "2:#r(2!)");
        assert_eq!(item(5, 1).label(1), "2:#r(5,1!)");
    }

    #[test]
    fn a_narrow_bar_folds_around_the_buffer_on_screen() {
        let names = ["#lobby", "#one", "#two", "#three", "#four", "#five"];
        let all = BufferBar {
            items: items(&names),
            current: 0,
        };
        assert_eq!(
            row(all, 80),
            "1:#lobby 2:#one 3:#two 4:#three 5:#four 6:#five"
        );
        let mut list = items(&names);
        list[0].mentions = 1;
        list[0].unread = 1;
        let folded = row(
            BufferBar {
                items: list,
                current: 4,
            },
            24,
        );
        assert!(folded.contains("5:#four"), "{folded}");
        assert!(folded.starts_with("<+"), "{folded}");
        assert!(folded.contains('!'), "a hidden mention is marked: {folded}");
        // However narrow, the one on screen is what is shown.
        let tiny = row(
            BufferBar {
                items: items(&names),
                current: 3,
            },
            6,
        );
        assert_eq!(tiny, "4:#thr");
    }
}
