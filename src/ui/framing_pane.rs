//! Draws the inspector's framing page: the lab's knobs on top, then one row per figure, each
//! with where it comes from: a kernel field (`data_segs_out`, `SIOCINQ`, `snd_wnd`...) read
//! from the latest `TCP_INFO` sample, or "counted by tcpchat" for our own `send()`/`recv()`
//! calls and the lines they assemble into. Reads an [`Inspector`]; changes nothing.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};

use crate::app::lab_knobs;
use crate::i18n::{Language, tr};
use crate::inspector::{Calls, Inspector, median, millis};
use crate::lab::Reader;

const DIM: Style = Style::new().fg(Color::DarkGray);
const VALUE: Style = Style::new().fg(Color::White);
const KNOBS: Style = Style::new().fg(Color::Yellow);
const WAITING: Style = Style::new().fg(Color::Magenta);

/// Columns of the label before each value.
const LABEL: usize = 13;

/// Columns a value gets, at least and at most.
const VALUE_MIN: usize = 24;
const VALUE_MAX: usize = 34;

/// Columns kept for a figure's source before values are narrowed.
const SOURCE_MIN: usize = 20;

/// Sizes of the last calls shown on a row.
const SIZES_SHOWN: usize = 8;

/// Draws the framing page of `inspector` into `area`, in `language`.
pub(super) fn render(inspector: &Inspector, language: Language, area: Rect, buf: &mut Buffer) {
    let lab = &inspector.framing;
    let counted = tr!(language, "lab.page_counted");
    let kernel = inspector.kernel.latest;
    let field = |get: fn(&crate::tcpinfo::TcpInfo) -> Option<u64>| {
        kernel
            .as_ref()
            .and_then(get)
            .map_or_else(|| "-".to_owned(), |n| n.to_string())
    };
    let (partial, partial_len) = lab.partial();
    let waiting = match partial_len {
        0 => tr!(language, "lab.page_none_waiting"),
        len => {
            let text = String::from_utf8_lossy(partial).escape_debug().to_string();
            tr!(language, "lab.page_waiting", text = text, len = len)
        }
    };
    let lines = tr!(
        language,
        "lab.page_lines",
        lines = lab.lines,
        last = lab.lines_last_read
    );
    let segs = format!(
        "{} / {}",
        field(|i| i.data_segs_out),
        field(|i| i.data_segs_in)
    );
    let windows = format!(
        "{} / {}",
        bytes(field(|i| i.snd_wnd)),
        bytes(field(|i| i.rcv_wnd))
    );
    let mut rows: Vec<(String, String, String, Style)> = vec![
        (
            "send()".to_owned(),
            calls(&lab.sends, language),
            counted.clone(),
            VALUE,
        ),
        (
            "recv()".to_owned(),
            calls(&lab.recvs, language),
            counted.clone(),
            VALUE,
        ),
        (
            tr!(language, "lab.page_lines_label"),
            lines,
            tr!(language, "lab.page_assembled"),
            VALUE,
        ),
        (
            tr!(language, "lab.page_waiting_label"),
            waiting,
            counted.clone(),
            WAITING,
        ),
        (
            "segs out/in".to_owned(),
            segs,
            "data_segs_out / data_segs_in".to_owned(),
            VALUE,
        ),
        (
            "SIOCINQ".to_owned(),
            bytes(field(|i| i.recv_queue)),
            tr!(language, "lab.page_inq"),
            VALUE,
        ),
        (
            "SIOCOUTQ".to_owned(),
            bytes(field(|i| i.send_queue)),
            tr!(language, "lab.page_outq"),
            VALUE,
        ),
        (
            "windows".to_owned(),
            windows,
            tr!(language, "lab.page_windows"),
            VALUE,
        ),
    ];
    if let Some((nagle, rounds)) = &lab.probe {
        let nagle = tr!(language, if *nagle { "lab.on" } else { "lab.off" });
        let median = median(rounds).map_or_else(|| "-".to_owned(), millis);
        let value = tr!(
            language,
            "lab.page_probe",
            nagle = nagle,
            median = median,
            rounds = rounds.len()
        );
        rows.push((
            "probe".to_owned(),
            value,
            tr!(language, "lab.page_timed"),
            VALUE,
        ));
    }
    if let Some((asked, kernel)) = lab.rcvbuf {
        let value = tr!(language, "lab.page_rcvbuf", asked = asked, kernel = kernel);
        rows.push((
            "SO_RCVBUF".to_owned(),
            value,
            "getsockopt".to_owned(),
            VALUE,
        ));
    }
    if lab.read_shut {
        rows.push((
            "SHUT_RD".to_owned(),
            tr!(language, "lab.read_shut"),
            counted,
            VALUE,
        ));
    }
    if let Some(why) = &lab.failed {
        rows.push((
            "!".to_owned(),
            why.clone(),
            String::new(),
            Style::new().fg(Color::Red),
        ));
    }
    let knobs = lab_knobs(&lab.knobs, language);
    let mut y = area.y;
    put(buf, area, y, &[(&knobs, KNOBS)]);
    y += 1;
    if lab.knobs.reader == Reader::Paused && y < area.bottom() {
        put(buf, area, y, &[(&tr!(language, "lab.page_paused"), DIM)]);
        y += 1;
    }
    // Values are cut to one width so the sources line up after them; a narrow pane cuts the
    // sources first.
    let value_width = usize::from(area.width)
        .saturating_sub(LABEL + SOURCE_MIN)
        .clamp(VALUE_MIN, VALUE_MAX);
    for (label, value, source, style) in rows {
        if y >= area.bottom() {
            break;
        }
        let label = format!("{label:<LABEL$}");
        let value: String = value.chars().take(value_width).collect();
        let value = format!("{value:<value_width$} ");
        put(
            buf,
            area,
            y,
            &[(&label, DIM), (&value, style), (&source, DIM)],
        );
        y += 1;
    }
}

/// `3 calls, 3072 B · newest: 1024 1024 1024`: how many calls, their bytes, the last sizes
/// newest first (a narrow pane cuts the oldest).
fn calls(calls: &Calls, language: Language) -> String {
    let skip = calls.last.len().saturating_sub(SIZES_SHOWN);
    let sizes: Vec<String> = calls
        .last
        .iter()
        .skip(skip)
        .rev()
        .map(ToString::to_string)
        .collect();
    let key = match calls.count {
        1 => "lab.page_call",
        _ => "lab.page_calls",
    };
    tr!(
        language,
        key,
        count = calls.count,
        bytes = calls.bytes,
        sizes = sizes.join(" ")
    )
}

fn bytes(figure: String) -> String {
    if figure == "-" {
        figure
    } else {
        format!("{figure} B")
    }
}

/// Writes `pieces` on row `y`, left to right, cut at the area's edge.
fn put(buf: &mut Buffer, area: Rect, y: u16, pieces: &[(&str, Style)]) {
    let mut x = area.x;
    for (text, style) in pieces {
        let room = usize::from(area.right().saturating_sub(x));
        if room == 0 {
            break;
        }
        (x, _) = buf.set_stringn(x, y, text, room, *style);
    }
}
