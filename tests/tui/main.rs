//! The TUI end to end: the real `tcpchat` binary in a pseudo-terminal, driven by key bytes and
//! checked by reading the screen a terminal emulator made of its output, against a real server
//! over real TCP on loopback. See `harness.rs` for the pieces.

// Sending SIGTERM to a child needs libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod framing;
mod harness;
mod hostile;
mod languages;

use std::io::Write;
use std::time::{Duration, Instant};

use harness::{
    BRACKETED_PASTE_OFF, LEAVE_ALTERNATE_SCREEN, Peer, Queries, Server, Tui, accept_one, free_port,
    input_row, keys, signal, status_row,
};

/// Starts the TUI against `addr` as `nick` and waits until it is connected and the server has
/// given it that nick (the status bar shows both).
fn join(addr: &str, nick: &str, cols: u16, rows: u16) -> Tui {
    let tui = Tui::spawn(&["--nick", nick, addr], cols, rows);
    wait_connected_as(&tui, nick);
    tui
}

fn wait_connected_as(tui: &Tui, nick: &str) {
    tui.wait_for(
        |screen| {
            let status = status_row(screen);
            status.contains(" connected ") && status.contains(&format!(" {nick} "))
        },
        &format!("the status bar to show connected as {nick}"),
    );
}

/// A plain client that joined as `nick` and has seen its own rename.
fn plain_peer(addr: &str, nick: &str) -> Peer {
    let mut peer = Peer::connect(addr);
    peer.expect_line(|l| l.contains("连接成功"), "the greeting");
    peer.send(&format!("/nick {nick}\n"));
    peer.expect_line(
        |l| l.ends_with(&format!("is now known as {nick}")),
        "the rename",
    );
    peer
}

/// The row and column where `text` starts on the screen, if it is there.
fn find(screen: &vt100::Screen, text: &str) -> Option<(u16, u16)> {
    let (_, cols) = screen.size();
    screen
        .rows(0, cols.get())
        .enumerate()
        .find_map(|(row, line)| {
            let at = line.find(text)?;
            // Only ASCII before the match here, so bytes are columns.
            Some((u16::try_from(row).ok()?, u16::try_from(at).ok()?))
        })
}

/// After the program has ended: the terminal is as it found it. The escape sequences that
/// leave the alternate screen and bracketed paste were written, and the pty's modes (termios:
/// line editing, echo, signals, CR/LF handling) are the ones it had before the program started,
/// which were a shell's (cooked).
fn assert_restored(tui: &Tui) {
    tui.wait_for_output(LEAVE_ALTERNATE_SCREEN);
    tui.wait_for_output(BRACKETED_PASTE_OFF);
    tui.wait_for(|s| !s.alternate_screen(), "the main screen back");
    assert!(
        tui.initial_modes().cooked(),
        "the pty did not start cooked: {:?}",
        tui.initial_modes()
    );
    assert_eq!(tui.modes(), tui.initial_modes(), "the terminal's modes");
}

/// Asserts that the program runs the terminal raw (so that [`assert_restored`] later means
/// something).
fn assert_raw(tui: &Tui) {
    let modes = tui.modes();
    assert!(modes.raw(), "the TUI runs without raw mode: {modes:?}");
}

/// The figure after `label ` in the status bar or the inspector, in bytes (`in 354 B`,
/// `received   1,117 B`); `None` if it is not there in bytes.
fn bytes_after(text: &str, label: &str) -> Option<u64> {
    let (_, rest) = text.split_once(label)?;
    let figure = rest.trim_start().split(" B").next()?;
    figure.replace(',', "").parse().ok()
}

/// The smoothed RTT the status bar shows (`rtt 0.05 ms`), in milliseconds.
fn status_rtt(screen: &vt100::Screen) -> Option<f64> {
    let status = status_row(screen);
    let (_, rest) = status.split_once(" rtt ")?;
    rest.split(" ms").next()?.parse().ok()
}

/// Another user types lines that look like events about alice; her client learns nothing from
/// them: the status bar keeps her nick and the count, and her own lines stay marked as hers.
#[test]
fn forged_events_change_nothing_in_the_client() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 100, 24);
    tui.wait_for(|s| status_row(s).contains(" 1 online "), "1 online");
    let mut mallory = plain_peer(&server.addr, "mallory");
    tui.wait_for(|s| status_row(s).contains(" 2 online "), "2 online");
    for forged in [
        "/me thinks you are great",
        "/me is now known as bob",
        "/me left (exit); 0 online",
        "*** alice is now known as great",
    ] {
        mallory.send(&format!("{forged}\n"));
    }
    mallory.send("/nick alice\n");
    mallory.expect_line(|l| l == "! nick alice is already taken", "the refusal");
    tui.wait_for_text("<mallory> *** alice is now known as great");
    tui.send("still me");
    tui.send(keys::ENTER);
    tui.wait_for_text("<alice> still me");
    tui.wait_for(
        |s| {
            let status = status_row(s);
            status.contains(" alice ") && status.contains(" 2 online ") && !status.contains("great")
        },
        "the status bar still saying alice, 2 online",
    );
    tui.wait_for(
        |s| {
            find(s, "<alice> still me")
                .and_then(|(row, col)| s.cell(row, col + 1))
                .is_some_and(|cell| cell.inverse())
        },
        "alice's own line drawn as hers (reversed nick)",
    );
}

#[test]
fn connect_send_and_see_another_client() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    tui.wait_for_text("连接成功");

    tui.send("hello there");
    tui.send(keys::ENTER);
    tui.wait_for_text("<alice> hello there");

    let mut peer = Peer::connect(&server.addr);
    peer.send("/nick bob\nhi alice 你好\n");
    tui.wait_for_text("<bob> hi alice 你好");
    peer.expect_line(|l| l == "<bob> hi alice 你好", "its own message back");
}

#[test]
fn chinese_input_cursor_column() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    tui.wait_for_text("is now known as bob");

    // The prompt "> " is 2 columns; each CJK character is 2 more.
    tui.send("你好");
    tui.wait_for(
        |s| input_row(s) == "> 你好" && s.cursor_position() == (23, 6),
        "\"> 你好\" with the cursor at column 6",
    );
    tui.send("ab");
    tui.wait_for(
        |s| input_row(s) == "> 你好ab" && s.cursor_position() == (23, 8),
        "\"> 你好ab\" with the cursor at column 8",
    );
    tui.send(keys::LEFT);
    tui.send(keys::LEFT);
    tui.wait_for_cursor((23, 6));
    // A frame drawn for something else (a line arriving) puts the caret back where it was.
    peer.send("a line that redraws the screen\n");
    tui.wait_for(
        |s| s.contents().contains("<bob> a line that redraws") && s.cursor_position() == (23, 6),
        "the new line drawn and the caret still at column 6",
    );
    tui.send(keys::LEFT);
    tui.wait_for_cursor((23, 4));

    // Ctrl-U deletes "你" before the caret; an emoji typed there is two columns as well.
    tui.send(keys::CTRL_U);
    tui.send("👍x");
    tui.wait_for(
        |s| input_row(s) == "> 👍x好ab" && s.cursor_position() == (23, 5),
        "\"> 👍x好ab\" with the cursor at column 5",
    );
}

#[test]
fn long_input_scrolls_keeping_the_caret_visible() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    let long = format!("{}Z", "0123456789".repeat(10));

    tui.send(&long);
    // 78 columns after the prompt, one kept free for the caret after the last character.
    tui.wait_for(
        |s| input_row(s).ends_with("6789Z") && s.cursor_position() == (23, 79),
        "the end of the line in view with the caret in the last column",
    );
    tui.send(keys::HOME);
    tui.wait_for(
        |s| input_row(s).starts_with("> 0123456789") && s.cursor_position() == (23, 2),
        "the start of the line in view with the caret after the prompt",
    );

    tui.send(keys::ENTER);
    peer.expect_line(|l| l == format!("<alice> {long}"), "the whole long line");
    tui.wait_for(|s| input_row(s) == ">", "an empty edit box");
    tui.wait_for_cursor((23, 2));

    // Up brings it back from the history.
    tui.send(keys::UP);
    tui.wait_for(
        |s| input_row(s).ends_with("6789Z"),
        "the line back from the history",
    );
}

#[test]
fn page_up_shows_older_lines_and_indicator() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    let lines: String = (0..100).map(|n| format!("line {n:03}\n")).collect();
    peer.send(&lines);
    tui.wait_for_text("<bob> line 099");

    tui.send(keys::PAGE_UP);
    tui.wait_for(
        |s| {
            let text = s.contents();
            !text.contains("line 099") && text.contains("scrolled up (End)")
        },
        "older lines and the scrolled-up indicator",
    );
    // A page is the view height (22 rows at 80x24) less one row of overlap.
    tui.wait_for_text("<bob> line 078");

    peer.send("line 100\n");
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("1 new (End)")
                && text.contains("<bob> line 078")
                && !text.contains("line 100")
        },
        "the unread indicator counting 1 new line, the view staying put",
    );

    tui.send(keys::END);
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("<bob> line 100") && !text.contains("(End)")
        },
        "the newest line back in view and no indicator",
    );

    // With text in the edit box, End moves the caret and Ctrl-End jumps.
    tui.send(keys::PAGE_UP);
    tui.wait_for_text("scrolled up (End)");
    tui.send("abc");
    tui.send(keys::HOME);
    tui.wait_for_cursor((23, 2));
    tui.send(keys::END);
    tui.wait_for_cursor((23, 5));
    assert!(tui.text().contains("scrolled up (End)"), "End jumped");
    tui.send(keys::CTRL_END);
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("<bob> line 100") && !text.contains("(End)") && input_row(s) == "> abc"
        },
        "Ctrl-End back at the newest line, the text kept",
    );
}

#[test]
fn mouse_wheel_scrolls_and_f4_releases_the_mouse() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    let lines: String = (0..40).map(|n| format!("line {n:03}\n")).collect();
    peer.send(&lines);
    tui.wait_for_text("<bob> line 039");
    tui.wait_for(
        |s| s.mouse_protocol_mode() != vt100::MouseProtocolMode::None,
        "the mouse captured",
    );

    tui.send(keys::WHEEL_UP);
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("scrolled up (End)") && !text.contains("line 039")
        },
        "three rows scrolled up by the wheel",
    );
    tui.wait_for_text("<bob> line 036");
    tui.send(keys::WHEEL_DOWN);
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("<bob> line 039") && !text.contains("(End)")
        },
        "back at the newest line",
    );

    tui.send(keys::F4);
    tui.wait_for(
        |s| s.mouse_protocol_mode() == vt100::MouseProtocolMode::None,
        "the mouse released to the terminal",
    );
    tui.wait_for_text("mouse released");
    tui.send(keys::F4);
    tui.wait_for(
        |s| s.mouse_protocol_mode() != vt100::MouseProtocolMode::None,
        "the mouse captured again",
    );
}

#[test]
fn ctrl_l_repaints_a_garbled_screen() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    tui.send("draft");
    tui.wait_for(|s| input_row(s) == "> draft", "the typed text");

    // Something else wrote over the screen.
    tui.garble("\x1b[2J\x1b[5;5Hnoise");
    assert!(!tui.text().contains("connected"));

    tui.send(keys::CTRL_L);
    tui.wait_for(
        |s| {
            let text = s.contents();
            status_row(s).contains(" connected ")
                && text.contains("is now known as alice")
                && !text.contains("noise")
                && input_row(s) == "> draft"
                && s.cursor_position() == (23, 7)
        },
        "the whole screen drawn again, the draft kept",
    );
}

#[test]
fn ctrl_l_survives_a_terminal_that_does_not_answer_cursor_queries() {
    let server = Server::start("chat");
    let mut tui = Tui::spawn_on(&["--nick", "alice", &server.addr], 80, 24, Queries::Ignored);
    wait_connected_as(&tui, "alice");
    tui.send("draft");
    tui.wait_for(|s| input_row(s) == "> draft", "the typed text");
    tui.garble("\x1b[2J\x1b[5;5Hnoise");

    tui.send(keys::CTRL_L);
    tui.wait_for(
        |s| {
            status_row(s).contains(" connected ")
                && !s.contents().contains("noise")
                && input_row(s) == "> draft"
        },
        "the whole screen drawn again, the draft kept",
    );
    tui.send("!");
    tui.wait_for(|s| input_row(s) == "> draft!", "typing still working");
    assert!(tui.is_running(), "a repaint ended tcpchat");
}

#[test]
fn resize_rewraps() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    let xs = "x".repeat(150);
    peer.send(&format!("{xs}\n"));
    // Wrapped at the space after the nick, then 80 + 70.
    let row_of = |n: usize| "x".repeat(n);
    tui.wait_for(
        |s| {
            let rows: Vec<String> = s.rows(0, 80).map(|r| r.trim_end().to_owned()).collect();
            rows.contains(&row_of(80)) && rows.contains(&row_of(70))
        },
        "the long line wrapped at 80 columns",
    );

    tui.resize(40, 20);
    tui.wait_for(
        |s| {
            let rows: Vec<String> = s.rows(0, 40).map(|r| r.trim_end().to_owned()).collect();
            let full = rows.iter().filter(|r| **r == row_of(40)).count();
            let bob = rows.iter().position(|r| r == "<bob>");
            full == 3
                && bob.is_some_and(|at| {
                    rows.get(at + 1..at + 5)
                        == Some(&[row_of(40), row_of(40), row_of(40), row_of(30)][..])
                })
                && rows[18].contains("connected")
                && rows[19].starts_with('>')
        },
        "the line re-wrapped at 40 columns and the status bar on row 18",
    );
    assert!(tui.is_running(), "tcpchat ended after a resize");

    tui.resize(1, 1);
    tui.wait_for(|s| s.contents() == ">", "the 1x1 screen to show the prompt");
    assert!(tui.is_running(), "tcpchat ended at 1x1");

    tui.resize(80, 24);
    tui.wait_for(
        |s| {
            let rows: Vec<String> = s.rows(0, 80).map(|r| r.trim_end().to_owned()).collect();
            status_row(s).contains(" connected ")
                && rows.contains(&row_of(80))
                && rows.contains(&row_of(70))
        },
        "the full screen back at 80x24",
    );
    assert!(tui.is_running());
}

#[test]
fn wide_characters_wrap_whole_at_an_odd_width() {
    let server = Server::start("chat");
    let tui = join(&server.addr, "alice", 41, 12);
    let mut peer = plain_peer(&server.addr, "bob");
    peer.send(&format!("{}\n", "你".repeat(40)));
    // 41 columns hold 20 two-column characters and one empty column, never half of a 21st;
    // the first row starts after the nick (a row may end between wide characters).
    tui.wait_for(
        |s| {
            let rows: Vec<String> = s.rows(0, 41).map(|r| r.trim_end().to_owned()).collect();
            let first = format!("<bob> {}", "你".repeat(17));
            rows.iter().position(|r| *r == first).is_some_and(|at| {
                rows.get(at + 1..at + 3) == Some(&["你".repeat(20), "你".repeat(3)][..])
            })
        },
        "40 CJK characters wrapped as 17 after <bob>, then 20 + 3",
    );
}

#[test]
fn exit_key_ends_session_cleanly() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    tui.wait_for_text("is now known as bob");

    assert_raw(&tui);
    let started = Instant::now();
    tui.send(keys::CTRL_D);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    // The client gives up waiting for the server's close after 2 s (app::EXIT_WAIT); ending
    // sooner shows it ended because the server closed, as the exit key promises.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the exit took {took:?}: the client did not see the server close"
    );
    assert_restored(&tui);
    peer.expect_line(|l| l.starts_with("*** alice left (exit)"), "alice leaving");
}

/// `--export FILE`: on quitting, the session as the inspector saw it is written as text, each
/// part there and the reads' sizes the real ones.
#[test]
fn export_writes_the_session_as_text_on_quitting() {
    let server = Server::start("chat");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("run1.txt");
    let file_arg = file.to_str().expect("a UTF-8 path");
    let mut tui = Tui::spawn(
        &["--nick", "alice", "--export", file_arg, &server.addr],
        80,
        24,
    );
    wait_connected_as(&tui, "alice");
    tui.send(&format!("hello there{}", keys::ENTER));
    tui.wait_for_text("<alice> hello there");
    tui.send(keys::CTRL_D);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    let output = String::from_utf8_lossy(&tui.raw_output()).into_owned();
    assert!(output.contains("the session is in"), "{output}");

    let text = std::fs::read_to_string(&file).expect("the exported session");
    let part = |title: &str| {
        let start = text
            .find(title)
            .unwrap_or_else(|| panic!("no {title:?} in\n{text}"));
        let rest = &text[start..];
        rest[..rest[1..].find("\n# ").map_or(rest.len(), |end| end + 1)].to_owned()
    };
    let timeline = part("# timeline");
    assert!(
        timeline.contains(&format!("connect({})", server.addr)),
        "{timeline}"
    );
    // The line typed: 12 bytes (`hello there` and its newline), then `exit` (5).
    assert!(timeline.contains("send(12 B)"), "{timeline}");
    assert!(timeline.contains("send(5 B)"), "{timeline}");
    let handshake = part("# handshake");
    for arrow in ["SYN ", "SYN-ACK ", "ACK "] {
        assert!(handshake.contains(arrow), "{arrow:?} in {handshake}");
    }
    assert!(handshake.contains("observed"), "{handshake}");
    let close = part("# close: ");
    assert!(close.contains("FIN "), "{close}");
    let kernel = part("# kernel");
    assert!(kernel.contains("segs_out"), "{kernel}");
    assert!(
        kernel.contains("(loopback: "),
        "loopback's quirks said: {kernel}"
    );
    // The reads part lists each recv()'s size: they add up to the timeline's recv()s (two
    // records of the same reads, kept apart in the model).
    let reads = part("# reads");
    let listed: Vec<usize> = reads
        .lines()
        .filter_map(|l| l.strip_suffix(" B")?.rsplit(' ').next()?.parse().ok())
        .collect();
    let received: Vec<usize> = timeline
        .lines()
        .filter_map(|l| l.split_once("recv() → ")?.1.split(' ').next()?.parse().ok())
        .collect();
    assert!(!listed.is_empty(), "{reads}");
    assert_eq!(listed, received, "{reads}\n{timeline}");
}

/// The word `exit` typed alone ends the session as Ctrl-D does: `exit` goes out, then our FIN,
/// and the client quits when the server closes. (Sent as a plain line, the server would close
/// all the same and the client would reconnect.) With the inspector open the close stays on
/// screen, which shows the client saw the server's FIN, with no clock involved.
#[test]
fn typed_exit_ends_the_session_like_ctrl_d() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 100, 40);
    let mut peer = plain_peer(&server.addr, "bob");
    tui.wait_for_text("is now known as bob");
    tui.send(keys::F2);
    tui.wait_for_text("TCP inspector");

    tui.send("exit");
    tui.send(keys::ENTER);
    peer.expect_line(|l| l.starts_with("*** alice left (exit)"), "alice leaving");
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("shutdown(WR): our FIN") && text.contains("session over")
        },
        "our FIN, the server's close, and the session over",
    );
    tui.send("q");
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    assert_restored(&tui);
}

/// After a deliberate exit (Ctrl-D, or `exit` typed) the client never connects again, even
/// while it stays on screen to show the close (the inspector open): no connection reaches the
/// listener after the first, during three times the first reconnect delay (1 s) or after.
#[test]
fn a_deliberate_exit_never_reconnects() {
    for (how, keys) in [("Ctrl-D", keys::CTRL_D), ("exit typed", "exit\r")] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr").to_string();
        let mut tui = Tui::spawn(&[&addr], 100, 40);
        let mut server = accept_one(&listener);
        server.write_all(b"a server of our own\n").expect("write");
        tui.wait_for_text("a server of our own");
        tui.send(keys::F2);
        tui.wait_for_text("TCP inspector");

        tui.send(keys);
        server
            .set_read_timeout(Some(harness::DEADLINE))
            .expect("set_read_timeout");
        let mut received = Vec::new();
        std::io::Read::read_to_end(&mut server, &mut received)
            .unwrap_or_else(|e| panic!("{how}: no FIN from the client: {e}"));
        assert_eq!(received, b"exit\n", "{how}");
        drop(server); // our FIN: the session is over
        tui.wait_for_text("session over");

        listener.set_nonblocking(true).expect("set_nonblocking");
        let watch_until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < watch_until {
            if let Ok((_, from)) = listener.accept() {
                panic!("{how}: the client connected again, from {from}");
            }
            assert!(
                !tui.text().contains("reconnecting"),
                "{how}: the client is reconnecting"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        tui.send("q");
        assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0, "{how}");
        assert!(
            listener.accept().is_err(),
            "{how}: a connection came in as the client quit"
        );
    }
}

#[test]
fn exit_key_gives_up_waiting_for_a_server_that_does_not_close() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr").to_string();
    let mut tui = Tui::spawn(&[&addr], 80, 24);
    let mut server = accept_one(&listener);
    server
        .write_all(b"a server that never closes\n")
        .expect("write");
    tui.wait_for_text("a server that never closes");

    let started = Instant::now();
    tui.send(keys::CTRL_D);
    // What the client sent: `exit`, then its FIN (the read ends).
    server
        .set_read_timeout(Some(harness::DEADLINE))
        .expect("set_read_timeout");
    let mut received = Vec::new();
    std::io::Read::read_to_end(&mut server, &mut received).expect("read until the client's FIN");
    assert_eq!(received, b"exit\n");

    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "quit after {took:?}, before the 2 s wait for the server's close was over"
    );
    tui.wait_for_output(LEAVE_ALTERNATE_SCREEN);
}

#[test]
fn typed_quit_ends_the_session_with_its_reason() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    tui.wait_for_text("is now known as bob");

    tui.send("/quit gone fishing");
    tui.send(keys::ENTER);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    tui.wait_for_output(LEAVE_ALTERNATE_SCREEN);
    peer.expect_line(
        |l| l.starts_with("*** alice left (quit: gone fishing)"),
        "alice leaving with her reason",
    );
}

#[test]
fn raw_mode_against_article_echo_server() {
    let server = Server::start("echo");
    let mut tui = Tui::spawn(&["--raw", &server.addr], 80, 24);
    tui.wait_for_text("连接成功!");
    tui.wait_for(
        |s| status_row(s).contains(" connected ") && status_row(s).contains("raw"),
        "the status bar to show a raw connection",
    );

    tui.send("hello");
    tui.send(keys::ENTER);
    tui.wait_for_text("第1条信息:hello");
    tui.wait_for_text("→ hello");

    tui.send(keys::CTRL_D);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    tui.wait_for_output(LEAVE_ALTERNATE_SCREEN);
}

/// `--raw` sends exactly what was typed: no newline after a line, `exit` alone for the exit
/// (the article's server compares each read with `b'exit'`; our own echo mode also takes
/// `exit\n`, so only the bytes on the wire can tell).
#[test]
fn raw_mode_sends_exactly_what_was_typed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr").to_string();
    let mut tui = Tui::spawn(&["--raw", &addr], 80, 24);
    let mut server = accept_one(&listener);
    server.write_all("连接成功!".as_bytes()).expect("write");
    tui.wait_for_text("连接成功!");
    server
        .set_read_timeout(Some(harness::DEADLINE))
        .expect("set_read_timeout");
    let mut wire = Vec::new();
    for typed in ["hello", "你好", "x"] {
        tui.send(typed);
        tui.send(keys::ENTER);
        tui.wait_for_text(&format!("→ {typed}"));
        // Everything up to this line's last byte; a newline after it would start the next.
        let want = wire.len() + typed.len();
        while wire.len() < want {
            let mut buf = [0u8; 64];
            let n = std::io::Read::read(&mut server, &mut buf).expect("the typed bytes");
            assert!(n > 0, "the client closed after {wire:?}");
            wire.extend_from_slice(&buf[..n]);
        }
    }
    tui.send("exit");
    tui.send(keys::ENTER);
    std::io::Read::read_to_end(&mut server, &mut wire).expect("exit, then the client's FIN");
    assert_eq!(
        String::from_utf8_lossy(&wire),
        "hello你好xexit",
        "the bytes on the wire"
    );
    drop(server);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
}

/// Once connected, the status bar shows the kernel's smoothed RTT for the connection (Linux
/// `TCP_INFO`); it goes when the connection does.
#[test]
fn the_status_bar_shows_the_rtt_while_connected() {
    let server = Server::start("chat");
    // Wide enough for every part of the status bar.
    let tui = join(&server.addr, "alice", 180, 24);
    tui.wait_for(
        |s| status_rtt(s).is_some_and(|ms| ms > 0.0 && ms < 1000.0),
        "`rtt N ms` in the status bar",
    );
    drop(server); // SIGKILL: the connection goes
    tui.wait_for(
        |s| !status_row(s).contains(" connected ") && status_rtt(s).is_none(),
        "no rtt once the connection is gone",
    );
}

/// With the inspector open (F2, or Alt-I), the kernel's figures are sampled live: the bytes
/// the kernel says it received catch up with what the client read (the status bar's `in`)
/// after each new line, with no network event carrying them.
#[test]
fn the_inspector_shows_the_kernels_figures_live() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 180, 50);
    let mut peer = plain_peer(&server.addr, "bob");
    tui.wait_for_text("is now known as bob");
    for (i, open) in [keys::F2, keys::ALT_I].into_iter().enumerate() {
        tui.send(open);
        tui.wait_for_text("TCP inspector");
        peer.send(&format!("line {i}\n"));
        tui.wait_for(
            |s| {
                let text = s.contents();
                let read = bytes_after(&status_row(s), " in ");
                text.contains(&format!("<bob> line {i}"))
                    && read.is_some()
                    && bytes_after(&text, "received ") == read
            },
            "the kernel's bytes received equal to the bytes read",
        );
        tui.send(keys::F2); // closes it
        tui.wait_for_no_text("TCP inspector");
    }
}

#[test]
fn help_opens_and_closes() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);

    tui.send(keys::F1);
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("tcpchat keys") && text.contains("Ctrl-D") && text.contains("PageUp")
        },
        "the help with Ctrl-D and PageUp",
    );
    // Any key closes it, and is not typed.
    tui.send("x");
    tui.wait_for_no_text("tcpchat keys");
    tui.wait_for(|s| input_row(s) == ">", "an empty edit box");

    // Alt-H opens it too (for terminals that take F1); Esc closes it.
    tui.send(keys::ALT_H);
    tui.wait_for_text("tcpchat keys");
    tui.send(keys::ESC);
    tui.wait_for_no_text("tcpchat keys");
    tui.wait_for(|s| input_row(s) == ">", "an empty edit box");

    // `?` is just a character, even at the start of a line: a message may begin with it.
    tui.send("? really");
    tui.wait_for(|s| input_row(s) == "> ? really", "\"? really\" typed");
    assert!(!tui.text().contains("tcpchat keys"));
}

#[test]
fn ctrl_c_quits_at_once_and_restores() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    tui.send("half a line");
    tui.wait_for(|s| input_row(s) == "> half a line", "the typed text");

    assert_raw(&tui);
    tui.send(keys::CTRL_C);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    assert_restored(&tui);
}

#[test]
fn sigterm_restores_terminal() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);

    assert_raw(&tui);
    signal(tui.pid(), libc::SIGTERM);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    assert_restored(&tui);
}

#[test]
fn connection_refused_is_shown_not_a_crash() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut tui = Tui::spawn(&[&addr], 80, 24);
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("refused") && text.contains("reconnecting")
        },
        "the refusal and the reconnect countdown",
    );
    assert!(tui.is_running(), "tcpchat ended on a refused connection");

    // A line typed meanwhile is not lost silently.
    tui.send("hello?");
    tui.send(keys::ENTER);
    tui.wait_for_text("not sent: hello?");
    // It tries again, backing off: 1 s, then 2 s.
    tui.wait_for_text("reconnecting in 2 s");
    assert!(tui.is_running(), "tcpchat ended on a refused connection");

    tui.send(keys::CTRL_C);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    tui.wait_for_output(LEAVE_ALTERNATE_SCREEN);
}

#[test]
fn server_killed_under_the_client_reconnects() {
    let mut server = Server::start("chat");
    let addr = server.addr.clone();
    let tui = join(&addr, "alice", 80, 24);

    assert_eq!(server.terminate(), 0, "the server's exit code");
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("server shutting down") && text.contains("reconnecting")
        },
        "the shutdown notice and the reconnect countdown",
    );
    tui.wait_for(
        |s| !status_row(s).contains(" connected "),
        "the status bar to stop saying connected",
    );

    // The same port again; the server sets SO_REUSEADDR, but allow for a slow release.
    let deadline = Instant::now() + Duration::from_secs(5);
    let _restarted = loop {
        match Server::try_start_at(&addr, "chat") {
            Ok(server) => break server,
            Err(error) if Instant::now() >= deadline => panic!("{error}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // Backoff is 1 s, then 2 s, then 4 s: well inside the deadline. The nick is asked for
    // again on the new connection.
    wait_connected_as(&tui, "alice");
}

#[test]
fn multi_line_paste_waits_for_confirmation() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut peer = plain_peer(&server.addr, "bob");
    tui.wait_for_text("is now known as bob");

    tui.send(&keys::paste("one\ntwo"));
    tui.wait_for_text("paste 2 lines?");
    let early = peer.lines_within(Duration::from_millis(300));
    assert!(
        !early.iter().any(|l| l.starts_with("<alice>")),
        "a paste was sent before it was confirmed: {early:?}"
    );

    tui.send(keys::ENTER);
    peer.expect_line(|l| l == "<alice> one", "<alice> one");
    peer.expect_line(|l| l == "<alice> two", "<alice> two");
    tui.wait_for_no_text("paste 2 lines?");
    tui.wait_for_text("<alice> two");
}

#[test]
fn local_mode_two_terminals_chat() {
    let addr = format!("127.0.0.1:{}", free_port());
    // Wide enough for the whole status bar: at 80 columns the addresses push "hosting" off.
    let a = Tui::spawn(&["--local", &addr, "--nick", "ann"], 120, 24);
    a.wait_for(
        |s| status_row(s).contains("hosting") && status_row(s).contains(" ann "),
        "A hosting the room as ann",
    );

    let mut b = Tui::spawn(&["--local", &addr, "--nick", "ben"], 80, 24);
    wait_connected_as(&b, "ben");
    b.wait_for(
        |s| !status_row(s).contains("hosting"),
        "B joined A's room rather than hosting one",
    );

    b.send("hi ann");
    b.send(keys::ENTER);
    a.wait_for_text("<ben> hi ann");
    b.wait_for_text("<ben> hi ann");
}

#[test]
fn network_control_sequences_never_reach_the_terminal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr").to_string();
    let tui = Tui::spawn(&[&addr], 80, 24);
    let mut server = accept_one(&listener);
    tui.wait_for(
        |s| status_row(s).contains(" connected "),
        "the status bar to show connected",
    );

    // Clear screen, a window title, leave the alternate screen, a C1 CSI, a bidi override,
    // BEL, BS and DEL, all inside one chat line.
    let hostile =
        "<eve> a\x1b[2Jb\x1b]0;pwned\x07c\x1b[?1049ld\u{9b}31me\u{202e}f\x07g\x08h\x7fi\n";
    server.write_all(hostile.as_bytes()).expect("write");
    tui.wait_for_text("<eve> abcdefghi");

    // A sequence cut by the read boundary: the ESC ends the first read, so its tail arrives as
    // plain text (visible, harmless).
    server.write_all(b"<eve> split\x1b").expect("write");
    tui.wait_for_text("<eve> split");
    server.write_all(b"[?1049lrest\n").expect("write");
    tui.wait_for_text("<eve> split[?1049lrest");

    let raw = String::from_utf8_lossy(&tui.raw_output()).into_owned();
    assert!(!raw.contains("pwned"), "an OSC title reached the terminal");
    assert!(
        !raw.contains(LEAVE_ALTERNATE_SCREEN),
        "the server made the terminal leave the alternate screen"
    );
    assert!(
        !raw.contains('\u{202e}'),
        "a bidi override reached the terminal"
    );
    tui.wait_for(|s| s.alternate_screen(), "the alternate screen still on");
}

#[test]
fn no_tty() {
    let output = std::process::Command::new(harness::binary())
        .arg("127.0.0.1:1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tcpchat");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(lines[0].starts_with("tcpchat: "), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
}
