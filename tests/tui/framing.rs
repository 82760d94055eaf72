//! The framing lab in the real binary: `/lab` knobs typed into the edit box, the framing page
//! drawn with the real figures of a scripted session at 80×24. A paused reader lets three lines
//! from another client wait in our kernel (`SIOCINQ` shows their bytes, sampled live); on
//! resume one `recv()` takes all three and the assembler finishes three lines from it.

use super::harness::{Server, keys};
use super::{join, plain_peer};

#[test]
fn a_paused_reader_takes_three_lines_in_one_recv() {
    let server = Server::start("chat");
    let mut tui = join(&server.addr, "alice", 80, 24);
    let mut bob = plain_peer(&server.addr, "bob");
    tui.wait_for_text("is now known as bob");

    tui.send("/lab recv 1024");
    tui.send(keys::ENTER);
    tui.wait_for_text("recv(1024) · reader reads at once");
    tui.send("/lab pause");
    tui.send(keys::ENTER);
    tui.wait_for_text("recv(1024) · reader paused");

    // Three send()s from bob; the server writes "<bob> lN\n" (9 bytes) three times to us.
    for line in ["l1\n", "l2\n", "l3\n"] {
        bob.send(line);
    }
    tui.wait_for_text("SIOCINQ      27 B");
    assert!(!tui.text().contains("<bob> l1"), "read while paused");

    tui.send("/lab resume");
    tui.send(keys::ENTER);
    tui.wait_for_text("<bob> l3");
    tui.wait_for(
        |screen| {
            let text = screen.contents();
            text.contains("· newest: 27 ")
                && text.contains("(3 from the last recv)")
                && text.contains("SIOCINQ      0 B")
        },
        "one recv() of 27 B that finished three lines, and nothing left in the kernel",
    );
    for line in ["<bob> l1", "<bob> l2", "<bob> l3"] {
        assert_eq!(tui.text().matches(line).count(), 1, "{line} once");
    }
}
