//! The edit box: a [`tui_input::Input`] line editor, its [`Edit`]s (which keys do them is the
//! keymap's business, `crate::app::keys`), input history, and the width-aware cursor and scroll
//! the renderer needs.

use tui_input::{Input, InputRequest};

/// Entries kept in the Up/Down history.
pub const HISTORY_LEN: usize = 500;

/// One change to the line or the caret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Caret one character left.
    Left,
    /// Caret one character right.
    Right,
    /// Caret to the start of the word before it.
    WordLeft,
    /// Caret past the end of the word after it.
    WordRight,
    /// Caret to the start of the line.
    Home,
    /// Caret to the end of the line.
    End,
    /// Delete the character before the caret.
    DeleteBack,
    /// Delete the character under the caret.
    DeleteForward,
    /// Delete the word before the caret (kept for [`Edit::Yank`]).
    DeleteWordBack,
    /// Delete the word after the caret (kept for [`Edit::Yank`]).
    DeleteWordForward,
    /// Delete from the start of the line to the caret (kept for [`Edit::Yank`]).
    DeleteToStart,
    /// Delete from the caret to the end of the line (kept for [`Edit::Yank`]).
    DeleteToEnd,
    /// Paste back what the last deletion took.
    Yank,
    /// The previous line typed (the line being typed is kept as a draft).
    HistoryPrev,
    /// The next line typed, then the draft again.
    HistoryNext,
}

/// The line being typed and what was typed before.
#[derive(Debug, Default)]
pub struct EditBox {
    input: Input,
    history: Vec<String>,
    /// Position while browsing history (`None`: editing a fresh line).
    browsing: Option<usize>,
    /// The fresh line put aside while browsing.
    draft: String,
}

impl EditBox {
    /// The current text.
    pub fn value(&self) -> &str {
        self.input.value()
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.input.value().is_empty()
    }

    /// Applies one edit.
    pub fn apply(&mut self, edit: Edit) {
        let request = match edit {
            Edit::Left => InputRequest::GoToPrevChar,
            Edit::Right => InputRequest::GoToNextChar,
            Edit::WordLeft => InputRequest::GoToPrevWord,
            Edit::WordRight => InputRequest::GoToNextWord,
            Edit::Home => InputRequest::GoToStart,
            Edit::End => InputRequest::GoToEnd,
            Edit::DeleteBack => InputRequest::DeletePrevChar,
            Edit::DeleteForward => InputRequest::DeleteNextChar,
            Edit::DeleteWordBack => InputRequest::DeletePrevWord,
            Edit::DeleteWordForward => InputRequest::DeleteNextWord,
            Edit::DeleteToStart => InputRequest::DeleteFromStart,
            Edit::DeleteToEnd => InputRequest::DeleteTillEnd,
            Edit::Yank => InputRequest::Yank,
            Edit::HistoryPrev => return self.history_step(-1),
            Edit::HistoryNext => return self.history_step(1),
        };
        self.input.handle(request);
    }

    /// Types one character at the caret.
    pub fn type_char(&mut self, c: char) {
        self.input.handle(InputRequest::InsertChar(c));
    }

    /// Inserts text (a paste) at the caret.
    pub fn insert(&mut self, text: &str) {
        text.chars().for_each(|c| self.type_char(c));
    }

    /// The lines typed, oldest first (never one that carried a password).
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Starts with `lines` as what was typed before (from an earlier run).
    pub fn set_history(&mut self, lines: Vec<String>) {
        self.history = lines;
        self.history.truncate(HISTORY_LEN);
        self.browsing = None;
    }

    /// Where the caret is, as a byte offset into [`EditBox::value`].
    pub fn caret(&self) -> usize {
        let value = self.input.value();
        value
            .char_indices()
            .nth(self.input.cursor())
            .map_or(value.len(), |(at, _)| at)
    }

    /// Replaces the bytes `range` of the line with `text`, the caret after it.
    pub fn replace(&mut self, range: std::ops::Range<usize>, text: &str) {
        let mut value = self.input.value().to_owned();
        value.replace_range(range.clone(), text);
        let caret = value[..range.start + text.len()].chars().count();
        self.input = Input::new(value).with_cursor(caret);
    }

    /// Puts `text` in the box to be finished, if nothing is being typed.
    pub fn prefill(&mut self, text: &str) {
        if self.input.value().is_empty() {
            self.insert(text);
        }
    }

    /// Takes the line for sending, remembering it in the history (unless it carries a
    /// password, which is never kept).
    pub fn take(&mut self) -> String {
        let line = self.input.value_and_reset();
        self.browsing = None;
        self.draft.clear();
        let secret = crate::protocol::secret_start(&line).is_some();
        if !line.is_empty() && !secret && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_LEN {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    fn history_step(&mut self, step: isize) {
        let len = self.history.len();
        let next = match (self.browsing, step) {
            (None, -1) if len > 0 => Some(len - 1),
            (None, _) => return,
            (Some(at), -1) => Some(at.saturating_sub(1)),
            (Some(at), _) if at + 1 < len => Some(at + 1),
            (Some(_), _) => None,
        };
        if self.browsing.is_none() {
            self.draft = self.input.value().to_owned();
        }
        self.browsing = next;
        let text = next.map_or_else(|| self.draft.clone(), |at| self.history[at].clone());
        self.input = Input::new(text);
    }

    /// Display column of the caret, and the first visible column, for a box `width` wide.
    pub fn cursor_and_scroll(&self, width: usize) -> (usize, usize) {
        // Keep one column free so the caret after the last character stays on screen.
        let scroll = self.input.visual_scroll(width.saturating_sub(1).max(1));
        (self.input.visual_cursor(), scroll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> EditBox {
        let mut edit = EditBox::default();
        edit.insert(text);
        edit
    }

    #[test]
    fn readline_keys_edit_the_line() {
        let mut edit = typed("hello brave world");
        edit.apply(Edit::DeleteWordBack);
        assert_eq!(edit.value(), "hello brave ");
        edit.apply(Edit::Home);
        edit.apply(Edit::Right);
        edit.apply(Edit::DeleteToEnd);
        assert_eq!(edit.value(), "h");
        edit.insert("ey you");
        edit.apply(Edit::Left);
        edit.apply(Edit::Left);
        edit.apply(Edit::DeleteToStart);
        assert_eq!(edit.value(), "ou");
        edit.apply(Edit::End);
        edit.apply(Edit::DeleteBack);
        assert_eq!(edit.value(), "o");
    }

    #[test]
    fn the_caret_column_counts_display_width() {
        let mut edit = typed("你好a");
        assert_eq!(edit.cursor_and_scroll(80), (5, 0));
        edit.apply(Edit::Left);
        edit.apply(Edit::Left);
        assert_eq!(edit.cursor_and_scroll(80), (2, 0));
    }

    #[test]
    fn long_input_scrolls_to_keep_the_caret_visible() {
        let edit = typed(&"x".repeat(30));
        let (cursor, scroll) = edit.cursor_and_scroll(10);
        assert_eq!(cursor, 30);
        assert!(cursor - scroll < 10, "{cursor} {scroll}");
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut edit = EditBox::default();
        for line in ["one", "two"] {
            edit.insert(line);
            assert_eq!(edit.take(), line);
        }
        edit.insert("draft");
        edit.apply(Edit::HistoryPrev);
        assert_eq!(edit.value(), "two");
        edit.apply(Edit::HistoryPrev);
        edit.apply(Edit::HistoryPrev);
        assert_eq!(edit.value(), "one");
        edit.apply(Edit::HistoryNext);
        edit.apply(Edit::HistoryNext);
        assert_eq!(edit.value(), "draft");
    }
}
