//! Whole screens rendered into ratatui's `TestBackend` and compared with reviewed snapshots
//! (text only), the colours and styles of each part checked cell by cell, and sweeps over sizes
//! that must keep the layout and never draw outside the terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use tcpchat::app::{App, Clock, Role, Settings};
use tcpchat::event_loop::fit;
use tcpchat::net::NetEvent;
use tcpchat::protocol::Framing;
use tcpchat::ui;
use tokio::time::Instant;

/// The moment every session here starts, so that times on screen are the same in every run.
fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn app(framing: Framing, role: Role) -> App {
    let settings = Settings {
        target: "127.0.0.1:8888".into(),
        framing,
        nick: Some("alice".into()),
        scrollback: 10_000,
        role,
    };
    let wall = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
        .unwrap()
        .and_hms_opt(12, 34, 56)
        .unwrap();
    App::new(settings, Clock::starting(t0(), wall))
}

fn on_net(app: &mut App, event: NetEvent) {
    app.on_net(event, t0());
}

fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) {
    app.on_key(KeyEvent::new(code, modifiers), t0());
}

fn received(app: &mut App, text: &str) {
    on_net(
        app,
        NetEvent::Received(Bytes::copy_from_slice(text.as_bytes())),
    );
}

/// A session as a person sees it: connected, greeted, renamed, a few people talking.
fn chatting() -> App {
    let mut app = app(Framing::Lines, Role::Hosting);
    on_net(
        &mut app,
        NetEvent::Connecting {
            addr: "127.0.0.1:8888".parse().unwrap(),
        },
    );
    on_net(
        &mut app,
        NetEvent::Connected {
            local: "127.0.0.1:51234".parse().unwrap(),
            peer: "127.0.0.1:8888".parse().unwrap(),
            handshake: Duration::from_micros(84),
            info: None,
        },
    );
    received(
        &mut app,
        "*** 连接成功! you are guest-1; 3 online; /help lists the commands\n\
         *** guest-1 is now known as alice\n\
         <bob> 你好,alice!这是中文消息。\n\
         <alice> hi bob 👋 emoji ok: 👨\u{200d}👩\u{200d}👧 ❤\u{fe0f}\n\
         * carol waves\n\
         <carol> a long line that has to wrap at the edge of the terminal because it goes on and on past eighty columns\n\
         ! nick bob is already taken\n",
    );
    on_net(
        &mut app,
        NetEvent::Sent {
            bytes: 2048,
            exit: false,
        },
    );
    app
}

fn draw(app: &mut App, cols: u16, rows: u16) -> Terminal<TestBackend> {
    fit(app, (cols, rows));
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    terminal.draw(|frame| ui::render(app, frame)).unwrap();
    terminal
}

#[test]
fn chat_at_80x24() {
    let mut app = chatting();
    app.input.insert("typing 你好");
    let mut terminal = draw(&mut app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
    // The caret sits after the typed text by display width: "> " + 7 + 4 columns.
    terminal.backend_mut().assert_cursor_position((13, 23));
}

/// The text of row `y`.
fn row_text(buffer: &Buffer, y: u16) -> String {
    (0..buffer.area.width)
        .map(|x| buffer[(x, y)].symbol())
        .collect()
}

/// The cell `(x, y)` where `needle` starts on the screen (the first row that has it).
fn locate(buffer: &Buffer, needle: &str) -> (u16, u16) {
    (0..buffer.area.height)
        .find_map(|y| Some((locate_in(buffer, y, needle)?, y)))
        .unwrap_or_else(|| panic!("{needle:?} is not on the screen"))
}

/// The column where `needle` starts in row `y`, if it is there.
fn locate_in(buffer: &Buffer, y: u16, needle: &str) -> Option<u16> {
    let at = row_text(buffer, y).find(needle)?;
    // Bytes to columns: each cell's symbol in turn (a wide character's second cell holds a
    // space).
    let mut bytes = 0;
    (0..buffer.area.width).find(|&x| {
        let here = bytes == at;
        bytes += buffer[(x, y)].symbol().len();
        here
    })
}

/// Asserts that each of the `len` cells from `(x, y)` is drawn in `fg` on `bg` with exactly
/// the modifiers `modifier` (none other).
fn assert_look(
    buffer: &Buffer,
    (x, y): (u16, u16),
    len: u16,
    (fg, bg, modifier): (Color, Color, Modifier),
    what: &str,
) {
    for x in x..x + len {
        let cell = &buffer[(x, y)];
        assert_eq!(
            (cell.fg, cell.bg, cell.modifier),
            (fg, bg, modifier),
            "{what}: cell ({x}, {y}) {:?} of {:?}",
            cell.symbol(),
            row_text(buffer, y)
        );
    }
}

/// Where `needle` is (one column per character), and that it is drawn with `look` throughout.
fn assert_text_look(buffer: &Buffer, needle: &str, look: (Color, Color, Modifier), what: &str) {
    let at = locate(buffer, needle);
    let len = u16::try_from(needle.chars().count()).unwrap();
    assert_look(buffer, at, len, look, what);
}

const PLAIN: (Color, Color, Modifier) = (Color::Reset, Color::Reset, Modifier::empty());

/// A nick's look: its own colour, bold, on the terminal's background.
fn nick_look(nick: &str) -> (Color, Color, Modifier) {
    (ui::nick_color(nick), Color::Reset, Modifier::BOLD)
}

#[test]
fn each_kind_of_line_is_drawn_in_its_own_style() {
    let mut app = chatting();
    received(
        &mut app,
        "<bob> again\n<Bob> the same nick in capitals\n<dave> hello\n",
    );
    let terminal = draw(&mut app, 80, 24);
    let buffer = terminal.backend().buffer();

    // Our own lines: the nick reversed and bold with no colour of its own (a fixed colour can
    // vanish on a light or a dark terminal); the text plain.
    let own = (
        Color::Reset,
        Color::Reset,
        Modifier::BOLD | Modifier::REVERSED,
    );
    assert_text_look(buffer, "<alice> ", own, "our own nick");
    assert_text_look(buffer, "hi bob", PLAIN, "our own text");

    // A line that names us: its nick black on yellow, its text bold.
    let (_, bob_row) = locate(buffer, "<bob> 你");
    let mention = (Color::Black, Color::Yellow, Modifier::BOLD);
    assert_look(buffer, (0, bob_row), 6, mention, "bob naming alice");
    assert_eq!(buffer[(6, bob_row)].symbol(), "你");
    let said = (Color::Reset, Color::Reset, Modifier::BOLD);
    assert_look(buffer, (6, bob_row), 1, said, "bob's text naming alice");

    // Other nicks: bold, in a colour of the nick's own, the same on every line and whatever
    // the case; the text plain.
    let (_, again) = locate(buffer, "<bob> again");
    assert_look(buffer, (0, again), 6, nick_look("bob"), "bob's second line");
    assert_look(buffer, (6, again), 5, PLAIN, "bob's second text");
    let (_, caps) = locate(buffer, "<Bob> ");
    assert_look(buffer, (0, caps), 6, nick_look("bob"), "Bob in capitals");
    assert_text_look(buffer, "<carol> ", nick_look("carol"), "carol's nick");
    assert_text_look(buffer, "<dave> ", nick_look("dave"), "dave's nick");
    let colours = [ui::nick_color("bob"), ui::nick_color("carol")];
    assert!(
        colours
            .iter()
            .all(|c| !matches!(c, Color::Reset | Color::White | Color::Black)),
        "a nick's colour is a colour: {colours:?}"
    );
    assert_ne!(colours[0], colours[1], "different nicks, different colours");
    // A wrapped message: only its first row has the nick's look.
    assert_text_look(
        buffer,
        "on and on past eighty columns",
        PLAIN,
        "a wrapped row",
    );

    // The server's events, actions, errors; the client's own notes.
    let event = (Color::Cyan, Color::Reset, Modifier::empty());
    assert_text_look(
        buffer,
        "*** guest-1 is now known as alice",
        event,
        "an event",
    );
    let (_, greeting) = locate(buffer, "*** ");
    assert_look(buffer, (0, greeting), 4, event, "the greeting");
    let action = (Color::Magenta, Color::Reset, Modifier::empty());
    assert_text_look(buffer, "* carol waves", action, "an action");
    let error = (Color::LightRed, Color::Reset, Modifier::empty());
    assert_text_look(buffer, "! nick bob is already taken", error, "an error");
    let note = (Color::DarkGray, Color::Reset, Modifier::ITALIC);
    assert_text_look(buffer, "-- connecting to 127.0.0.1:8888...", note, "a note");
    assert_text_look(buffer, "-- connected 127.0.0.1:51234 ", note, "a note");

    // The edit box: the prompt in cyan.
    let prompt = (Color::Cyan, Color::Reset, Modifier::empty());
    assert_look(buffer, (0, 23), 2, prompt, "the prompt");
}

#[test]
fn the_status_bar_is_white_on_blue_and_its_state_coloured() {
    let mut app = chatting();
    let terminal = draw(&mut app, 140, 24);
    let buffer = terminal.backend().buffer();
    let status = 22;
    for x in 0..140 {
        assert_eq!(
            buffer[(x, status)].bg,
            Color::Blue,
            "cell ({x}, {status}) of {:?}",
            row_text(buffer, status)
        );
    }
    let on_blue = |fg, modifier| (fg, Color::Blue, modifier);
    let in_status = |needle: &str, look, what: &str| {
        let x = locate_in(buffer, status, needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {:?}", row_text(buffer, status)));
        let len = u16::try_from(needle.chars().count()).unwrap();
        assert_look(buffer, (x, status), len, look, what);
    };
    let white = on_blue(Color::White, Modifier::empty());
    in_status(
        "connected",
        on_blue(Color::LightGreen, Modifier::BOLD),
        "the state",
    );
    in_status(" │ hosting │ ", white, "the role between separators");
    in_status("alice", on_blue(Color::White, Modifier::BOLD), "the nick");
    in_status("3 online", white, "the count");
    in_status("127.0.0.1:51234 → 127.0.0.1:8888", white, "the ends");
    in_status(
        "F1 help",
        on_blue(Color::Gray, Modifier::empty()),
        "the hint",
    );

    // Other states, other colours.
    let mut closed = chatting();
    on_net(
        &mut closed,
        NetEvent::Closed {
            how: tcpchat::net::Close::Reset,
            info: None,
            time_wait: None,
        },
    );
    let terminal = draw(&mut closed, 140, 24);
    let closed_look = on_blue(Color::LightRed, Modifier::BOLD);
    let buffer = terminal.backend().buffer();
    let x = locate_in(buffer, status, "closed: reset").expect("the closed state");
    assert_look(buffer, (x, status), 13, closed_look, "closed");
    on_net(
        &mut closed,
        NetEvent::Reconnecting {
            delay: Duration::from_secs(4),
        },
    );
    let terminal = draw(&mut closed, 140, 24);
    let waiting = on_blue(Color::Yellow, Modifier::BOLD);
    let buffer = terminal.backend().buffer();
    let x = locate_in(buffer, status, "reconnecting in 4 s").expect("the waiting state");
    assert_look(buffer, (x, status), 19, waiting, "waiting");
}

#[test]
fn timestamps_and_the_scrolled_up_marker_have_their_looks() {
    let mut app = chatting();
    for n in 0..60 {
        received(&mut app, &format!("<bob> line {n:02}\n"));
    }
    press(&mut app, KeyCode::F(3), KeyModifiers::NONE);
    fit(&mut app, (80, 24));
    press(&mut app, KeyCode::PageUp, KeyModifiers::NONE);
    received(&mut app, "<bob> after scrolling\n");
    let terminal = draw(&mut app, 80, 24);
    let buffer = terminal.backend().buffer();
    let marker = (Color::Black, Color::Yellow, Modifier::empty());
    assert_text_look(buffer, " ↓ 1 new (End) ", marker, "the marker");
    let (_, row) = locate(buffer, "12:34:56 <bob> line");
    let stamp = (Color::DarkGray, Color::Reset, Modifier::empty());
    assert_look(buffer, (0, row), 8, stamp, "a timestamp");
    assert_look(buffer, (9, row), 6, nick_look("bob"), "the nick after it");
}

#[test]
fn chinese_wraps_whole_at_a_narrow_width() {
    let mut app = chatting();
    received(
        &mut app,
        "<bob> 第1条信息:你好,世界!宽字符不会被切开。\n<bob> 👨\u{200d}👩\u{200d}👧👍🏽 ok\n",
    );
    let terminal = draw(&mut app, 17, 12);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn help_lists_every_key() {
    let mut app = chatting();
    press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    let terminal = draw(&mut app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn a_help_taller_than_the_terminal_scrolls_to_its_last_row_and_any_other_key_closes_it() {
    let mut app = chatting();
    press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    let first = format!("{}", draw(&mut app, 80, 24).backend());
    assert!(first.contains("PgDn/PgUp scroll"), "{first}");
    assert!(!first.contains("/lab, /shutdown, /reset"), "{first}");
    for _ in 0..3 {
        press(&mut app, KeyCode::PageDown, KeyModifiers::NONE);
    }
    let last = format!("{}", draw(&mut app, 80, 24).backend());
    assert!(
        last.contains("/lab, /shutdown, /reset"),
        "the last row: {last}"
    );
    assert!(last.contains("/lesson [N]"), "{last}");
    press(&mut app, KeyCode::PageUp, KeyModifiers::NONE);
    press(&mut app, KeyCode::PageUp, KeyModifiers::NONE);
    press(&mut app, KeyCode::PageUp, KeyModifiers::NONE);
    let back = format!("{}", draw(&mut app, 80, 24).backend());
    assert_eq!(back, first, "PgUp back to the top");
    press(&mut app, KeyCode::Char('x'), KeyModifiers::NONE);
    let closed = format!("{}", draw(&mut app, 80, 24).backend());
    assert!(!closed.contains("tcpchat keys"), "{closed}");
    // At 80×30 it fits: no scrolling, the plain title.
    press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    let tall = format!("{}", draw(&mut app, 80, 30).backend());
    assert!(tall.contains("any key closes") && tall.contains("/lab, /shutdown, /reset"));
}

#[test]
fn scrolled_up_shows_how_many_lines_are_new() {
    let mut app = chatting();
    for n in 0..60 {
        received(&mut app, &format!("<bob> line {n:02}\n"));
    }
    fit(&mut app, (80, 24));
    press(&mut app, KeyCode::PageUp, KeyModifiers::NONE);
    received(&mut app, "<bob> after scrolling\n<bob> and another\n");
    let terminal = draw(&mut app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn the_article_session_in_raw_mode() {
    let mut app = app(Framing::Raw, Role::Joined);
    on_net(
        &mut app,
        NetEvent::Connected {
            local: "127.0.0.1:51234".parse().unwrap(),
            peer: "127.0.0.1:8888".parse().unwrap(),
            handshake: Duration::from_micros(84),
            info: None,
        },
    );
    received(&mut app, "连接成功!");
    app.on_paste("hello");
    press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    received(&mut app, "第1条信息:hello");
    let terminal = draw(&mut app, 60, 10);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn a_multi_line_paste_asks_first() {
    let mut app = chatting();
    app.on_paste("one\ntwo\nthree");
    let terminal = draw(&mut app, 80, 24);
    let last_row: String = (0..80)
        .map(|x| terminal.backend().buffer()[(x, 23)].symbol())
        .collect();
    assert!(
        last_row.starts_with("paste 3 lines? Enter sends each line, Esc drops them"),
        "{last_row}"
    );
}

/// At every size the layout holds: the edit box on the last row (its prompt, the caret after
/// it), the status bar above it and nowhere else, and the scrollback above that ending with
/// the newest line's last row. (`TestBackend`'s buffer is exactly the terminal: a write
/// outside it would panic.)
#[test]
fn every_size_from_1x1_to_200_columns_keeps_the_layout() {
    let mut app = chatting();
    received(&mut app, &format!("<bob> {}\n", "宽".repeat(300)));
    received(&mut app, &format!("<bob> {}\n", "x".repeat(5000)));
    for cols in (1..=200).step_by(7).chain([1, 2, 3, 200]) {
        for rows in [1, 2, 3, 5, 24] {
            let mut terminal = draw(&mut app, cols, rows);
            let buffer = terminal.backend().buffer().clone();
            let size = format!("{cols}x{rows}");
            let input = rows - 1;
            assert_eq!(buffer[(0, input)].symbol(), ">", "the prompt at {size}");
            assert_eq!(buffer[(0, input)].fg, Color::Cyan, "the prompt at {size}");
            if cols >= 3 {
                terminal.backend_mut().assert_cursor_position((2, input));
            }
            let status_rows: Vec<u16> = (0..rows)
                .filter(|&y| (0..cols).any(|x| buffer[(x, y)].bg == Color::Blue))
                .collect();
            if rows >= 2 {
                let status = rows - 2;
                assert_eq!(status_rows, [status], "the status bar's row at {size}");
                assert!(
                    (0..cols).all(|x| buffer[(x, status)].bg == Color::Blue),
                    "the status bar fills its row at {size}"
                );
                let state = row_text(&buffer, status);
                let shown = state.get(1..).unwrap_or_default().trim_end();
                assert!(
                    "connected │".starts_with(shown) || shown.starts_with("connected │"),
                    "the state first in the status bar at {size}: {state:?}"
                );
            } else {
                assert!(status_rows.is_empty(), "no status bar at {size}");
            }
            // The newest line is `<bob> ` then 5,000 x's: its x's start a row of their own and
            // fill whole rows, so the last row holds what is left over.
            let view = rows.saturating_sub(2);
            let last = 1 + (5000 - 1) % usize::from(cols);
            for (k, y) in (0..view).rev().enumerate() {
                let want = if k == 0 { last } else { usize::from(cols) };
                assert_eq!(
                    row_text(&buffer, y).trim_end(),
                    "x".repeat(want),
                    "row {y} of the scrollback at {size}"
                );
            }
        }
    }
    // The help over everything, cut to the screen, its frame in the popup colour.
    press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    for (cols, rows) in [(1, 1), (2, 2), (10, 3), (30, 8)] {
        let terminal = draw(&mut app, cols, rows);
        let buffer = terminal.backend().buffer();
        let corners = [
            ((0, 0), "┌"),
            ((cols - 1, 0), "┐"),
            ((0, rows - 1), "└"),
            ((cols - 1, rows - 1), "┘"),
        ];
        // (On 1x1 only the top-left corner is drawn.)
        let drawn = if cols >= 2 && rows >= 2 { 4 } else { 1 };
        for ((x, y), corner) in corners.into_iter().take(drawn) {
            assert_eq!(
                buffer[(x, y)].symbol(),
                corner,
                "({x}, {y}) at {cols}x{rows}"
            );
            assert_eq!(
                buffer[(x, y)].fg,
                Color::Cyan,
                "({x}, {y}) at {cols}x{rows}"
            );
        }
    }
    let terminal = draw(&mut app, 30, 8);
    assert!(
        row_text(terminal.backend().buffer(), 0).contains("tcpchat keys"),
        "the help's title"
    );
}

/// A whole session with fixed times and kernel figures, as the inspector records it.
fn inspected_session() -> App {
    use tcpchat::net::Close;
    use tcpchat::tcpinfo::{self, TcpInfo};

    let mut app = app(Framing::Lines, Role::Joined);
    let at = |micros: u64| t0() + Duration::from_micros(micros);
    let server = "127.0.0.1:8888".parse().unwrap();
    let handshake = TcpInfo {
        state: Some(tcpinfo::ESTABLISHED),
        segs_out: Some(2),
        segs_in: Some(1),
        bytes_acked: Some(1),
        bytes_received: Some(0),
        rtt_us: Some(84),
        rttvar_us: Some(42),
        rto_us: Some(201_000),
        cwnd: Some(10),
        snd_mss: Some(32_768),
        retransmits: Some(0),
        unacked: Some(0),
        notsent_bytes: Some(0),
        recv_queue: Some(0),
        send_queue: Some(0),
        ..TcpInfo::default()
    };
    let events = [
        (
            0,
            NetEvent::Resolving {
                target: "127.0.0.1:8888".into(),
            },
        ),
        (
            3,
            NetEvent::Resolved {
                addrs: vec![server],
            },
        ),
        (5, NetEvent::Connecting { addr: server }),
        (
            89,
            NetEvent::Connected {
                local: "127.0.0.1:51234".parse().unwrap(),
                peer: server,
                handshake: Duration::from_micros(84),
                info: Some(handshake),
            },
        ),
        (
            400,
            NetEvent::Received(Bytes::from(
                "*** 连接成功! you are guest-1; 1 online; /help lists the commands\n",
            )),
        ),
        (
            900,
            NetEvent::Sent {
                bytes: 12,
                exit: false,
            },
        ),
        (
            1_200,
            NetEvent::Received(Bytes::from("*** guest-1 is now known as alice\n")),
        ),
        (
            2_000_000,
            NetEvent::Sent {
                bytes: 9,
                exit: false,
            },
        ),
        (
            2_000_300,
            NetEvent::Received(Bytes::from("<alice> 你好 bob\n")),
        ),
    ];
    for (micros, event) in events {
        app.on_net(event, at(micros));
    }
    let later = TcpInfo {
        segs_out: Some(6),
        segs_in: Some(5),
        bytes_acked: Some(22),
        bytes_received: Some(117),
        ..handshake
    };
    app.on_tcp_info(handshake);
    app.on_tcp_info(later);
    press(&mut app, KeyCode::F(2), KeyModifiers::NONE);
    press(&mut app, KeyCode::Char('d'), KeyModifiers::CONTROL);
    let fin_wait = TcpInfo {
        state: Some(tcpinfo::FIN_WAIT2),
        ..later
    };
    app.on_net(
        NetEvent::Sent {
            bytes: 5,
            exit: true,
        },
        at(5_000_000),
    );
    app.on_net(
        NetEvent::FinSent {
            before: Some(tcpinfo::ESTABLISHED),
            info: Some(fin_wait),
        },
        at(5_000_010),
    );
    app.on_net(
        NetEvent::Received(Bytes::from("*** bye, alice; closing the connection\n")),
        at(5_000_200),
    );
    let closed = TcpInfo {
        state: Some(tcpinfo::CLOSED),
        ..later
    };
    app.on_net(
        NetEvent::Closed {
            how: Close::PeerFin,
            info: Some(closed),
            time_wait: None,
        },
        at(5_000_210),
    );
    app
}

#[test]
fn inspector_pages_at_80x24() {
    let mut app = inspected_session();
    let mut pages = String::new();
    for _ in 0..4 {
        let terminal = draw(&mut app, 80, 24);
        pages.push_str(&format!("{}\n", terminal.backend()));
        press(&mut app, KeyCode::F(5), KeyModifiers::NONE);
    }
    insta::assert_snapshot!(pages);
}

#[test]
fn inspector_beside_the_chat_on_a_wide_terminal() {
    let mut app = inspected_session();
    let terminal = draw(&mut app, 140, 44);
    insta::assert_snapshot!(terminal.backend());
}

/// The session above with two more buffers: `#rust`, joined, and a private conversation with
/// bob, both with lines that came while the lobby was on screen (one naming alice, and the
/// private one), then `#rust` visited and left again so it has an unread marker to show.
fn in_three_buffers() -> App {
    let mut app = chatting();
    app.on_paste("/join #rust");
    press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    received(
        &mut app,
        "#rust *** alice joined; 2 online\n\
         #rust *** the topic is: borrow checker support group\n\
         *** now talking in #rust\n\
         #rust <carol> welcome, alice\n",
    );
    press(&mut app, KeyCode::Char('1'), KeyModifiers::ALT);
    received(
        &mut app,
        "#rust <carol> does anyone know lifetimes?\n\
         #rust * dave looks at alice\n\
         #rust <carol> they are just scopes\n\
         @bob <bob> psst, alice\n",
    );
    app
}

#[test]
fn the_buffer_bar_at_80x24_counts_unread_lines_and_mentions() {
    let mut app = in_three_buffers();
    let terminal = draw(&mut app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
    let buffer = terminal.backend().buffer();
    let bar = row_text(buffer, 21);
    assert!(
        bar.starts_with("1:#lobby 2:#rust(3,1!) 3:@bob(1!)"),
        "{bar:?}"
    );
    // The buffer on screen reversed, those that named us black on yellow.
    let current = (
        Color::Reset,
        Color::Reset,
        Modifier::REVERSED | Modifier::BOLD,
    );
    assert_text_look(buffer, "1:#lobby", current, "the buffer on screen");
    let mention = (Color::Black, Color::Yellow, Modifier::BOLD);
    assert_text_look(buffer, "2:#rust(3,1!)", mention, "a buffer that named us");
    assert!(
        row_text(buffer, 22).contains("│ #lobby │"),
        "the status bar names it"
    );
}

#[test]
fn a_room_shows_its_unread_marker_and_the_bar_folds_at_40_columns() {
    let mut app = in_three_buffers();
    received(&mut app, "@carol <carol> lunch?\n@dave <dave> hey\n");
    press(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    let terminal = draw(&mut app, 40, 12);
    insta::assert_snapshot!(terminal.backend());
    let buffer = terminal.backend().buffer();
    let bar = row_text(buffer, 9).trim_end().to_owned();
    assert!(
        bar.contains("2:#rust"),
        "the buffer on screen stays: {bar:?}"
    );
    assert!(
        bar.ends_with("+2!>"),
        "the conversations past the edge are counted: {bar:?}"
    );
    let marker = (Color::LightRed, Color::Reset, Modifier::empty());
    assert_text_look(buffer, "── new ──", marker, "the unread marker");
    let (_, marker_row) = locate(buffer, "── new");
    assert!(
        row_text(buffer, marker_row + 1).starts_with("<carol> does anyone"),
        "the marker is right before the first line that came while away"
    );
}

/// Whether `needle` is anywhere on the screen.
fn on_screen(terminal: &Terminal<TestBackend>, needle: &str) -> bool {
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height).any(|y| row_text(buffer, y).contains(needle))
}

/// A chat session that the server closed (no exit: a lost connection), then `failures` refused
/// reconnect attempts, then one that connects and reads the greeting again. The inspector is
/// open from the start.
fn lost_and_reconnected(failures: u64) -> App {
    use tcpchat::net::Close;

    let mut app = app(Framing::Lines, Role::Joined);
    press(&mut app, KeyCode::F(2), KeyModifiers::NONE);
    let server = "127.0.0.1:8888".parse().unwrap();
    let mut micros = 0;
    let mut at = |step: u64| {
        micros += step;
        t0() + Duration::from_micros(micros)
    };
    let greeting = "*** 连接成功! you are guest-1; 1 online; /help lists the commands\n";
    let connect = |app: &mut App, at: Instant, port: u16| {
        app.on_net(NetEvent::Connecting { addr: server }, at);
        let connected = NetEvent::Connected {
            local: ([127, 0, 0, 1], port).into(),
            peer: server,
            handshake: Duration::from_micros(84),
            info: None,
        };
        app.on_net(connected, at);
        app.on_net(NetEvent::Received(Bytes::from(greeting)), at);
    };
    connect(&mut app, at(89), 51234);
    let shutting = NetEvent::Received(Bytes::from("*** server shutting down\n"));
    app.on_net(shutting, at(3_000_000));
    let closed = NetEvent::Closed {
        how: Close::PeerFin,
        info: None,
        time_wait: None,
    };
    app.on_net(closed, at(10));
    for attempt in 0..failures {
        let delay = Duration::from_secs(1 << attempt.min(4));
        app.on_net(NetEvent::Reconnecting { delay }, at(10));
        let micros = u64::try_from(delay.as_micros()).unwrap();
        app.on_net(NetEvent::Connecting { addr: server }, at(micros));
        let refused = "cannot connect to 127.0.0.1:8888: Connection refused (os error 111)";
        app.on_net(NetEvent::ConnectFailed(refused.into()), at(300));
    }
    app.on_net(
        NetEvent::Reconnecting {
            delay: Duration::from_secs(16),
        },
        at(10),
    );
    connect(&mut app, at(16_000_000), 51240);
    app
}

#[test]
fn the_timeline_scrolls_back_to_the_session_under_reconnect_lines_at_100x30() {
    let mut app = lost_and_reconnected(6);
    let terminal = draw(&mut app, 100, 30);
    assert!(
        !on_screen(&terminal, "local port 51234"),
        "the first session is pushed off by the reconnect lines"
    );
    for _ in 0..3 {
        press(&mut app, KeyCode::PageUp, KeyModifiers::ALT);
    }
    let terminal = draw(&mut app, 100, 30);
    assert!(
        on_screen(&terminal, "local port 51234"),
        "scrolled back to it"
    );
    assert!(
        on_screen(&terminal, "newer · Alt-Down"),
        "and says more is below"
    );
    insta::assert_snapshot!(terminal.backend());
    for _ in 0..40 {
        press(&mut app, KeyCode::Down, KeyModifiers::ALT);
    }
    let terminal = draw(&mut app, 100, 30);
    assert!(
        on_screen(&terminal, "local port 51240"),
        "back to the newest"
    );
    assert!(!on_screen(&terminal, "newer · Alt-Down"));
}

#[test]
fn the_stacked_kernel_panel_shows_all_its_figures_at_120x40() {
    let mut app = inspected_session();
    let terminal = draw(&mut app, 120, 40);
    for label in [
        "state",
        "rtt",
        "rto",
        "cwnd",
        "mss",
        "retrans",
        "acked",
        "received",
        "segs out/in",
        "unacked",
        "not sent",
        "recv-q/send-q",
    ] {
        assert!(on_screen(&terminal, &format!("{label} ")), "{label}");
    }
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn reads_count_from_one_again_on_each_connection() {
    let mut app = lost_and_reconnected(1);
    for _ in 0..3 {
        press(&mut app, KeyCode::F(5), KeyModifiers::NONE);
    }
    let terminal = draw(&mut app, 100, 30);
    assert!(
        on_screen(&terminal, "#1 "),
        "the first connection's first read"
    );
    assert!(on_screen(&terminal, "#2 "), "its second");
    assert!(
        on_screen(&terminal, "s2#1 "),
        "the next connection starts again"
    );
    insta::assert_snapshot!(terminal.backend());
}

/// The server's side as a hosting process samples it: a listener with one connection queued,
/// two accepted (one joined as alice), a saved SYN (captured from Linux 6.18) and a TIME-WAIT
/// on each side.
fn server_sample() -> tcpchat::server::observe::ServerSample {
    use tcpchat::server::observe::{ConnectionSample, ListenerSample, ServerSample};
    use tcpchat::tcp_table::{Holder, Lingering};
    use tcpchat::tcpinfo::TcpInfo;
    let hex = "4500003ceb164000400651a37f0000017f000001da7ccbaf7ac4225000000000\
               a002ffd7fe3000000204ffd70402080a201b9a83000000000103030a";
    let raw: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let server: std::net::SocketAddr = "127.0.0.1:52143".parse().unwrap();
    let connection = |port: u16, nick: Option<&str>, received: u64| ConnectionSample {
        peer: std::net::SocketAddr::new(server.ip(), port),
        local: Some(server),
        nick: nick.map(str::to_owned),
        info: Some(TcpInfo {
            state: Some(1),
            rtt_us: Some(38),
            bytes_received: Some(received),
            bytes_acked: Some(412),
            segs_in: Some(9),
            segs_out: Some(8),
            recv_queue: Some(0),
            send_queue: Some(0),
            ..TcpInfo::default()
        }),
    };
    ServerSample {
        listener: ListenerSample {
            addr: server,
            info: Some(TcpInfo {
                state: Some(10),
                unacked: Some(1),
                sacked: Some(128),
                ..TcpInfo::default()
            }),
            reuse_address: Some(true),
            paused: false,
        },
        connections: vec![
            connection(55930, Some("alice"), 27),
            connection(55932, None, 0),
        ],
        last_syn: Some(tcpchat::saved_syn::decode(&raw).map_err(|e| e.to_string())),
        lingering: Ok(vec![
            Lingering {
                client: "127.0.0.1:55901".parse().unwrap(),
                server,
                holder: Holder::Server,
                left: Some(Duration::from_secs(42)),
            },
            Lingering {
                client: "127.0.0.1:55907".parse().unwrap(),
                server,
                holder: Holder::Client,
                left: Some(Duration::from_secs(7)),
            },
        ]),
    }
}

#[test]
fn the_server_page_shows_the_hosts_sockets_and_says_where_it_cannot() {
    let mut app = inspected_session();
    // Not hosting: the page says where the server's side can be seen.
    app.language = tcpchat::i18n::Language::Chinese;
    let mut pages = String::new();
    for _ in 0..4 {
        press(&mut app, KeyCode::F(5), KeyModifiers::NONE);
    }
    let terminal = draw(&mut app, 80, 24);
    pages.push_str(&format!("{}\n", terminal.backend()));
    app.language = tcpchat::i18n::Language::English;
    app.on_server_sample(Some(server_sample()));
    let terminal = draw(&mut app, 80, 24);
    pages.push_str(&format!("{}\n", terminal.backend()));
    // The rest of it, scrolled to with the timeline's keys.
    press(&mut app, KeyCode::PageDown, KeyModifiers::ALT);
    let terminal = draw(&mut app, 80, 24);
    pages.push_str(&format!("{}\n", terminal.backend()));
    press(&mut app, KeyCode::PageUp, KeyModifiers::ALT);
    // Stacked at 120×40: F5 goes between the client's stack and the server's page (past the
    // framing page, the last of the six, back to the first).
    press(&mut app, KeyCode::F(5), KeyModifiers::NONE);
    press(&mut app, KeyCode::F(5), KeyModifiers::NONE);
    let stack = draw(&mut app, 120, 40);
    assert!(format!("{}", stack.backend()).contains("handshake & close"));
    press(&mut app, KeyCode::F(5), KeyModifiers::NONE);
    let terminal = draw(&mut app, 120, 40);
    pages.push_str(&format!("{}\n", terminal.backend()));
    insta::assert_snapshot!(pages);
}

/// The framing page after `/lab recv 4` and a paused reader: 4-byte reads that cut lines in
/// two, one line still waiting for its `\n`, our `send()` and a kernel sample, at the two
/// sizes a learner uses (the pane below the chat at 80×24, beside it at 120×40).
#[test]
fn the_framing_page_at_80x24_and_120x40() {
    let mut app = chatting();
    app.on_paste("/lab recv 4");
    press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    app.on_paste("/lab pause");
    press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    on_net(
        &mut app,
        NetEvent::Sent {
            bytes: 6,
            exit: false,
        },
    );
    // As recv(4) would have cut them: 4 bytes a read, lines cut anywhere.
    for read in "<bob> hi\n<bob> there\n<bob> wa".as_bytes().chunks(4) {
        on_net(&mut app, NetEvent::Received(Bytes::copy_from_slice(read)));
    }
    app.on_tcp_info(tcpchat::tcpinfo::TcpInfo {
        data_segs_out: Some(1),
        data_segs_in: Some(4),
        recv_queue: Some(27),
        send_queue: Some(0),
        snd_wnd: Some(65483),
        rcv_wnd: Some(65483),
        ..Default::default()
    });
    let mut screens = String::new();
    for (cols, rows) in [(80, 24), (120, 40)] {
        let terminal = draw(&mut app, cols, rows);
        screens.push_str(&format!("{}\n", terminal.backend()));
    }
    insta::assert_snapshot!(screens);
}
