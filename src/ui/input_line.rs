//! The edit box's row: the prompt and the visible part of the line (scrolled so the caret
//! stays in view, cut only at whole characters; a password being typed shows as dots), or the
//! question a multi-line paste asks.

use ratatui::buffer::{Buffer, CellWidth};
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use unicode_segmentation::UnicodeSegmentation;

use super::style;
use crate::editbox::EditBox;
use crate::i18n::{Language, tr};
use crate::protocol::secret_start;

const PROMPT: &str = "> ";

/// What each cell of a password being typed shows.
const SECRET_DOT: char = '•';

/// The edit box as drawn.
#[derive(Debug)]
pub struct InputLine<'a> {
    /// The line being typed.
    pub input: &'a EditBox,
    /// Lines of a paste waiting for Enter or Esc, if one is.
    pub paste_waiting: Option<usize>,
    /// The language of the paste's question.
    pub language: Language,
}

impl InputLine<'_> {
    /// Draws the row; returns where the terminal cursor goes (at the caret, by display width,
    /// so an input method's candidate window opens in the right place).
    pub fn render(self, area: Rect, buf: &mut Buffer) -> Option<Position> {
        if area.is_empty() {
            return None;
        }
        if let Some(lines) = self.paste_waiting {
            let ask = tr!(self.language, "input.paste", lines = lines);
            buf.set_stringn(area.x, area.y, ask, usize::from(area.width), style::ASK);
            return None;
        }
        let prompt_width = (PROMPT.len() as u16).min(area.width);
        let (x, y) = (area.x, area.y);
        buf.set_stringn(x, y, PROMPT, usize::from(prompt_width), style::PROMPT);
        let width = usize::from(area.width - prompt_width);
        if width == 0 {
            return None;
        }
        let (cursor, scroll) = self.input.cursor_and_scroll(width);
        // A password being typed is drawn as dots, a dot per cell, so the caret stays put.
        let secret = secret_start(self.input.value()).unwrap_or(usize::MAX);
        let mut column = 0;
        let mut visible = String::new();
        for (at, grapheme) in self.input.value().grapheme_indices(true) {
            let cells = grapheme.cell_width() as usize;
            if column >= scroll && at >= secret {
                visible.extend(std::iter::repeat_n(SECRET_DOT, cells));
            } else if column >= scroll {
                visible.push_str(grapheme);
            } else if column + cells > scroll {
                // A wide character cut by the left edge: show the gap, not half of it.
                visible.extend(std::iter::repeat_n(' ', column + cells - scroll));
            }
            column += cells;
        }
        buf.set_stringn(x + prompt_width, y, &visible, width, Style::new());
        let caret = u16::try_from(cursor.saturating_sub(scroll)).unwrap_or(u16::MAX);
        let caret_x = (x + prompt_width)
            .saturating_add(caret)
            .min(area.right().saturating_sub(1));
        Some(Position::new(caret_x, y))
    }
}
