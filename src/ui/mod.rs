//! Drawing: turns an `&App` into cells and nothing else (no state changes, no parsing).
//!
//! The screen is the scrollback on top (the inspector beside or below it when open), the
//! buffer bar once there is more than one buffer, a status bar, and the edit box on the last
//! row, with the help drawn over it. [`render`] picks from the app what each widget draws; the
//! widgets take only that, so each is tested on its own.
//!
//! - [`layout`]: where each part goes at a size.
//! - `scrollback_view`, `buffer_bar`, `status_bar`, `input_line`, `help`, `inspector_pane`
//!   (and its server page, `server_pane`), `lesson_card`: the widgets.
//! - `style`: every colour, including the one each nick gets.
//! - [`window_title`]: the terminal's title.

mod buffer_bar;
mod framing_pane;
mod help;
mod input_line;
mod inspector_pane;
mod lesson_card;
mod scrollback_view;
mod server_pane;
mod status_bar;
mod style;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

pub use buffer_bar::{BarItem, BufferBar};
pub use help::Help;
pub use input_line::InputLine;
pub use lesson_card::LessonCard;
pub use scrollback_view::{ScrollbackView, TIMESTAMP_WIDTH};
pub use status_bar::StatusBar;
pub use style::{Theme, nick_color, use_colour, use_theme};

use crate::app::{App, Conn, Overlay};
use crate::i18n::{Language, tr};
use crate::protocol::Framing;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The history.
    pub scrollback: Rect,
    /// The TCP inspector (empty when closed).
    pub inspector: Rect,
    /// The buffer bar (empty when there is one buffer only).
    pub bar: Rect,
    /// The status bar.
    pub status: Rect,
    /// The edit box.
    pub input: Rect,
}

/// Columns from which the inspector goes beside the scrollback instead of below it.
const INSPECTOR_BESIDE_FROM: u16 = 110;

/// Which parts a screen has besides the scrollback, the status bar and the edit box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    /// The inspector is open.
    pub inspector: bool,
    /// More than one buffer is open: the buffer bar has a row.
    pub bar: bool,
}

impl From<bool> for Parts {
    /// Whether the inspector is open, with one buffer (no bar).
    fn from(inspector: bool) -> Self {
        Self {
            inspector,
            bar: false,
        }
    }
}

impl Parts {
    /// What `app` shows now.
    pub fn of(app: &App) -> Self {
        Self {
            inspector: app.inspector.visible,
            bar: app.buffers.count() > 1,
        }
    }
}

/// Splits a terminal of `(cols, rows)`; on tiny terminals the edit box keeps its row first,
/// then the status bar, then the buffer bar. The inspector, when open, goes beside the
/// scrollback on a wide terminal and below it on a narrow one.
pub fn layout((cols, rows): (u16, u16), parts: impl Into<Parts>) -> Areas {
    let parts = parts.into();
    let row = |y: u16, height: u16| Rect::new(0, y, cols, height);
    let input = row(rows.saturating_sub(1), rows.min(1));
    let status = row(rows.saturating_sub(2), u16::from(rows >= 2));
    let bar_rows = u16::from(parts.bar && rows >= 3);
    let bar = row(rows.saturating_sub(2 + bar_rows), bar_rows);
    let main = row(0, rows.saturating_sub(2 + bar_rows));
    let (scrollback, inspector) = match parts.inspector {
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
        bar,
        status,
        input,
    }
}

/// The terminal's title: the program, and how many lines are unread in buffers not on screen.
/// Fixed words and a number only, so nobody's text ever reaches the title.
pub fn window_title(unread: usize, language: Language) -> String {
    match unread {
        0 => "tcpchat".to_owned(),
        unread => tr!(language, "title.unread", count = unread),
    }
}

/// The scrollback's text area at `size` for `app` as it is now: the columns lines wrap to
/// (after any timestamps) and the rows a page has. The event loop hands this to
/// [`App::fit`], so the state never has to know the layout.
pub fn text_area(app: &App, size: (u16, u16)) -> (usize, usize) {
    let pane = layout(size, Parts::of(app)).scrollback;
    let stamps = if app.timestamps { TIMESTAMP_WIDTH } else { 0 };
    (
        usize::from(pane.width.saturating_sub(stamps)),
        usize::from(pane.height),
    )
}

/// Whether the inspector at `size` for `app` is tall enough to stack the client's pages in
/// one (the event loop tells [`crate::inspector::Inspector::set_stacked`], so F5 knows).
pub fn inspector_stacked(app: &App, size: (u16, u16)) -> bool {
    let mut parts = Parts::of(app);
    parts.inspector = true;
    inspector_pane::stacks(layout(size, parts).inspector)
}

/// Draws the whole screen for `app`.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let areas = layout((area.width, area.height), Parts::of(app));
    let buf = frame.buffer_mut();
    ScrollbackView {
        scrollback: &app.scrollback,
        timestamps: app.timestamps,
        marker: app.buffers.current().marker,
        language: app.language,
    }
    .render(areas.scrollback, buf);
    inspector_pane::render(&app.inspector, app.language, areas.inspector, buf);
    let lesson_text = app.lesson.as_ref().and_then(|card| {
        crate::lesson::texts(app.language)
            .get(card.lesson)
            .map(|text| (card, text))
    });
    if let Some((card, text)) = lesson_text {
        LessonCard {
            card,
            text,
            language: app.language,
        }
        .render(areas.scrollback, buf);
    }
    BufferBar {
        items: app
            .buffers
            .iter()
            .map(|buffer| BarItem {
                name: &buffer.name,
                unread: buffer.unread,
                mentions: buffer.mentions,
            })
            .collect(),
        current: app.buffers.current_index(),
    }
    .render(areas.bar, buf);
    let chat = app.settings.framing == Framing::Lines;
    StatusBar {
        conn: &app.conn,
        role: app.settings.role,
        nick: app.nick.as_deref(),
        buffer: chat.then_some(app.buffers.current().name.as_str()),
        online: app.online(),
        framing: app.settings.framing,
        bytes_in: app.bytes_in,
        bytes_out: app.bytes_out,
        rtt_us: (app.conn == Conn::Connected)
            .then(|| app.inspector.kernel.latest.and_then(|info| info.rtt_us))
            .flatten(),
        ends: app.local.zip(app.peer),
        target: &app.settings.target,
        tls: app.tls,
        help_key: app.keymap.help_key(),
        language: app.language,
    }
    .render(areas.status, buf);
    let paste_waiting = match &app.overlay {
        Overlay::Paste(lines) => Some(lines.len()),
        _ => None,
    };
    let cursor = InputLine {
        input: &app.input,
        paste_waiting,
        language: app.language,
    }
    .render(areas.input, buf);
    match &app.overlay {
        Overlay::None => {
            if let Some(cursor) = cursor {
                frame.set_cursor_position(cursor);
            }
        }
        Overlay::Help(scrolled) => Help {
            keymap: &app.keymap,
            language: app.language,
            scrolled: *scrolled,
        }
        .render(area, frame.buffer_mut()),
        Overlay::Paste(_) => {}
    }
    style::apply_colour_choice(frame.buffer_mut());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_stacks_the_rows_without_gaps_down_to_one_cell() {
        for rows in 0..30 {
            for cols in [0, 1, 2, 80] {
                for bar in [false, true] {
                    let parts = Parts {
                        inspector: false,
                        bar,
                    };
                    let areas = layout((cols, rows), parts);
                    let total = areas.scrollback.height
                        + areas.bar.height
                        + areas.status.height
                        + areas.input.height;
                    assert_eq!(total, rows, "{cols}x{rows} {parts:?}");
                    // Top to bottom: scrollback, buffer bar, status bar, edit box, touching.
                    assert_eq!(areas.scrollback.bottom(), areas.bar.top(), "{cols}x{rows}");
                    assert_eq!(areas.bar.bottom(), areas.status.top(), "{cols}x{rows}");
                    assert_eq!(areas.status.bottom(), areas.input.top(), "{cols}x{rows}");
                    assert_eq!(areas.input.bottom(), rows, "{cols}x{rows}");
                    if rows >= 1 {
                        assert_eq!(areas.input.height, 1, "the edit box comes first");
                    }
                    if rows >= 2 {
                        assert_eq!(areas.status.height, 1, "then the status bar");
                    }
                    let bar_rows = u16::from(bar && rows >= 3);
                    assert_eq!(areas.bar.height, bar_rows, "{cols}x{rows} {parts:?}");
                    for wide in [cols, 200] {
                        let parts = Parts {
                            inspector: true,
                            bar,
                        };
                        let open = layout((wide, rows), parts);
                        let main = open.scrollback.union(open.inspector);
                        assert_eq!(
                            main.height,
                            rows.saturating_sub(2 + bar_rows),
                            "{wide}x{rows}"
                        );
                        assert!(!open.scrollback.intersects(open.inspector));
                        assert_eq!(main.bottom(), open.bar.top(), "{wide}x{rows}");
                    }
                }
            }
        }
    }
}
