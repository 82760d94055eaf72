//! `--pcap FILE` (issue 15, the packet view): the real binary in a pty chats with a real server,
//! quits with the exit key, and the file it wrote is read by tcpdump, an independent reader:
//! the whole session is there, from the SYN to the last ACK, and nothing else.
//!
//! Needs a packet socket (root or CAP_NET_RAW: `capture`) and tcpdump (`tcpdump`); CI has both
//! (.ci/run). Without the privilege the client says so and writes nothing, which the second
//! test checks wherever it runs without it.

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod common;
#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use common::{prerequisite, runs};
use harness::{Server, Tui, keys};

/// Whether this process may open a packet socket, or why not.
fn may_capture() -> Result<(), String> {
    tcpchat::capture::Capture::open()
        .map(drop)
        .map_err(|error| format!("a packet socket: {error}"))
}

#[test]
fn the_session_is_written_as_a_capture_file_tcpdump_reads() {
    if !prerequisite("capture", may_capture())
        || !prerequisite("tcpdump", runs("tcpdump", &["--version"]))
    {
        return;
    }
    let server = Server::start("chat");
    let port = server.addr.rsplit_once(':').unwrap().1.to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.pcap");
    let mut tui = Tui::spawn(&["--pcap", file.to_str().unwrap(), &server.addr], 80, 24);
    tui.wait_for_text("连接成功");
    // A second client of the same server: its packets must stay out of our file.
    let _other = harness::Peer::connect(&server.addr);
    tui.send(&format!("hello pcap{}", keys::ENTER));
    tui.wait_for_text("<guest-1> hello pcap");
    tui.send(keys::CTRL_D);
    tui.wait_exit(harness::DEADLINE);

    let out = std::process::Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let server_end = format!("127.0.0.1.{port}");
    let client_end = lines[0]
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("{text}"));
    for line in &lines {
        assert!(
            line.contains(&format!("{client_end} > {server_end}:"))
                || line.contains(&format!("{server_end} > {client_end}:")),
            "only our connection: {line}\n{text}"
        );
    }
    assert!(lines[0].contains("Flags [S],"), "the SYN first: {text}");
    assert!(lines[1].contains("Flags [S.],"), "then the SYN-ACK: {text}");
    // "hello pcap\n" is 11 bytes; "exit\n" 5; each side's FIN.
    assert!(text.contains("length 11"), "{text}");
    assert!(text.contains("length 5"), "{text}");
    let fins = lines.iter().filter(|l| l.contains("Flags [F.]")).count();
    assert_eq!(fins, 2, "{text}");
    let last = lines.last().unwrap();
    assert!(
        last.contains("Flags [.]"),
        "the last ACK of the close is in: {text}"
    );
}

#[test]
fn without_a_packet_socket_the_client_says_why_and_writes_nothing() {
    if !prerequisite("setpriv", runs("setpriv", &["--version"])) {
        return;
    }
    let server = Server::start("chat");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.pcap");
    // Without CAP_NET_RAW in its bounding set the client cannot have it, root or not.
    let unprivileged = [
        "setpriv",
        "--bounding-set=-net_raw",
        "--inh-caps=-net_raw",
        "--",
    ];
    let args = ["--pcap", file.to_str().unwrap(), &server.addr];
    let mut tui = Tui::spawn_under(&unprivileged, &args, 80, 24);
    tui.wait_for_text("--pcap: nothing is captured: a packet socket");
    tui.send(keys::CTRL_D);
    tui.wait_exit(harness::DEADLINE);
    assert!(!file.exists());
}
