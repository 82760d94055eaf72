//! A ratatui [`Buffer`] as an SVG picture of a terminal: every cell where the terminal would
//! put it, in its colours and weight.
//!
//! The grid is kept whatever font the viewer has: a run of one-column cells in one style is one
//! `<text>` pinned to its width (`textLength`), and a two-column character (中文, emoji) is
//! centred on its two cells. Backgrounds are one rectangle per run of cells that share one.
//! Named colours are a real terminal's: GNOME Terminal's default palette, on its dark
//! background. Coordinates are whole pixels, so the same buffer always gives the same bytes.

use std::fmt::Write as _;

use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthStr;

/// Pixels per cell: a monospace font's advance is 0.6 em, so 15 px text is 9 px wide.
const CELL_W: u32 = 9;
/// Pixels per row.
const CELL_H: u32 = 19;
/// Font size, px.
const FONT_PX: u32 = 15;
/// From a row's top to the text's baseline, px.
const BASELINE: u32 = 14;
/// Margin around the screen, px.
const PAD: u32 = 12;

/// Fonts tried in turn; the viewer's own monospace font last.
const FONTS: &str = "ui-monospace, 'SF Mono', Menlo, 'Cascadia Mono', Consolas, \
                     'DejaVu Sans Mono', 'Liberation Mono', monospace";

/// A colour as `0xRRGGBB`; displayed as `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb(u32);

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:06x}", self.0)
    }
}

/// GNOME Terminal's default palette, in ANSI order: black, red, green, yellow, blue, magenta,
/// cyan, white, then the bright eight.
const PALETTE: [Rgb; 16] = [
    Rgb(0x171421),
    Rgb(0xc01c28),
    Rgb(0x26a269),
    Rgb(0xa2734c),
    Rgb(0x12488b),
    Rgb(0xa347ba),
    Rgb(0x2aa1b3),
    Rgb(0xd0cfcc),
    Rgb(0x5e5c64),
    Rgb(0xf66151),
    Rgb(0x33d17a),
    Rgb(0xe9ad0c),
    Rgb(0x2a7bde),
    Rgb(0xc061cb),
    Rgb(0x33c7de),
    Rgb(0xffffff),
];

/// The terminal's own text colour (`Color::Reset` as a foreground).
const DEFAULT_FG: Rgb = Rgb(0xd0cfcc);
/// The terminal's own background (`Color::Reset` as a background).
const DEFAULT_BG: Rgb = Rgb(0x171421);

/// Draws `buffer` as a terminal screen, with a block caret at `cursor` if there is one.
/// `title` names the picture for screen readers.
pub fn render(buffer: &Buffer, cursor: Option<(u16, u16)>, title: &str) -> String {
    let area = buffer.area;
    let width = u32::from(area.width) * CELL_W + 2 * PAD;
    let height = u32::from(area.height) * CELL_H + 2 * PAD;
    let mut svg = String::new();
    // Writing into a `String` cannot fail.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{title}" xml:space="preserve">"#,
        title = escape(title),
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(title));
    let _ = writeln!(
        svg,
        "<style>text{{font-family:{FONTS};font-size:{FONT_PX}px;white-space:pre}} .b{{font-weight:bold}} \
         .i{{font-style:italic}} .u{{text-decoration:underline}} .s{{text-decoration:line-through}} \
         .d{{opacity:0.6}}</style>"
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" rx="8" fill="{DEFAULT_BG}"/>"#
    );
    let _ = writeln!(svg, r#"<g transform="translate({PAD} {PAD})">"#);
    for y in 0..area.height {
        let cells = row(buffer, y);
        backgrounds(&mut svg, &cells, y);
        if let Some((cx, cy)) = cursor.filter(|&(_, cy)| cy == y) {
            let _ = writeln!(
                svg,
                r#"<rect x="{}" y="{}" width="{CELL_W}" height="{CELL_H}" fill="{DEFAULT_FG}" opacity="0.7"/>"#,
                u32::from(cx) * CELL_W,
                u32::from(cy) * CELL_H,
            );
        }
        texts(&mut svg, &cells, y);
    }
    svg.push_str("</g>\n</svg>\n");
    svg
}

/// One drawn cell: where it starts, how many columns it covers, what it shows and how.
struct Drawn<'a> {
    x: u16,
    width: u16,
    symbol: &'a str,
    look: Look,
}

/// A cell's colours and text style, reverse video already applied.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Look {
    fg: Rgb,
    bg: Rgb,
    bold: bool,
    italic: bool,
    underlined: bool,
    crossed: bool,
    dim: bool,
    hidden: bool,
}

impl Look {
    fn of(cell: &Cell) -> Self {
        let mut fg = colour(cell.fg, DEFAULT_FG);
        let mut bg = colour(cell.bg, DEFAULT_BG);
        let modifier = cell.modifier;
        if modifier.contains(Modifier::REVERSED) {
            std::mem::swap(&mut fg, &mut bg);
        }
        Self {
            fg,
            bg,
            bold: modifier.contains(Modifier::BOLD),
            italic: modifier.contains(Modifier::ITALIC),
            underlined: modifier.contains(Modifier::UNDERLINED),
            crossed: modifier.contains(Modifier::CROSSED_OUT),
            dim: modifier.contains(Modifier::DIM),
            hidden: modifier.contains(Modifier::HIDDEN),
        }
    }

    /// The CSS classes for the text style, as ` class="…"` or nothing.
    fn classes(self) -> String {
        let names: Vec<&str> = [
            (self.bold, "b"),
            (self.italic, "i"),
            (self.underlined, "u"),
            (self.crossed, "s"),
            (self.dim, "d"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            String::new()
        } else {
            format!(r#" class="{}""#, names.join(" "))
        }
    }

    /// Whether a blank in this look shows anything (a line through or under it).
    fn marks_blanks(self) -> bool {
        self.underlined || self.crossed
    }
}

/// The cells of row `y` as the terminal shows them: a wide character covers the cell after it,
/// which is skipped.
fn row(buffer: &Buffer, y: u16) -> Vec<Drawn<'_>> {
    let mut cells = Vec::new();
    let mut x = 0;
    while x < buffer.area.width {
        let cell = &buffer[(buffer.area.x + x, buffer.area.y + y)];
        let symbol = cell.symbol();
        let width = u16::try_from(symbol.width())
            .unwrap_or(1)
            .clamp(1, 2)
            .min(buffer.area.width - x);
        cells.push(Drawn {
            x,
            width,
            symbol,
            look: Look::of(cell),
        });
        x += width;
    }
    cells
}

/// One rectangle per run of cells on a background other than the terminal's.
fn backgrounds(svg: &mut String, cells: &[Drawn<'_>], y: u16) {
    for run in cells.chunk_by(|a, b| a.look.bg == b.look.bg) {
        let bg = run[0].look.bg;
        if bg == DEFAULT_BG {
            continue;
        }
        let columns: u16 = run.iter().map(|cell| cell.width).sum();
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{}" width="{}" height="{CELL_H}" fill="{bg}"/>"#,
            u32::from(run[0].x) * CELL_W,
            u32::from(y) * CELL_H,
            u32::from(columns) * CELL_W,
        );
    }
}

/// The text of row `y`: runs of one-column cells in one look, each wide character alone.
fn texts(svg: &mut String, cells: &[Drawn<'_>], y: u16) {
    let baseline = u32::from(y) * CELL_H + BASELINE;
    for run in cells.chunk_by(|a, b| a.look == b.look && a.width == 1 && b.width == 1) {
        let look = run[0].look;
        if look.hidden {
            continue;
        }
        if run[0].width == 2 {
            let cell = &run[0];
            let centre = u32::from(cell.x) * CELL_W + CELL_W;
            let _ = writeln!(
                svg,
                r#"<text x="{centre}" y="{baseline}" fill="{}" text-anchor="middle"{}>{}</text>"#,
                look.fg,
                look.classes(),
                escape(cell.symbol),
            );
            continue;
        }
        // Blanks at either end of a run are left out, unless they are underlined or struck.
        let blank = |cell: &&Drawn<'_>| cell.symbol.trim().is_empty() && !look.marks_blanks();
        let Some(first) = run.iter().position(|cell| !blank(&cell)) else {
            continue;
        };
        let last = run.iter().rposition(|cell| !blank(&cell)).unwrap_or(first);
        let shown = &run[first..=last];
        let text: String = shown
            .iter()
            .map(|cell| match cell.symbol {
                "" => " ",
                symbol => symbol,
            })
            .collect();
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{baseline}" fill="{}" textLength="{}" lengthAdjust="spacingAndGlyphs"{}>{}</text>"#,
            u32::from(shown[0].x) * CELL_W,
            look.fg,
            shown.len() as u32 * CELL_W,
            look.classes(),
            escape(&text),
        );
    }
}

/// The colour `color` is drawn in; `Reset` is the terminal's own (`default`).
fn colour(color: Color, default: Rgb) -> Rgb {
    let ansi = match color {
        Color::Reset => return default,
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Indexed(index) => return indexed(index),
        Color::Rgb(r, g, b) => return rgb(r, g, b),
    };
    PALETTE[ansi]
}

/// xterm's 256 colours: the palette, a 6×6×6 cube, then 24 greys.
fn indexed(index: u8) -> Rgb {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match index {
        0..=15 => PALETTE[usize::from(index)],
        16..=231 => {
            let n = index - 16;
            rgb(
                LEVELS[usize::from(n / 36)],
                LEVELS[usize::from(n / 6 % 6)],
                LEVELS[usize::from(n % 6)],
            )
        }
        232..=255 => {
            let grey = 8 + 10 * (index - 232);
            rgb(grey, grey, grey)
        }
    }
}

fn rgb(r: u8, g: u8, b: u8) -> Rgb {
    Rgb(u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b))
}

/// Text as XML character data or an attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    fn buffer(lines: &[(&str, Style)]) -> Buffer {
        let mut buffer = Buffer::empty(Rect::new(0, 0, 12, lines.len() as u16));
        for (y, (text, style)) in lines.iter().enumerate() {
            buffer.set_string(0, y as u16, text, *style);
        }
        buffer
    }

    #[test]
    fn markup_in_the_text_is_escaped() {
        let svg = render(&buffer(&[("<a> & \"b\"", Style::new())]), None, "x<y");
        assert!(svg.contains("&lt;a&gt; &amp; &quot;b&quot;"), "{svg}");
        assert!(svg.contains(r#"aria-label="x&lt;y""#), "{svg}");
        assert!(!svg.contains("<a>"), "{svg}");
    }

    #[test]
    fn a_wide_character_is_centred_on_its_two_cells_and_the_rest_keeps_the_grid() {
        let svg = render(&buffer(&[("你a", Style::new())]), None, "t");
        // 你 covers columns 0 and 1: its centre is one cell in; `a` starts at column 2.
        assert!(
            svg.contains(r##"<text x="9" y="14" fill="#d0cfcc" text-anchor="middle">你</text>"##),
            "{svg}"
        );
        assert!(
            svg.contains(r##"<text x="18" y="14" fill="#d0cfcc" textLength="9""##),
            "{svg}"
        );
    }

    #[test]
    fn reverse_video_swaps_the_colours_and_backgrounds_are_drawn() {
        let reversed = Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD);
        let on_blue = Style::new().bg(Color::Blue).fg(Color::White);
        let svg = render(&buffer(&[("me", reversed), ("bar", on_blue)]), None, "t");
        // Reversed: the default background as text on the default foreground.
        assert!(
            svg.contains(r##"<rect x="0" y="0" width="18" height="19" fill="#d0cfcc"/>"##),
            "{svg}"
        );
        assert!(
            svg.contains(
                r##"fill="#171421" textLength="18" lengthAdjust="spacingAndGlyphs" class="b">me<"##
            ),
            "{svg}"
        );
        // Blue as GNOME Terminal draws it, the whole run.
        assert!(
            svg.contains(r##"<rect x="0" y="19" width="27" height="19" fill="#12488b"/>"##),
            "{svg}"
        );
    }

    #[test]
    fn colours_follow_the_terminal_palette() {
        let hex = |color| colour(color, Rgb(0x000001)).to_string();
        assert_eq!(hex(Color::Reset), "#000001");
        assert_eq!(hex(Color::DarkGray), "#5e5c64");
        assert_eq!(hex(Color::Indexed(196)), "#ff0000");
        assert_eq!(hex(Color::Indexed(232)), "#080808");
        assert_eq!(hex(Color::Rgb(1, 2, 3)), "#010203");
    }

    #[test]
    fn the_caret_is_drawn_where_it_is() {
        let svg = render(&buffer(&[("> hi", Style::new())]), Some((4, 0)), "t");
        assert!(
            svg.contains(
                r##"<rect x="36" y="0" width="9" height="19" fill="#d0cfcc" opacity="0.7"/>"##
            ),
            "{svg}"
        );
    }
}
