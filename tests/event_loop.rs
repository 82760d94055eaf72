//! The whole client loop (`tcpchat::event_loop::run`) in-process: scripted terminal events in,
//! a `TestBackend` out, the real network task and a real server on 127.0.0.1:0 in between, and
//! a plain client beside it that sees what the loop sent, and every frame the loop draws.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io;

use common::{Client, join, spawn_server};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures_util::stream;
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use tcpchat::app::{App, Clock, Role, Settings};
use tcpchat::event_loop::{self, Io};
use tcpchat::net;
use tcpchat::protocol::Framing;
use tcpchat::server::{Limits, Mode};
use tcpchat::transcript::{Transcript, file_name};
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
fn screen(backend: &TestBackend) -> String {
    let buffer = backend.buffer();
    let width = usize::from(buffer.area.width);
    buffer
        .content()
        .chunks(width)
        .map(|row| row.iter().map(|cell| cell.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `TestBackend` that sends the whole screen out at every flush, so the test can wait until
/// the loop has drawn something instead of guessing when it will have.
struct Watched {
    inner: TestBackend,
    frames: mpsc::UnboundedSender<String>,
}

impl Backend for Watched {
    type Error = <TestBackend as Backend>::Error;

    fn draw<'a, I: Iterator<Item = (u16, u16, &'a Cell)>>(
        &mut self,
        content: I,
    ) -> Result<(), Self::Error> {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, at: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(at)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, region: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(region)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        let _ = self.frames.send(screen(&self.inner));
        self.inner.flush()
    }
}

/// Waits until a frame the loop drew shows `text`, and returns that frame.
async fn drawn(frames: &mut mpsc::UnboundedReceiver<String>, text: &str) -> String {
    let seen = timeout(common::DEADLINE, async {
        while let Some(frame) = frames.recv().await {
            if frame.contains(text) {
                return frame;
            }
        }
        panic!("the loop stopped drawing before {text:?}");
    });
    seen.await
        .unwrap_or_else(|_| panic!("no frame showed {text:?}"))
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
    app.keep_transcript();
    let data = tempfile::tempdir().unwrap();
    let mut transcript = Transcript::start(data.path(), &server.addr.to_string()).unwrap();
    let mut net = net::spawn(server.addr.to_string(), Framing::Lines);
    let (keys, events) = scripted_keys();
    let shutdown = CancellationToken::new();
    let (mut terminal, mut frames) = watched_terminal(80, 24);
    let mut mouse = Vec::new();
    let mut capture_mouse = |on| mouse.push(on);
    let io = Io {
        terminal: &mut terminal,
        events,
        net: &mut net,
        shutdown: &shutdown,
        capture_mouse: &mut capture_mouse,
        transcript: Some(&mut transcript),
    };
    let script = async {
        // The loop connects and asks for the nick; bob sees it happen.
        bob.expect("*** guest-2 joined; 2 online").await;
        bob.expect("*** guest-2 is now known as alice").await;

        type_text(&keys, "hello from the loop");
        drawn(&mut frames, "> hello from the loop").await;
        press(&keys, KeyCode::Enter, KeyModifiers::NONE);
        bob.expect("<alice> hello from the loop").await;
        drawn(&mut frames, "<alice> hello from the loop").await;

        // A line bob sends reaches alice's screen; F4 reaches the mouse switch.
        bob.send("hi alice\n").await;
        bob.expect("<guest-1> hi alice").await;
        drawn(&mut frames, "<guest-1> hi alice").await;
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
    // The transcript (--log) holds what was shown, one file for the room and the day.
    let room_dir = transcript.dir().join(file_name("#lobby"));
    transcript.finish();
    let days: Vec<_> = std::fs::read_dir(&room_dir).unwrap().collect();
    assert_eq!(days.len(), 1, "one file for today");
    let written = std::fs::read_to_string(days[0].as_ref().unwrap().path()).unwrap();
    for shown in [
        "<alice> hello from the loop",
        "<guest-1> hi alice",
        "-- closed by the server (FIN)",
    ] {
        assert!(
            written.lines().any(|l| l.ends_with(shown)),
            "{shown:?} not in\n{written}"
        );
    }
    assert!(
        written.lines().all(|l| l.as_bytes()[2] == b':'),
        "each line starts HH:MM:SS"
    );

    let lines: Vec<&str> = app.scrollback.entries().map(|e| &*e.text).collect();
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

/// A TCP relay between the client and the server that can cut the connection with a reset, as a
/// dropped Wi-Fi or a NAT that forgets a flow would.
struct Relay {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(server: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut upstream = tokio::net::TcpStream::connect(server).await.unwrap();
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cuts.changed() => {
                            // SO_LINGER 0: both ends get a reset, not a goodbye.
                            let _ = client.set_zero_linger();
                            let _ = upstream.set_zero_linger();
                        }
                    }
                });
            }
        });
        Self { addr, cut }
    }

    /// Resets every connection through the relay.
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// Alice's client for `target` (a real network task), not yet looping.
fn alice(target: std::net::SocketAddr) -> (App, net::NetHandle) {
    let settings = Settings {
        target: target.to_string(),
        framing: Framing::Lines,
        nick: Some("alice".into()),
        scrollback: 1000,
        role: Role::Joined,
    };
    let app = App::new(settings, Clock::now());
    (app, net::spawn(target.to_string(), Framing::Lines))
}

/// Keys a test sends, and the terminal event stream the loop reads them from.
fn scripted_keys() -> (
    mpsc::UnboundedSender<io::Result<Event>>,
    impl futures_util::Stream<Item = io::Result<Event>>,
) {
    let (keys, mut scripted) = mpsc::unbounded_channel();
    (keys, stream::poll_fn(move |cx| scripted.poll_recv(cx)))
}

/// A `cols`×`rows` test terminal that sends out each frame it draws.
fn watched_terminal(cols: u16, rows: u16) -> (Terminal<Watched>, mpsc::UnboundedReceiver<String>) {
    let (frames_tx, frames) = mpsc::unbounded_channel();
    let backend = Watched {
        inner: TestBackend::new(cols, rows),
        frames: frames_tx,
    };
    (Terminal::new(backend).unwrap(), frames)
}

/// A server that keeps history in a temporary directory, replaying `replay` lines.
async fn server_with_history(
    dir: &std::path::Path,
    replay: usize,
) -> (std::net::SocketAddr, CancellationToken) {
    let settings = tcpchat::server::HistorySettings {
        data_dir: Some(dir.to_owned()),
        replay,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = tcpchat::server::Config {
        history: settings.open().unwrap(),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    tokio::spawn(tcpchat::server::run(listener, config, stop.clone()));
    (addr, stop)
}

/// The connection is reset under the client; while it is away, more is said than the rejoin's
/// replay holds. Once back, it shows each missed line once, in order, and nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_off_gets_what_it_missed_once_after_reconnecting() {
    let dir = tempfile::tempdir().unwrap();
    let (server, stop) = server_with_history(dir.path(), 3).await;
    let relay = Relay::start(server).await;
    let mut bob = Client::connect(server).await;
    bob.line().await; // greeting
    bob.line().await; // history rule

    let (mut app, mut net) = alice(relay.addr);
    let (keys, events) = scripted_keys();
    let shutdown = CancellationToken::new();
    let (mut terminal, mut frames) = watched_terminal(100, 40);
    let io = Io {
        terminal: &mut terminal,
        events,
        net: &mut net,
        shutdown: &shutdown,
        capture_mouse: &mut |_| {},
        transcript: None,
    };
    let script = async {
        bob.expect("*** guest-2 joined; 2 online").await;
        bob.expect("*** guest-2 is now known as alice").await;
        bob.send("b1\n").await;
        bob.expect("<guest-1> b1").await;
        drawn(&mut frames, "<guest-1> b1").await;

        relay.cut();
        bob.expect("*** alice left (reset); 1 online").await;
        for n in 1..=5 {
            bob.send(format!("m{n}\n")).await;
            bob.expect(&format!("<guest-1> m{n}")).await;
        }
        // The client reconnects by itself (after a second) and asks for its nick again.
        bob.expect("*** guest-3 joined; 2 online").await;
        bob.expect("*** guest-3 is now known as alice").await;
        drawn(&mut frames, "<guest-1> m5").await;
        bob.send("after\n").await;
        drawn(&mut frames, "<guest-1> after").await;
        press(&keys, KeyCode::Char('d'), KeyModifiers::CONTROL);
    };
    let looping = timeout(common::DEADLINE, event_loop::run(&mut app, io));
    let (result, ()) = tokio::join!(looping, script);
    result.expect("the loop ends").expect("without an error");

    let lines: Vec<&str> = app.scrollback.entries().map(|e| &*e.text).collect();
    let count = |said: &str| lines.iter().filter(|l| l.ends_with(said)).count();
    assert_eq!(
        count("<guest-1> b1"),
        1,
        "seen before the cut, not again: {lines:#?}"
    );
    for n in 1..=5 {
        assert_eq!(
            count(&format!("<guest-1> m{n}")),
            1,
            "m{n} once: {lines:#?}"
        );
    }
    let position = |said: &str| lines.iter().position(|l| l.ends_with(said)).unwrap();
    let order: Vec<usize> = ["b1", "m1", "m2", "m3", "m4", "m5", "after"]
        .iter()
        .map(|said| position(&format!("<guest-1> {said}")))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "in order: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("5 lines were said while you were away; fetching 5:")),
        "{lines:#?}"
    );
    stop.cancel();
}

/// Alice is in `#lobby` and `#rust`, with `#rust` on screen, when her connection is reset.
/// While she is away more is said in `#rust` than its rejoin replays, and a line in the
/// lobby. Back, she is in `#rust` again without asking, its buffer still on screen, each missed
/// line in it once and in order; her next plain line goes to `#rust`; the lobby's buffer got
/// its own missed line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reconnect_every_room_is_rejoined_and_fills_its_own_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (server, stop) = server_with_history(dir.path(), 3).await;
    let relay = Relay::start(server).await;
    let mut bob = Client::connect(server).await;
    bob.line().await; // greeting
    bob.line().await; // history rule

    let (mut app, mut net) = alice(relay.addr);
    let (keys, events) = scripted_keys();
    let shutdown = CancellationToken::new();
    let (mut terminal, mut frames) = watched_terminal(100, 40);
    let io = Io {
        terminal: &mut terminal,
        events,
        net: &mut net,
        shutdown: &shutdown,
        capture_mouse: &mut |_| {},
        transcript: None,
    };
    let script = async {
        bob.rx
            .line_starting("*** guest-2 is now known as alice")
            .await;
        bob.send("/join #rust\n").await;
        bob.rx.line_starting("*** now talking in #rust").await;
        type_text(&keys, "/join #rust");
        press(&keys, KeyCode::Enter, KeyModifiers::NONE);
        bob.rx
            .line_starting("#rust *** alice joined; 2 online")
            .await;
        bob.send("r0\n").await;
        bob.rx.line_starting("#rust <guest-1> r0").await;
        drawn(&mut frames, "<guest-1> r0").await;

        relay.cut();
        bob.rx
            .line_starting("#rust *** alice left (reset); 1 online")
            .await;
        for n in 1..=5 {
            bob.send(format!("r{n}\n")).await;
            bob.rx.line_starting(&format!("#rust <guest-1> r{n}")).await;
        }
        bob.send("/msg #lobby l1\n").await;
        bob.rx.line_starting("<guest-1> l1").await;
        // The client reconnects by itself and joins #rust again without being asked.
        bob.rx.line_starting("#rust *** ").await;
        drawn(&mut frames, "<guest-1> r5").await;
        type_text(&keys, "here");
        press(&keys, KeyCode::Enter, KeyModifiers::NONE);
        bob.rx.line_starting("#rust <alice> here").await;
        let rust = drawn(&mut frames, "<alice> here").await;
        press(&keys, KeyCode::Char('1'), KeyModifiers::ALT);
        drawn(&mut frames, "<guest-1> l1").await;
        press(&keys, KeyCode::Char('d'), KeyModifiers::CONTROL);
        rust
    };
    let looping = timeout(common::DEADLINE, event_loop::run(&mut app, io));
    let (result, rust) = tokio::join!(looping, script);
    result.expect("the loop ends").expect("without an error");

    let positions: Vec<usize> = (0..=5)
        .map(|n| {
            let said = format!("<guest-1> r{n}");
            assert_eq!(rust.matches(&said).count(), 1, "{said} once:\n{rust}");
            rust.find(&said).unwrap()
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order:\n{rust}"
    );
    assert!(
        rust.contains("while you were away"),
        "the gap is named:\n{rust}"
    );
    let lobby: Vec<&str> = app.scrollback.entries().map(|e| &*e.text).collect();
    assert_eq!(
        lobby.iter().filter(|l| l.ends_with("<guest-1> l1")).count(),
        1,
        "the lobby's missed line, once: {lobby:#?}"
    );
    assert!(
        !lobby.iter().any(|l| l.contains(" r1")),
        "no #rust line in the lobby: {lobby:#?}"
    );
    let names: Vec<&str> = app.buffers.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["#lobby", "#rust"], "no buffer lost or added");
    stop.cancel();
}
