//! The facts the TCP inspector relies on, checked on real loopback sockets, and the inspector's
//! model fed by real sessions of the network task against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tcpchat::inspector::{Closer, Direction, Inspector, Knowledge};
use tcpchat::net::{self, Close, NetEvent, NetHandle, Outgoing};
use tcpchat::protocol::Framing;
use tcpchat::server::{self, Config, Mode};
use tcpchat::tcpinfo::{self, TcpInfo};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(5);

fn info(stream: &TcpStream) -> TcpInfo {
    tcpinfo::read(stream).expect("TCP_INFO on Linux")
}

#[test]
fn right_after_connect_the_counters_show_the_handshake() {
    // A listener that never accepts: the kernel completes the handshake, nobody writes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let info = info(&client);
    assert_eq!(info.state, Some(tcpinfo::ESTABLISHED));
    assert_eq!(info.segs_out, Some(2), "SYN and ACK");
    assert_eq!(info.segs_in, Some(1), "SYN-ACK");
    assert_eq!(info.bytes_acked, Some(1), "the SYN's one sequence number");
    assert!(info.rtt_us.is_some() && info.snd_mss.is_some_and(|mss| mss > 0));
}

#[test]
fn after_the_peers_close_a_read_returns_zero_and_we_are_in_close_wait() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    drop(server_side); // FIN
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(client.read(&mut buf).unwrap(), 0);
    assert_eq!(info(&client).state, Some(tcpinfo::CLOSE_WAIT));
}

#[test]
fn a_zero_linger_close_resets_the_other_side() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    let server_side = tokio_std(server_side);
    server_side.set_zero_linger().unwrap();
    drop(server_side); // RST instead of FIN
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 16];
    let error = client.read(&mut buf).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn a_reset_does_not_discard_what_the_receiver_already_has() {
    // What an RST loses is what its *sender* had queued; bytes already in the receiver's
    // queue are still read, and only then does recv() fail.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server_side, _) = listener.accept().unwrap();
    server_side.write_all(b"hello-unread").unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    while info(&client).recv_queue != Some(12) {
        assert!(
            std::time::Instant::now() < deadline,
            "12 bytes never queued"
        );
        std::thread::yield_now();
    }
    let server_side = tokio_std(server_side);
    server_side.set_zero_linger().unwrap();
    drop(server_side); // RST
    while info(&client).state != Some(tcpinfo::CLOSED) {
        assert!(std::time::Instant::now() < deadline, "the RST never came");
        std::thread::yield_now();
    }
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    let n = client.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello-unread");
    let error = client.read(&mut buf).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
}

/// Zero linger has no std setter; tokio's socket has one.
fn tokio_std(stream: TcpStream) -> tokio::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    stream.set_nonblocking(true).unwrap();
    tokio::net::TcpStream::from_std(stream).unwrap()
}

#[test]
fn unsent_and_unread_bytes_show_in_the_queues() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server_side, _) = listener.accept().unwrap();
    server_side.write_all(b"12345").unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    while info(&client).recv_queue != Some(5) {
        assert!(std::time::Instant::now() < deadline, "5 bytes never queued");
        std::thread::yield_now();
    }
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(info(&client).recv_queue, Some(0));
}

/// Runs the real server in `mode` on a port the OS picks; returns its address and stopper.
async fn serve(mode: Mode) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let token = CancellationToken::new();
    let config = Config {
        mode,
        ..Config::default()
    };
    tokio::spawn(server::run(listener, config, token.clone()));
    (addr, token)
}

/// Feeds events into `inspector` until one matches `until`; returns the events seen.
async fn pump(
    net: &mut NetHandle,
    inspector: &mut Inspector,
    until: impl Fn(&NetEvent) -> bool,
) -> Vec<NetEvent> {
    let mut seen = Vec::new();
    loop {
        let stamped = tokio::time::timeout(DEADLINE, net.events.recv())
            .await
            .expect("event in time")
            .expect("net task alive");
        inspector.on_net(&stamped.event, stamped.at);
        let done = until(&stamped.event);
        seen.push(stamped.event);
        if done {
            return seen;
        }
    }
}

fn received_text(events: &[NetEvent]) -> String {
    let bytes: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            NetEvent::Received(bytes) => Some(bytes.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn a_whole_chat_session_reads_as_the_article_tells_it() {
    let (addr, _server) = serve(Mode::Chat).await;
    let mut net = net::spawn(addr.clone(), Framing::Lines);
    let mut inspector = Inspector::default();
    let greeted = |e: &NetEvent| matches!(e, NetEvent::Received(b) if b.ends_with(b"commands\n"));
    pump(&mut net, &mut inspector, greeted).await;
    net.outgoing
        .try_send(Outgoing::Exit("exit".into()))
        .unwrap();
    let closing = pump(&mut net, &mut inspector, |e| {
        matches!(e, NetEvent::Closed { .. })
    })
    .await;
    assert!(received_text(&closing).contains("*** bye, guest-1; closing the connection"));
    assert!(matches!(
        closing.last(),
        Some(NetEvent::Closed {
            how: Close::PeerFin,
            ..
        })
    ));

    let timeline: Vec<String> = inspector.timeline().map(|e| e.text.to_string()).collect();
    let expected = [
        format!("resolve {addr}"),
        format!("socket(); connect({addr}): SYN →"),
        "established in".to_owned(),
        "local port".to_owned(),
        "recv() → ".to_owned(),
        "send(5 B): exit".to_owned(),
        "shutdown(WR): our FIN →".to_owned(),
        "recv() → 0: the server's FIN ←".to_owned(),
        "close(): we are left in TIME-WAIT".to_owned(),
    ];
    let mut at = 0;
    for step in &expected {
        let found = timeline[at..]
            .iter()
            .position(|t| t.contains(step.as_str()));
        let found = found.unwrap_or_else(|| panic!("{step:?} missing after {at} in {timeline:#?}"));
        at += found + 1;
    }
    // Times only move forward.
    let times: Vec<Duration> = inspector.timeline().map(|e| e.at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    let syn = &inspector.handshake[0];
    assert_eq!((syn.label, syn.knowledge), ("SYN", Knowledge::Observed));
    // The server greets at once, so on a busy machine its first data (and our ACK of it) can
    // already be counted when the sample is taken: at least the handshake's 2, and 1 acked.
    assert!(syn.evidence.starts_with("segs_out 0→"), "{}", syn.evidence);
    assert!(
        syn.evidence.ends_with("bytes_acked 0→1"),
        "{}",
        syn.evidence
    );
    assert_eq!(inspector.closer, Some(Closer::Us));
    let close: Vec<(&str, Direction)> = inspector
        .close
        .iter()
        .map(|a| (a.label, a.direction))
        .collect();
    assert_eq!(
        close,
        [
            ("FIN", Direction::Out),
            ("ACK", Direction::In),
            ("FIN", Direction::In),
            ("ACK", Direction::Out)
        ]
    );
}

#[tokio::test]
async fn the_server_closing_first_leaves_us_in_close_wait() {
    let (addr, server) = serve(Mode::Chat).await;
    let mut net = net::spawn(addr, Framing::Lines);
    let mut inspector = Inspector::default();
    pump(
        &mut net,
        &mut inspector,
        |e| matches!(e, NetEvent::Received(b) if b.ends_with(b"commands\n")),
    )
    .await;
    server.cancel();
    let events = pump(&mut net, &mut inspector, |e| {
        matches!(e, NetEvent::Closed { .. })
    })
    .await;
    assert!(received_text(&events).contains("*** server shutting down"));
    let Some(NetEvent::Closed {
        how: Close::PeerFin,
        info: Some(info),
        ..
    }) = events.last()
    else {
        panic!("{events:?}");
    };
    assert_eq!(info.state, Some(tcpinfo::CLOSE_WAIT));
    assert_eq!(inspector.closer, Some(Closer::Server));
    assert_eq!(
        inspector.close[0].evidence,
        "recv() returned 0; state CLOSE-WAIT"
    );
}

#[tokio::test]
async fn one_big_send_to_the_echo_server_comes_back_in_several_reads() {
    let (addr, _server) = serve(Mode::Echo).await;
    let mut net = net::spawn(addr, Framing::Raw);
    let mut inspector = Inspector::default();
    pump(
        &mut net,
        &mut inspector,
        |e| matches!(e, NetEvent::Received(b) if b.as_ref() == "连接成功!".as_bytes()),
    )
    .await;
    net.outgoing
        .try_send(Outgoing::Line("x".repeat(3000)))
        .unwrap();
    let mut echoed = String::new();
    while echoed.matches('x').count() < 3000 {
        let events = pump(&mut net, &mut inspector, |e| {
            matches!(e, NetEvent::Received(_))
        })
        .await;
        echoed.push_str(&received_text(&events));
    }
    // The server's recv(1024) cut the one send into at least three messages.
    let replies = echoed.matches("条信息:").count();
    assert!(replies >= 3, "{replies} replies: {echoed}");
    assert!(echoed.starts_with("第1条信息:"));
    // The inspector kept each read with its real size.
    let sizes: usize = inspector.reads().skip(1).map(|r| r.len).sum();
    assert_eq!(sizes, echoed.len());
}
