//! The whole client loop (`tcpchat::event_loop::run`) in-process: scripted terminal events in,
//! a `TestBackend` out, the real network task and a real server on 127.0.0.1:0 in between, and
//! a plain client beside it that sees what the loop sent.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io;

use common::{join, spawn_server};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures_util::stream;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tcpchat::app::{App, Clock, Role, Settings};
use tcpchat::event_loop::{self, Io};
use tcpchat::net;
use tcpchat::protocol::Framing;
use tcpchat::server::{Limits, Mode};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Types `text` into the scripted terminal, key by key.
fn type_text(keys: &mpsc::UnboundedSender<io::Result<Event>>, text: &str) {
    for c in text.chars() {
        let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        keys.send(Ok(Event::Key(key))).unwrap();
    }
}

fn press(keys: &mpsc::UnboundedSender<io::Result<Event>>, code: KeyCode, modifiers: KeyModifiers) {
    keys.send(Ok(Event::Key(KeyEvent::new(code, modifiers))))
        .unwrap();
}

/// The screen as text, one line per row.
fn screen(terminal: &Terminal<TestBackend>) -> String {
    let buffer = terminal.backend().buffer();
    let width = usize::from(buffer.area.width);
    buffer
        .content()
        .chunks(width)
        .map(|row| row.iter().map(|cell| cell.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_keys_chat_and_exit_through_the_real_loop() {
    let server = spawn_server(Mode::Chat, Limits::default()).await;
    let (mut bob, _) = join(server.addr).await;

    let settings = Settings {
        target: server.addr.to_string(),
        framing: Framing::Lines,
        nick: Some("alice".into()),
        scrollback: 1000,
        role: Role::Joined,
    };
    let mut app = App::new(settings, Clock::now());
    let mut net = net::spawn(server.addr.to_string(), Framing::Lines);
    let (keys, scripted) = mpsc::unbounded_channel();
    let mut scripted = scripted;
    let events = stream::poll_fn(move |cx| scripted.poll_recv(cx));
    let shutdown = CancellationToken::new();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut mouse = Vec::new();
    let mut capture_mouse = |on| mouse.push(on);
    let io = Io {
        terminal: &mut terminal,
        events,
        net: &mut net,
        shutdown: &shutdown,
        capture_mouse: &mut capture_mouse,
    };
    let script = async {
        // The loop connects and asks for the nick; bob sees it happen.
        bob.expect("*** guest-2 joined; 2 online").await;
        bob.expect("*** guest-2 is now known as alice").await;

        type_text(&keys, "hello from the loop");
        press(&keys, KeyCode::Enter, KeyModifiers::NONE);
        bob.expect("<alice> hello from the loop").await;

        // A line bob sends reaches alice's screen; F4 reaches the mouse switch.
        bob.send("hi alice\n").await;
        bob.expect("<guest-1> hi alice").await;
        press(&keys, KeyCode::F(4), KeyModifiers::NONE);
        // Ctrl-D on the empty line: exit, then the loop ends when the server closes.
        press(&keys, KeyCode::Char('d'), KeyModifiers::CONTROL);
        bob.expect("*** alice left (exit); 1 online").await;
    };
    let looping = timeout(common::DEADLINE, event_loop::run(&mut app, io));
    let (result, ()) = tokio::join!(looping, script);
    let result = result.expect("the loop ends once the server has closed");
    result.expect("the loop ends without an error");
    assert!(app.should_quit());
    assert_eq!(app.nick, None, "the session is over");
    assert_eq!(mouse, [false], "F4 released the mouse once");
    // Drawn before the exit began (the loop ends without drawing the last batch).
    let shown = screen(&terminal);
    for expected in ["<alice> hello from the loop", "<guest-1> hi alice"] {
        assert!(shown.contains(expected), "{expected:?} not on\n{shown}");
    }
    let lines: Vec<&str> = app.scrollback.entries().map(|e| e.text.as_str()).collect();
    let tail = &lines[lines.len() - 3..];
    assert_eq!(
        tail,
        [
            "-- our side is closed (FIN sent)",
            "*** bye, alice; closing the connection",
            "-- closed by the server (FIN)",
        ]
        .as_slice(),
        "{lines:#?}"
    );
}
