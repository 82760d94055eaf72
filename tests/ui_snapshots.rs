//! Whole screens rendered into ratatui's `TestBackend` and compared with reviewed snapshots,
//! plus sweeps over sizes that must never panic or draw outside the terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
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
    let wall = chrono::NaiveTime::from_hms_opt(12, 34, 56).unwrap();
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

#[test]
fn nicks_are_coloured_and_errors_red() {
    let mut app = chatting();
    let terminal = draw(&mut app, 80, 24);
    let buffer = terminal.backend().buffer();
    let row_of = |needle: &str| {
        (0..24)
            .find(|&y| {
                (0..80)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
                    .contains(needle)
            })
            .unwrap()
    };
    let bob = buffer[(1, row_of("<bob>"))].fg;
    let carol = buffer[(1, row_of("<carol>"))].fg;
    assert_ne!(bob, Color::Reset);
    assert_ne!(bob, carol, "different nicks, different colours");
    assert_eq!(buffer[(0, row_of("! nick"))].fg, Color::LightRed);
    assert_eq!(buffer[(0, row_of("* carol waves"))].fg, Color::Magenta);
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

#[test]
fn every_size_from_1x1_to_200_columns_renders_without_panic() {
    let mut app = chatting();
    received(&mut app, &format!("<bob> {}\n", "宽".repeat(300)));
    received(&mut app, &format!("<bob> {}\n", "x".repeat(5000)));
    for cols in (1..=200).step_by(7).chain([1, 2, 3, 200]) {
        for rows in [1, 2, 3, 5, 24] {
            // TestBackend's buffer is exactly the terminal: a write outside it would panic.
            draw(&mut app, cols, rows);
        }
    }
    press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    for (cols, rows) in [(1, 1), (10, 3), (30, 8)] {
        draw(&mut app, cols, rows);
    }
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
