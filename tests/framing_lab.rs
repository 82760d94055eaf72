//! The framing lab against the kernel's own counts. The real network task talks to a raw tokio
//! server on 127.0.0.1 (a port from the OS); the lab's knobs go to it as the UI sends them, its
//! events feed a real [`Inspector`], and the framing page's rows are checked against what the
//! two sockets' `TCP_INFO` says happened.
//!
//! - **3 sends → 1 recv with a paused reader**: the reader is paused before it connects; the
//!   server makes three `send()`s (`TCP_NODELAY`, so three data segments: its
//!   `data_segs_out`), waits until our kernel has acknowledged them all (its `SIOCOUTQ` is 0),
//!   then the reader resumes: one `recv()` returns all three lines.
//! - **1 send of 3 KB → several reads with `recv(1024)`**: `/lab send paste 3` writes 3072
//!   bytes in one `send()` (one data segment at the server: its `data_segs_in`); the server
//!   echoes them in one `send()`; the client reads them 1024 bytes at most at a time, and the
//!   lines still assemble, none lost, none twice.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tcpchat::inspector::Inspector;
use tcpchat::lab::{self, Knobs, Reader, SendMode};
use tcpchat::net::{self, NetEvent, NetHandle, Outgoing};
use tcpchat::protocol::Framing;
use tcpchat::tcpinfo::{self, TcpInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// How long one step may take: a loopback round trip or a task waking, well under a
/// millisecond idle; the margin is for a debug build on a busy 2-core machine.
const DEADLINE: Duration = Duration::from_secs(10);

/// Feeds the inspector until `until` matches an event, and returns that event.
async fn pump(
    net: &mut NetHandle,
    inspector: &mut Inspector,
    until: impl Fn(&NetEvent) -> bool,
) -> NetEvent {
    loop {
        let stamped = tokio::time::timeout(DEADLINE, net.events.recv())
            .await
            .expect("event in time")
            .expect("net task alive");
        inspector.on_net(&stamped.event, stamped.at);
        if until(&stamped.event) {
            return stamped.event;
        }
    }
}

/// Waits until `socket`'s `TCP_INFO` satisfies `ready` (polled: the kernel says when, no fixed
/// sleep), and returns that sample.
async fn kernel_until(socket: &TcpStream, ready: impl Fn(&TcpInfo) -> bool) -> TcpInfo {
    let until = Instant::now() + DEADLINE;
    loop {
        let info = tcpinfo::read(socket).unwrap();
        if ready(&info) {
            return info;
        }
        assert!(
            Instant::now() < until,
            "the kernel never got there: {info:?}"
        );
        tokio::task::yield_now().await;
    }
}

/// A listener on a port from the OS, and the network task connected to it with `knobs`.
async fn connect(knobs: Knobs) -> (NetHandle, Inspector, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut net = net::spawn(addr.to_string(), Framing::Lines);
    net.lab.send_replace(knobs);
    let mut inspector = Inspector::default();
    inspector.framing.knobs = knobs;
    let (server, _) = tokio::time::timeout(DEADLINE, listener.accept())
        .await
        .expect("connected in time")
        .unwrap();
    server.set_nodelay(true).unwrap();
    pump(&mut net, &mut inspector, |e| {
        matches!(e, NetEvent::Connected { .. })
    })
    .await;
    (net, inspector, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sends_come_out_of_one_recv_after_a_pause() {
    let paused = Knobs {
        reader: Reader::Paused,
        ..Knobs::default()
    };
    let (mut net, mut inspector, mut server) = connect(paused).await;
    let lines: [&[u8]; 3] = [b"one\n", b"two\n", b"three\n"];
    let before = tcpinfo::read(&server).unwrap().data_segs_out.unwrap();
    for line in lines {
        server.write_all(line).await.unwrap();
    }
    // All three acknowledged by our kernel: they wait in it, unread.
    let sent = kernel_until(&server, |info| info.send_queue == Some(0)).await;
    assert_eq!(
        sent.data_segs_out.unwrap() - before,
        3,
        "three send()s, three data segments"
    );
    // Nothing was read while paused.
    while let Ok(stamped) = net.events.try_recv() {
        assert!(
            !matches!(stamped.event, NetEvent::Received(_)),
            "read while paused"
        );
        inspector.on_net(&stamped.event, stamped.at);
    }
    assert_eq!(inspector.framing.recvs.count, 0);

    net.lab.send_replace(Knobs::default());
    let read = pump(&mut net, &mut inspector, |e| {
        matches!(e, NetEvent::Received(_))
    })
    .await;
    let NetEvent::Received(bytes) = read else {
        unreachable!("pump returns what it waited for")
    };
    assert_eq!(
        &bytes[..],
        b"one\ntwo\nthree\n",
        "one recv() holds all three"
    );
    let lab = &inspector.framing;
    assert_eq!((lab.recvs.count, lab.recvs.bytes), (1, 14));
    assert_eq!((lab.lines, lab.lines_last_read), (3, 3));
    assert_eq!(lab.partial().1, 0);
    // The client's kernel agrees: three data segments in, all of them read.
    net.inspecting.send_replace(true);
    let mut samples = net.tcp_info.clone();
    let seen = tokio::time::timeout(
        DEADLINE,
        samples.wait_for(|info| info.is_some_and(|info| info.recv_queue == Some(0))),
    )
    .await
    .expect("a sample in time")
    .unwrap()
    .unwrap();
    assert_eq!(seen.data_segs_in, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_send_of_three_kb_comes_out_of_several_recv_1024() {
    let knobs = Knobs {
        recv: Some(1024),
        send: SendMode::Paste(3),
        ..Knobs::default()
    };
    let (mut net, mut inspector, mut server) = connect(knobs).await;
    let before = tcpinfo::read(&server).unwrap().data_segs_in.unwrap();
    net.outgoing
        .try_send(Outgoing::Line("hello".into()))
        .unwrap();
    let sent = pump(&mut net, &mut inspector, |e| {
        matches!(e, NetEvent::Sent { .. })
    })
    .await;
    assert_eq!(
        sent,
        NetEvent::Sent {
            bytes: 3072,
            exit: false
        }
    );
    let expected = lab::paste("hello", 3);
    let mut got = vec![0; expected.len()];
    tokio::time::timeout(DEADLINE, server.read_exact(&mut got))
        .await
        .expect("the paste in time")
        .unwrap();
    assert_eq!(got, expected);
    let info = tcpinfo::read(&server).unwrap();
    assert_eq!(
        info.data_segs_in.unwrap() - before,
        1,
        "one send() of 3 KB is one segment on loopback (MSS 65483)"
    );
    assert_eq!(inspector.framing.sends.count, 1);

    // The echo, in one send(): read back 1024 bytes at most at a time.
    server.write_all(&expected).await.unwrap();
    let mut reads = Vec::new();
    while reads.iter().sum::<usize>() < expected.len() {
        let read = pump(&mut net, &mut inspector, |e| {
            matches!(e, NetEvent::Received(_))
        })
        .await;
        if let NetEvent::Received(bytes) = read {
            reads.push(bytes.len());
        }
    }
    assert!(reads.len() >= 3, "{reads:?}");
    assert!(reads.iter().all(|&n| n <= 1024), "{reads:?}");
    let lab = &inspector.framing;
    assert_eq!(lab.recvs.count, reads.len() as u64);
    let lines = expected.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(lab.lines, lines, "every line assembled once");
    assert_eq!(lab.partial().1, 0, "nothing left waiting");
}
