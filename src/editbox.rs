//! The edit box: a [`tui_input::Input`] line editor with readline keys, input history, and the
//! width-aware cursor and scroll the renderer needs.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_input::{Input, InputRequest};

/// Entries kept in the Up/Down history.
const HISTORY_LEN: usize = 500;

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

    /// Applies an editing key; returns whether it was one (and so was consumed).
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let request = match key.code {
            KeyCode::Char(c) if ctrl => match c {
                'a' => InputRequest::GoToStart,
                'e' => InputRequest::GoToEnd,
                'b' => InputRequest::GoToPrevChar,
                'f' => InputRequest::GoToNextChar,
                'h' => InputRequest::DeletePrevChar,
                'w' => InputRequest::DeletePrevWord,
                'u' => InputRequest::DeleteFromStart,
                'k' => InputRequest::DeleteTillEnd,
                'y' => InputRequest::Yank,
                'd' => InputRequest::DeleteNextChar,
                _ => return false,
            },
            KeyCode::Char(c) if alt => match c {
                'b' => InputRequest::GoToPrevWord,
                'f' => InputRequest::GoToNextWord,
                'd' => InputRequest::DeleteNextWord,
                _ => return false,
            },
            KeyCode::Char(c) => InputRequest::InsertChar(c),
            KeyCode::Backspace if alt || ctrl => InputRequest::DeletePrevWord,
            KeyCode::Backspace => InputRequest::DeletePrevChar,
            KeyCode::Delete => InputRequest::DeleteNextChar,
            KeyCode::Left if ctrl || alt => InputRequest::GoToPrevWord,
            KeyCode::Right if ctrl || alt => InputRequest::GoToNextWord,
            KeyCode::Left => InputRequest::GoToPrevChar,
            KeyCode::Right => InputRequest::GoToNextChar,
            KeyCode::Home => InputRequest::GoToStart,
            KeyCode::End => InputRequest::GoToEnd,
            KeyCode::Up => return self.history_step(-1),
            KeyCode::Down => return self.history_step(1),
            _ => return false,
        };
        self.input.handle(request);
        true
    }

    /// Inserts text (a paste) at the caret.
    pub fn insert(&mut self, text: &str) {
        for c in text.chars() {
            self.input.handle(InputRequest::InsertChar(c));
        }
    }

    /// Takes the line for sending, remembering it in the history.
    pub fn take(&mut self) -> String {
        let line = self.input.value_and_reset();
        self.browsing = None;
        self.draft.clear();
        if !line.is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_LEN {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    fn history_step(&mut self, step: isize) -> bool {
        let len = self.history.len();
        let next = match (self.browsing, step) {
            (None, -1) if len > 0 => Some(len - 1),
            (None, _) => return true,
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
        true
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

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn typed(text: &str) -> EditBox {
        let mut edit = EditBox::default();
        edit.insert(text);
        edit
    }

    #[test]
    fn readline_keys_edit_the_line() {
        let mut edit = typed("hello brave world");
        edit.on_key(ctrl('w'));
        assert_eq!(edit.value(), "hello brave ");
        edit.on_key(ctrl('a'));
        edit.on_key(ctrl('f'));
        edit.on_key(ctrl('k'));
        assert_eq!(edit.value(), "h");
        edit.insert("ey you");
        edit.on_key(ctrl('b'));
        edit.on_key(ctrl('b'));
        edit.on_key(ctrl('u'));
        assert_eq!(edit.value(), "ou");
        edit.on_key(ctrl('e'));
        edit.on_key(key(KeyCode::Backspace));
        assert_eq!(edit.value(), "o");
    }

    #[test]
    fn the_caret_column_counts_display_width() {
        let mut edit = typed("你好a");
        assert_eq!(edit.cursor_and_scroll(80), (5, 0));
        edit.on_key(key(KeyCode::Left));
        edit.on_key(key(KeyCode::Left));
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
        edit.on_key(key(KeyCode::Up));
        assert_eq!(edit.value(), "two");
        edit.on_key(key(KeyCode::Up));
        edit.on_key(key(KeyCode::Up));
        assert_eq!(edit.value(), "one");
        edit.on_key(key(KeyCode::Down));
        edit.on_key(key(KeyCode::Down));
        assert_eq!(edit.value(), "draft");
    }
}
