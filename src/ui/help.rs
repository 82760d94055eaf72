//! The key help (F1): drawn straight from the keymap and the client's command table, so it can
//! never disagree with what the keys and commands do.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::style;
use crate::app::client_commands;
use crate::app::keymap::Keymap;
use crate::app::keys::TYPED;
use crate::i18n::{Language, tr};

/// The help popup, centred over its area.
#[derive(Debug)]
pub struct Help<'a> {
    /// The keys in force.
    pub keymap: &'a Keymap,
    /// The language of what the keys do (the keys' names are the same in every one).
    pub language: Language,
    /// Rows scrolled down (PgDn), when the terminal is too short for every row.
    pub scrolled: u16,
}

impl Help<'_> {
    /// Each line of the help: the keys (or what is typed), then what they do.
    pub fn rows(&self) -> impl Iterator<Item = (String, String)> {
        let language = self.language;
        self.keymap
            .help_rows()
            .chain(TYPED.iter().copied())
            .map(move |(keys, help)| (keys.to_owned(), tr!(language, help)))
            .chain(client_commands::help_rows(language))
    }
}

impl Widget for Help<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // Widths in cells: a Chinese character takes two.
        let key_width = self.rows().map(|(k, _)| k.width()).max().unwrap_or(0);
        let lines: Vec<String> = self
            .rows()
            .map(|(key, what)| {
                let pad = " ".repeat(key_width - key.width());
                format!(" {key}{pad}  {what}")
            })
            .collect();
        let width = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16 + 3;
        // When the border is all that keeps a key off the screen, the border goes (the title
        // keeps a row of its own); on a terminal too small either way, it stays to frame what
        // is cut.
        let rows = lines.len() as u16;
        let bordered = rows + 2 <= area.height || rows + 1 > area.height;
        let height = lines.len() as u16 + if bordered { 2 } else { 1 };
        // Too short for every row: it scrolls, and its title says how.
        let shown = area.height.saturating_sub(if bordered { 2 } else { 1 });
        let scrolled = self.scrolled.min(rows.saturating_sub(shown));
        let title = match rows > shown {
            true => tr!(self.language, "help.title_scrolls"),
            false => tr!(self.language, "help.title"),
        };
        let popup = Rect::new(
            area.x + area.width.saturating_sub(width) / 2,
            area.y + area.height.saturating_sub(height) / 2,
            width.min(area.width),
            height.min(area.height),
        );
        Clear.render(popup, buf);
        let text = Paragraph::new(lines.join("\n")).scroll((scrolled, 0));
        let block = match bordered {
            true => Block::bordered().border_style(style::POPUP_BORDER),
            false => Block::new(),
        };
        let title = Line::styled(title, style::POPUP_BORDER);
        text.block(block.title(title)).render(popup, buf);
    }
}
