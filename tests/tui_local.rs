//! Local mode against what is not a tcpchat server, in the real TUI in a pseudo-terminal: a
//! web server on the local port (Jupyter's 8888, say), a port that accepts and says nothing,
//! and an address that can be neither hosted nor joined. Each gets one line saying what it is,
//! and no endless reconnecting.

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::Tui;

/// A service on a loopback port the OS picks that answers each connection with `answer` (or
/// nothing) and keeps it open; returns its address and how many connections it took.
fn service(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counting = accepted.clone();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            counting.fetch_add(1, Ordering::SeqCst);
            if !answer.is_empty() {
                let mut request = [0u8; 256];
                stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let _ = stream.read(&mut request); // whatever the client sends first, if any
                let _ = stream.write_all(answer);
            }
            open.push(stream); // held open, as a keep-alive server or a silent one would
        }
    });
    (addr, accepted)
}

/// After the hang-up, no connection comes back: the first reconnect would come a second
/// after the close; watched for twice that.
fn no_reconnect(accepted: &AtomicUsize) {
    let watch_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch_until {
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "it connected again");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_web_server_on_the_local_port_is_named_and_hung_up_on() {
    let (addr, accepted) = service(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let tui = Tui::spawn(&["--local", &addr], 120, 24);
    tui.wait_for_text("answered `HTTP/1.1 400 Bad Request`: not a tcpchat server; hanging up");
    tui.wait_for_text("closed: not a tcpchat server; not connecting again");
    no_reconnect(&accepted);
}

#[test]
fn a_silent_service_on_the_local_port_is_hung_up_on_after_three_seconds() {
    let (addr, accepted) = service(b"");
    let tui = Tui::spawn(&["--local", &addr], 120, 24);
    tui.wait_for_text("said nothing in 3 s (a tcpchat server greets at once)");
    tui.wait_for_text("closed: not a tcpchat server");
    no_reconnect(&accepted);
}

#[test]
fn a_stranger_joined_by_name_is_named_but_not_hung_up_on() {
    let (addr, _) = service("连接成功!".as_bytes());
    let tui = Tui::spawn(&[&addr], 120, 24);
    tui.wait_for_text("sent `连接成功!` and no tcpchat greeting in 3 s");
    tui.wait_for(
        |s| s.contents().lines().any(|l| l.starts_with(" connected")),
        "still connected",
    );
}

#[test]
fn an_address_that_can_be_neither_hosted_nor_joined_is_one_line() {
    // 192.0.2.0/24 is for documentation: no interface here has it, so binding fails at once
    // and nothing is sent anywhere.
    let mut tui = Tui::spawn(&["--local", "192.0.2.1:8888"], 100, 24);
    assert_eq!(tui.wait_exit(harness::DEADLINE), 1);
    let output = String::from_utf8_lossy(&tui.raw_output()).into_owned();
    assert!(
        output.contains("cannot host the room on 192.0.2.1:8888 and nobody listens there"),
        "{output}"
    );
}
