//! Rooms and private conversations as buffers, end to end: the real `tcpchat` binary in a
//! pseudo-terminal against a real `--serve` server on a loopback port the OS picks, with a
//! plain-socket second client (as `nc` would be) talking to it. Every wait is for screen
//! content or bytes written, against a deadline (see `tui/harness.rs`).

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::Duration;

use harness::{Peer, Server, Tui, keys};

/// Alt-1…9 as a terminal sends them: ESC, then the digit.
fn alt(digit: char) -> String {
    format!("\x1b{digit}")
}

/// Ctrl-N and Ctrl-P.
const CTRL_N: &str = "\x0e";
const CTRL_P: &str = "\x10";
/// Alt-Left (xterm).
const ALT_LEFT: &str = "\x1b[1;3D";

/// The row `n` from the bottom (1 is the edit box, 2 the status bar, 3 the buffer bar).
fn row_from_bottom(screen: &vt100::Screen, n: usize) -> String {
    let (rows, cols) = screen.size();
    screen
        .rows(0, cols.get())
        .nth(usize::from(rows.get()) - n)
        .unwrap_or_default()
}

fn bar(screen: &vt100::Screen) -> String {
    row_from_bottom(screen, 3)
}

fn status(screen: &vt100::Screen) -> String {
    row_from_bottom(screen, 2)
}

/// Waits until the status bar says buffer `name` is on screen.
fn wait_on(tui: &Tui, name: &str) {
    tui.wait_for(
        |s| status(s).contains(&format!(" {name} ")),
        &format!("{name} on screen"),
    );
}

/// Waits until the buffer bar shows `text`.
fn wait_bar(tui: &Tui, text: &str) {
    tui.wait_for(
        |s| bar(s).contains(text),
        &format!("{text:?} in the buffer bar"),
    );
}

/// The TUI, connected to `addr` as `nick`.
fn join(addr: &str, nick: &str) -> Tui {
    let tui = Tui::spawn(&["--nick", nick, addr], 80, 24);
    tui.wait_for(
        |s| status(s).contains(" connected ") && status(s).contains(&format!(" {nick} ")),
        &format!("connected as {nick}"),
    );
    tui
}

/// A plain client that named itself `nick`.
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

/// Alice in the TUI and bob on a plain socket, both in `#rust`, alice looking at it.
fn alice_and_bob_in_rust(server: &Server) -> (Tui, Peer) {
    let mut tui = join(&server.addr, "alice");
    let mut bob = plain_peer(&server.addr, "bob");
    tui.send(&format!("/join #rust{}", keys::ENTER));
    wait_bar(&tui, "2:#rust");
    wait_on(&tui, "#rust");
    bob.send("/join #rust\n");
    bob.expect_line(|l| l == "*** now talking in #rust", "bob in #rust");
    tui.wait_for_text("bob joined; 2 online");
    (tui, bob)
}

/// How many times the terminal's bell was rung: BEL bytes that do not end an OSC sequence
/// (a window title ends with one too).
fn bells(output: &[u8]) -> usize {
    let mut count = 0;
    let mut in_osc = false;
    let mut previous = 0u8;
    for &byte in output {
        match byte {
            b']' if previous == 0x1b => in_osc = true,
            0x07 if in_osc => in_osc = false,
            b'\\' if in_osc && previous == 0x1b => in_osc = false,
            0x07 => count += 1,
            _ => {}
        }
        previous = byte;
    }
    count
}

#[test]
fn rooms_are_buffers_switched_with_alt_digits_and_ctrl_n_p() {
    let server = Server::start("chat");
    let (mut tui, mut bob) = alice_and_bob_in_rust(&server);
    tui.wait_for(
        |s| bar(s).starts_with("1:#lobby 2:#rust "),
        "the lobby and #rust in the bar",
    );

    tui.send(&alt('1'));
    wait_on(&tui, "#lobby");
    // Typed in the lobby's buffer, said in the lobby: the client switched the server there.
    tui.send(&format!("hello lobby{}", keys::ENTER));
    bob.expect_line(|l| l == "<alice> hello lobby", "alice's line in the lobby");

    tui.send(&alt('2'));
    wait_on(&tui, "#rust");
    tui.send(&format!("hello rust{}", keys::ENTER));
    bob.expect_line(|l| l == "#rust <alice> hello rust", "alice's line in #rust");

    tui.send(CTRL_P);
    wait_on(&tui, "#lobby");
    tui.send(CTRL_N);
    wait_on(&tui, "#rust");
    tui.send(ALT_LEFT);
    wait_on(&tui, "#lobby");
    // Each buffer shows its own lines.
    tui.wait_for(
        |s| s.contents().contains("<alice> hello lobby") && !s.contents().contains("hello rust"),
        "the lobby's lines only",
    );
}

#[test]
fn a_room_counts_lines_that_came_while_away_until_it_is_shown() {
    let server = Server::start("chat");
    let (mut tui, mut bob) = alice_and_bob_in_rust(&server);
    tui.send(&alt('1'));
    wait_on(&tui, "#lobby");
    bob.send("while you were away\nand another\n");
    wait_bar(&tui, "2:#rust(2)");
    assert!(
        !tui.text().contains("while you were away"),
        "not in the lobby"
    );
    tui.send(CTRL_N);
    wait_on(&tui, "#rust");
    wait_bar(&tui, "2:#rust ");
    tui.wait_for(
        |s| {
            let text = s.contents();
            let marker = text.find("── new");
            let line = text.find("<bob> while you were away");
            matches!((marker, line), (Some(m), Some(l)) if m < l)
        },
        "the unread marker right before the first line that came while away",
    );
    tui.wait_for(|s| !bar(s).contains('('), "nothing left unread");
}

#[test]
fn a_mention_is_marked_rings_the_bell_once_and_counts_in_the_title() {
    let server = Server::start("chat");
    let (mut tui, mut bob) = alice_and_bob_in_rust(&server);
    tui.send(&alt('1'));
    wait_on(&tui, "#lobby");
    assert_eq!(bells(&tui.raw_output()), 0, "nothing named alice yet");
    bob.send("ALICE: are you there?\n");
    wait_bar(&tui, "2:#rust(1!)");
    tui.wait_for_output("\x1b]0;tcpchat (1 unread)\x07");
    // A line that names nobody comes after it: by the time it is drawn, the bell (written
    // before that frame) has been rung, once.
    bob.send("never mind\n");
    wait_bar(&tui, "2:#rust(2,1!)");
    assert_eq!(
        bells(&tui.raw_output()),
        1,
        "the bell rings once per mention"
    );
    tui.send(&alt('2'));
    wait_bar(&tui, "2:#rust ");
    tui.wait_for_output("\x1b]0;tcpchat\x07");
    // Ctrl-C quits at once; the terminal's own title is put back.
    tui.send(keys::CTRL_C);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
    tui.wait_for_output("\x1b[23;0t");
}

#[test]
fn a_private_message_opens_a_buffer_where_typing_is_private() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice");
    let mut bob = plain_peer(&server.addr, "bob");
    bob.send("/msg alice psst, a secret\n");
    bob.expect_line(|l| l == "@alice <bob> psst, a secret", "bob's echo");
    wait_bar(&tui, "2:@bob(1!)");
    wait_on(&tui, "#lobby");
    tui.send(&alt('2'));
    wait_on(&tui, "@bob");
    tui.wait_for_text("<bob> psst, a secret");
    tui.send(&format!("a secret back{}", keys::ENTER));
    bob.expect_line(
        |l| l == "@alice <alice> a secret back",
        "alice's private answer",
    );
    tui.wait_for_text("<alice> a secret back");
    // /close closes it; the lobby comes back.
    tui.send(&format!("/close{}", keys::ENTER));
    wait_on(&tui, "#lobby");
    tui.wait_for(|s| !bar(s).contains("@bob"), "no @bob buffer");
}

#[test]
fn no_bell_keeps_the_mark_and_silences_the_bell() {
    let server = Server::start("chat");
    let tui = Tui::spawn(&["--no-bell", "--nick", "alice", &server.addr], 80, 24);
    tui.wait_for(
        |s| status(s).contains(" connected ") && status(s).contains(" alice "),
        "connected as alice",
    );
    let mut bob = plain_peer(&server.addr, "bob");
    bob.send("/msg alice alice, psst\n");
    wait_bar(&tui, "2:@bob(1!)");
    bob.send("/msg alice and again\n");
    wait_bar(&tui, "2:@bob(2!)");
    assert_eq!(bells(&tui.raw_output()), 0, "--no-bell rings nothing");
}
