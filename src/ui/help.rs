//! The key help (F1): drawn straight from the keymap, so it can never disagree with what the
//! keys do.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::style;
use crate::app::keys::{BINDINGS, TYPED};

/// The help popup, centred over its area.
#[derive(Debug, Default)]
pub struct Help;

impl Help {
    /// Each line of the help: the keys, then what they do.
    pub fn rows() -> impl Iterator<Item = (&'static str, &'static str)> {
        BINDINGS
            .iter()
            .map(|binding| (binding.keys, binding.help))
            .chain(TYPED.iter().copied())
    }
}

impl Widget for Help {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let key_width = Self::rows().map(|(k, _)| k.len()).max().unwrap_or(0);
        let lines: Vec<String> = Self::rows()
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
            .border_style(style::POPUP_BORDER);
        Paragraph::new(lines.join("\n"))
            .block(block)
            .render(popup, buf);
    }
}
