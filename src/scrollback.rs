//! The scrollback: every line received, classified and sanitised once at ingest, wrapped for
//! the current width once (not per frame), bounded, and scrolled by rows.
//!
//! Wrapping is by display width per grapheme (ratatui's own [`CellWidth`], built on
//! unicode-width), so a CJK character takes two columns and is never split, and the rows the
//! renderer draws are exactly the rows counted here. Each entry keeps its row breaks for the
//! current width; a resize re-wraps once, a frame only walks the rows it shows.

use std::collections::VecDeque;

use ratatui::buffer::CellWidth;
use unicode_segmentation::UnicodeSegmentation;

/// Default number of lines kept; the oldest go first.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Columns a tab expands to (to the next multiple).
const TAB_STOP: usize = 4;

/// What a line is, which decides how it is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `<nick> text` where the nick is ours.
    Own,
    /// `<nick> text` from someone else; `color` is stable for the nick.
    Message {
        /// Byte length of the `<nick>` prefix.
        nick_len: usize,
        /// Index into the nick palette, derived from the nick.
        color: u8,
    },
    /// `* ` lines: joins, leaves, renames, `/me`, server notices.
    Event,
    /// `! ` lines: errors from the server.
    Error,
    /// Anything else the server sent (the article's servers send plain text).
    Plain,
    /// What we sent, shown in raw mode where the server does not echo it.
    Sent,
    /// The client's own notes: connecting, closed, reconnecting...
    Note,
}

/// One line of the scrollback.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Sanitised text, tabs expanded.
    pub text: String,
    /// How it is drawn.
    pub kind: Kind,
    /// Local time of arrival, `HH:MM:SS`.
    pub time: String,
    /// Byte offsets where each wrapped row starts (the first is 0) for the current width.
    rows: Vec<u32>,
}

impl Entry {
    /// The wrapped rows of this entry as byte ranges into `text`.
    pub fn rows(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let ends = self
            .rows
            .iter()
            .skip(1)
            .map(|&r| r as usize)
            .chain([self.text.len()]);
        self.rows.iter().map(|&r| r as usize).zip(ends)
    }

    fn row_count(&self) -> usize {
        self.rows.len()
    }
}

/// The bounded, wrapped history.
#[derive(Debug)]
pub struct Scrollback {
    entries: VecDeque<Entry>,
    capacity: usize,
    width: usize,
    total_rows: usize,
    /// Whether the newest entry is still open: its newline has not arrived yet.
    open: bool,
    /// Rows between the bottom of the view and the newest row; 0 follows new lines.
    offset: usize,
    /// Lines that arrived while scrolled up.
    unread: usize,
}

impl Scrollback {
    /// An empty scrollback keeping at most `capacity` lines, wrapped at 80 columns until told.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            width: 80,
            total_rows: 0,
            open: false,
            offset: 0,
            unread: 0,
        }
    }

    /// Adds a complete line.
    pub fn push(&mut self, text: &str, kind: Kind, time: String) {
        self.close_open_line();
        self.push_entry(text, kind, time);
    }

    /// Adds text to the open line (starting one if none is open), reclassifying it with
    /// `classify` as it grows; `complete` closes it.
    pub fn append(
        &mut self,
        text: &str,
        complete: bool,
        time: String,
        classify: impl Fn(&str) -> Kind,
    ) {
        match self.entries.back_mut() {
            Some(last) if self.open => {
                let before = last.row_count();
                last.text.push_str(&expand_tabs(text));
                last.kind = classify(&last.text);
                last.rows = wrap(&last.text, self.width);
                let grown = last.row_count().saturating_sub(before);
                self.total_rows += grown;
                if self.offset > 0 {
                    self.offset += grown;
                }
            }
            _ => {
                let kind = classify(text);
                self.push_entry(text, kind, time);
            }
        }
        self.open = !complete;
    }

    /// Ends the open line, if any, so the next text starts a new one.
    pub fn close_open_line(&mut self) {
        self.open = false;
    }

    fn push_entry(&mut self, text: &str, kind: Kind, time: String) {
        let text = expand_tabs(text);
        let rows = wrap(&text, self.width);
        let added = rows.len();
        self.entries.push_back(Entry {
            text,
            kind,
            time,
            rows,
        });
        self.total_rows += added;
        if self.offset > 0 {
            // Scrolled up: keep the same rows in view, and count what is new below them.
            self.offset += added;
            self.unread += 1;
        }
        while self.entries.len() > self.capacity {
            if let Some(old) = self.entries.pop_front() {
                self.total_rows -= old.row_count();
            }
        }
        self.offset = self.offset.min(self.max_offset());
    }

    /// Re-wraps every entry for `width` columns; does nothing if the width is unchanged.
    pub fn set_width(&mut self, width: usize) {
        let width = width.max(1);
        if width == self.width {
            return;
        }
        self.width = width;
        self.total_rows = 0;
        for entry in &mut self.entries {
            entry.rows = wrap(&entry.text, width);
            self.total_rows += entry.rows.len();
        }
        self.offset = self.offset.min(self.max_offset());
    }

    /// Scrolls towards older lines by `rows` (negative: towards newer).
    pub fn scroll(&mut self, rows: isize, view_height: usize) {
        let max = self.total_rows.saturating_sub(view_height);
        self.offset = self.offset.saturating_add_signed(rows).min(max);
        if self.offset == 0 {
            self.unread = 0;
        }
    }

    /// Jumps to the newest line and follows new ones again.
    pub fn to_bottom(&mut self) {
        self.offset = 0;
        self.unread = 0;
    }

    fn max_offset(&self) -> usize {
        self.total_rows.saturating_sub(1)
    }

    /// Rows between the bottom of the view and the newest row (0 = following).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Lines that arrived since the view was scrolled up.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// Number of entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing has been received or noted yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The rows to show in a view `height` rows tall, oldest first: each is an entry, the byte
    /// range of the row, and whether it is the entry's first row. Walks back only as far as the
    /// view needs.
    pub fn visible(&self, height: usize) -> Vec<(&Entry, (usize, usize), bool)> {
        let mut skip = self.offset;
        let mut rows = Vec::with_capacity(height);
        'entries: for entry in self.entries.iter().rev() {
            let count = entry.row_count();
            if skip >= count {
                skip -= count;
                continue;
            }
            let ranges: Vec<(usize, usize)> = entry.rows().collect();
            for (index, range) in ranges.into_iter().enumerate().rev() {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                rows.push((entry, range, index == 0));
                if rows.len() == height {
                    break 'entries;
                }
            }
        }
        rows.reverse();
        rows
    }
}

/// Replaces each tab with spaces up to the next tab stop (by display width).
fn expand_tabs(text: &str) -> String {
    if !text.contains('\t') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut column = 0;
    for grapheme in text.graphemes(true) {
        if grapheme == "\t" {
            let spaces = TAB_STOP - column % TAB_STOP;
            out.extend(std::iter::repeat_n(' ', spaces));
            column += spaces;
        } else {
            out.push_str(grapheme);
            column += usize::from(grapheme.cell_width());
        }
    }
    out
}

/// Row start offsets for `text` wrapped at `width` columns: at the last space that fits where
/// there is one, else between graphemes; a grapheme wider than the room left starts a new row,
/// so a wide character is never split.
pub fn wrap(text: &str, width: usize) -> Vec<u32> {
    let mut starts = vec![0u32];
    let mut column = 0usize;
    let mut last_space: Option<(usize, usize)> = None; // (byte after the space, column there)
    let mut row_start = 0usize;
    for (offset, grapheme) in text.grapheme_indices(true) {
        let cells = usize::from(grapheme.cell_width());
        // A space that does not fit hangs past the edge (it is invisible) and becomes the break.
        if grapheme != " " && column + cells > width && offset > row_start {
            let (break_at, carried) = match last_space {
                Some((after, at_column)) if after > row_start => (after, column - at_column),
                _ => (offset, 0),
            };
            starts.push(u32::try_from(break_at).unwrap_or(u32::MAX));
            row_start = break_at;
            column = carried;
            last_space = None;
        }
        column += cells;
        if grapheme == " " {
            last_space = Some((offset + 1, column));
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    fn rows(text: &str, width: usize) -> Vec<&str> {
        let starts = wrap(text, width);
        let ends = starts
            .iter()
            .skip(1)
            .map(|&s| s as usize)
            .chain([text.len()]);
        starts
            .iter()
            .map(|&s| s as usize)
            .zip(ends)
            .map(|(a, b)| &text[a..b])
            .collect()
    }

    #[test]
    fn wraps_at_spaces_when_it_can() {
        assert_eq!(
            rows("hello brave new world", 11),
            ["hello brave ", "new world"]
        );
        assert_eq!(
            rows("hello brave new world", 8),
            ["hello ", "brave ", "new ", "world"]
        );
    }

    #[test]
    fn breaks_long_words_between_characters() {
        assert_eq!(rows("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn a_wide_character_is_never_split() {
        assert_eq!(rows("a你好", 2), ["a", "你", "好"]);
        assert_eq!(rows("你好世界", 5), ["你好", "世界"]);
        for width in 1..12 {
            for row in rows("第1条信息:你好,世界 👨‍👩‍👧 ok", width) {
                assert!(
                    row.trim_end_matches(" ").width() <= width.max(2),
                    "{row:?} at {width}"
                );
            }
        }
    }

    #[test]
    fn emoji_sequences_stay_whole() {
        assert_eq!(rows("👨‍👩‍👧👨‍👩‍👧", 2), ["👨‍👩‍👧", "👨‍👩‍👧"]);
    }

    #[test]
    fn bounded_and_oldest_lines_go_first() {
        let mut sb = Scrollback::new(3);
        for n in 0..5 {
            sb.push(&format!("line {n}"), Kind::Plain, String::new());
        }
        let texts: Vec<_> = sb.entries().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["line 2", "line 3", "line 4"]);
    }

    #[test]
    fn new_lines_do_not_move_a_view_scrolled_up() {
        let mut sb = Scrollback::new(100);
        for n in 0..20 {
            sb.push(&format!("line {n}"), Kind::Plain, String::new());
        }
        sb.scroll(5, 10);
        let before: Vec<String> = sb
            .visible(10)
            .iter()
            .map(|(e, _, _)| e.text.clone())
            .collect();
        sb.push("newer", Kind::Plain, String::new());
        let after: Vec<String> = sb
            .visible(10)
            .iter()
            .map(|(e, _, _)| e.text.clone())
            .collect();
        assert_eq!(before, after);
        assert_eq!(sb.unread(), 1);
        sb.to_bottom();
        assert_eq!(sb.visible(10).last().unwrap().0.text, "newer");
    }

    #[test]
    fn an_open_line_grows_and_is_rewrapped() {
        let mut sb = Scrollback::new(10);
        sb.set_width(6);
        sb.append("<al", false, String::new(), |_| Kind::Plain);
        sb.append("ice> hello", true, String::new(), |t| {
            if t.starts_with('<') {
                Kind::Own
            } else {
                Kind::Plain
            }
        });
        let entry = sb.entries().next().unwrap();
        assert_eq!(entry.text, "<alice> hello");
        assert_eq!(entry.kind, Kind::Own);
        assert_eq!(entry.rows().count(), 3);
        sb.append("next", true, String::new(), |_| Kind::Plain);
        assert_eq!(sb.len(), 2);
    }

    #[test]
    fn tabs_expand_to_stops() {
        assert_eq!(expand_tabs("a\tb\t\tc"), "a   b       c");
    }
}
