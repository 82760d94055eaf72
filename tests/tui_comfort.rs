//! Everyday comfort in the real TUI, in a pseudo-terminal against a real server: Tab
//! completion of nicks as a person types them.

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{Peer, Server, Tui, keys};

/// The edit box's row, without the blanks after its text (cells a shorter line overwrote
/// with spaces count as written).
fn input_row(screen: &vt100::Screen) -> String {
    let (rows, cols) = screen.size();
    screen
        .rows(0, cols.get())
        .nth(usize::from(rows.get()) - 1)
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

#[test]
fn tab_completes_the_nick_of_who_spoke_last_and_sends_nothing() {
    let server = Server::start("chat");
    let mut tui = Tui::spawn(&["--nick", "alice", &server.addr], 80, 24);
    tui.wait_for_text("is now known as alice");
    let mut peers = Vec::new();
    for nick in ["bob", "bobby"] {
        let mut peer = Peer::connect(&server.addr);
        peer.expect_line(|l| l.contains("连接成功"), "the greeting");
        peer.send(&format!("/nick {nick}\nhi from {nick}\n"));
        tui.wait_for_text(&format!("<{nick}> hi from {nick}"));
        peers.push(peer);
    }
    tui.send("bo\t");
    tui.wait_for(|s| input_row(s) == "> bobby:", "bobby, who spoke last");
    tui.send("\t");
    tui.wait_for(|s| input_row(s) == "> bob:", "Tab again: bob");
    tui.send(&format!("there{}", keys::ENTER));
    peers[0].expect_line(|l| l == "<alice> bob: there", "the line as completed");
}
