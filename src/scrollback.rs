//! The scrollback: every line received, classified and sanitised once at ingest, wrapped for
//! the current width once (not per frame), bounded, and scrolled by rows.
//!
//! Wrapping is by display width per grapheme (ratatui's own [`CellWidth`], built on
//! unicode-width), so a CJK character takes two columns and is never split, and the rows the
//! renderer draws are exactly the rows counted here. Each entry keeps its row breaks for the
//! current width; a resize re-wraps once, a frame only walks the rows it shows.

use std::cell::Cell;
use std::collections::VecDeque;

use chrono::NaiveTime;
use ratatui::buffer::CellWidth;
use unicode_segmentation::UnicodeSegmentation;

/// Default number of lines kept; the oldest go first.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Longest line kept as one entry, in bytes; a longer one (a server that never sends a
/// newline) continues in a new entry. This bounds the cost of growing an open line (it is
/// re-wrapped as it grows) and the memory one line can take.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// Most text kept in all, in bytes; past it the oldest lines go even below the line count.
pub const MAX_TOTAL_BYTES: usize = 32 * 1024 * 1024;

/// Columns a tab expands to (to the next multiple).
const TAB_STOP: usize = 4;

/// What a line is, which decides how it is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `<nick> text` where the nick is ours.
    Own {
        /// Byte length of the `<nick> ` prefix.
        prefix: u16,
    },
    /// `<nick> text` from someone else.
    Message {
        /// Byte length of the `<nick> ` prefix.
        prefix: u16,
    },
    /// `* nick text`: someone's `/me`.
    Action,
    /// `<nick> text` or `* nick text` from someone else that names us.
    Mention {
        /// Byte length of the `<nick> ` or `* nick ` prefix.
        prefix: u16,
    },
    /// `*** ` lines: the server's greeting, joins, leaves, renames, notices.
    Event,
    /// A line said earlier, replayed from the server's store (`[time #seq] <nick> text`).
    Replayed,
    /// Where replayed or found lines begin and end (`*** history of #lobby: 50 lines`).
    Rule,
    /// `! ` lines: errors from the server.
    Error,
    /// Anything else the server sent (the article's servers send plain text).
    Plain,
    /// What we sent, shown in raw mode where the server does not echo it.
    Sent,
    /// The client's own notes: connecting, closed, reconnecting...
    Note,
}

/// One line of the scrollback. Kept small (48 bytes beside its text): a long session holds
/// a hundred thousand of them.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Sanitised text, tabs expanded.
    pub text: Box<str>,
    /// How it is drawn.
    pub kind: Kind,
    /// Local time of arrival.
    pub time: NaiveTime,
    /// Byte offsets where each wrapped row after the first starts, for the current width:
    /// empty (no allocation) for the many lines that fit one row.
    breaks: Box<[u32]>,
}

impl Entry {
    /// The wrapped rows of this entry as byte ranges into `text`.
    pub fn rows(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let starts = std::iter::once(0).chain(self.breaks.iter().map(|&r| r as usize));
        let ends = self
            .breaks
            .iter()
            .map(|&r| r as usize)
            .chain([self.text.len()]);
        starts.zip(ends)
    }

    fn row_count(&self) -> usize {
        self.breaks.len() + 1
    }
}

/// The row starts after the first, as an [`Entry`] keeps them.
fn breaks(text: &str, width: usize) -> Box<[u32]> {
    wrap(text, width).into_iter().skip(1).collect()
}

/// The bounded, wrapped history.
#[derive(Debug)]
pub struct Scrollback {
    entries: VecDeque<Entry>,
    capacity: usize,
    width: usize,
    total_rows: usize,
    total_bytes: usize,
    /// [`MAX_TOTAL_BYTES`], a field so tests can use a small one.
    byte_budget: usize,
    /// Whether the newest entry is still open: its newline has not arrived yet.
    open: bool,
    /// Rows between the bottom of the view and the newest row; 0 follows new lines.
    offset: usize,
    /// Lines that arrived while scrolled up.
    unread: usize,
    /// Rows and entries that have left from the front since the start: with them a row or an
    /// entry has a number that new lines and evictions do not change.
    evicted_rows: u64,
    first_entry: u64,
    /// Bumped whenever rows are renumbered (a rewrap, a line taken back).
    generation: u64,
    /// Where the view's bottom row was last found, so a frame scrolled far up walks from
    /// there instead of from the newest line (a frame costs its height, wherever it is).
    view: Cell<Option<Position>>,
}

/// A row, and where it is: its entry and its place in that entry.
#[derive(Debug, Clone, Copy)]
struct Position {
    generation: u64,
    row: u64,
    entry: u64,
    row_in_entry: usize,
}

impl Scrollback {
    /// An empty scrollback keeping at most `capacity` lines, wrapped at 80 columns until told.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            width: 80,
            total_rows: 0,
            total_bytes: 0,
            byte_budget: MAX_TOTAL_BYTES,
            open: false,
            offset: 0,
            unread: 0,
            evicted_rows: 0,
            first_entry: 0,
            generation: 0,
            view: Cell::new(None),
        }
    }

    /// Adds a complete line.
    pub fn push(&mut self, text: &str, kind: Kind, time: NaiveTime) {
        self.close_open_line();
        self.push_entry(expand_tabs(text), kind, time);
    }

    /// Adds text to the open line (starting one if none is open), reclassifying it with
    /// `classify` as it grows; `complete` closes it. An open line that would pass
    /// [`MAX_ENTRY_BYTES`] is closed there and the text goes on in a new entry.
    pub fn append(
        &mut self,
        text: &str,
        complete: bool,
        time: NaiveTime,
        classify: impl Fn(&str) -> Kind,
    ) {
        let mut rest = expand_tabs(text);
        loop {
            let used = match self.entries.back() {
                Some(last) if self.open => last.text.len(),
                _ => 0,
            };
            let room = MAX_ENTRY_BYTES - used.min(MAX_ENTRY_BYTES);
            if rest.len() <= room {
                self.extend_open_line(&rest, time, &classify);
                break;
            }
            let cut = floor_char_boundary(&rest, room);
            let tail = rest.split_off(cut);
            if !rest.is_empty() {
                self.extend_open_line(&rest, time, &classify);
            }
            self.open = false;
            rest = tail;
        }
        self.open = !complete;
    }

    /// Appends already tab-expanded text to the open line, or starts one.
    fn extend_open_line(&mut self, text: &str, time: NaiveTime, classify: &impl Fn(&str) -> Kind) {
        match self.entries.back_mut() {
            Some(last) if self.open => {
                let before = last.row_count();
                let mut grown = String::from(std::mem::take(&mut last.text));
                grown.push_str(text);
                last.text = grown.into_boxed_str();
                last.kind = classify(&last.text);
                // Greedy wrapping never revisits a finished row: only the last row (now
                // longer) is wrapped again, so a line growing read by read costs linear time.
                let mut starts = last.breaks.to_vec();
                let from = starts.pop().unwrap_or(0);
                let tail = wrap(&last.text[from as usize..], self.width);
                starts.extend(
                    tail.into_iter()
                        .map(|start| start + from)
                        .filter(|&s| s > 0),
                );
                last.breaks = starts.into_boxed_slice();
                let grown = last.row_count().saturating_sub(before);
                self.total_rows += grown;
                self.total_bytes += text.len();
                if self.offset > 0 {
                    self.offset += grown;
                }
            }
            _ => self.push_entry(text.to_owned(), classify(text), time),
        }
        self.open = true;
    }

    /// Removes the newest line (one the client decided not to show after all).
    pub fn drop_last(&mut self) {
        if let Some(last) = self.entries.pop_back() {
            self.generation += 1;
            self.total_rows -= last.row_count();
            self.total_bytes -= last.text.len();
            self.open = false;
            if self.offset > 0 {
                self.offset = self.offset.saturating_sub(last.row_count());
                self.unread = self.unread.saturating_sub(1);
            }
        }
    }

    /// Shows the newest line differently: its text, kind and time as the client presents it
    /// (a replayed line without its stamp, dated when it was said).
    pub fn replace_last(&mut self, text: &str, kind: Kind, time: NaiveTime) {
        self.drop_last();
        self.push_entry(expand_tabs(text), kind, time);
    }

    /// Ends the open line, if any, so the next text starts a new one.
    pub fn close_open_line(&mut self) {
        self.open = false;
    }

    fn push_entry(&mut self, text: String, kind: Kind, time: NaiveTime) {
        let breaks = breaks(&text, self.width);
        let added = breaks.len() + 1;
        self.total_bytes += text.len();
        self.entries.push_back(Entry {
            text: text.into_boxed_str(),
            kind,
            time,
            breaks,
        });
        self.total_rows += added;
        if self.offset > 0 {
            // Scrolled up: keep the same rows in view, and count what is new below them.
            self.offset += added;
            self.unread += 1;
        }
        while self.entries.len() > self.capacity
            || (self.total_bytes > self.byte_budget && self.entries.len() > 1)
        {
            if let Some(old) = self.entries.pop_front() {
                self.total_rows -= old.row_count();
                self.total_bytes -= old.text.len();
                self.evicted_rows += old.row_count() as u64;
                self.first_entry += 1;
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
        self.generation += 1;
        self.total_rows = 0;
        for entry in &mut self.entries {
            entry.breaks = breaks(&entry.text, width);
            self.total_rows += entry.row_count();
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

    /// Whether the newest line is still open (its newline has not arrived yet).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The number the next line will have. Lines are numbered from the first ever kept, so a
    /// number stays with its line while older ones leave (a place to remember, such as where
    /// unread lines begin); taking the newest line back gives its number out again.
    pub fn end(&self) -> u64 {
        self.first_entry + self.entries.len() as u64
    }

    /// The line numbered `number` (see [`Scrollback::end`]), if it is still kept.
    pub fn get(&self, number: u64) -> Option<&Entry> {
        let index = number.checked_sub(self.first_entry)?;
        self.entries.get(usize::try_from(index).ok()?)
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
    /// range of the row, and whether it is the entry's first row. Costs the view's height
    /// (and the distance scrolled since the last frame), not the history's length.
    pub fn visible(&self, height: usize) -> Vec<(&Entry, (usize, usize), bool)> {
        let Some(newest) = self.newest_row() else {
            return Vec::new();
        };
        let bottom =
            self.evicted_rows + (self.total_rows - 1 - self.offset.min(self.total_rows - 1)) as u64;
        let start = match self.view.get() {
            Some(known)
                if known.generation == self.generation && known.entry >= self.first_entry =>
            {
                known
            }
            _ => newest,
        };
        let at = self.walk(start, bottom);
        self.view.set(Some(at));
        let mut rows = Vec::with_capacity(height);
        let mut entry_index = (at.entry - self.first_entry) as usize;
        let mut skip_below = self.entries[entry_index].row_count() - 1 - at.row_in_entry;
        'entries: loop {
            let entry = &self.entries[entry_index];
            let ranges: Vec<(usize, usize)> = entry.rows().collect();
            for (index, range) in ranges.into_iter().enumerate().rev().skip(skip_below) {
                rows.push((entry, range, index == 0));
                if rows.len() == height {
                    break 'entries;
                }
            }
            skip_below = 0;
            if entry_index == 0 {
                break;
            }
            entry_index -= 1;
        }
        rows.reverse();
        rows
    }

    /// The newest row's position, if there is a row.
    fn newest_row(&self) -> Option<Position> {
        let last = self.entries.back()?;
        Some(Position {
            generation: self.generation,
            row: self.evicted_rows + self.total_rows as u64 - 1,
            entry: self.first_entry + self.entries.len() as u64 - 1,
            row_in_entry: last.row_count() - 1,
        })
    }

    /// The position of row `to`, found by walking from `from`, a whole entry at a time.
    fn walk(&self, mut at: Position, to: u64) -> Position {
        let rows_of = |entry: u64| self.entries[(entry - self.first_entry) as usize].row_count();
        while at.row > to {
            let back = at.row - to;
            if back <= at.row_in_entry as u64 {
                at.row_in_entry -= back as usize;
                at.row = to;
            } else {
                at.row -= at.row_in_entry as u64 + 1;
                at.entry -= 1;
                at.row_in_entry = rows_of(at.entry) - 1;
            }
        }
        while at.row < to {
            let ahead = to - at.row;
            let left = (rows_of(at.entry) - 1 - at.row_in_entry) as u64;
            if ahead <= left {
                at.row_in_entry += ahead as usize;
                at.row = to;
            } else {
                at.row += left + 1;
                at.entry += 1;
                at.row_in_entry = 0;
            }
        }
        at
    }
}

/// The largest char boundary in `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
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

/// Row start offsets for `text` wrapped at `width` columns: at the last place a row may end that
/// fits — after a space, or next to a wide (CJK) character, where Chinese and Japanese break
/// lines, but never before closing punctuation (`，。）`) — else between graphemes; a grapheme
/// wider than the room left starts a new row, so a wide character is never split.
///
/// Two shortcuts keep ingest cheap, since grapheme segmentation is most of its cost: no
/// grapheme is wider in cells than in bytes, so text no longer in bytes than `width` is one
/// row; and in printable ASCII every byte is a one-cell grapheme.
pub fn wrap(text: &str, width: usize) -> Vec<u32> {
    if text.len() <= width {
        return vec![0];
    }
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let cells = text
            .bytes()
            .enumerate()
            .map(|(offset, b)| (offset, gap(b == b' ', false), 1));
        return wrap_cells(cells, width);
    }
    let mut after_wide = false;
    let cells = text.grapheme_indices(true).map(move |(offset, g)| {
        let cells = usize::from(g.cell_width());
        let wide = cells == 2;
        let closing = g.chars().next().is_some_and(|c| CLOSING.contains(c));
        let before = (wide || after_wide) && !closing && g != " ";
        after_wide = wide;
        (offset, gap(g == " ", before), cells)
    });
    wrap_cells(cells, width)
}

/// Punctuation a row may not start with: it closes what came before it.
const CLOSING: &str = "，。、；：？！）】」』》〉”’…,.;:?!)]}";

/// Where a row may end, around one grapheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// Nowhere.
    None,
    /// After it: it is a space.
    Space,
    /// Before it: it is wide, or follows a wide one (CJK text breaks between characters).
    Before,
}

fn gap(space: bool, before: bool) -> Gap {
    match (space, before) {
        (true, _) => Gap::Space,
        (false, true) => Gap::Before,
        (false, false) => Gap::None,
    }
}

/// The wrapping itself, over `(byte offset, where a row may end, cells)` per grapheme.
fn wrap_cells(graphemes: impl Iterator<Item = (usize, Gap, usize)>, width: usize) -> Vec<u32> {
    let mut starts = vec![0u32];
    let mut column = 0usize;
    let mut last_space: Option<(usize, usize)> = None; // (byte after the space, column there)
    let mut row_start = 0usize;
    for (offset, gap, cells) in graphemes {
        let space = gap == Gap::Space;
        if gap == Gap::Before && offset > row_start {
            last_space = Some((offset, column));
        }
        // A space that does not fit hangs past the edge (it is invisible) and becomes the break.
        // A break at an earlier space carries the word since it to the new row, which may
        // still leave no room for this grapheme: then it breaks again, right before it.
        while !space && column + cells > width && offset > row_start {
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
        if space {
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
    fn the_ascii_shortcut_wraps_as_the_grapheme_path_does() {
        let text =
            "the quick brown fox jumps over the lazy dog, then  two spaces and a verylongwordhere";
        for width in 1..40 {
            let graphemes = text
                .grapheme_indices(true)
                .map(|(o, g)| (o, gap(g == " ", false), usize::from(g.cell_width())));
            assert_eq!(
                wrap(text, width),
                wrap_cells(graphemes, width),
                "width {width}"
            );
        }
    }

    #[test]
    fn chinese_breaks_between_characters_not_at_a_far_space_and_never_before_closing_marks() {
        // The space after 调用 is far back: the row ends next to a wide character instead.
        assert_eq!(
            rows("客户端调用 shutdown(SHUT_WR)：它不会再发送任何数据。", 30),
            ["客户端调用 shutdown(SHUT_WR)：", "它不会再发送任何数据。"]
        );
        // A closing mark stays on the row of what it closes.
        assert_eq!(rows("你好你好，世界", 8), ["你好你", "好，世界"]);
        // English inside Chinese is not split mid-word.
        assert_eq!(rows("用 recv 读", 6), ["用 ", "recv ", "读"]);
    }

    #[test]
    fn a_word_carried_to_a_new_row_still_leaves_room_for_what_follows() {
        assert_eq!(rows(" bcdef", 4), [" ", "bcde", "f"]);
        // A wide character may start a row by itself: nothing is carried.
        assert_eq!(rows(" bcd你", 4), [" bcd", "你"]);
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
            sb.push(&format!("line {n}"), Kind::Plain, NaiveTime::MIN);
        }
        let texts: Vec<_> = sb.entries().map(|e| &*e.text).collect();
        assert_eq!(texts, ["line 2", "line 3", "line 4"]);
    }

    #[test]
    fn a_line_keeps_its_number_while_older_ones_leave() {
        let mut sb = Scrollback::new(3);
        sb.push("a", Kind::Plain, NaiveTime::MIN);
        let b = sb.end();
        for text in ["b", "c", "d"] {
            sb.push(text, Kind::Plain, NaiveTime::MIN);
        }
        assert_eq!(sb.get(b).map(|e| &*e.text), Some("b"));
        assert!(sb.get(b - 1).is_none(), "a has left");
        assert!(sb.get(sb.end()).is_none(), "nothing yet");
        sb.drop_last();
        sb.push("e", Kind::Plain, NaiveTime::MIN);
        assert_eq!(
            sb.get(b + 2).map(|e| &*e.text),
            Some("e"),
            "d's number again"
        );
        sb.append("open", false, NaiveTime::MIN, |_| Kind::Plain);
        assert!(sb.is_open());
        sb.close_open_line();
        assert!(!sb.is_open());
    }

    #[test]
    fn new_lines_do_not_move_a_view_scrolled_up() {
        let mut sb = Scrollback::new(100);
        for n in 0..20 {
            sb.push(&format!("line {n}"), Kind::Plain, NaiveTime::MIN);
        }
        sb.scroll(5, 10);
        let before: Vec<String> = sb
            .visible(10)
            .iter()
            .map(|(e, _, _)| e.text.to_string())
            .collect();
        sb.push("newer", Kind::Plain, NaiveTime::MIN);
        let after: Vec<String> = sb
            .visible(10)
            .iter()
            .map(|(e, _, _)| e.text.to_string())
            .collect();
        assert_eq!(before, after);
        assert_eq!(sb.unread(), 1);
        sb.to_bottom();
        assert_eq!(&*sb.visible(10).last().unwrap().0.text, "newer");
    }

    #[test]
    fn growing_a_line_wraps_it_as_if_it_came_at_once() {
        let text =
            "hello brave new world, 你好世界 👨\u{200d}👩\u{200d}👧 and then some more words";
        for width in 1..30 {
            let mut sb = Scrollback::new(10);
            sb.set_width(width);
            for piece in text.split_inclusive([' ', '好', 'w']) {
                sb.append(piece, false, NaiveTime::MIN, |_| Kind::Plain);
            }
            let entry = sb.entries().next().unwrap();
            let starts: Vec<u32> = entry.rows().map(|(start, _)| start as u32).collect();
            assert_eq!(starts, wrap(text, width), "width {width}");
        }
    }

    #[test]
    fn an_open_line_grows_and_is_rewrapped() {
        let mut sb = Scrollback::new(10);
        sb.set_width(6);
        sb.append("<al", false, NaiveTime::MIN, |_| Kind::Plain);
        sb.append("ice> hello", true, NaiveTime::MIN, |t| {
            if t.starts_with('<') {
                Kind::Own { prefix: 8 }
            } else {
                Kind::Plain
            }
        });
        let entry = sb.entries().next().unwrap();
        assert_eq!(&*entry.text, "<alice> hello");
        assert_eq!(entry.kind, Kind::Own { prefix: 8 });
        assert_eq!(entry.rows().count(), 3);
        sb.append("next", true, NaiveTime::MIN, |_| Kind::Plain);
        assert_eq!(sb.len(), 2);
    }

    #[test]
    fn a_line_that_never_ends_is_kept_in_bounded_entries() {
        let mut sb = Scrollback::new(1000);
        let chunk = "好".repeat(1000); // 3,000 bytes a read, no newline, ever
        for _ in 0..20 {
            sb.append(&chunk, false, NaiveTime::MIN, |_| Kind::Plain);
        }
        assert!(sb.entries().all(|e| e.text.len() <= MAX_ENTRY_BYTES));
        let kept: usize = sb.entries().map(|e| e.text.len()).sum();
        assert_eq!(kept, 20 * chunk.len(), "nothing lost, nothing doubled");
        assert_eq!(sb.len(), 20 * chunk.len() / MAX_ENTRY_BYTES + 1);
        // Growing read by read wraps exactly as the whole text at once would.
        for entry in sb.entries() {
            let starts: Vec<u32> = entry.rows().map(|(start, _)| start as u32).collect();
            assert_eq!(starts, wrap(&entry.text, 80));
        }
    }

    #[test]
    fn total_text_is_bounded_too() {
        let mut sb = Scrollback::new(1_000_000);
        sb.byte_budget = 10_000;
        let line = "x".repeat(1_000);
        for _ in 0..25 {
            sb.push(&line, Kind::Plain, NaiveTime::MIN);
        }
        let kept: usize = sb.entries().map(|e| e.text.len()).sum();
        assert_eq!(kept, 10_000);
        assert_eq!(sb.len(), 10);
    }

    #[test]
    fn tabs_expand_to_stops() {
        assert_eq!(expand_tabs("a\tb\t\tc"), "a   b       c");
    }

    /// The view as the slow, obvious way finds it: every row in order, then a window.
    fn naive_view(sb: &Scrollback, height: usize) -> Vec<(String, bool)> {
        let all: Vec<(String, bool)> = sb
            .entries()
            .flat_map(|e| {
                e.rows()
                    .enumerate()
                    .map(|(i, (a, b))| (e.text[a..b].to_owned(), i == 0))
                    .collect::<Vec<_>>()
            })
            .collect();
        let end = all.len() - sb.offset().min(all.len().saturating_sub(1));
        all[end.saturating_sub(height)..end].to_vec()
    }

    #[test]
    fn the_view_found_from_where_it_was_is_the_view_found_from_scratch() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut sb = Scrollback::new(300);
        for step in 0..4_000 {
            match rng.u8(0..10) {
                0..=3 => {
                    let len = rng.usize(0..60);
                    sb.push(&"w ".repeat(len), Kind::Plain, NaiveTime::MIN);
                }
                4 => sb.append(
                    &"x".repeat(rng.usize(1..40)),
                    rng.bool(),
                    NaiveTime::MIN,
                    |_| Kind::Plain,
                ),
                5 | 6 => sb.scroll(rng.isize(-30..60), 10),
                7 => sb.set_width(rng.usize(5..40)),
                8 => sb.drop_last(),
                _ => sb.to_bottom(),
            }
            let height = rng.usize(1..25);
            let fast: Vec<(String, bool)> = sb
                .visible(height)
                .into_iter()
                .map(|(e, (a, b), first)| (e.text[a..b].to_owned(), first))
                .collect();
            if sb.is_empty() {
                assert!(fast.is_empty());
                continue;
            }
            assert_eq!(fast, naive_view(&sb, height), "step {step}");
        }
    }
}
